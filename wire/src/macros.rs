//! Code both layers would otherwise write twice.

/// `get_ref`, `get_mut` and `into_inner` for a middleware service whose wrapped service `S` is
/// its field `inner` (as tower's services have them). Used inside `impl<S> Service<S> { … }`.
#[doc(hidden)]
#[macro_export]
macro_rules! inner_service_accessors {
    () => {
        /// The wrapped service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The wrapped service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// The wrapped service, unwrapped.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

//! What one layer's services share at run time, built once by the layer's builder.

use std::sync::Arc;

use http::Method;

use crate::credential_cell::Cell;
use crate::predicate::RefreshPredicate;
use portcullis_wire::Origin;

/// What every service of one layer shares.
pub(crate) struct Shared {
    pub(crate) cell: Arc<Cell>,
    pub(crate) scope: Arc<[Origin]>,
    pub(crate) keep_existing: bool,
    pub(crate) max_replay: usize,
    pub(crate) predicate: RefreshPredicate,
    /// `None`: every method is retried.
    pub(crate) retry_methods: Option<Arc<[Method]>>,
    pub(crate) report: bool,
    /// Whether an `insufficient_scope` refusal gets one new credential and one retry.
    pub(crate) step_up: bool,
}

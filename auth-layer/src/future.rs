//! The response future shared by [`AuthService`](crate::AuthService) and
//! [`PolicyService`](crate::policy::PolicyService).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use crate::body::AuthBody;

type BoxResponseFuture<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<AuthBody<B>>, E>> + Send>>;

pin_project! {
    /// The response future of [`AuthService`] and [`PolicyService`].
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E> {
        Inner { #[pin] fut: F },
        Boxed { fut: BoxResponseFuture<B, E> },
        Ready { res: Option<Response<AuthBody<B>>> },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn inner(fut: F) -> Self {
        ResponseFuture {
            kind: Kind::Inner { fut },
        }
    }

    pub(crate) fn ready(res: Response<AuthBody<B>>) -> Self {
        ResponseFuture {
            kind: Kind::Ready { res: Some(res) },
        }
    }

    pub(crate) fn boxed(
        fut: impl Future<Output = Result<Response<AuthBody<B>>, E>> + Send + 'static,
    ) -> Self {
        ResponseFuture {
            kind: Kind::Boxed { fut: Box::pin(fut) },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<AuthBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { fut } => fut.poll(cx).map(|r| r.map(|res| res.map(AuthBody::inner))),
            KindProj::Boxed { fut } => fut.as_mut().poll(cx),
            KindProj::Ready { res } => Poll::Ready(Ok(res
                .take()
                .expect("ResponseFuture polled after completion"))),
        }
    }
}

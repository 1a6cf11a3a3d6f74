//! The response future of [`RefreshService`](crate::RefreshService).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower::Service;

use crate::error::{BoxError, Error};
use crate::outcome::{RefreshOutcome, annotate};
use crate::retry::{Next, Retry};

pub(crate) type BoxResponseFuture<ResB, E> =
    Pin<Box<dyn Future<Output = Result<Response<ResB>, Error<E>>> + Send>>;

pin_project! {
    /// The response future of [`RefreshService`].
    ///
    /// A bodiless request with a fresh credential (the common case) is not boxed: it holds the
    /// inner future next to what the one retry needs; only a refresh, a body to buffer, or a
    /// retry moves to a boxed future.
    pub struct ResponseFuture<S, B, ResB>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B, ResB>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B, ResB>
    where
        S: Service<Request<B>>,
    {
        First {
            #[pin]
            fut: S::Future,
            outcome: Option<RefreshOutcome>,
            // `None` when the response is returned whatever it is.
            retry: Option<Retry<S, B>>,
        },
        Boxed {
            fut: BoxResponseFuture<ResB, S::Error>,
        },
    }
}

impl<S, B, ResB> ResponseFuture<S, B, ResB>
where
    S: Service<Request<B>>,
{
    /// The inner call is under way; `retry` is what a refreshable answer needs (`None`: the
    /// answer is returned whatever it is).
    pub(crate) fn first(
        fut: S::Future,
        outcome: Option<RefreshOutcome>,
        retry: Option<Retry<S, B>>,
    ) -> Self {
        ResponseFuture {
            state: State::First {
                fut,
                outcome,
                retry,
            },
        }
    }

    /// A path that may wait (a refresh before sending, a body to buffer, the retry).
    pub(crate) fn boxed(fut: BoxResponseFuture<ResB, S::Error>) -> Self {
        ResponseFuture {
            state: State::Boxed { fut },
        }
    }
}

impl<S, B, ResB> Future for ResponseFuture<S, B, ResB>
where
    S: Service<Request<B>, Response = Response<ResB>> + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    B: From<Bytes> + Send + 'static,
    ResB: Body + Send + Unpin + 'static,
    ResB::Data: Send,
    ResB::Error: Into<BoxError>,
{
    type Output = Result<Response<ResB>, Error<S::Error>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let boxed = match self.as_mut().project().state.project() {
            StateProj::Boxed { fut } => return fut.as_mut().poll(cx),
            StateProj::First {
                fut,
                outcome,
                retry,
            } => {
                let res = std::task::ready!(fut.poll(cx)).map_err(Error::Inner)?;
                match retry.take().map(|r| (r.next(&res), r)) {
                    Some((next, r)) if next != Next::Return => {
                        Box::pin(r.settle(next, res, *outcome))
                    }
                    _ => return Poll::Ready(Ok(annotate(res, *outcome))),
                }
            }
        };
        self.as_mut()
            .project()
            .state
            .set(State::Boxed { fut: boxed });
        self.poll(cx)
    }
}

//! The service: asks the rule about the request's principal, and renders a refusal the way
//! the auth layer around it would.

use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use super::layer::PolicyLayer;
use super::refusal::refusal;
use super::rules::AccessPolicy;
use crate::body::AuthBody;
use crate::context::LayerContext;
use crate::error::{AuthError, ErrorCode};
use crate::future::ResponseFuture;
use crate::principal::Principal;
use crate::response::misconfiguration::no_auth_layer;

impl<S, P: Clone> Layer<S> for PolicyLayer<P> {
    type Service = PolicyService<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        PolicyService {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service of a [`PolicyLayer`].
#[derive(Debug, Clone)]
pub struct PolicyService<S, P> {
    inner: S,
    policy: P,
}

impl<S, P> PolicyService<S, P> {
    portcullis_wire::inner_service_accessors!();
}

impl<S, P, ReqB, ResB> Service<Request<ReqB>> for PolicyService<S, P>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    P: AccessPolicy,
{
    type Response = Response<AuthBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResB, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let verdict = match req.extensions().get::<Principal>() {
            Some(p) => self.policy.check(p),
            // Anonymous (optional mode): authentication is required.
            None if req.extensions().get::<LayerContext>().is_some() => {
                Err(AuthError::new(ErrorCode::MissingCredentials))
            }
            // No auth layer at all: a server misconfiguration, not the client's mistake.
            None => {
                return ResponseFuture::ready(
                    no_auth_layer::<bytes::Bytes>("route policy").map(AuthBody::problem),
                );
            }
        };
        match verdict {
            Ok(()) => ResponseFuture::inner(self.inner.call(req)),
            Err(err) => ResponseFuture::ready(refusal(
                req.extensions(),
                &err,
                "route policy refused the request",
            )),
        }
    }
}

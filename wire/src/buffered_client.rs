//! An HTTP client, type-erased, whose response bodies are read whole up to a limit: what the
//! server's key-set fetch and the client's token request both use to talk to an identity
//! provider. A body over the limit is refused while it is read, never buffered whole.

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

/// A boxed error, at the edges only.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A cloneable HTTP client service sending `Request<B>` and answering with the whole body.
pub type BufferedClient<B> = BoxCloneSyncService<Request<B>, Response<Bytes>, BoxError>;

/// Any HTTP client service that can be shared between tasks: hyper-util's legacy client, a
/// `tower::service_fn`, a tower stack. Implemented for every such service; it names the bounds
/// once for every function that takes a client.
pub trait HttpClient<B>:
    Service<
        Request<B>,
        Response = Response<Self::Body>,
        Error: Into<BoxError>,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
    /// The response body type.
    type Body: Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static;
}

impl<S, B, R> HttpClient<B> for S
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    R: Body<Data = Bytes> + Send + 'static,
    R::Error: Into<BoxError>,
{
    type Body = R;
}

/// Wrap any HTTP client service (hyper-util's, a test's `service_fn`, a tower stack) so that
/// its answers come back with bodies of at most `max_body` bytes, read whole.
///
/// # Example
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use http_body_util::Full;
/// use portcullis::wire::buffered_client::buffered;
/// use tower::ServiceExt;
///
/// let http = tower::service_fn(|_req: Request<Full<Bytes>>| async {
///     Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(vec![b'x'; 100]))))
/// });
/// let small = buffered(http.clone(), 10);
/// assert!(small.oneshot(Request::new(Full::default())).await.is_err());
/// let big = buffered(http, 100);
/// let res = big.oneshot(Request::new(Full::default())).await.unwrap();
/// assert_eq!(res.body().len(), 100);
/// # }
/// ```
pub fn buffered<S, B>(http: S, max_body: usize) -> BufferedClient<B>
where
    S: HttpClient<B>,
    B: 'static,
{
    BoxCloneSyncService::new(http.map_err(Into::into).and_then(
        move |res: Response<S::Body>| async move {
            let (parts, body) = res.into_parts();
            let bytes = Limited::new(body, max_body).collect().await?.to_bytes();
            Ok(Response::from_parts(parts, bytes))
        },
    ))
}

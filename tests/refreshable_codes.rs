//! Which refusals a new credential can fix, end to end: for every `ErrorCode`, the server's own
//! rendering of it (status, challenge, problem body) is answered to a client behind the
//! `RefreshLayer` with its default rules, over loopback. The client refreshes and retries once
//! exactly for the codes `ErrorCode::client_refreshes` documents, and for no other.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portcullis::client::{Credential, RefreshLayer, from_fn};
use portcullis::server::AuthError;
use portcullis::testkit::loopback::serve;
use portcullis::wire::ErrorCode;
use tower::{Service, ServiceBuilder, ServiceExt};

/// Answers `/code/<wire value>` with that code's refusal, as the server layer renders it, and
/// counts the requests.
async fn refusing_api(requests: Arc<AtomicU64>) -> std::net::SocketAddr {
    let app = Router::new()
        .route(
            "/code/{code}",
            get(
                |State(requests): State<Arc<AtomicU64>>, Path(code): Path<String>| async move {
                    requests.fetch_add(1, Ordering::SeqCst);
                    AuthError::new(ErrorCode::from_wire(&code).expect("a known code"))
                },
            ),
        )
        .with_state(requests);
    serve(app).await
}

#[tokio::test]
async fn the_client_refreshes_exactly_on_the_codes_documented_as_refreshable() {
    let requests = Arc::new(AtomicU64::new(0));
    let addr = refusing_api(requests.clone()).await;
    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut refreshing = Vec::new();
    for &code in ErrorCode::ALL {
        requests.store(0, Ordering::SeqCst);
        let fetches = Arc::new(AtomicU64::new(0));
        let counted = fetches.clone();
        let source = from_fn(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move { Ok(Credential::bearer(&format!("token-{n}")).unwrap()) }
        });
        let layer = RefreshLayer::builder(source)
            .allow_origin(format!("http://{addr}"))
            .build()
            .unwrap();
        let mut api = ServiceBuilder::new().layer(layer).service(http.clone());
        let req = Request::get(format!("http://{addr}/code/{code}"))
            .body(Full::default())
            .unwrap();
        let res = api.ready().await.unwrap().call(req).await.unwrap();
        assert_eq!(res.status(), code.status(), "{code}");
        let (want_fetches, want_requests) = if code.client_refreshes() {
            refreshing.push(code.as_str());
            (2, 2)
        } else {
            (1, 1)
        };
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            want_fetches,
            "{code}: the first fetch, then a refresh only when documented"
        );
        assert_eq!(
            requests.load(Ordering::SeqCst),
            want_requests,
            "{code}: one retry only when documented"
        );
    }
    // The table in `ErrorCode::client_refreshes`'s docs, as a list: a change to it is a
    // change to the contract and shows here.
    assert_eq!(
        refreshing,
        [
            "missing_credentials",
            "unsupported_scheme",
            "token_malformed",
            "invalid_signature",
            "algorithm_not_allowed",
            "unknown_key",
            "token_expired",
            "token_not_yet_valid",
            "invalid_issuer",
            "invalid_audience",
            "invalid_token_type",
            "missing_claim",
            "token_revoked",
            "invalid_api_key",
        ]
    );
}

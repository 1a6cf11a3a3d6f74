//! What the suites here share: the plain-HTTP client the layer wraps, requests, bodies and
//! listeners on 127.0.0.1.

// Each suite is its own crate and uses only part of this module.
#![allow(dead_code)]

pub(crate) mod processes;

use std::net::SocketAddr;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The plain-HTTP client every layer under test wraps.
pub(crate) type Http = Client<HttpConnector, Full<Bytes>>;

pub(crate) fn http() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

/// `GET http://{addr}{path}` without a body.
pub(crate) fn get_req(addr: SocketAddr, path: &str) -> Request<Full<Bytes>> {
    Request::get(format!("http://{addr}{path}"))
        .body(Full::default())
        .unwrap()
}

pub(crate) async fn text(res: http::Response<Incoming>) -> String {
    String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

pub(crate) async fn body_json(res: http::Response<Incoming>) -> serde_json::Value {
    serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

/// A listener on a free port of 127.0.0.1, and its address: bound first, so a URL with its
/// port is known before the server (or the token endpoint that issues tokens for it) starts.
pub(crate) async fn bind() -> (tokio::net::TcpListener, SocketAddr) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

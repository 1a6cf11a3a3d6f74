//! `TestRequest` sends what it says: every method, its credentials and its body reach a real
//! server on 127.0.0.1 as written.

use axum::Router;
use axum::body::Bytes;
use axum::routing::any;
use http::{HeaderMap, Method};
use portcullis_testkit::loopback::{TestRequest, serve};
use serde_json::json;

/// Echoes what arrived: method, the credential headers, content type and body.
async fn echo(method: Method, headers: HeaderMap, body: Bytes) -> axum::Json<serde_json::Value> {
    let all = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    axum::Json(json!({
        "method": method.as_str(),
        "authorization": all("authorization"),
        "cookie": all("cookie"),
        "x-api-key": all("x-api-key"),
        "content-type": all("content-type"),
        "body": String::from_utf8_lossy(&body),
    }))
}

/// One of `TestRequest`'s method constructors.
type Make = fn(std::net::SocketAddr, &str) -> TestRequest;

#[tokio::test]
async fn every_method_arrives_as_written() {
    let addr = serve(Router::new().route("/r", any(echo))).await;
    let cases: [(Make, &str); 6] = [
        (TestRequest::get, "GET"),
        (TestRequest::post, "POST"),
        (TestRequest::put, "PUT"),
        (TestRequest::patch, "PATCH"),
        (TestRequest::delete, "DELETE"),
        (TestRequest::options, "OPTIONS"),
    ];
    for (make, method) in cases {
        let r = make(addr, "/r").send().await;
        assert_eq!(r.status, 200, "{method}");
        assert_eq!(r.json()["method"], method);
    }
    // HEAD has no body to echo: the status and the method routing are what arrive.
    let head = TestRequest::head(addr, "/r").send().await;
    assert_eq!((head.status.as_u16(), head.body.len()), (200, 0));
    let custom = TestRequest::new(Method::from_bytes(b"PURGE").unwrap(), addr, "/r")
        .send()
        .await;
    assert_eq!(custom.json()["method"], "PURGE");
}

#[tokio::test]
async fn credentials_and_bodies_arrive_as_written() {
    let addr = serve(Router::new().route("/r", any(echo))).await;
    let r = TestRequest::post(addr, "/r?x=1")
        .bearer("tok")
        .cookie("sid", "s-1")
        .api_key("x-api-key", "k-1")
        .json(&json!({"text": "hi"}))
        .send()
        .await;
    let j = r.json();
    assert_eq!(j["authorization"], json!(["Bearer tok"]));
    assert_eq!(j["cookie"], json!(["sid=s-1"]));
    assert_eq!(j["x-api-key"], json!(["k-1"]));
    assert_eq!(j["content-type"], json!(["application/json"]));
    assert_eq!(j["body"], r#"{"text":"hi"}"#);
    // A repeated header is sent twice (a case the server must refuse), never merged.
    let twice = TestRequest::get(addr, "/r")
        .bearer("a")
        .bearer("b")
        .send()
        .await;
    assert_eq!(
        twice.json()["authorization"],
        json!(["Bearer a", "Bearer b"])
    );
    let raw = TestRequest::put(addr, "/r").body("plain").send().await;
    assert_eq!(raw.json()["body"], "plain");
}

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

#[tokio::test]
async fn credentials_are_kept_out_of_debug_output_and_paths_must_be_paths() {
    let addr: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let req = TestRequest::get(addr, "/r")
        .bearer("secret-token")
        .cookie("sid", "secret-cookie")
        .api_key("x-api-key", "secret-key")
        .header("x-trace", "visible");
    let shown = format!("{req:?}");
    for secret in ["secret-token", "secret-cookie", "secret-key"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("visible"), "{shown}");
    // Something that is not a path could name another host, which would get the credential.
    let other_host = std::panic::catch_unwind(|| TestRequest::get(addr, "@evil.test/x"));
    assert!(other_host.is_err());
}

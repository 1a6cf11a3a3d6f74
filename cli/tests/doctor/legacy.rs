//! An API that is not Portcullis, set up wrong in the common ways, with its own identity
//! providers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Response};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::testkit::{TestIssuer, now};
use serde_json::{Value, json};

use crate::support::{APP, bind, spawn};

/// The legacy API and its identity providers: `/idp`, `/old-idp` (whose key set rotated the
/// token's key away) and `/down-idp` (whose key set answers 500).
pub(crate) struct Legacy {
    pub addr: SocketAddr,
    pub idp: Arc<TestIssuer>,
    pub old: Arc<TestIssuer>,
    pub down: Arc<TestIssuer>,
}

/// Start the legacy API.
pub(crate) async fn legacy() -> Legacy {
    let (l, addr) = bind().await;
    let idp = Arc::new(TestIssuer::new(format!("http://{addr}/idp")));
    let old = Arc::new(TestIssuer::new(format!("http://{addr}/old-idp")));
    let down = Arc::new(TestIssuer::new(format!("http://{addr}/down-idp")));
    let app = refusals()
        .merge(cors_routes())
        .merge(metadata_routes(addr))
        .merge(idp_routes("/idp", idp.clone(), false, false))
        .merge(idp_routes("/old-idp", old.clone(), true, false))
        .merge(idp_routes("/down-idp", down.clone(), false, true));
    spawn(l, app);
    Legacy {
        addr,
        idp,
        old,
        down,
    }
}

/// The ways it refuses (or answers instead of refusing).
fn refusals() -> Router {
    Router::new()
        // A plain 401: no challenge, no body.
        .route("/plain", any(|| async { reply(401, &[]) }))
        .route("/boom", any(|| async { reply(500, &[]) }))
        .route("/forbidden", any(|| async { reply(403, &[]) }))
        .route(
            "/scoped",
            any(|| async {
                reply(403, &[("www-authenticate", r#"Bearer realm="legacy", error="insufficient_scope", scope="orders:write""#.into())])
            }),
        )
        .route(
            "/revoked",
            any(|| async {
                reply(401, &[("www-authenticate", r#"Bearer error="invalid_token", error_description="token revoked""#.into())])
            }),
        )
        // Its clock runs two hours ahead, and it judges `exp` by it.
        .route(
            "/skewed",
            any(|headers: HeaderMap| async move {
                let its_now = now() + 7_200;
                let date = httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(its_now));
                match exp_of(&headers) {
                    Some(exp) if exp > its_now as i64 => reply(200, &[("date", date)]),
                    _ => reply(401, &[("date", date), ("www-authenticate", r#"Bearer error="invalid_token""#.into())]),
                }
            }),
        )
        // Sign-in redirects instead of 401 (oauth2-proxy, session middlewares).
        .route(
            "/behind-proxy",
            any(|| async { reply(302, &[("location", "/oauth2/start?rd=%2Fbehind-proxy".into())]) }),
        )
        // Only Basic is asked for.
        .route("/basic-only", any(|| async { reply(401, &[("www-authenticate", r#"Basic realm="legacy""#.into())]) }))
        // A careless server that repeats the credential it was sent.
        .route(
            "/echo",
            any(|headers: HeaderMap| async move {
                let sent = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                reply(401, &[("www-authenticate", format!(r#"Bearer error="invalid_token", error_description="bad token {sent}""#))])
            }),
        )
}

/// Its CORS, wrong in four ways.
fn cors_routes() -> Router {
    Router::new()
        // CORS that authenticates the preflight.
        .route(
            "/preflight-challenged",
            any(|method: Method| async move {
                if method == Method::OPTIONS {
                    reply(
                        401,
                        &[("www-authenticate", r#"Bearer realm="legacy""#.into())],
                    )
                } else {
                    reply(200, &[("access-control-allow-origin", APP.into())])
                }
            }),
        )
        // CORS that lets the page read the status but not the challenge.
        .route(
            "/unexposed",
            any(|method: Method, headers: HeaderMap| async move {
                let challenge =
                    r#"Bearer error="invalid_token", error_description="The access token expired""#;
                cors_for_app(&method, &headers, challenge, true)
            }),
        )
        // CORS headers on successes only: the refusal is written before CORS runs.
        .route(
            "/cors-on-success-only",
            any(|method: Method, headers: HeaderMap| async move {
                cors_for_app(&method, &headers, r#"Bearer error="invalid_token""#, false)
            }),
        )
        // Any origin, with credentials: browsers refuse the combination.
        .route(
            "/star",
            any(|| async {
                reply(
                    200,
                    &[
                        ("access-control-allow-origin", "*".into()),
                        ("access-control-allow-credentials", "true".into()),
                    ],
                )
            }),
        )
}

/// CORS for `APP` that answers preflights and successes, and refuses an expired token with
/// `challenge`, the CORS headers on the refusal too only when `on_refusals`; the challenge is
/// never exposed.
fn cors_for_app(
    method: &Method,
    headers: &HeaderMap,
    challenge: &str,
    on_refusals: bool,
) -> Response<Body> {
    let cors = [
        ("access-control-allow-origin", APP.to_owned()),
        ("access-control-allow-headers", "authorization".to_owned()),
    ];
    if method == Method::OPTIONS {
        return reply(204, &cors);
    }
    match exp_of(headers) {
        Some(exp) if exp > now() as i64 => reply(200, &cors),
        _ => {
            let mut h = if on_refusals {
                cors.to_vec()
            } else {
                Vec::new()
            };
            h.push(("www-authenticate", challenge.to_owned()));
            reply(401, &h)
        }
    }
}

/// An RFC 9728 resource: its metadata names the resource and the issuer it trusts.
fn metadata_routes(addr: SocketAddr) -> Router {
    let base = format!("http://{addr}");
    Router::new()
        .route(
            "/rs",
            any(move || {
                let meta = format!(r#"Bearer error="invalid_token", resource_metadata="http://{addr}/.well-known/oauth-protected-resource/rs""#);
                async move { reply(401, &[("www-authenticate", meta)]) }
            }),
        )
        .route(
            "/.well-known/oauth-protected-resource/rs",
            get(move || {
                let doc = json!({"resource": format!("{base}/rs"), "authorization_servers": [format!("{base}/idp")]});
                async move { axum::Json(doc) }
            }),
        )
}

/// An identity provider's metadata and key set under `prefix`: the keys of `issuer`, with
/// every `kid` renamed when `rotated` (the token's key is gone), or a 500 when `broken`.
fn idp_routes(prefix: &str, issuer: Arc<TestIssuer>, rotated: bool, broken: bool) -> Router {
    let base = issuer.issuer().to_owned();
    let meta = json!({"issuer": base, "jwks_uri": format!("{base}/jwks")});
    let mut jwks = serde_json::to_value(issuer.jwks()).unwrap();
    if rotated {
        for k in jwks["keys"].as_array_mut().unwrap() {
            let kid = k["kid"].as_str().unwrap().to_owned();
            k["kid"] = json!(format!("{kid}-2027"));
        }
    }
    Router::new()
        .route(
            &format!("{prefix}/.well-known/openid-configuration"),
            get(move || {
                let m = meta.clone();
                async move { axum::Json(m) }
            }),
        )
        .route(
            &format!("{prefix}/jwks"),
            get(move || {
                let j = jwks.clone();
                async move {
                    if broken {
                        Response::builder()
                            .status(500)
                            .body(Body::from("down"))
                            .unwrap()
                    } else {
                        axum::Json(j).into_response()
                    }
                }
            }),
        )
}

fn reply(status: u16, headers: &[(&str, String)]) -> Response<Body> {
    let mut r = Response::builder().status(status);
    for (n, v) in headers {
        r = r.header(*n, v);
    }
    r.body(Body::empty()).unwrap()
}

fn exp_of(headers: &HeaderMap) -> Option<i64> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let payload = auth.strip_prefix("Bearer ")?.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims["exp"].as_i64()
}

//! The discovery source over real HTTP: a resource behind `AuthLayer` (or a hand-written one
//! where a case needs a server that misbehaves), the testkit token endpoint with its RFC 8414
//! metadata, and hyper-util's client through the refresh layer.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use auth_layer::jwt::JwtAuthenticator;
use auth_layer::{AuthLayer, Principal, ProtectedResource, RequireScope};
use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use portcullis_testkit::{TestTokenEndpoint, es256_key_pair};
use portcullis_wire::client_auth::{ClientAuth, ClientKey};
use refresh_layer::jsonwebtoken::Algorithm;
use refresh_layer::source::discovery::Discovery;
use refresh_layer::{
    BuildError, DiscoveryError, Error, RefreshError, RefreshLayer, RefreshService,
};
use serde_json::json;
use tower::{Layer, ServiceExt};

use common::{Http, bind, http};

fn spawn(listener: tokio::net::TcpListener, app: Router) {
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

/// An MCP-like resource at `http://ADDR/mcp` behind `AuthLayer`, verifying the endpoint's
/// tokens for its own URL, advertising its metadata in every challenge. `/mcp/write` needs
/// the scope `write`.
async fn resource(scopes_supported: &[&str]) -> (String, TestTokenEndpoint, Arc<Mutex<Vec<bool>>>) {
    let (listener, addr) = bind().await;
    let resource = format!("http://{addr}/mcp");
    let (endpoint, _token_url) = TestTokenEndpoint::start(&resource, "agent", "agent-secret").await;
    let mut jwt = JwtAuthenticator::builder().audience(&resource);
    for k in endpoint.issuer().verification_keys() {
        jwt = jwt.key(k);
    }
    // Whether each request the resource received carried an Authorization header.
    let carried: Arc<Mutex<Vec<bool>>> = Arc::default();
    let log = carried.clone();
    let layer = AuthLayer::builder()
        .bearer(jwt.build().unwrap())
        .resource_metadata(
            ProtectedResource::new(&resource)
                .authorization_server(endpoint.issuer().issuer())
                .scopes_supported(scopes_supported.iter().copied()),
        )
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/mcp",
            get(|p: Principal| async move { axum::Json(json!({"sub": p.subject()})) }),
        )
        .route(
            "/mcp/write",
            get(|| async { "written" }).route_layer(RequireScope::all(["write"])),
        )
        .layer(layer)
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                log.lock()
                    .unwrap()
                    .push(req.headers().contains_key("authorization"));
                next.run(req)
            },
        ));
    spawn(listener, app);
    (resource, endpoint, carried)
}

/// The client `agent` with its secret, discovering from `resource`, trusting `issuer`.
fn with_secret(resource: &str, issuer: &str) -> Discovery {
    Discovery::builder(resource, "agent")
        .client_secret("agent-secret")
        .trust_issuer(issuer)
        .client_credentials(http())
        .unwrap()
}

fn client(source: Discovery, resource: &str, step_up: bool) -> RefreshService<Http> {
    let origin = resource.trim_end_matches("/mcp");
    RefreshLayer::builder(source)
        .allow_origin(origin)
        .step_up(step_up)
        .build()
        .unwrap()
        .layer(http())
}

async fn get_status(
    svc: &RefreshService<Http>,
    url: &str,
) -> Result<StatusCode, Error<hyper_util::client::legacy::Error>> {
    let req = Request::get(url).body(Full::default()).unwrap();
    svc.clone().oneshot(req).await.map(|r| r.status())
}

#[tokio::test]
async fn a_401_leads_to_the_authorization_server_a_token_for_the_resource_and_one_retry() {
    let (resource, endpoint, carried) = resource(&["read", "write"]).await;
    let source = with_secret(&resource, endpoint.issuer().issuer());
    let svc = client(source.clone(), &resource, false);
    assert_eq!(get_status(&svc, &resource).await.unwrap(), 200);
    // The first request went without a credential, its 401 drove discovery (the metadata,
    // served by the same layer, fetched without the credential), the retry carried the token.
    assert_eq!(*carried.lock().unwrap(), [false, false, true]);
    let seen = endpoint.token_requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].grant_type.as_deref(), Some("client_credentials"));
    assert_eq!(seen[0].resource.as_deref(), Some(resource.as_str()));
    // No scope in the 401: the resource's scopes_supported.
    assert_eq!(seen[0].scope.as_deref(), Some("read write"));
    assert_eq!(seen[0].client_auth, "client_secret_basic");
    let found = source.discovered().unwrap();
    assert_eq!(found.issuer, endpoint.issuer().issuer());
    assert_eq!(found.client_auth, ClientAuth::Basic);
    assert!(
        found
            .metadata_url
            .ends_with("/.well-known/oauth-protected-resource/mcp")
    );
    // Later requests use the token: no new token request, no 401.
    assert_eq!(get_status(&svc, &resource).await.unwrap(), 200);
    assert_eq!(endpoint.token_requests().len(), 1);
    assert_eq!(*carried.lock().unwrap(), [false, false, true, true]);
}

#[tokio::test]
async fn client_secret_post_is_used_when_it_is_all_the_server_supports() {
    let (resource, endpoint, _) = resource(&["read"]).await;
    endpoint.set_auth_methods(Some(&["client_secret_post"]));
    let source = with_secret(&resource, endpoint.issuer().issuer());
    let svc = client(source, &resource, false);
    assert_eq!(get_status(&svc, &resource).await.unwrap(), 200);
    let seen = endpoint.token_requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].client_auth, "client_secret_post");
}

#[tokio::test]
async fn private_key_jwt_signs_a_client_assertion_for_the_issuer() {
    let (resource, endpoint, _) = resource(&["read"]).await;
    let (private, public) = es256_key_pair();
    endpoint.accept_client_key(public.as_bytes(), Algorithm::ES256);
    endpoint.set_auth_methods(Some(&["private_key_jwt"]));
    let key = ClientKey::from_pem(private.as_bytes(), Algorithm::ES256).unwrap();
    let source = Discovery::builder(&resource, "agent")
        .private_key_jwt(key)
        .trust_issuer(endpoint.issuer().issuer())
        .client_credentials(http())
        .unwrap();
    let svc = client(source.clone(), &resource, false);
    assert_eq!(get_status(&svc, &resource).await.unwrap(), 200);
    let seen = endpoint.token_requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].client_auth, "private_key_jwt");
    assert_eq!(
        source.discovered().unwrap().client_auth,
        ClientAuth::PrivateKeyJwt
    );

    // A key the server does not know is refused by the token endpoint: a typed error, once.
    let (other, _) = es256_key_pair();
    let wrong = ClientKey::from_pem(other.as_bytes(), Algorithm::ES256).unwrap();
    let source = Discovery::builder(&resource, "agent")
        .private_key_jwt(wrong)
        .trust_issuer(endpoint.issuer().issuer())
        .client_credentials(http())
        .unwrap();
    let svc = client(source, &resource, false);
    let err = get_status(&svc, &resource).await.unwrap_err();
    assert!(
        matches!(&err, Error::Refresh(RefreshError::TokenEndpoint { error: Some(e), .. }) if e == "invalid_client"),
        "{err:?}"
    );
}

#[tokio::test]
async fn no_supported_client_authentication_is_a_typed_error_before_any_token_request() {
    let (resource, endpoint, _) = resource(&["read"]).await;
    endpoint.set_auth_methods(Some(&["private_key_jwt"]));
    let source = with_secret(&resource, endpoint.issuer().issuer());
    let svc = client(source, &resource, false);
    let err = get_status(&svc, &resource).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Refresh(RefreshError::Discovery(
                DiscoveryError::NoClientAuthMethod { .. }
            ))
        ),
        "{err:?}"
    );
    assert!(endpoint.token_requests().is_empty());
    assert!(!err.to_string().contains("agent-secret"));
}

#[tokio::test]
async fn the_openid_configuration_is_the_fallback_for_rfc_8414_metadata() {
    let (resource, endpoint, _) = resource(&["read"]).await;
    // No RFC 8414 document: OpenID Connect discovery, whose default client authentication
    // (no methods listed) is client_secret_basic.
    endpoint.set_auth_methods(None);
    let source = with_secret(&resource, endpoint.issuer().issuer());
    let svc = client(source, &resource, false);
    assert_eq!(get_status(&svc, &resource).await.unwrap(), 200);
    assert_eq!(
        endpoint.token_requests()[0].client_auth,
        "client_secret_basic"
    );
}

/// A hand-written resource: its 401 says `scope="read"` and names no metadata; its metadata is
/// at the root well-known URI only, naming `advertised` as the resource.
async fn bare_resource(
    endpoint_issuer: impl Fn(String) -> String,
    advertise_other: bool,
) -> (String, TestTokenEndpoint, Arc<Mutex<Vec<String>>>) {
    let (listener, addr) = bind().await;
    let resource = format!("http://{addr}/mcp");
    let (endpoint, _) = TestTokenEndpoint::start(&resource, "agent", "agent-secret").await;
    let issuer = endpoint_issuer(endpoint.issuer().issuer().to_owned());
    let advertised = if advertise_other {
        "https://evil.example/mcp".to_owned()
    } else {
        resource.clone()
    };
    let probes: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = probes.clone();
    let mut jwt = JwtAuthenticator::builder().audience(&resource);
    for k in endpoint.issuer().verification_keys() {
        jwt = jwt.key(k);
    }
    let api = Router::new()
        .route(
            "/mcp",
            get(|p: Principal| async move { p.scopes().collect::<Vec<_>>().join(" ") }),
        )
        .layer(
            AuthLayer::builder()
                .bearer(jwt.build().unwrap())
                .build()
                .unwrap(),
        );
    let app = Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(move || {
                let doc = json!({"resource": advertised, "authorization_servers": [issuer]});
                async move { axum::Json(doc) }
            }),
        )
        .merge(api)
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                log.lock().unwrap().push(req.uri().path().to_owned());
                let fut = next.run(req);
                async move {
                    let mut res = fut.await;
                    if res.status() == StatusCode::UNAUTHORIZED {
                        // The challenge without resource_metadata, with a scope.
                        res.headers_mut().insert(
                            "www-authenticate",
                            r#"Bearer realm="mcp", scope="read""#.parse().unwrap(),
                        );
                    }
                    res
                }
            },
        ));
    spawn(listener, app);
    (resource, endpoint, probes)
}

#[tokio::test]
async fn without_resource_metadata_the_path_suffixed_then_the_root_uri_is_probed_and_the_challenge_scope_is_asked_for()
 {
    let (resource, endpoint, probes) = bare_resource(|i| i, false).await;
    let source = with_secret(&resource, endpoint.issuer().issuer());
    let svc = client(source, &resource, false);
    let res = svc
        .clone()
        .oneshot(Request::get(&resource).body(Full::default()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        *probes.lock().unwrap(),
        [
            "/mcp",
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource",
            "/mcp",
        ]
    );
    let seen = endpoint.token_requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].scope.as_deref(),
        Some("read"),
        "the challenge's scope"
    );
    assert_eq!(seen[0].resource.as_deref(), Some(resource.as_str()));
}

#[tokio::test]
async fn metadata_for_another_resource_is_refused_and_no_token_is_requested() {
    let (resource, endpoint, _) = bare_resource(|i| i, true).await;
    let source = with_secret(&resource, endpoint.issuer().issuer());
    let svc = client(source, &resource, false);
    let err = get_status(&svc, &resource).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Refresh(RefreshError::Discovery(DiscoveryError::ResourceMismatch { advertised, .. }))
                if advertised == "https://evil.example/mcp"
        ),
        "{err:?}"
    );
    assert!(endpoint.token_requests().is_empty());
}

#[tokio::test]
async fn authorization_server_metadata_is_looked_for_where_rfc_8414_and_openid_connect_put_it() {
    // The resource names the endpoint's origin with a path; the endpoint serves no metadata
    // there (404 at every RFC 8414 / OpenID location): a typed error listing what was tried.
    let (resource, endpoint, _) = bare_resource(|i| format!("{i}/tenant1"), false).await;
    let source = with_secret(
        &resource,
        &format!("{}/tenant1", endpoint.issuer().issuer()),
    );
    let svc = client(source, &resource, false);
    let err = get_status(&svc, &resource).await.unwrap_err();
    match &err {
        Error::Refresh(RefreshError::Discovery(DiscoveryError::NoServerMetadata { tried })) => {
            assert_eq!(tried.len(), 3, "{tried:?}");
            assert!(tried[0].contains("/.well-known/oauth-authorization-server/tenant1"));
            assert!(tried[2].contains("/tenant1/.well-known/openid-configuration"));
        }
        other => panic!("{other:?}"),
    }
    assert!(endpoint.token_requests().is_empty());
}

#[tokio::test]
async fn step_up_asks_once_for_the_scope_the_403_names() {
    let (resource, endpoint, _) = resource(&["read"]).await;
    let source = with_secret(&resource, endpoint.issuer().issuer());
    let write = format!("{resource}/write");

    // Without step-up the 403 is the answer.
    let svc = client(source.clone(), &resource, false);
    assert_eq!(get_status(&svc, &write).await.unwrap(), 403);
    assert_eq!(endpoint.token_requests().len(), 1);

    // With it: one new token carrying read and write, one retry.
    let svc = client(source, &resource, true);
    assert_eq!(get_status(&svc, &write).await.unwrap(), 200);
    let scopes: Vec<_> = endpoint
        .token_requests()
        .into_iter()
        .map(|r| r.scope.unwrap_or_default())
        .collect();
    assert_eq!(
        scopes.last().map(String::as_str),
        Some("read write"),
        "{scopes:?}"
    );
}

#[tokio::test]
async fn step_up_never_loops_when_the_new_token_still_lacks_the_scope() {
    let (resource, endpoint, carried) = resource(&["read"]).await;
    // Every token says "read", whatever was asked for.
    endpoint.set_extra_claims(json!({"scope": "read"}));
    let source = with_secret(&resource, endpoint.issuer().issuer());
    let svc = client(source, &resource, true);
    assert_eq!(get_status(&svc, &resource).await.unwrap(), 200);
    let before = endpoint.token_requests().len();
    let sent_before = carried.lock().unwrap().len();
    assert_eq!(
        get_status(&svc, &format!("{resource}/write"))
            .await
            .unwrap(),
        403
    );
    assert_eq!(endpoint.token_requests().len(), before + 1, "one step-up");
    assert_eq!(
        carried.lock().unwrap().len(),
        sent_before + 2,
        "the request and its one retry"
    );
}

#[tokio::test]
async fn a_pinned_issuer_is_the_only_authorization_server_credentials_go_to() {
    let (resource, endpoint, _) = resource(&["read"]).await;
    let pinned = |issuer: &str| {
        Discovery::builder(&resource, "agent")
            .client_secret("agent-secret")
            .trust_issuer("https://id.example.com")
            .trust_issuer(issuer)
            .client_credentials(http())
            .unwrap()
    };
    // The resource names a server this client does not trust: nothing is sent to it.
    let svc = client(pinned("https://other.example.com"), &resource, false);
    let err = get_status(&svc, &resource).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Refresh(RefreshError::Discovery(DiscoveryError::UntrustedAuthorizationServer { named }))
                if named == &[endpoint.issuer().issuer().to_owned()]
        ),
        "{err:?}"
    );
    assert!(endpoint.token_requests().is_empty());
    // Issuers compare as exact strings (RFC 8414 §3.3): the same URL written with a trailing
    // slash or another case is another issuer, and is not trusted for this one.
    let issuer = endpoint.issuer().issuer().to_owned();
    for spelled in [format!("{issuer}/"), issuer.replace("http://", "HTTP://")] {
        let svc = client(pinned(&spelled), &resource, false);
        let err = get_status(&svc, &resource).await.unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Refresh(RefreshError::Discovery(
                    DiscoveryError::UntrustedAuthorizationServer { .. }
                ))
            ),
            "{spelled}: {err:?}"
        );
    }
    assert!(endpoint.token_requests().is_empty());
    let svc = client(pinned(&issuer), &resource, false);
    assert_eq!(get_status(&svc, &resource).await.unwrap(), 200);
    assert_eq!(endpoint.token_requests().len(), 1);
}

/// A server that answers every request with `status` and `body`, recording each path asked.
async fn recorder(status: StatusCode, body: &'static str) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let (listener, addr) = bind().await;
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let app = Router::new().fallback(move |req: axum::extract::Request| {
        log.lock().unwrap().push(req.uri().path().to_owned());
        async move { (status, body) }
    });
    spawn(listener, app);
    (addr, seen)
}

/// A resource that names its own authorization server (as any MCP server can) gets nothing
/// from a client that never said which servers it trusts: not its secret, not a request.
#[tokio::test]
async fn without_a_pinned_issuer_the_secret_never_goes_to_the_server_a_resource_names() {
    let (resource, hostile, _) = resource(&["read"]).await;
    let built = Discovery::builder(&resource, "agent")
        .client_secret("agent-secret")
        .client_credentials(http());
    if let Ok(source) = built {
        let svc = client(source, &resource, false);
        let _ = get_status(&svc, &resource).await;
    }
    let seen = hostile.token_requests();
    assert!(seen.is_empty(), "the client's secret went to {seen:?}");
    // A signed assertion is a credential too.
    let (private, _) = es256_key_pair();
    let key = ClientKey::from_pem(private.as_bytes(), Algorithm::ES256).unwrap();
    let built = Discovery::builder(&resource, "agent")
        .private_key_jwt(key)
        .client_credentials(http());
    assert!(
        matches!(built, Err(BuildError::NoTrustedAuthorizationServer)),
        "{built:?}"
    );
    // Pinned to the client's own server, the resource naming only its own gets nothing.
    let pinned = Discovery::builder(&resource, "agent")
        .client_secret("agent-secret")
        .trust_issuer("https://id.example.com")
        .client_credentials(http())
        .unwrap();
    let err = get_status(&client(pinned, &resource, false), &resource)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refresh(RefreshError::Discovery(
                DiscoveryError::UntrustedAuthorizationServer { .. }
            ))
        ),
        "{err:?}"
    );
    assert!(hostile.token_requests().is_empty());
    // The risky opt-in says what it does: the resource's server gets the secret.
    let any = Discovery::builder(&resource, "agent")
        .client_secret("agent-secret")
        .trust_any_authorization_server()
        .client_credentials(http())
        .unwrap();
    assert_eq!(
        get_status(&client(any, &resource, false), &resource)
            .await
            .unwrap(),
        200
    );
    assert_eq!(hostile.token_requests().len(), 1);
}

/// A 401 that points `resource_metadata` at another origin (an internal host, say) does not
/// make the client fetch it, and the error carries nothing that host said.
#[tokio::test]
async fn a_resource_metadata_url_on_another_origin_is_never_fetched() {
    let (internal, hits) = recorder(StatusCode::IM_A_TEAPOT, "internal-secret-page").await;
    let (listener, addr) = bind().await;
    let resource = format!("http://{addr}/mcp");
    let hint = format!(r#"Bearer resource_metadata="http://{internal}/admin/metadata""#);
    let app = Router::new().route(
        "/mcp",
        get(move || {
            let hint = hint.clone();
            async move { (StatusCode::UNAUTHORIZED, [("www-authenticate", hint)], "") }
        }),
    );
    spawn(listener, app);
    let source = Discovery::builder(&resource, "agent")
        .client_secret("agent-secret")
        .trust_issuer("https://id.example.com")
        .client_credentials(http())
        .unwrap();
    let svc = client(source, &resource, false);
    let err = get_status(&svc, &resource).await.unwrap_err();
    assert!(
        hits.lock().unwrap().is_empty(),
        "fetched {:?} from another origin",
        hits.lock().unwrap()
    );
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("418"), "{shown}");
    assert!(!shown.contains("internal-secret-page"), "{shown}");
}

/// A resource whose `/mcp` answers every request `401 Bearer` (no hint) and whose metadata, at
/// the path-suffixed well-known URI, is `doc`.
fn serve_metadata_only(listener: tokio::net::TcpListener, doc: serde_json::Value) {
    let app = Router::new()
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc) }
            }),
        )
        .route(
            "/mcp",
            get(|| async {
                (
                    StatusCode::UNAUTHORIZED,
                    [("www-authenticate", "Bearer")],
                    "",
                )
            }),
        );
    spawn(listener, app);
}

/// Metadata and tokens travel over https unless the host is this machine: a resource naming
/// an authorization server at a plain-http, non-loopback URL gets no request sent there.
#[tokio::test]
async fn a_plain_http_authorization_server_off_loopback_is_refused_before_any_request() {
    // Every name resolves to loopback for this client's connections, so a request to
    // `http://as.test` would reach the recorder if one were sent.
    let (as_addr, hits) = recorder(StatusCode::NOT_FOUND, "").await;
    let (listener, addr) = bind().await;
    let resource = format!("http://{addr}/mcp");
    let named = format!("http://as.test:{}", as_addr.port());
    let doc = json!({"resource": resource, "authorization_servers": [named]});
    serve_metadata_only(listener, doc);
    let source = Discovery::builder(&resource, "agent")
        .client_secret("agent-secret")
        .trust_issuer(named.clone())
        .client_credentials(every_name_on_loopback())
        .unwrap();
    let svc = client(source, &resource, false);
    let err = get_status(&svc, &resource).await.unwrap_err();
    assert!(
        hits.lock().unwrap().is_empty(),
        "sent {:?} over plain http to {named}",
        hits.lock().unwrap()
    );
    assert!(
        matches!(
            &err,
            Error::Refresh(RefreshError::Discovery(DiscoveryError::InsecureUrl { url }))
                if url.starts_with(&named)
        ),
        "{err:?}"
    );
}

type LoopbackResolver = tower::util::ServiceFn<
    fn(
        hyper_util::client::legacy::connect::dns::Name,
    ) -> std::future::Ready<Result<std::iter::Once<SocketAddr>, std::io::Error>>,
>;

/// A client whose connections go to 127.0.0.1 whatever name they are for: stands in for
/// names that resolve elsewhere, so a "public" resource can be served on loopback.
fn every_name_on_loopback() -> Client<HttpConnector<LoopbackResolver>, Full<Bytes>> {
    let resolve: fn(_) -> _ =
        |_| std::future::ready(Ok(std::iter::once(SocketAddr::from(([127, 0, 0, 1], 0)))));
    let mut connector = HttpConnector::new_with_resolver(tower::service_fn(resolve));
    connector.enforce_http(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// A resource on a public name (`api.test`, which does not resolve here: counted as public)
/// that names an authorization server on a loopback address gets no request sent there:
/// a resource cannot steer the client into its own network. The named opt-in lets it.
#[tokio::test]
async fn a_public_resource_cannot_send_the_client_to_an_internal_address() {
    let (listener, addr) = bind().await;
    let public = format!("http://api.test:{}/mcp", addr.port());
    let (endpoint, _) = TestTokenEndpoint::start(&public, "agent", "agent-secret").await;
    let issuer = endpoint.issuer().issuer().to_owned();
    let doc = json!({"resource": public, "authorization_servers": [issuer]});
    serve_metadata_only(listener, doc);
    let through = |risky: bool| {
        let b = Discovery::builder(&public, "agent")
            .client_secret("agent-secret")
            .trust_issuer(&issuer)
            .allow_insecure_http();
        let b = if risky {
            b.allow_internal_authorization_servers()
        } else {
            b
        };
        RefreshLayer::builder(b.client_credentials(every_name_on_loopback()).unwrap())
            .allow_origin(format!("http://api.test:{}", addr.port()))
            .build()
            .unwrap()
            .layer(every_name_on_loopback())
    };
    let req = || Request::get(&public).body(Full::default()).unwrap();
    let err = through(false).oneshot(req()).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Refresh(RefreshError::Discovery(DiscoveryError::InternalAddress {
                kind: "loopback",
                ..
            }))
        ),
        "{err:?}"
    );
    assert!(endpoint.token_requests().is_empty());
    // With the opt-in, the same server is asked (the resource here refuses every token, so
    // its answer does not matter: only that the request went).
    let _ = through(true).oneshot(req()).await;
    assert_eq!(endpoint.token_requests().len(), 1);
}

/// What a resource names reaches an error (and so a log line) bounded and escaped: at most
/// eight names of at most 200 characters, no control character raw.
#[tokio::test]
async fn an_untrusted_server_list_reaches_the_error_bounded_and_escaped() {
    let (listener, addr) = bind().await;
    let resource = format!("http://{addr}/mcp");
    let hostile: Vec<String> = (0..50)
        .map(|i| {
            format!(
                "https://evil{i}.test/\u{1b}]52;c;aGk=\u{7}\u{202e}{}",
                "x".repeat(500)
            )
        })
        .collect();
    let doc = json!({"resource": resource, "authorization_servers": hostile});
    serve_metadata_only(listener, doc);
    let source = Discovery::builder(&resource, "agent")
        .client_secret("agent-secret")
        .trust_issuer("https://id.example.com")
        .client_credentials(http())
        .unwrap();
    let err = get_status(&client(source, &resource, false), &resource)
        .await
        .unwrap_err();
    let Error::Refresh(RefreshError::Discovery(DiscoveryError::UntrustedAuthorizationServer {
        named,
    })) = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(named.len(), 8);
    assert!(named.iter().all(|n| n.chars().count() <= 200));
    let shown = err.to_string();
    assert!(
        !shown.chars().any(|c| c.is_control() || c == '\u{202e}'),
        "{shown}"
    );
}

//! Answers to server misconfigurations that only show at run time: never a 4xx, which would
//! send the client looking for a mistake it did not make.

/// The message of the 500 answered on a route no auth layer wraps (logged, and the body).
pub(crate) const NO_AUTH_LAYER: &str = "server misconfiguration: authentication was required on a route that no AuthLayer wraps (add the route before `.layer(AuthLayer)`, or wrap it with `.route_layer`)";

/// The 500 for a route that needs a principal but is not behind an auth layer: a valid token
/// must not be answered "the request carries no credentials".
pub(crate) fn no_auth_layer<B: From<&'static str>>(what: &'static str) -> http::Response<B> {
    tracing::error!(target: "portcullis::auth", extractor = what, "{NO_AUTH_LAYER}");
    let mut res = http::Response::new(B::from(NO_AUTH_LAYER));
    *res.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

//! The one connector for outgoing calls (key sets, metadata, token endpoints, the doctor's
//! probes): hyper-util's HTTP connector under rustls, trusting the system's root
//! certificates, HTTP/1.1.
//!
//! # Example
//! ```no_run
//! use std::time::Duration;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//!
//! let connector = portcullis::wire::https::connector(false, Duration::from_secs(5))?;
//! let client = Client::builder(TokioExecutor::new())
//!     .build::<_, http_body_util::Empty<bytes::Bytes>>(connector);
//! # let _ = client;
//! # Ok::<(), portcullis::wire::https::NoRootCertificates>(())
//! ```

use std::time::Duration;

pub use hyper_rustls::HttpsConnector;
pub use hyper_util::client::legacy::connect::HttpConnector;

/// The system has no root certificate to trust (the message says what rustls-native-certs
/// found).
#[derive(Debug, thiserror::Error)]
#[error("no TLS root certificates: {0}")]
pub struct NoRootCertificates(String);

/// A connector for `https` URLs, and for `http` ones only when `allow_http` is true (so that
/// neither a redirect nor a custom URL can reach a plain-text connection otherwise); a
/// connection not made within `connect_timeout` fails.
pub fn connector(
    allow_http: bool,
    connect_timeout: Duration,
) -> Result<HttpsConnector<HttpConnector>, NoRootCertificates> {
    let mut http = HttpConnector::new();
    // The TLS layer above takes `https` URLs, which the plain connector would refuse.
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    let roots = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| NoRootCertificates(e.to_string()))?;
    let builder = if allow_http {
        roots.https_or_http()
    } else {
        roots.https_only()
    };
    Ok(builder.enable_http1().wrap_connector(http))
}

//! The demo API with the auth layer, the CORS preset and an embedded identity provider.
//!
//! ```text
//! cargo run --example server -- [--listen ADDR] [--allow-origin ORIGIN]... [--access-ttl SECS]
//!                                [--jwks-url URL --issuer ISS --audience AUD] [--redis URL]
//!                                [--csrf-key-env VAR]
//! ```
//!
//! With `--jwks-url`, tokens from that provider (its `iss` and `aud` as given, scopes from
//! `scope` or `scp`) are verified instead of the embedded provider's. With `--redis`, every
//! server started against the same Redis shares one revocation list: `POST /api/logout` on one
//! of them is refused by all within milliseconds (at most 30 logouts a minute per subject on
//! each server; past that, 429 with `Retry-After`).
//!
//! Cookie sessions (`POST /session/login`) carry a CSRF token bound to the session, minted
//! with the key in the environment variable `--csrf-key-env` names (base64 of at least 32
//! random bytes, e.g. `openssl rand -base64 32`; give every replica the same). Without it the
//! demo's own key is used, which is written in `support/src/demo_app.rs` for anyone to read.
//!
//! The first line on stdout is `listening on http://ADDR` with the real port, so
//! `--listen 127.0.0.1:0` works. Ctrl-C or SIGTERM stops it gracefully.

use std::time::Duration;

use base64::Engine;
use clap::Parser;
use portcullis::server::jwt::JwksKeySource;
use portcullis::server::{CsrfKey, SharedRevocationError, SharedRevocations};
use portcullis_examples_support::demo_app::{self, DemoApi, DemoConfig};

/// The demo API with the auth layer, the CORS preset and an embedded identity provider.
#[derive(Parser)]
struct Args {
    /// The address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// An origin whose pages may call the API with credentials (repeatable).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// The lifetime of the embedded provider's access tokens, in whole seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    access_ttl: u64,
    /// Verify tokens from this provider's JWKS instead of the embedded provider's.
    #[arg(long, value_name = "URL", requires_all = ["issuer", "audience"])]
    jwks_url: Option<String>,
    /// The `iss` tokens from `--jwks-url` carry.
    #[arg(long, value_name = "ISS", requires = "jwks_url")]
    issuer: Option<String>,
    /// The `aud` tokens from `--jwks-url` carry.
    #[arg(long, value_name = "AUD", requires = "jwks_url")]
    audience: Option<String>,
    /// Share one revocation list with every server started against this Redis.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// The environment variable holding the CSRF key (base64 of at least 32 bytes).
    #[arg(long, value_name = "VAR")]
    csrf_key_env: Option<String>,
}

/// The CSRF key from the environment variable `var` (base64); the message never holds the
/// variable's value.
fn csrf_key_from_env(var: &str) -> Result<CsrfKey, String> {
    let value = std::env::var(var)
        .map_err(|_| format!("--csrf-key-env: the environment variable {var} is not set"))?;
    let secret = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| format!("--csrf-key-env: {var} is not base64"))?;
    CsrfKey::new(&secret).map_err(|e| format!("--csrf-key-env: {e}"))
}

/// True for a URL whose host is this machine (`localhost`, `127.0.0.0/8`, `[::1]`).
fn is_loopback(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    match uri.host() {
        Some("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// People copy examples: the embedded provider's keys are made up at start and its client
/// secret is printed in this file. Say so loudly before anyone else can reach it.
fn warn_if_reachable(addr: std::net::SocketAddr) {
    if !addr.ip().is_loopback() {
        eprintln!(
            "WARNING: listening on {addr}, which other machines can reach. The embedded identity \
             provider is a demo (known client secret, plain http): do not expose it. Without \
             --csrf-key-env, the CSRF key is the demo's, known too."
        );
    }
}

/// The revocation list shared through the Redis at `url`; exits 2 for a bad URL, 1 when it
/// cannot be used. A user may log out of 30 tokens a minute on each server; an
/// administrator's revocations are never limited.
async fn shared_revocations(url: &str) -> SharedRevocations {
    // A user may log out of 30 tokens a minute on each server; an administrator's
    // revocations are never limited.
    match SharedRevocations::builder(url)
        .limit_self_service_logouts(30, Duration::from_secs(60), 100_000)
        .connect()
        .await
    {
        Ok(list) => list,
        Err(e @ SharedRevocationError::InvalidUrl) => {
            eprintln!("invalid --redis: {e}");
            std::process::exit(2);
        }
        Err(e) => {
            eprintln!("cannot use --redis: {e}");
            std::process::exit(1);
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let csrf_key = match &args.csrf_key_env {
        None => demo_app::demo_csrf_key(),
        Some(var) => match csrf_key_from_env(var) {
            Ok(key) => key,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        },
    };
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound socket has an address");
    warn_if_reachable(addr);
    let shared_revocations = match &args.redis {
        None => None,
        Some(url) => Some(shared_revocations(url).await),
    };
    let issuer = format!("http://{addr}");
    let config = DemoConfig {
        issuer: issuer.clone(),
        access_ttl: Duration::from_secs(args.access_ttl),
        allow_origins: args.allow_origins,
        secure_cookies: true,
        shared_revocations,
        csrf_key,
    };
    let demo = match (&args.jwks_url, &args.issuer, &args.audience) {
        (Some(url), Some(iss), Some(aud)) => match JwksKeySource::builder(url.as_str())
            // Plain http only for a provider on this machine (tests, local setups).
            .allow_http(is_loopback(url))
            .build()
        {
            Ok(keys) => DemoApi::with_keys(config, keys, iss, aud),
            Err(e) => {
                eprintln!("invalid --jwks-url: {e}");
                std::process::exit(2);
            }
        },
        _ => DemoApi::new(config),
    };
    let demo = match demo {
        Ok(d) => d,
        Err(e) => {
            eprintln!("invalid configuration: {e}");
            std::process::exit(2);
        }
    };
    println!("listening on {issuer}");
    if let Err(e) = axum::serve(listener, demo.router())
        .with_graceful_shutdown(shutdown())
        .await
    {
        eprintln!("server error: {e}");
        std::process::exit(1);
    }
    eprintln!("stopped");
}

//! The orders API, with a development identity provider on loopback so that it runs as is.
//! The app itself lives in `examples/support/src/orders_app.rs`
//! (`portcullis_examples_support::orders_app`), shared with `tests/newcomer_app.rs`.
//!
//! ```text
//! cargo run --example orders_api
//! ```
//!
//! It prints the API's address, a token endpoint for the client `my-client` / `my-secret`
//! (scopes `read` and `write`), a machine API key, and curl commands to try. Ctrl-C stops it.
//! In your app, `orders_app.rs` is what you keep: give it your provider's issuer, audience and
//! public key instead.

use std::time::Duration;

use portcullis::server::jsonwebtoken::Algorithm;
use portcullis::testkit::TestTokenEndpoint;
use portcullis_examples_support::orders_app as app;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A development identity provider (never in production): RS256 tokens with a tenant.
    let (tokens, token_url) =
        TestTokenEndpoint::start("orders-api", "my-client", "my-secret").await;
    tokens.set_algorithm(Algorithm::RS256);
    tokens.set_extra_claims(serde_json::json!({"tenant": "acme"}));

    let app = app::router(app::Config {
        issuer: tokens.issuer().issuer().to_owned(),
        audience: "orders-api".into(),
        public_pem: tokens
            .issuer()
            .public_pem(Algorithm::RS256)
            .expect("RS256 has a public key")
            .into_bytes(),
        api_keys: vec![("deploy-key-1".into(), "ci".into())],
        allow_origin: "http://localhost:3000".into(),
        leeway: Duration::from_secs(60),
    })?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = format!("http://{}", listener.local_addr()?);
    println!("listening on {api}");
    println!("token endpoint {token_url} (client my-client / my-secret)");
    println!();
    println!(
        "  TOKEN=$(curl -s -u my-client:my-secret -d grant_type=client_credentials -d scope=read {token_url} | jq -r .access_token)"
    );
    println!("  curl -i -H \"Authorization: Bearer $TOKEN\" {api}/orders");
    println!("  curl -i -X POST -H 'x-api-key: deploy-key-1' {api}/deploy");
    println!("  curl -i {api}/health");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

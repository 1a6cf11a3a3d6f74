//! An MCP server (rmcp, Streamable HTTP) that is a correct OAuth 2.1 resource server, by
//! Portcullis. The server and its stack (tools, metadata, auth layer, CORS) live in
//! `examples/support/src/mcp_notes.rs` (`portcullis_examples_support::mcp_notes`), shared with
//! `tests/mcp_server.rs` and the `mcp` bench; this file runs it.
//!
//! ```text
//! cargo run --example mcp_server -- [--listen ADDR] [--issuer URL] [--allow-origin ORIGIN]...
//! ```
//!
//! Without `--issuer`, an embedded authorization server on another loopback port issues
//! `client_credentials` tokens for this server (client `mcp-client`, secret `mcp-secret`, both
//! printed): `cargo run --example mcp_client` (or any MCP client) finds it from the 401.
//! With `--issuer`, tokens come from that OpenID provider: its keys are found by OpenID
//! Connect discovery, and its access tokens must be RFC 9068 JWTs (`typ: at+jwt`) whose `aud`
//! is this server's `/mcp` URI (the RFC 8707 `resource` a client asks for).
//!
//! Prints `listening on http://ADDR` first, then the resource URI and the authorization
//! server. Ctrl-C or SIGTERM stops it.

use std::process::ExitCode;

use clap::Parser;
use portcullis_examples_support::issuer_verifier;
use portcullis_examples_support::mcp_notes::{self, Deployment};

/// An MCP server that is an OAuth 2.1 resource server.
#[derive(Parser)]
struct Args {
    /// The address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: String,
    /// The OpenID provider whose tokens are accepted (default: an embedded demo provider).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// An origin whose pages may call the server (repeatable).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp_server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let Args {
        listen,
        issuer,
        allow_origins,
    } = Args::parse();
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let addr = listener.local_addr()?;
    let resource = format!("http://{addr}/mcp");

    let (authorization_server, jwt, embedded) = match issuer {
        Some(issuer) => {
            let jwt =
                issuer_verifier::for_issuer(&issuer, &resource, addr.ip().is_loopback()).await?;
            (issuer, jwt, None)
        }
        None => {
            let (endpoint, jwt) =
                mcp_notes::embedded_provider(&resource, "mcp-client", "mcp-secret").await?;
            (endpoint.issuer().issuer().to_owned(), jwt, Some(endpoint))
        }
    };
    let deployment = Deployment {
        resource,
        authorization_server,
        allow_origins,
    };
    let app = mcp_notes::app(&deployment, jwt)?;
    println!("listening on http://{addr}");
    println!("resource {}", deployment.resource);
    println!("authorization server {}", deployment.authorization_server);
    if embedded.is_some() {
        println!("client_id mcp-client, client_secret mcp-secret (embedded demo provider)");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

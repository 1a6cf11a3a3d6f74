//! An OAuth 2.1 gateway in front of an MCP server written in another language: Portcullis
//! authenticates the caller and checks per-tool scopes, then forwards `/mcp` to the server.
//!
//! ```text
//! cargo run --example mcp_gateway -- --upstream URL --tool NAME=SCOPE[,SCOPE]...
//!                                    [--listen ADDR] [--issuer URL]
//! ```
//!
//! `--upstream` is the MCP server's endpoint (`http://127.0.0.1:8000/mcp` for a Python
//! `mcp` server on its defaults); every `--tool` names a tool and the scopes its calls need.
//! Tokens must name the gateway's `/mcp` URI as their audience. With `--issuer`, they come
//! from that OpenID provider (keys by OpenID Connect discovery, RFC 9068 `at+jwt`); without
//! it, an embedded demo provider on another loopback port issues `client_credentials` tokens
//! (client `mcp-client`, secret `mcp-secret`) for every scope the `--tool`s name.
//!
//! Any body the gateway cannot read as exactly one JSON value in UTF-8 is refused (`400`)
//! rather than forwarded: the server behind may read JSON more leniently (a BOM, UTF-16,
//! `NaN`) and find a call there that the gateway did not check.
//!
//! Prints `listening on http://ADDR` first, then the resource URI and the authorization
//! server. Ctrl-C stops it.
//!
//! The proxy itself (`/mcp` behind the layers, forwarded upstream) lives in
//! `examples/support/src/mcp_proxy.rs` (`portcullis_examples_support::mcp_proxy`), shared with
//! `tests/mcp_lenient_backends.rs`; this file parses the command line and builds the layers.

use std::process::ExitCode;

use clap::Parser;
use jsonwebtoken::Algorithm;
use portcullis::server::jwt::JwtAuthenticator;
use portcullis::server::mcp::ToolScopesLayer;
use portcullis::server::{AuthLayer, ProtectedResource};
use portcullis::testkit::TestTokenEndpoint;
use portcullis_examples_support::issuer_verifier;
use portcullis_examples_support::mcp_proxy as proxy;

/// An OAuth 2.1 gateway in front of an MCP server: authentication and per-tool scopes.
#[derive(Parser)]
struct Args {
    /// The address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:3001")]
    listen: String,
    /// The MCP server's endpoint.
    #[arg(long, value_name = "URL")]
    upstream: http::Uri,
    /// The OpenID provider whose tokens are accepted (default: an embedded demo provider).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// A tool and the scopes its calls need (repeatable).
    #[arg(long = "tool", value_name = "NAME=SCOPE[,SCOPE]", value_parser = tool)]
    tools: Vec<(String, Vec<String>)>,
}

fn tool(spec: &str) -> Result<(String, Vec<String>), String> {
    let (name, scopes) = spec
        .split_once('=')
        .ok_or(format!("{spec}: expected NAME=SCOPE[,SCOPE]"))?;
    Ok((
        name.to_owned(),
        scopes.split(',').map(str::to_owned).collect(),
    ))
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp_gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let Args {
        listen,
        upstream,
        issuer,
        tools,
    } = Args::parse();
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let addr = listener.local_addr()?;
    let resource = format!("http://{addr}/mcp");

    let mut every_scope: Vec<String> = tools.iter().flat_map(|(_, s)| s.clone()).collect();
    every_scope.sort();
    every_scope.dedup();
    let (authorization_server, jwt, _embedded) = match issuer {
        Some(issuer) => {
            let jwt =
                issuer_verifier::for_issuer(&issuer, &resource, addr.ip().is_loopback()).await?;
            (issuer, jwt, None)
        }
        None => {
            let (endpoint, _) =
                TestTokenEndpoint::start(&resource, "mcp-client", "mcp-secret").await;
            endpoint.set_client_scopes(every_scope.iter().cloned());
            let jwt = JwtAuthenticator::builder()
                .key(endpoint.issuer().verification_key(Algorithm::ES256))
                .issuer(endpoint.issuer().issuer())
                .audience(&resource)
                .build()?;
            (endpoint.issuer().issuer().to_owned(), jwt, Some(endpoint))
        }
    };
    let auth = AuthLayer::builder()
        .realm("mcp")
        .bearer(jwt)
        .resource_metadata(
            ProtectedResource::new(&resource)
                .authorization_server(&authorization_server)
                .scopes_supported(every_scope.iter().cloned())
                .also_at_root(true),
        )
        .strip_credentials(true)
        .build()?;
    let mut tool_scopes = ToolScopesLayer::new();
    for (name, scopes) in tools {
        tool_scopes = tool_scopes.tool(name, scopes);
    }
    let app = proxy::app(upstream, auth, tool_scopes);
    println!("listening on http://{addr}");
    println!("resource {resource}");
    println!("authorization server {authorization_server}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

//! A command line that signs a person in through their browser, keeps the sign-in in a file,
//! and calls an API with it — `curl` for APIs behind OAuth, the way MCP clients and CLIs sign
//! in (RFC 8252: the system browser and a listener on `127.0.0.1`).
//!
//! ```text
//! cargo run --example login -- [--store PATH] [--account NAME] [--print-url]
//!     [--trust-issuer URL]... [--sign-in-timeout SECONDS]
//!     [-X METHOD] [-H 'Name: value']... [-d BODY | -d @FILE | -d @-] URL
//! cargo run --example login -- [--store PATH] [--account NAME] --sign-out URL
//! ```
//!
//! The first call goes without a token. The API's `401` names its authorization server (RFC
//! 9728 metadata); the client registers there (RFC 7591, a native app with a loopback redirect
//! URI), prints the sign-in URL on stderr (`Open this URL to sign in: …`) and opens the
//! system browser (`--print-url`: only prints it). Once the person has signed in, the
//! authorization server sends the browser back to the listener, the code is redeemed (PKCE,
//! `state` and RFC 9207 `iss` checked first) and the call is sent again with the token.
//!
//! The tokens and the registration are kept in `--store` (default
//! `$XDG_CONFIG_HOME/portcullis/login.json`, `~/.config/…`, `~/Library/Application Support/…`
//! or `%APPDATA%\…`; without any of them, name one with `--store`: tokens are not left in
//! whatever directory the command runs in), created
//! readable by its owner only, one sign-in per `--account` and URL. The next run uses the
//! stored access token without a browser, and the stored refresh token once it has expired.
//! A `403 insufficient_scope` signs in again for the scopes it names, once.
//! `--sign-out` forgets the sign-in of that account and URL.
//!
//! The status goes to stderr and the body to stdout (at most 1 MiB, control characters
//! escaped, so an answer cannot drive the terminal). The exit status is 0 for a `2xx`
//! answer, 1 for anything else: another status, or a sign-in refused (the reason printed).
//!
//! Against `cargo run --example mcp_server -- --issuer URL` and an OpenID provider that
//! registers clients dynamically (interop/tests/sign-in.test.mjs runs `oidc-provider`):
//!
//! ```text
//! cargo run --example login -- -X POST -H 'content-type: application/json' \
//!     -H 'accept: application/json, text/event-stream' -H 'mcp-protocol-version: 2025-11-25' \
//!     -d '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' http://127.0.0.1:3000/mcp
//! ```

use std::error::Error;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use clap::Parser;
use http::{HeaderName, HeaderValue, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use portcullis::client::source::authorization_code::{AuthorizationCode, LoopbackBrowser};
use portcullis::client::store::FileStore;
use portcullis::client::{AuthFailure, RefreshLayer};
use tower::{Layer, ServiceExt};

type Http = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;
type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The most of an answer shown; the rest is not read.
const MAX_SHOWN: usize = 1024 * 1024;
/// The largest request body sent (and kept, to send it again after a `401`).
const MAX_REQUEST_BODY: usize = 4 * 1024 * 1024;
/// How long the API itself may take to answer, on top of a sign-in.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Time for discovery, registration and the token request, on top of the person's.
const SIGN_IN_MARGIN: Duration = Duration::from_secs(60);

/// Sign in through the browser and call an API with the sign-in, kept across runs.
#[derive(Parser)]
#[command(name = "login")]
struct Args {
    /// The file the sign-in is kept in (default: under the user's config directory).
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
    /// Whose sign-in this is (one per account and URL in the store).
    #[arg(long, value_name = "NAME", default_value = "default")]
    account: String,
    /// Never start a browser: print the sign-in URL only.
    #[arg(long)]
    print_url: bool,
    /// Forget the stored sign-in of this account and URL, and exit.
    #[arg(long)]
    sign_out: bool,
    /// Sign in only at this authorization server (repeatable; exact issuer string).
    #[arg(long = "trust-issuer", value_name = "URL")]
    trust_issuers: Vec<String>,
    /// How long the person has to sign in, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    sign_in_timeout: u64,
    /// The request method (default GET, or POST with -d).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    method: Option<String>,
    /// A request header (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// The request body; @FILE reads a file, @- standard input.
    #[arg(short = 'd', long = "data", value_name = "BODY")]
    data: Option<String>,
    /// The API's URL.
    url: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(code) => code,
        Err(e) => {
            // Errors quote what servers said (issuers, problem codes): one escaped line.
            eprintln!("login: {}", escape_controls(&e.to_string(), false));
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<ExitCode> {
    let url: Uri = args.url.parse()?;
    let origin = match (url.scheme_str(), url.authority()) {
        (Some(scheme @ ("http" | "https")), Some(authority)) => format!("{scheme}://{authority}"),
        _ => return Err(format!("{} is not an absolute http(s) URL", args.url).into()),
    };
    // Built before anything is sent: a bad header or body fails here, not after a sign-in.
    let request = build_request(&args, &url)?;
    let timeout = Duration::from_secs(args.sign_in_timeout);
    let http: Http = Client::builder(TokioExecutor::new()).build(connector()?);
    let source = person_source(&args, timeout, http.clone()).await?;
    if args.sign_out {
        source.sign_out().await?;
        eprintln!("signed out: {} ({})", args.url, args.account);
        return Ok(ExitCode::SUCCESS);
    }
    let layer = RefreshLayer::builder(source)
        .allow_origin(origin)
        .step_up(true)
        .max_replay_body(MAX_REQUEST_BODY)
        // A request waits while the person signs in.
        .refresh_timeout(timeout + SIGN_IN_MARGIN)
        .refresh_exchange_limit(timeout + SIGN_IN_MARGIN)
        .build()?;
    let api = layer.layer(http);
    let response = tokio::time::timeout(
        timeout + SIGN_IN_MARGIN + REQUEST_TIMEOUT,
        api.oneshot(request),
    )
    .await
    .map_err(|_| "the API did not answer in time")??;
    show(response).await
}

/// The person's sign-in for `args.url`, kept in the store under `args.account`.
async fn person_source(args: &Args, timeout: Duration, http: Http) -> Result<AuthorizationCode> {
    let mut browser = LoopbackBrowser::bind().await?.timeout(timeout);
    if args.print_url {
        browser = browser.print_only();
    }
    let path = match &args.store {
        Some(path) => path.clone(),
        None => default_store()?,
    };
    let store = FileStore::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut builder = AuthorizationCode::builder(&args.url, browser)
        .client_name("portcullis login")
        .sign_in_timeout(timeout)
        .store(Arc::new(store), &args.account);
    for issuer in &args.trust_issuers {
        builder = builder.trust_issuer(issuer);
    }
    Ok(builder.build(http)?)
}

/// https with the system's roots, and plain http (for `http://127.0.0.1` APIs).
fn connector() -> Result<HttpsConnector<HttpConnector>> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    Ok(HttpsConnectorBuilder::new()
        .with_native_roots()?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

/// `portcullis/login.json` under the user's config directory (its directory created, owner
/// only). Without one, an error: the working directory may be shared or committed.
fn default_store() -> Result<PathBuf> {
    let env = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = env("HOME");
    let config = env("XDG_CONFIG_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| {
            if cfg!(target_os = "macos") {
                home.map(|h| h.join("Library/Application Support"))
            } else if cfg!(windows) {
                env("APPDATA")
            } else {
                home.map(|h| h.join(".config"))
            }
        });
    let Some(config) = config else {
        return Err(
            "no config directory (HOME, XDG_CONFIG_HOME or APPDATA): name the file \
                    that keeps the sign-in with --store PATH"
                .into(),
        );
    };
    let dir = config.join("portcullis");
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir.join("login.json"))
}

/// The request the command line describes.
fn build_request(args: &Args, url: &Uri) -> Result<Request<Full<Bytes>>> {
    let body = match args.data.as_deref() {
        None => Bytes::new(),
        Some("@-") => read_bounded(std::io::stdin().lock(), "standard input")?,
        Some(data) => match data.strip_prefix('@') {
            Some(file) => read_bounded(std::fs::File::open(file)?, file)?,
            None => Bytes::copy_from_slice(data.as_bytes()),
        },
    };
    if body.len() > MAX_REQUEST_BODY {
        return Err(format!("the body is larger than {MAX_REQUEST_BODY} bytes").into());
    }
    let method = match &args.method {
        Some(m) => Method::from_bytes(m.as_bytes()).map_err(|_| format!("bad method {m:?}"))?,
        None if args.data.is_some() => Method::POST,
        None => Method::GET,
    };
    let mut request = Request::builder().method(method).uri(url.clone());
    for header in &args.headers {
        let (name, value) = parse_header(header)?;
        request = request.header(name, value);
    }
    Ok(request.body(Full::new(body))?)
}

/// At most one byte more than [`MAX_REQUEST_BODY`] of `from` (enough to tell it is too big).
fn read_bounded(from: impl std::io::Read, what: &str) -> Result<Bytes> {
    let mut buf = Vec::new();
    from.take(MAX_REQUEST_BODY as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {what}: {e}"))?;
    Ok(buf.into())
}

/// `Name: value`, as curl takes it.
fn parse_header(header: &str) -> Result<(HeaderName, HeaderValue)> {
    let (name, value) = header
        .split_once(':')
        .ok_or_else(|| format!("a header is 'Name: value', not {header:?}"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("bad header name {:?}", name.trim()))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("bad value for the header {name}"))?;
    Ok((name, value))
}

/// Print the status (stderr) and the body (stdout), bounded and escaped; 0 for a `2xx`.
async fn show<B>(response: Response<B>) -> Result<ExitCode>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    let status = response.status();
    let failure = response.extensions().get::<AuthFailure>().cloned();
    eprintln!("HTTP {status}");
    let (body, cut) = read_shown(response.into_body()).await?;
    let text = escape_controls(&String::from_utf8_lossy(&body), true);
    print!("{text}");
    if !text.is_empty() && !text.ends_with('\n') {
        println!();
    }
    if cut {
        eprintln!("login: the answer was cut after {MAX_SHOWN} bytes");
    }
    if status.is_success() {
        return Ok(ExitCode::SUCCESS);
    }
    match failure {
        Some(failure) => eprintln!(
            "login: refused: {}",
            escape_controls(&failure.to_string(), false)
        ),
        None => eprintln!("login: the API answered {status}"),
    }
    Ok(ExitCode::FAILURE)
}

/// The first [`MAX_SHOWN`] bytes of `body`, and whether there was more (not read further).
async fn read_shown<B>(mut body: B) -> Result<(Bytes, bool)>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    let mut shown = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| -> Box<dyn Error> { e.into() })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let room = MAX_SHOWN - shown.len();
        if data.len() > room {
            shown.extend_from_slice(&data[..room]);
            return Ok((shown.freeze(), true));
        }
        shown.extend_from_slice(&data);
    }
    Ok((shown.freeze(), false))
}

/// `text` with every control character (but tab, and newline when `newlines`) and every
/// bidirectional formatting character written as `\u{…}`.
fn escape_controls(text: &str, newlines: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let kept = c == '\t' || (newlines && c == '\n');
        if (c.is_control() && !kept) || is_bidi(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// The bidirectional formatting characters: they reorder what a terminal shows.
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

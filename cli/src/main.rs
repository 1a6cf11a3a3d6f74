//! `portcullis`: says why an HTTP API answers 401 or 403, and what to fix.
//!
//! ```text
//! portcullis doctor URL [--method M] [--token T | --token-env VAR | --token-file PATH]
//!                       [--cookie 'name=value']... [--header 'Name: value']...
//!                       [--origin ORIGIN] [--issuer URL] [--audience AUD] [--json]
//! portcullis decode TOKEN|-
//! ```
//!
//! Exit codes: 0 nothing wrong, 1 a cause was found, 2 usage error, 3 the server could not be
//! reached. The token is never printed, only its decoded header and claims. What a server or a
//! token says is printed escaped (see [`untrusted`]), on standard error too; `--json` prints
//! it exactly, as JSON.

mod cors;
mod diagnose;
mod doctor;
mod http;
mod keys;
mod report;
mod token;
mod untrusted;

use std::process::ExitCode;
use std::time::Duration;

use ::http::{HeaderName, HeaderValue, Method, Uri};
use clap::{Args, Parser, Subcommand};

use crate::untrusted::{Shown, json_line};

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Says why an HTTP API answers 401 or 403, and what to fix"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send the request, read the answer and the token, and name the causes with their fixes.
    Doctor(Box<DoctorArgs>),
    /// Print a JWT's header and claims (not verified), with its times as dates.
    Decode {
        /// The token, or `-` to read it from standard input (keeps it out of shell history).
        token: String,
    },
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("token_source").multiple(false))]
struct DoctorArgs {
    /// The URL to diagnose.
    url: Uri,
    /// The request method.
    #[arg(long, short = 'X', default_value = "GET")]
    method: Method,
    /// A bearer token, sent as `Authorization: Bearer` (prefer --token-env or --token-file).
    #[arg(long, group = "token_source")]
    token: Option<String>,
    /// Read the bearer token from this environment variable.
    #[arg(long, value_name = "VAR", group = "token_source")]
    token_env: Option<String>,
    /// Read the bearer token from this file.
    #[arg(long, value_name = "PATH", group = "token_source")]
    token_file: Option<std::path::PathBuf>,
    /// A cookie to send, `name=value` (repeatable).
    #[arg(long, value_name = "NAME=VALUE")]
    cookie: Vec<String>,
    /// A header to send, `Name: value` (repeatable).
    #[arg(long, short = 'H', value_name = "NAME: VALUE", value_parser = parse_header)]
    header: Vec<(HeaderName, HeaderValue)>,
    /// Judge what a browser page at this origin would get (preflight, CORS headers).
    #[arg(long)]
    origin: Option<String>,
    /// The issuer the API trusts (its metadata and keys are fetched from here).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// The audience the API expects.
    #[arg(long, value_name = "AUD")]
    audience: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

fn parse_header(s: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| "a header is written `Name: value`".to_owned())?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("{:?} is not a header name", name.trim()))?;
    // Only leading whitespace goes: what follows the value is kept, so a doubled space or a
    // trailing one in an Authorization header reaches the server (and the diagnosis) as typed.
    let value = HeaderValue::from_str(value.strip_prefix(' ').unwrap_or(value))
        .map_err(|_| format!("the value of {name} is not a valid header value"))?;
    Ok((name, value))
}

const USAGE: u8 = 2;
const UNREACHABLE: u8 = 3;

fn read_token(args: &DoctorArgs) -> Result<Option<String>, String> {
    let raw = if let Some(t) = &args.token {
        t.clone()
    } else if let Some(var) = &args.token_env {
        std::env::var(var).map_err(|_| format!("the environment variable {var} is not set"))?
    } else if let Some(path) = &args.token_file {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
    } else {
        return Ok(None);
    };
    // Files and variables usually end in a newline; it is not part of the token.
    let t = raw.trim();
    if t.is_empty() {
        return Err("the token is empty".into());
    }
    Ok(Some(t.to_owned()))
}

async fn doctor(args: Box<DoctorArgs>) -> ExitCode {
    let token = match read_token(&args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("portcullis doctor: {}", Shown(&e));
            return ExitCode::from(USAGE);
        }
    };
    let args = *args;
    let spec = doctor::Spec {
        url: args.url,
        method: args.method,
        token,
        cookies: args.cookie,
        headers: args.header,
        origin: args.origin,
        issuer: args.issuer,
        audience: args.audience,
    };
    let http = match http::Http::new(Duration::from_secs(args.timeout.max(1))) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("portcullis doctor: {}", Shown(&e.to_string()));
            return ExitCode::from(UNREACHABLE);
        }
    };
    match doctor::run(&http, &spec).await {
        Ok(report) => {
            if args.json {
                println!("{}", json_line(&report.to_json()));
            } else {
                print!("{}", report.to_text());
            }
            ExitCode::from(u8::from(!report.causes.is_empty()))
        }
        Err(doctor::Failure::Usage(e)) => {
            eprintln!("portcullis doctor: {}", Shown(&e));
            ExitCode::from(USAGE)
        }
        Err(doctor::Failure::Unreachable(e)) => {
            if args.json {
                println!(
                    "{}",
                    json_line(
                        &serde_json::json!({"verdict": "unreachable", "status": null, "causes": [], "error": e})
                    )
                );
            }
            // The error may quote the server (a TLS alert, a certificate's names).
            eprintln!("portcullis doctor: cannot reach {}", Shown(&e));
            ExitCode::from(UNREACHABLE)
        }
    }
}

fn decode(arg: &str) -> ExitCode {
    let raw = if arg == "-" {
        let mut s = String::new();
        if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut s) {
            eprintln!(
                "portcullis decode: cannot read standard input: {}",
                Shown(&e.to_string())
            );
            return ExitCode::from(USAGE);
        }
        s
    } else {
        arg.to_owned()
    };
    let raw = raw.trim();
    // A pasted header value is common: read the token after the scheme.
    let t = raw
        .strip_prefix("Bearer ")
        .or_else(|| raw.strip_prefix("bearer "))
        .unwrap_or(raw)
        .trim();
    match token::decode(t) {
        Ok(decoded) => {
            print!("{}", token::render(&decoded, token::unix_now()));
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("portcullis decode: not a JWT: {}", Shown(&why.to_string()));
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode { token } => decode(&token),
        Command::Doctor(args) => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("portcullis: cannot start: {}", Shown(&e.to_string()));
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(doctor(args))
        }
    }
}

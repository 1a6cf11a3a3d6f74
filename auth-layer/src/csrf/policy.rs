//! The protection a layer is configured with: which proof a cookie-authenticated request
//! must carry, and which origins are trusted.

use http::HeaderName;
use tower::Layer;
use tower_http::csrf::CsrfLayer;

use super::check::{CompiledProof, CsrfCheck, Probe};
use super::key::CsrfKey;
use crate::error::ConfigError;

/// The header of [`CsrfPolicy::session_bound`] unless [`CsrfPolicy::header`] names another.
const DEFAULT_HEADER: &str = "x-csrf-token";

/// How cookie-authenticated unsafe requests prove they come from our own pages.
///
/// ```
/// use portcullis::server::{CsrfKey, CsrfPolicy};
/// # fn main() -> Result<(), portcullis::server::ConfigError> {
/// # let secret = [7u8; 32];
/// // A token bound to the session cookie in `x-csrf-token`, and requests from this API's
/// // origin or the app's.
/// let csrf = CsrfPolicy::session_bound(CsrfKey::new(&secret)?)
///     .trusted_origin("https://app.example.com");
/// # let _ = csrf;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CsrfPolicy {
    proof: Proof,
    origins: Vec<String>,
    /// A session-bound option given to another kind of protection; refused when the layer is
    /// built rather than ignored.
    misplaced: Option<&'static str>,
}

#[derive(Debug, Clone)]
enum Proof {
    SessionBound {
        /// The current key first: it is the likeliest to match.
        keys: Vec<CsrfKey>,
        header: String,
    },
    UnboundDoubleSubmit {
        cookie: String,
        header: String,
    },
    OriginOnly,
}

impl CsrfPolicy {
    /// Require the header `x-csrf-token` to hold the token [minted](CsrfKey::mint) with `key`
    /// for the session cookie this request was authenticated with, and the request to come
    /// from the API's own origin or a [trusted](Self::trusted_origin) one. The protection to
    /// use.
    pub fn session_bound(key: CsrfKey) -> Self {
        CsrfPolicy {
            proof: Proof::SessionBound {
                keys: vec![key],
                header: DEFAULT_HEADER.to_owned(),
            },
            origins: Vec::new(),
            misplaced: None,
        }
    }

    /// The header of a [session-bound](Self::session_bound) token (default `x-csrf-token`;
    /// some frameworks send `x-xsrf-token`).
    pub fn header(mut self, name: impl Into<String>) -> Self {
        match &mut self.proof {
            Proof::SessionBound { header, .. } => *header = name.into(),
            _ => self.misplaced = Some("header"),
        }
        self
    }

    /// Also accept tokens minted with `key`, for a [session-bound](Self::session_bound)
    /// protection whose key is being rotated: deploy the new key with the old one here, then
    /// drop the old one once the sessions it minted for have ended. Each extra key costs one
    /// more HMAC for a request whose token matches none.
    pub fn previous_key(mut self, key: CsrfKey) -> Self {
        match &mut self.proof {
            Proof::SessionBound { keys, .. } => keys.push(key),
            _ => self.misplaced = Some("previous_key"),
        }
        self
    }

    /// The classic double submit, **not bound to the session**: the header `header` must
    /// equal the (script-readable) cookie `cookie`, whatever it holds. Anyone who can set a
    /// cookie for your site (a sibling subdomain, a man in the middle on plain `http`) can
    /// plant a pair that passes next to the victim's session cookie; only the origin check
    /// then stands in the way, and it lets through requests without `Origin` and
    /// `Sec-Fetch-Site`. Prefer [`session_bound`](Self::session_bound).
    pub fn double_submit_unbound_to_session(
        cookie: impl Into<String>,
        header: impl Into<String>,
    ) -> Self {
        CsrfPolicy {
            proof: Proof::UnboundDoubleSubmit {
                cookie: cookie.into(),
                header: header.into(),
            },
            origins: Vec::new(),
            misplaced: None,
        }
    }

    /// Only check where the request comes from (`Sec-Fetch-Site`, `Origin`), with no token.
    /// Enough for current browsers, which send at least one of them; a request that carries
    /// neither (an old browser, or a client that is not a browser) is refused, since nothing
    /// then says where it comes from.
    pub fn origin_only() -> Self {
        CsrfPolicy {
            proof: Proof::OriginOnly,
            origins: Vec::new(),
            misplaced: None,
        }
    }

    /// Also accept requests from pages on `origin` (`scheme://host[:port]`, exactly as
    /// browsers send it: lowercase host, no default port, no trailing slash).
    pub fn trusted_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    pub(crate) fn compile(self) -> Result<CsrfCheck, ConfigError> {
        if let Some(option) = self.misplaced {
            return Err(ConfigError::CsrfNotSessionBound(option));
        }
        let header_name = |h: String| {
            HeaderName::from_bytes(h.as_bytes()).map_err(|_| ConfigError::InvalidHeaderName(h))
        };
        let proof = match self.proof {
            Proof::SessionBound { keys, header } => CompiledProof::SessionBound {
                keys: keys.into_boxed_slice(),
                header: header_name(header)?,
            },
            Proof::UnboundDoubleSubmit { cookie, header } => CompiledProof::UnboundDoubleSubmit {
                cookie,
                header: header_name(header)?,
            },
            Proof::OriginOnly => CompiledProof::OriginOnly,
        };
        let mut layer = CsrfLayer::new();
        for origin in &self.origins {
            layer = layer
                .add_trusted_origin(origin)
                .map_err(|_| ConfigError::InvalidOrigin(origin.clone()))?;
        }
        Ok(CsrfCheck {
            proof,
            cross_origin: layer.layer(Probe),
        })
    }
}

//! Finding the authorization server of a resource (RFC 9728, then RFC 8414 / OpenID
//! Connect discovery), under the destination rules: what [`Discovery`](super::Discovery) and
//! [`AuthorizationCode`](crate::source::authorization_code::AuthorizationCode) share.

use http::header::ACCEPT;
use http::{HeaderValue, Request, Uri};
use http_body_util::Full;
use serde::Deserialize;

use super::destination::{self, Place};
use super::metadata::{ResourceMetadata, ServerMetadata, covers};
use crate::error::{BuildError, DiscoveryError, RefreshError};
use crate::source::token_http::{TokenHttp, send};
use portcullis_wire::{Origin, well_known};

/// What an error keeps of a list a server sent: its first eight entries, each at most 200
/// characters. Errors get logged; they do not grow with what a hostile server sends (and
/// they show entries with `{:?}`, so no control character reaches a log line raw).
pub(crate) fn bounded(list: &[String]) -> Vec<String> {
    list.iter()
        .take(8)
        .map(|s| s.chars().take(200).collect())
        .collect()
}

/// Which authorization servers may receive the client's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Trust {
    /// Exactly these issuer identifiers.
    Pinned(Vec<String>),
    /// Whatever the resource names first ([`DiscoveryBuilder::trust_any_authorization_server`]).
    AnyNamedByTheResource,
}

/// The rules for where requests may go; see [`destination`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Reach {
    pub(crate) allow_insecure_http: bool,
    pub(crate) allow_internal: bool,
    /// Origins besides the resource's whose `resource_metadata` URLs may be fetched.
    pub(crate) metadata_origins: Vec<Origin>,
    /// What to do for a resource without RFC 9728 metadata.
    pub(crate) legacy: Legacy,
    /// An origin given to trust that does not parse: the build fails with it.
    pub(crate) invalid_origin: Option<String>,
}

impl Reach {
    /// Also fetch `resource_metadata` URLs on `origin` (kept to fail the build if it is not one).
    pub(crate) fn trust_metadata_origin(&mut self, origin: &str) {
        match Origin::parse(origin) {
            Ok(o) => self.metadata_origins.push(o),
            Err(_) => self.invalid_origin = Some(origin.to_owned()),
        }
    }
}

/// MCP 2025-03-26 discovery, for resources that publish no RFC 9728 metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Legacy {
    /// Refuse: the resource must say where its authorization server is.
    #[default]
    Off,
    /// The resource's origin is the authorization server, found by its RFC 8414 metadata.
    OriginMetadata,
    /// As `OriginMetadata`, and without metadata the default endpoints there.
    DefaultEndpoints,
}

/// Where discovery may go and whom it may trust, for one resource.
pub(crate) struct Finder {
    /// The resource's URL as configured.
    pub(crate) resource: String,
    pub(crate) resource_uri: Uri,
    pub(crate) trust: Trust,
    pub(crate) reach: Reach,
    pub(crate) http: TokenHttp,
}

/// What [`Finder::find`] found: the resource's metadata and its authorization server's.
pub(crate) struct Found {
    pub(crate) metadata_url: String,
    pub(crate) resource: ResourceMetadata,
    pub(crate) issuer: String,
    pub(crate) server_url: String,
    pub(crate) server: ServerMetadata,
    /// Where the resource is (for checking the server's endpoints).
    pub(crate) place: Place,
}

impl Finder {
    /// A finder for the resource at `resource` (an absolute http(s) URL).
    pub(crate) fn new(
        resource: String,
        trust: Trust,
        reach: Reach,
        http: TokenHttp,
    ) -> Result<Self, BuildError> {
        let resource_uri: Uri = resource
            .parse()
            .ok()
            .filter(|u: &Uri| Origin::of(u).is_some())
            .ok_or_else(|| BuildError::InvalidResource(resource.clone()))?;
        if let Some(origin) = &reach.invalid_origin {
            return Err(BuildError::InvalidOrigin(
                Origin::parse(origin).expect_err("kept because it did not parse"),
            ));
        }
        Ok(Finder {
            resource,
            resource_uri,
            trust,
            reach,
            http,
        })
    }

    /// The `resource_metadata` a refusal names, when it may be fetched: only on the
    /// resource's own origin or a trusted one.
    pub(crate) fn hint_of(&self, bearer: &portcullis_wire::Challenge) -> Option<String> {
        let url = bearer.param("resource_metadata")?;
        if self.hint_allowed(url) {
            Some(url.to_owned())
        } else {
            tracing::warn!(target: "portcullis::client", "a challenge named resource metadata on another origin; not fetched");
            None
        }
    }

    /// Whether a request to `uri` may be sent for a resource at `resource` (its place): the
    /// transport rule, then the address rule.
    pub(crate) async fn may_send(&self, uri: &Uri, resource: Place) -> Result<(), RefreshError> {
        let reach = &self.reach;
        destination::check_transport(uri, reach.allow_insecure_http)
            .map_err(RefreshError::Discovery)?;
        destination::check_place(uri, resource, reach.allow_internal)
            .await
            .map_err(RefreshError::Discovery)
    }

    /// Where the resource is: a name that does not resolve counts as public, the strictest.
    pub(crate) async fn resource_place(&self) -> Place {
        destination::place(&self.resource_uri, destination::Judge::AllInternal)
            .await
            .unwrap_or(Place::Public)
    }

    /// Whether a challenge's `resource_metadata` URL may be fetched at all: only on the
    /// resource's own origin or a trusted one, so a `401` cannot point the client at a host of
    /// its choosing (and nothing that host would say can reach an error).
    pub(crate) fn hint_allowed(&self, url: &str) -> bool {
        let i = self;
        let Some(origin) = url.parse::<Uri>().ok().as_ref().and_then(Origin::of) else {
            return false;
        };
        let same = |o: &Origin| o.to_string() == origin.to_string();
        Origin::of(&i.resource_uri).is_some_and(|o| same(&o))
            || i.reach.metadata_origins.iter().any(same)
    }

    /// `GET url` for a JSON document: `Ok(None)` when the server has none there (any
    /// non-success status), the reason kept in `tried`.
    pub(crate) async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        url: &str,
        tried: &mut Vec<String>,
    ) -> Result<Option<T>, RefreshError> {
        let Ok(uri) = url.parse::<Uri>() else {
            tried.push(format!(
                "{} (not a URL)",
                url.chars().take(200).collect::<String>()
            ));
            return Ok(None);
        };
        if Origin::of(&uri).is_none() {
            tried.push(format!("{url} (not an http(s) URL)"));
            return Ok(None);
        }
        let mut req = Request::new(Full::default());
        *req.uri_mut() = uri;
        req.headers_mut()
            .insert(ACCEPT, HeaderValue::from_static("application/json"));
        req.extensions_mut().insert(crate::SkipCredential);
        let res = send(&self.http, req).await?;
        if !res.status().is_success() {
            tried.push(format!("{url} ({})", res.status()));
            return Ok(None);
        }
        serde_json::from_slice(res.body()).map(Some).map_err(|e| {
            RefreshError::Discovery(DiscoveryError::InvalidMetadata {
                url: url.to_owned(),
                why: e.to_string(),
            })
        })
    }

    /// The resource's metadata: from the challenge's URL when it may be used, else from the
    /// well-known URIs on the resource's origin.
    pub(crate) async fn resource_metadata(
        &self,
        hint: Option<String>,
    ) -> Result<(String, ResourceMetadata), RefreshError> {
        let i = self;
        let mut tried = Vec::new();
        let candidates = match hint {
            Some(url) => vec![url],
            None => well_known::protected_resource_urls(&i.resource_uri),
        };
        for url in candidates {
            if let Ok(uri) = url.parse::<Uri>()
                && let Err(e) = destination::check_transport(&uri, i.reach.allow_insecure_http)
            {
                return Err(RefreshError::Discovery(e));
            }
            if let Some(meta) = self.get_json::<ResourceMetadata>(&url, &mut tried).await? {
                return Ok((url, meta));
            }
        }
        Err(RefreshError::Discovery(
            DiscoveryError::NoResourceMetadata { tried },
        ))
    }

    /// The authorization server to use among those the resource names.
    pub(crate) fn choose_issuer(&self, named: &[String]) -> Result<String, DiscoveryError> {
        match &self.trust {
            Trust::AnyNamedByTheResource => named
                .first()
                .cloned()
                .ok_or(DiscoveryError::NoAuthorizationServer),
            // Exact strings (RFC 8414 §3.3): no case folding, no trailing-slash or port
            // normalization that would let a look-alike identifier through.
            Trust::Pinned(pins) => named
                .iter()
                .find(|n| pins.iter().any(|p| p == *n))
                .cloned()
                .ok_or_else(|| DiscoveryError::UntrustedAuthorizationServer {
                    named: bounded(named),
                }),
        }
    }

    /// RFC 8414 metadata of `issuer`, at the first location that has it, checked to be for
    /// exactly that issuer.
    pub(crate) async fn server_metadata(
        &self,
        issuer: &str,
        resource: Place,
        metadata_url: &str,
    ) -> Result<(String, ServerMetadata), RefreshError> {
        let fail = RefreshError::Discovery;
        let issuer_uri: Uri = issuer
            .parse()
            .ok()
            .filter(|u: &Uri| Origin::of(u).is_some())
            .ok_or_else(|| {
                fail(DiscoveryError::InvalidMetadata {
                    url: metadata_url.to_owned(),
                    why: "the authorization server is not an http(s) URL".into(),
                })
            })?;
        self.may_send(&issuer_uri, resource).await?;
        let mut tried = Vec::new();
        for url in well_known::authorization_server_urls(&issuer_uri) {
            if let Some(m) = self.get_json::<ServerMetadata>(&url, &mut tried).await? {
                if m.issuer != issuer {
                    return Err(fail(DiscoveryError::IssuerMismatch {
                        expected: issuer.to_owned(),
                        advertised: m.issuer.chars().take(200).collect(),
                    }));
                }
                return Ok((url, m));
            }
        }
        Err(fail(DiscoveryError::NoServerMetadata { tried }))
    }

    /// The resource's metadata (checked to name this resource) and the authorization server
    /// it names that this client trusts (its metadata checked to name that exact issuer).
    pub(crate) async fn find(&self, hint: Option<String>) -> Result<Found, RefreshError> {
        let fail = RefreshError::Discovery;
        let (metadata_url, meta) = match self.resource_metadata(hint).await {
            Err(RefreshError::Discovery(DiscoveryError::NoResourceMetadata { tried }))
                if self.reach.legacy != Legacy::Off =>
            {
                return self.find_2025_03_26(tried).await;
            }
            other => other?,
        };
        if !covers(&meta.resource, &self.resource) {
            return Err(fail(DiscoveryError::ResourceMismatch {
                expected: self.resource.clone(),
                advertised: meta.resource.chars().take(200).collect(),
            }));
        }
        if meta.authorization_servers.is_empty() {
            return Err(fail(DiscoveryError::NoAuthorizationServer));
        }
        let issuer = self
            .choose_issuer(&meta.authorization_servers)
            .map_err(fail)?;
        let place = self.resource_place().await;
        let (server_url, server) = self.server_metadata(&issuer, place, &metadata_url).await?;
        Ok(Found {
            metadata_url,
            resource: meta,
            issuer,
            server_url,
            server,
            place,
        })
    }

    /// MCP 2025-03-26, for servers without resource metadata: the authorization server is
    /// the resource's own origin (its RFC 8414 metadata, and with
    /// [`Legacy::DefaultEndpoints`] the default `/authorize`, `/token` and `/register` when
    /// it has none). Nothing a third party names is used, so nothing leaves the resource's
    /// origin.
    async fn find_2025_03_26(&self, tried: Vec<String>) -> Result<Found, RefreshError> {
        let fail = RefreshError::Discovery;
        let origin = Origin::of(&self.resource_uri)
            .map(|o| o.to_string())
            .ok_or_else(|| {
                fail(DiscoveryError::NoResourceMetadata {
                    tried: tried.clone(),
                })
            })?;
        let issuer = self
            .choose_issuer(std::slice::from_ref(&origin))
            .map_err(fail)?;
        let place = self.resource_place().await;
        let resource = ResourceMetadata {
            resource: self.resource.clone(),
            authorization_servers: vec![issuer.clone()],
            scopes_supported: Vec::new(),
        };
        let (server_url, server) = match self.server_metadata(&issuer, place, &origin).await {
            Err(RefreshError::Discovery(DiscoveryError::NoServerMetadata { .. }))
                if self.reach.legacy == Legacy::DefaultEndpoints =>
            {
                tracing::warn!(target: "portcullis::client", %issuer, "no metadata at all: using the default endpoints of MCP 2025-03-26, assuming PKCE S256");
                (issuer.clone(), ServerMetadata::defaults_2025_03_26(&issuer))
            }
            other => other?,
        };
        Ok(Found {
            metadata_url: server_url.clone(),
            resource,
            issuer,
            server_url,
            server,
            place,
        })
    }

    /// An endpoint the server's metadata names, checked under the destination rules.
    pub(crate) async fn endpoint(
        &self,
        found: &Found,
        url: Option<&String>,
        name: &str,
    ) -> Result<Uri, RefreshError> {
        let invalid = |why: String| {
            RefreshError::Discovery(DiscoveryError::InvalidMetadata {
                url: found.server_url.clone(),
                why,
            })
        };
        let url = url.ok_or_else(|| invalid(format!("no {name}")))?;
        let uri: Uri = url
            .parse()
            .ok()
            .filter(|u: &Uri| Origin::of(u).is_some())
            .ok_or_else(|| invalid(format!("the {name} is not an absolute http(s) URL")))?;
        self.may_send(&uri, found.place).await?;
        Ok(uri)
    }
}

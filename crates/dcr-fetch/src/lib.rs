//! Outbound fetches of the documents a client points at (`jwks_uri`, `sector_identifier_uri`,
//! software statement issuer keys), guarded against server-side request forgery.
//!
//! [`Fetcher`] implements [`dcr_core::metadata::DocumentFetcher`]:
//! - the URL must be `https`, absolute, with a host and no userinfo;
//! - an IP-literal host is checked against the deny-list *before* any request (a custom
//!   resolver alone is bypassed by literals, engineering notes §A.4);
//! - names are resolved by [`GuardedResolver`], which drops every non-public address, so the
//!   addresses dialled are the checked ones (no DNS-rebinding window);
//! - no proxy, no redirects, connect and total timeouts, a body size cap.
//!
//! [`FetcherConfig::allow_loopback_for_tests`] additionally allows `http` and loopback
//! targets (only loopback: private ranges stay refused), for tests against local servers.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use dcr_core::metadata::{DocumentFetcher, FetchError};
use ipnet::{Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::Value;
use url::{Host, Url};

mod document;

/// Settings of a [`Fetcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetcherConfig {
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed for the whole exchange, body included.
    pub timeout: Duration,
    /// Largest body read, in bytes.
    pub max_body_bytes: usize,
    /// Tests only: also allow `http` and loopback destinations.
    pub allow_loopback_for_tests: bool,
}

impl Default for FetcherConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            max_body_bytes: 256 * 1024,
            allow_loopback_for_tests: false,
        }
    }
}

/// The deny-listed IPv4 networks (besides what std's predicates cover).
const DENIED_V4: &[(u8, u8, u8, u8, u8)] = &[
    (0, 0, 0, 0, 8),       // "this network"
    (10, 0, 0, 0, 8),      // RFC 1918
    (100, 64, 0, 0, 10),   // CGNAT
    (127, 0, 0, 0, 8),     // loopback
    (169, 254, 0, 0, 16),  // link-local, cloud metadata
    (172, 16, 0, 0, 12),   // RFC 1918
    (192, 0, 0, 0, 24),    // IETF protocol assignments
    (192, 0, 2, 0, 24),    // documentation
    (192, 88, 99, 0, 24),  // 6to4 relay anycast
    (192, 168, 0, 0, 16),  // RFC 1918
    (198, 18, 0, 0, 15),   // benchmarking
    (198, 51, 100, 0, 24), // documentation
    (203, 0, 113, 0, 24),  // documentation
    (224, 0, 0, 0, 4),     // multicast
    (240, 0, 0, 0, 4),     // reserved, broadcast
];

/// The deny-listed IPv6 networks.
const DENIED_V6: &[(u16, u16, u16, u8)] = &[
    (0, 0, 0, 96),          // unspecified, loopback, IPv4-compatible
    (0x64, 0xff9b, 0, 96),  // NAT64
    (0x64, 0xff9b, 1, 48),  // local NAT64
    (0x100, 0, 0, 64),      // discard
    (0x2001, 0, 0, 23),     // IETF protocol assignments (Teredo, benchmarking, ORCHID...)
    (0x2001, 0xdb8, 0, 32), // documentation
    (0x2002, 0, 0, 16),     // 6to4
    (0x3fff, 0, 0, 20),     // documentation
    (0x5f00, 0, 0, 16),     // segment routing
    (0xfc00, 0, 0, 7),      // unique local
    (0xfe80, 0, 0, 10),     // link-local
    (0xfec0, 0, 0, 10),     // site-local (deprecated)
    (0xff00, 0, 0, 8),      // multicast
];

fn denied_v4(ip: Ipv4Addr) -> bool {
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || DENIED_V4.iter().any(|&(a, b, c, d, len)| {
            Ipv4Net::new(Ipv4Addr::new(a, b, c, d), len).is_ok_and(|n| n.contains(&ip))
        })
}

fn denied_v6(ip: Ipv6Addr) -> bool {
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || DENIED_V6.iter().any(|&(a, b, c, len)| {
            Ipv6Net::new(Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0), len).is_ok_and(|n| n.contains(&ip))
        })
}

/// Whether `ip` is not a public unicast address: loopback, private, link-local, CGNAT,
/// multicast, unspecified, broadcast, documentation, unique local, reserved, or a transition
/// prefix that can embed one of those. IPv4-mapped IPv6 addresses are judged as IPv4.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => denied_v4(v4),
        IpAddr::V6(v6) => denied_v6(v6),
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Whether the fetcher may connect to `ip`.
fn allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    !is_forbidden(ip) || (allow_loopback && is_loopback(ip))
}

/// Checks a URL before any request: scheme, host, userinfo, and IP-literal hosts.
pub fn check_url(url: &Url, what: &str, allow_loopback: bool) -> Result<(), FetchError> {
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback => {}
        _ => return Err(FetchError(format!("{what} must use https"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError(format!(
            "{what} must not contain user information"
        )));
    }
    if url.as_str().len() > 2048 {
        return Err(FetchError(format!("{what} is longer than 2048 characters")));
    }
    let ip = match url.host() {
        None => return Err(FetchError(format!("{what} must have a host"))),
        Some(Host::Domain(_)) => return Ok(()),
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
    };
    if allowed(ip, allow_loopback) {
        Ok(())
    } else {
        Err(blocked(what))
    }
}

fn blocked(what: &str) -> FetchError {
    FetchError(format!(
        "{what} could not be fetched: its host is not a public internet address"
    ))
}

/// The error the resolver returns when no public address is left.
#[derive(Debug)]
struct Blocked;

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the name resolves to no public address")
    }
}

impl std::error::Error for Blocked {}

/// A resolver that keeps only addresses the fetcher may connect to.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    allow_loopback: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let kept: Vec<SocketAddr> = resolved
                .filter(|a| allowed(a.ip(), allow_loopback))
                .collect();
            if kept.is_empty() {
                return Err(Box::new(Blocked) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// Why a [`Fetcher`] could not be built.
#[derive(Debug, thiserror::Error)]
#[error("could not build the HTTP client: {0}")]
pub struct BuildError(#[from] reqwest::Error);

/// The SSRF-guarded document fetcher.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    config: FetcherConfig,
}

impl Fetcher {
    /// Builds a fetcher.
    pub fn new(config: FetcherConfig) -> Result<Self, BuildError> {
        Self::build(config, Vec::new())
    }

    /// Builds a fetcher that trusts `roots` besides the system's roots.
    fn build(config: FetcherConfig, roots: Vec<reqwest::Certificate>) -> Result<Self, BuildError> {
        let client = reqwest::Client::builder()
            .tls_certs_merge(roots)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!config.allow_loopback_for_tests)
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(concat!("dcr/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                allow_loopback: config.allow_loopback_for_tests,
            }))
            .build()?;
        Ok(Self { client, config })
    }

    /// The settings.
    pub fn config(&self) -> &FetcherConfig {
        &self.config
    }

    fn describe(err: &reqwest::Error, what: &str) -> FetchError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = source {
            if e.is::<Blocked>() {
                return blocked(what);
            }
            source = e.source();
        }
        let why = if err.is_timeout() {
            "the request timed out"
        } else if err.is_connect() {
            "the connection failed"
        } else if err.is_body() || err.is_decode() {
            "the response body could not be read"
        } else {
            "the request failed"
        };
        FetchError(format!("{what} could not be fetched: {why}"))
    }

    /// GETs `url` (`what` in errors), asking for JSON, and returns the response if it came from
    /// an allowed address with 200 OK (redirects are not followed).
    async fn get_ok(&self, url: &Url, what: &str) -> Result<reqwest::Response, FetchError> {
        let allow_loopback = self.config.allow_loopback_for_tests;
        check_url(url, what, allow_loopback)?;
        let response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| Self::describe(&e, what))?;
        if let Some(remote) = response.remote_addr()
            && !allowed(remote.ip(), allow_loopback)
        {
            return Err(blocked(what));
        }
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            let hint = if status.is_redirection() {
                " (redirects are not followed)"
            } else {
                ""
            };
            return Err(FetchError(format!(
                "{what} returned HTTP {status}, expected 200 OK{hint}"
            )));
        }
        Ok(response)
    }

    /// The body of `response` (`what` in errors), refused with `too_large()` as soon as its
    /// announced or read length passes `max` bytes.
    async fn read_body(
        mut response: reqwest::Response,
        what: &str,
        max: usize,
        too_large: impl Fn() -> FetchError,
    ) -> Result<Vec<u8>, FetchError> {
        if response
            .content_length()
            .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > max))
        {
            return Err(too_large());
        }
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Self::describe(&e, what))?
        {
            if body.len().saturating_add(chunk.len()) > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[async_trait::async_trait]
impl DocumentFetcher for Fetcher {
    fn check_destination(&self, url: &Url, what: &str) -> Result<(), FetchError> {
        let allow_loopback = self.config.allow_loopback_for_tests;
        check_url(url, what, allow_loopback)?;
        // Names that resolve to loopback (RFC 6761 §6.3), refused before any resolution.
        let local = url.host_str().is_some_and(|h| {
            let h = h.trim_end_matches('.').to_ascii_lowercase();
            h == "localhost" || h.ends_with(".localhost")
        });
        if local && !allow_loopback {
            return Err(blocked(what));
        }
        Ok(())
    }

    async fn fetch_json(&self, url: &Url, what: &str) -> Result<Value, FetchError> {
        let response = self.get_ok(url, what).await?;
        let max = self.config.max_body_bytes;
        let body = Self::read_body(response, what, max, || {
            FetchError(format!("{what} response is larger than {max} bytes"))
        })
        .await?;
        serde_json::from_slice(&body)
            .map_err(|_| FetchError(format!("{what} did not return valid JSON")))
    }
}

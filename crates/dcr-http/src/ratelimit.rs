//! Rate limits on registration and management, and the client address they key on.
//!
//! Limits are decided by a [`RateLimiter`]; [`GovernorLimiter`] keeps them in this process
//! (GCRA buckets in memory). A limiter shared between instances can implement the same trait.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;
use serde_json::json;

/// Decides whether one more request under a key is allowed.
pub trait RateLimiter: Send + Sync + 'static {
    /// `Ok(())` to let the request through (it is counted), `Err(wait)` when over the limit.
    fn check(&self, key: &str) -> Result<(), Duration>;

    /// Forgets keys that are back to a full bucket (bounded memory). Called periodically.
    fn housekeeping(&self) {}
}

/// A bucket size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests allowed at once.
    pub burst: u32,
    /// Requests per second refilled.
    pub per_second: f64,
}

/// An in-process keyed GCRA limiter (`governor`).
pub struct GovernorLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl std::fmt::Debug for GovernorLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernorLimiter")
            .field("keys", &self.limiter.len())
            .finish()
    }
}

impl GovernorLimiter {
    /// A limiter of `rate` per key; `None` if the rate allows nothing (zero burst or rate).
    pub fn new(rate: Rate) -> Option<Self> {
        let burst = NonZeroU32::new(rate.burst)?;
        if !(rate.per_second.is_finite() && rate.per_second > 0.0) {
            return None;
        }
        let period = Duration::from_secs_f64(1.0 / rate.per_second);
        let quota = Quota::with_period(period)?.allow_burst(burst);
        Some(Self {
            limiter: governor::RateLimiter::keyed(quota),
        })
    }
}

impl RateLimiter for GovernorLimiter {
    fn check(&self, key: &str) -> Result<(), Duration> {
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    fn housekeeping(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// The limits the router applies; each is optional.
#[derive(Clone, Default)]
pub struct RateLimits {
    /// Registrations per client address.
    pub registration_per_ip: Option<Arc<dyn RateLimiter>>,
    /// Registrations per initial access token (keyed by the token's hash).
    pub registration_per_token: Option<Arc<dyn RateLimiter>>,
    /// Registrations in all.
    pub registration_global: Option<Arc<dyn RateLimiter>>,
    /// Read, update and delete requests per client id.
    pub management_per_client: Option<Arc<dyn RateLimiter>>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("registration_per_ip", &self.registration_per_ip.is_some())
            .field(
                "registration_per_token",
                &self.registration_per_token.is_some(),
            )
            .field("registration_global", &self.registration_global.is_some())
            .field(
                "management_per_client",
                &self.management_per_client.is_some(),
            )
            .finish()
    }
}

impl RateLimits {
    /// Runs [`RateLimiter::housekeeping`] on every limiter.
    pub fn housekeeping(&self) {
        for l in [
            &self.registration_per_ip,
            &self.registration_per_token,
            &self.registration_global,
            &self.management_per_client,
        ]
        .into_iter()
        .flatten()
        {
            l.housekeeping();
        }
    }
}

/// A request over a limit: how long to wait.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limited(pub(crate) Duration);

impl IntoResponse for Limited {
    fn into_response(self) -> Response {
        too_many_requests(self.0)
    }
}

/// Checks `key` against `limiter` (if any), counting a refusal under `which`.
pub(crate) fn enforce(
    limiter: Option<&Arc<dyn RateLimiter>>,
    which: &'static str,
    key: &str,
) -> Result<(), Limited> {
    match limiter.map(|l| l.check(key)) {
        None | Some(Ok(())) => Ok(()),
        Some(Err(wait)) => {
            metrics::counter!("dcr_rate_limited_total", "limit" => which).increment(1);
            tracing::info!(limit = which, "request rate limited");
            Err(Limited(wait))
        }
    }
}

/// 429 with `Retry-After` (whole seconds, at least 1) and an RFC 6749-style error body.
pub fn too_many_requests(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let body = json!({
        "error": "rate_limited",
        "error_description": format!("too many requests; retry in {secs} s"),
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The address of the client that sent `parts`: the peer address, or, when the peer is one of
/// `trusted_proxies`, the nearest untrusted address of `Forwarded` (or else `X-Forwarded-For`).
///
/// `None` when the server was not run with connect info
/// (`into_make_service_with_connect_info::<SocketAddr>()`).
pub fn client_ip(parts: &Parts, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    Some(resolve_client_ip(peer, &parts.headers, trusted_proxies))
}

/// [`client_ip`] from a peer address and headers.
pub fn resolve_client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = forwarded_hops(headers);
    // Right to left: the first address not ours is the client as our proxies saw it.
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) if is_trusted(ip) => nearest = *ip,
            Some(ip) => return *ip,
            // An unparseable hop (obfuscated, "unknown"): stop at the last known address.
            None => return nearest,
        }
    }
    nearest
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The hops of `Forwarded` (RFC 7239 `for=`) if present, else of `X-Forwarded-For`, left to right.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let joined = |name: header::HeaderName| -> Option<String> {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    };
    if let Some(forwarded) = joined(header::FORWARDED) {
        return forwarded
            .split(',')
            .map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| parse_node(v.trim().trim_matches('"')))
                        .flatten()
                })
            })
            .collect();
    }
    joined(header::HeaderName::from_static("x-forwarded-for"))
        .map(|xff| xff.split(',').map(|s| parse_node(s.trim())).collect())
        .unwrap_or_default()
}

/// An address from a `for=` node or an `X-Forwarded-For` entry (`1.2.3.4`, `1.2.3.4:80`,
/// `[::1]`, `[::1]:80`, `::1`).
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    s.strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .and_then(|(ip, _)| ip.parse::<IpAddr>().ok())
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_headers_need_a_trusted_peer() {
        let spoofed = h(&[("x-forwarded-for", "9.9.9.9")]);
        assert_eq!(
            resolve_client_ip(ip("10.0.0.1"), &spoofed, &[]),
            ip("10.0.0.1")
        );
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            resolve_client_ip(ip("10.0.0.1"), &spoofed, &trusted),
            ip("9.9.9.9")
        );
        assert_eq!(
            resolve_client_ip(ip("8.8.8.8"), &spoofed, &trusted),
            ip("8.8.8.8")
        );
        // A client cannot hide behind a forged left-most entry.
        let chain = h(&[("x-forwarded-for", "1.1.1.1, 7.7.7.7, 10.0.0.2")]);
        assert_eq!(
            resolve_client_ip(ip("10.0.0.1"), &chain, &trusted),
            ip("7.7.7.7")
        );
        let fwd = h(&[
            (
                "forwarded",
                "for=1.1.1.1, for=\"[2001:db8::1]:4711\";proto=https",
            ),
            ("x-forwarded-for", "5.5.5.5"),
        ]);
        assert_eq!(
            resolve_client_ip(ip("10.0.0.1"), &fwd, &trusted),
            ip("2001:db8::1")
        );
        let junk = h(&[("x-forwarded-for", "unknown, garbage")]);
        assert_eq!(
            resolve_client_ip(ip("10.0.0.1"), &junk, &trusted),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn governor_limits_and_recovers() {
        let l = GovernorLimiter::new(Rate {
            burst: 2,
            per_second: 1000.0,
        })
        .unwrap();
        assert!(l.check("a").is_ok());
        assert!(l.check("a").is_ok());
        let wait = l.check("a").unwrap_err();
        assert!(wait <= Duration::from_millis(2));
        assert!(l.check("b").is_ok());
        std::thread::sleep(Duration::from_millis(5));
        assert!(l.check("a").is_ok());
        assert!(
            GovernorLimiter::new(Rate {
                burst: 0,
                per_second: 1.0
            })
            .is_none()
        );
        let r = too_many_requests(Duration::from_millis(1));
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }

    proptest::proptest! {
        #[test]
        fn any_forwarded_header_is_safe(v in "\\PC{0,80}") {
            if let Ok(value) = HeaderValue::from_str(&v) {
                let trusted: Vec<IpNet> = vec!["0.0.0.0/0".parse().unwrap()];
                for name in ["forwarded", "x-forwarded-for"] {
                    let mut m = HeaderMap::new();
                    m.insert(header::HeaderName::from_static(name), value.clone());
                    let _ = resolve_client_ip(ip("10.0.0.1"), &m, &trusted);
                }
            }
        }
    }
}

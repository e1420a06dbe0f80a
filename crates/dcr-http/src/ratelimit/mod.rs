//! Rate limits on registration and management, and the client address they key on.
//!
//! A [`Limit`] decides whether one more request under a key is allowed. It is kept in this
//! process by a [`RateLimiter`] ([`GovernorLimiter`]: GCRA buckets in memory) or, with the
//! `redis` feature, shared by every instance through a `RedisBackend` (one bucket per key
//! for the whole fleet), the in-process limiter then serving as the fallback.

mod address;
#[cfg(feature = "redis")]
mod shared;

pub use address::{client_ip, resolve_client_ip};
#[cfg(feature = "redis")]
pub use shared::{BackendState, OnBackendError, RedisBackend, RedisSettings};

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use ipnet::{Ipv4Net, Ipv6Net};
use serde_json::json;

/// Decides, in this process, whether one more request under a key is allowed.
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

impl Rate {
    /// `None` if the rate allows nothing (zero burst, or a rate that is not a positive number).
    fn valid(self) -> Option<Self> {
        (self.burst > 0 && self.per_second.is_finite() && self.per_second > 0.0).then_some(self)
    }
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
        let rate = rate.valid()?;
        let burst = NonZeroU32::new(rate.burst)?;
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

/// One limit the router applies: an in-process limiter, or a bucket shared through Redis
/// (with the in-process limiter as its fallback).
///
/// Checking an in-process limit never suspends nor allocates a future of its own.
#[derive(Clone)]
pub struct Limit {
    local: Arc<dyn RateLimiter>,
    #[cfg(feature = "redis")]
    shared: Option<shared::SharedLimit>,
}

impl std::fmt::Debug for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Limit");
        #[cfg(feature = "redis")]
        d.field("shared", &self.shared.is_some());
        d.finish_non_exhaustive()
    }
}

impl Limit {
    /// A limit kept in this process by `limiter`.
    pub fn local(limiter: Arc<dyn RateLimiter>) -> Self {
        Self {
            local: limiter,
            #[cfg(feature = "redis")]
            shared: None,
        }
    }

    /// A [`GovernorLimiter`] of `rate` per key; `None` if the rate allows nothing.
    pub fn in_memory(rate: Rate) -> Option<Self> {
        GovernorLimiter::new(rate).map(|l| Self::local(Arc::new(l)))
    }

    /// Whether one more request under `key` is allowed: `Err(wait)` when over the limit.
    pub async fn check(&self, key: &str) -> Result<(), Duration> {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return shared.check(key, self.local.as_ref()).await;
        }
        self.local.check(key)
    }

    /// Runs [`RateLimiter::housekeeping`] on the in-process limiter.
    pub fn housekeeping(&self) {
        self.local.housekeeping();
    }
}

/// How client addresses are grouped into keys: by network prefix, so that a client holding
/// a whole IPv6 /64 (the usual allocation) is one client, not 2^64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressKeying {
    ipv4_prefix: u8,
    ipv6_prefix: u8,
}

impl Default for AddressKeying {
    /// Each IPv4 address on its own, IPv6 addresses by /64.
    fn default() -> Self {
        Self {
            ipv4_prefix: 32,
            ipv6_prefix: 64,
        }
    }
}

impl AddressKeying {
    /// Keys IPv4 addresses by their first `ipv4_prefix` bits (at most 32) and IPv6
    /// addresses by their first `ipv6_prefix` bits (at most 128); `None` beyond those.
    pub fn new(ipv4_prefix: u8, ipv6_prefix: u8) -> Option<Self> {
        (ipv4_prefix <= 32 && ipv6_prefix <= 128).then_some(Self {
            ipv4_prefix,
            ipv6_prefix,
        })
    }

    /// The key of `ip`: its network, e.g. `192.0.2.7/32` or `2001:db8:1:2::/64`. An
    /// IPv4-mapped IPv6 address is keyed as the IPv4 address.
    pub fn key(&self, ip: IpAddr) -> String {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(v4) => Ipv4Net::new(v4, self.ipv4_prefix)
                .map_or_else(|_| v4.to_string(), |n| n.trunc().to_string()),
            IpAddr::V6(v6) => Ipv6Net::new(v6, self.ipv6_prefix)
                .map_or_else(|_| v6.to_string(), |n| n.trunc().to_string()),
        }
    }
}

/// The limits the router applies; each is optional.
#[derive(Clone, Default)]
pub struct RateLimits {
    /// Registrations per client address (see [`RateLimits::address_keying`]).
    pub registration_per_ip: Option<Limit>,
    /// Registrations per initial access token (keyed by the token's hash).
    pub registration_per_token: Option<Limit>,
    /// Registrations in all.
    pub registration_global: Option<Limit>,
    /// Read, update and delete requests per client id, with a valid registration access
    /// token (requests without one never spend the owner's budget).
    pub management_per_client: Option<Limit>,
    /// Read, update and delete requests refused for their registration access token, per
    /// client address: over it, such requests get 429 instead of 401.
    pub management_invalid_token_per_ip: Option<Limit>,
    /// How client addresses are grouped into keys.
    pub address_keying: AddressKeying,
    /// The shared backend the limits use, if any (its state is reported by `/readyz`).
    #[cfg(feature = "redis")]
    pub backend: Option<Arc<RedisBackend>>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("RateLimits");
        for (name, limit) in self.named() {
            d.field(name, &limit.is_some());
        }
        d.field("address_keying", &self.address_keying);
        #[cfg(feature = "redis")]
        d.field("backend", &self.backend);
        d.finish()
    }
}

impl RateLimits {
    fn named(&self) -> [(&'static str, &Option<Limit>); 5] {
        [
            ("registration_per_ip", &self.registration_per_ip),
            ("registration_per_token", &self.registration_per_token),
            ("registration_global", &self.registration_global),
            ("management_per_client", &self.management_per_client),
            (
                "management_invalid_token_per_ip",
                &self.management_invalid_token_per_ip,
            ),
        ]
    }

    /// Runs [`Limit::housekeeping`] on every limit.
    pub fn housekeeping(&self) {
        for (_, limit) in self.named() {
            if let Some(l) = limit {
                l.housekeeping();
            }
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

/// Checks `key` against `limit` (if any), counting a refusal under `which`.
pub(crate) async fn enforce(
    limit: Option<&Limit>,
    which: &'static str,
    key: &str,
) -> Result<(), Limited> {
    let Some(limit) = limit else {
        return Ok(());
    };
    limit.check(key).await.map_err(|wait| {
        metrics::counter!("dcr_rate_limited_total", "limit" => which).increment(1);
        tracing::info!(limit = which, "request rate limited");
        Limited(wait)
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_are_keyed_by_prefix() {
        let k = AddressKeying::default();
        assert_eq!(k.key(ip("192.0.2.7")), "192.0.2.7/32");
        assert_eq!(k.key(ip("2001:db8:1:2::1")), "2001:db8:1:2::/64");
        assert_eq!(
            k.key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            "2001:db8:1:2::/64"
        );
        assert_ne!(k.key(ip("2001:db8:1:3::1")), k.key(ip("2001:db8:1:2::1")));
        // An IPv4-mapped address is the IPv4 client.
        assert_eq!(k.key(ip("::ffff:192.0.2.7")), "192.0.2.7/32");
        assert_eq!(k.key(ip("::1")), "::/64");
        let k = AddressKeying::new(24, 48).unwrap();
        assert_eq!(k.key(ip("192.0.2.7")), "192.0.2.0/24");
        assert_eq!(k.key(ip("192.0.2.255")), "192.0.2.0/24");
        assert_eq!(k.key(ip("2001:db8:1:2::1")), "2001:db8:1::/48");
        let k = AddressKeying::new(0, 128).unwrap();
        assert_eq!(k.key(ip("198.51.100.1")), "0.0.0.0/0");
        assert_eq!(k.key(ip("2001:db8::1")), "2001:db8::1/128");
        assert!(AddressKeying::new(33, 64).is_none());
        assert!(AddressKeying::new(32, 129).is_none());
    }

    proptest::proptest! {
        #[test]
        fn addresses_of_one_prefix_share_a_key(a in proptest::prelude::any::<u128>(),
                                               b in proptest::prelude::any::<u128>(),
                                               p in 0u8..=128) {
            let k = AddressKeying::new(32, p).unwrap();
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - u32::from(p)) };
            let a6 = std::net::Ipv6Addr::from(a);
            let b6 = std::net::Ipv6Addr::from((a & mask) | (b & !mask));
            if a6.to_ipv4_mapped().is_none() && b6.to_ipv4_mapped().is_none() {
                proptest::prop_assert_eq!(k.key(IpAddr::V6(a6)), k.key(IpAddr::V6(b6)));
            }
        }
    }

    #[tokio::test]
    async fn limits_check_in_memory() {
        let l = Limit::in_memory(Rate {
            burst: 1,
            per_second: 0.01,
        })
        .unwrap();
        assert!(l.check("a").await.is_ok());
        assert!(l.check("a").await.is_err());
        assert!(l.check("b").await.is_ok());
        assert!(
            Limit::in_memory(Rate {
                burst: 1,
                per_second: f64::NAN
            })
            .is_none()
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
}

//! `[rate_limit]`: the limits, how client addresses are keyed, and the shared backend.

use serde::{Deserialize, Serialize};

/// A bucket: `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// Requests allowed at once.
    pub burst: u32,
    /// Requests per second refilled.
    pub per_second: f64,
}

impl RateConfig {
    const fn new(burst: u32, per_second: f64) -> Self {
        Self { burst, per_second }
    }
}

/// `[rate_limit]`: in this process (`backend = "memory"`), or shared by every instance
/// through Redis.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Master switch (benchmarks and conformance runs turn it off).
    pub enabled: bool,
    /// Registrations per client address.
    pub registration_per_ip: RateConfig,
    /// Registrations per initial access token.
    pub registration_per_token: RateConfig,
    /// Registrations in all.
    pub registration_global: RateConfig,
    /// Read, update and delete requests per client id (with a valid registration access token).
    pub management_per_client: RateConfig,
    /// Read, update and delete requests refused for their token, per client address.
    pub management_invalid_token_per_ip: RateConfig,
    /// IPv4 clients are keyed by this many leading bits of their address (32: each address).
    pub ipv4_prefix: u8,
    /// IPv6 clients are keyed by this many leading bits of their address (64: each /64).
    pub ipv6_prefix: u8,
    /// `"memory"` (each process counts alone) or `"redis://host:6379/0"` / `"rediss://…"`.
    pub backend: String,
    /// What a check does when Redis fails or is slow.
    pub on_backend_error: BackendErrorMode,
    /// Longest wait for Redis in one check, in milliseconds.
    pub redis_timeout_ms: u64,
    /// Prefix of the Redis keys (instances sharing limits must use the same).
    pub redis_key_prefix: String,
}

/// `rate_limit.on_backend_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendErrorMode {
    /// Let requests through.
    Allow,
    /// Use this process's in-process limiter.
    Local,
    /// Refuse limited requests with 429.
    Deny,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            registration_per_ip: RateConfig::new(20, 2.0),
            registration_per_token: RateConfig::new(100, 10.0),
            registration_global: RateConfig::new(500, 100.0),
            management_per_client: RateConfig::new(30, 5.0),
            management_invalid_token_per_ip: RateConfig::new(20, 1.0),
            ipv4_prefix: 32,
            ipv6_prefix: 64,
            backend: "memory".into(),
            on_backend_error: BackendErrorMode::Local,
            redis_timeout_ms: 50,
            redis_key_prefix: "dcr:rl:".into(),
        }
    }
}

impl RateLimitConfig {
    /// The limits by key name.
    pub fn rates(&self) -> [(&'static str, RateConfig); 5] {
        [
            ("registration_per_ip", self.registration_per_ip),
            ("registration_per_token", self.registration_per_token),
            ("registration_global", self.registration_global),
            ("management_per_client", self.management_per_client),
            (
                "management_invalid_token_per_ip",
                self.management_invalid_token_per_ip,
            ),
        ]
    }

    /// The Redis URL when the backend is Redis.
    pub fn redis_url(&self) -> Option<&str> {
        (self.backend != "memory").then_some(self.backend.as_str())
    }

    pub(super) fn validate(&self) -> anyhow::Result<()> {
        for (key, rate) in self.rates() {
            anyhow::ensure!(
                rate.burst >= 1 && rate.per_second.is_finite() && rate.per_second >= 0.001,
                "rate_limit.{key}: burst must be at least 1 and per_second at least 0.001"
            );
        }
        anyhow::ensure!(
            self.ipv4_prefix <= 32 && self.ipv6_prefix <= 128,
            "rate_limit.ipv4_prefix, rate_limit.ipv6_prefix: at most 32 and 128"
        );
        let redis_host = ["redis://", "rediss://"]
            .iter()
            .find_map(|scheme| self.backend.strip_prefix(scheme))
            .map(|rest| {
                let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
                authority.rsplit('@').next().unwrap_or_default()
            });
        anyhow::ensure!(
            self.backend == "memory"
                || redis_host.is_some_and(|h| !h.is_empty() && !h.starts_with(':')),
            "rate_limit.backend: must be \"memory\" or a redis:// or rediss:// URL with a host"
        );
        anyhow::ensure!(
            (1..=10_000).contains(&self.redis_timeout_ms),
            "rate_limit.redis_timeout_ms: must be between 1 and 10000"
        );
        Ok(())
    }
}

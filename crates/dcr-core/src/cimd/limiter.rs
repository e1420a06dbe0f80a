//! The per-host limit on document fetches: [`HostFetchLimiter`], kept in this process by
//! [`GovernorHostLimiter`] unless the resolver is given another (the server shares it through
//! its rate-limit backend).

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Decides whether one more document may be fetched from a host.
#[async_trait::async_trait]
pub trait HostFetchLimiter: Send + Sync {
    /// `Ok(())` to fetch (the fetch is counted), `Err(wait)` when the host is over its limit.
    async fn check(&self, host: &str) -> Result<(), Duration>;
}

/// The in-process keyed GCRA limiter (`governor`) of `host_fetch_burst` fetches at once,
/// refilled at `host_fetch_per_second`: the resolver's default.
pub struct GovernorHostLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl std::fmt::Debug for GovernorHostLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernorHostLimiter")
            .field("hosts", &self.limiter.len())
            .finish()
    }
}

impl GovernorHostLimiter {
    /// A limiter of `burst` fetches per host, refilled at `per_second`; `None` when the burst
    /// is 0 or the rate is not a number of at least 0.001.
    pub fn new(burst: u32, per_second: f64) -> Option<Self> {
        let burst = NonZeroU32::new(burst)?;
        if !(per_second.is_finite() && per_second >= 0.001) {
            return None;
        }
        let quota = Quota::with_period(Duration::from_secs_f64(1.0 / per_second))?;
        Some(Self {
            limiter: RateLimiter::keyed(quota.allow_burst(burst)),
        })
    }
}

#[async_trait::async_trait]
impl HostFetchLimiter for GovernorHostLimiter {
    async fn check(&self, host: &str) -> Result<(), Duration> {
        let checked = self
            .limiter
            .check_key(&host.to_owned())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()));
        if self.limiter.len() > 10_000 {
            self.limiter.retain_recent();
        }
        checked
    }
}

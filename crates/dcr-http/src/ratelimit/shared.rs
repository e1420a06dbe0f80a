//! Limits shared by every instance through Redis: one GCRA bucket per key for the whole
//! fleet, decided by one Lua script in one round trip (EVALSHA, EVAL when the script is not
//! cached), keys expiring by themselves once their bucket is full again.
//!
//! A check waits at most [`RedisSettings::timeout`] for Redis. When Redis fails or is slow,
//! the check is decided by [`OnBackendError`]; the outage is logged once, each check decided
//! without Redis is counted (`dcr_rate_limit_backend_fallbacks_total{mode}`), and Redis is
//! tried again at most once a second (and on every `/readyz` probe) until it answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};

use super::{Limit, Rate, RateLimiter};

/// While Redis is failing, how long checks go without trying it.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// How long the start-up connection and script load may take (they are not on a request's path).
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(2);

/// GCRA: `KEYS[1]` holds the theoretical arrival time (ms, Redis's clock) of the next
/// request; `ARGV[1]` is the emission interval (ms), `ARGV[2]` the burst. Returns
/// `{1, 0}` when allowed, `{0, wait_ms}` when not.
const GCRA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return {0, math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1)
return {1, 0}
";

/// What a check does when Redis fails or does not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnBackendError {
    /// Let the request through.
    Allow,
    /// Decide with this instance's in-process limiter (each instance then counts alone).
    #[default]
    Local,
    /// Refuse the request with 429 (and `/readyz` answers 503 while Redis is down).
    Deny,
}

impl OnBackendError {
    /// `allow`, `local` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnBackendError::Allow => "allow",
            OnBackendError::Local => "local",
            OnBackendError::Deny => "deny",
        }
    }
}

/// Where and how to reach Redis.
#[derive(Clone)]
pub struct RedisSettings {
    /// `redis://host:6379/0`, or `rediss://` for TLS (may hold a password: never logged).
    pub url: String,
    /// Prefix of every key (the limit's name and the key follow).
    pub key_prefix: String,
    /// Longest wait for Redis in one check.
    pub timeout: Duration,
    /// What a check does when Redis fails.
    pub on_error: OnBackendError,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("on_error", &self.on_error)
            .finish_non_exhaustive()
    }
}

/// The state of the shared backend as last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendState {
    /// Redis answers.
    Up,
    /// Redis failed or did not answer in time: checks are decided by [`OnBackendError`].
    Down,
}

/// A connection to Redis shared by the limits of one process.
pub struct RedisBackend {
    manager: ConnectionManager,
    script: Script,
    key_prefix: String,
    timeout: Duration,
    on_error: OnBackendError,
    epoch: Instant,
    down: AtomicBool,
    /// While down: milliseconds since `epoch` before which checks do not try Redis.
    retry_at_ms: AtomicU64,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("key_prefix", &self.key_prefix)
            .field("on_error", &self.on_error)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// Why a check could not be decided by Redis.
#[derive(Debug)]
enum Failure {
    Timeout,
    Redis(redis::RedisError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout => f.write_str("no answer in time"),
            Failure::Redis(e) => write!(f, "{e}"),
        }
    }
}

impl RedisBackend {
    /// A backend for `settings`. The connection is made in the background (and remade
    /// whenever it breaks), so this succeeds while Redis is down; it fails only on a malformed
    /// URL. Call it within a Tokio runtime.
    pub fn new(settings: RedisSettings) -> Result<Arc<Self>, redis::RedisError> {
        let client = Client::open(settings.url.as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client, config)?;
        metrics::gauge!("dcr_rate_limit_backend_up").set(1.0);
        let backend = Arc::new(Self {
            manager,
            script: Script::new(GCRA),
            key_prefix: settings.key_prefix,
            timeout: settings.timeout,
            on_error: settings.on_error,
            epoch: Instant::now(),
            down: AtomicBool::new(false),
            retry_at_ms: AtomicU64::new(0),
        });
        // Connect and load the script now, so that the first checks do not spend their
        // timeout on it (and a Redis that is down at start-up is reported at once).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let warm = backend.clone();
            runtime.spawn(async move { warm.warm_up().await });
        }
        Ok(backend)
    }

    async fn warm_up(&self) {
        let mut conn = self.manager.clone();
        match tokio::time::timeout(WARM_UP_TIMEOUT, self.script.load_async(&mut conn)).await {
            Ok(Ok(_)) => self.mark_up(),
            Ok(Err(e)) => self.mark_down(&Failure::Redis(e)),
            Err(_) => self.mark_down(&Failure::Timeout),
        }
    }

    /// A limit of `rate` per key named `name` (part of its Redis keys), falling back to an
    /// in-process limiter of the same rate; `None` if the rate allows nothing.
    pub fn limit(self: &Arc<Self>, name: &'static str, rate: Rate) -> Option<Limit> {
        let rate = rate.valid()?;
        let mut limit = Limit::in_memory(rate)?;
        limit.shared = Some(SharedLimit {
            backend: self.clone(),
            name,
            interval_ms: 1000.0 / rate.per_second,
            burst: rate.burst,
        });
        Some(limit)
    }

    /// What a check does when Redis fails.
    pub fn on_error(&self) -> OnBackendError {
        self.on_error
    }

    /// The state as last seen by a check or probe.
    pub fn state(&self) -> BackendState {
        if self.down.load(Ordering::Relaxed) {
            BackendState::Down
        } else {
            BackendState::Up
        }
    }

    /// Asks Redis now (`PING`, within the check timeout) and records the answer.
    pub async fn probe(&self) -> BackendState {
        let mut conn = self.manager.clone();
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<String>(&mut conn);
        match tokio::time::timeout(self.timeout, ping).await {
            Ok(Ok(_)) => self.mark_up(),
            Ok(Err(e)) => self.mark_down(&Failure::Redis(e)),
            Err(_) => self.mark_down(&Failure::Timeout),
        }
        self.state()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether a check should try Redis: always while up, once the retry time has come while down.
    fn worth_trying(&self) -> bool {
        !self.down.load(Ordering::Relaxed)
            || self.now_ms() >= self.retry_at_ms.load(Ordering::Relaxed)
    }

    fn mark_up(&self) {
        if self.down.load(Ordering::Relaxed) && self.down.swap(false, Ordering::Relaxed) {
            metrics::gauge!("dcr_rate_limit_backend_up").set(1.0);
            tracing::info!("rate-limit backend (Redis) answers again; limits are shared again");
        }
    }

    fn mark_down(&self, failure: &Failure) {
        let retry_at = self
            .now_ms()
            .saturating_add(u64::try_from(RETRY_AFTER_FAILURE.as_millis()).unwrap_or(u64::MAX));
        self.retry_at_ms.store(retry_at, Ordering::Relaxed);
        if !self.down.swap(true, Ordering::Relaxed) {
            metrics::gauge!("dcr_rate_limit_backend_up").set(0.0);
            tracing::error!(error = %failure, on_backend_error = self.on_error.as_str(),
                "rate-limit backend (Redis) failed; limits are decided without it until it answers");
        }
    }

    /// Runs the GCRA script: `Ok(decision)` when Redis answered in time.
    async fn run(
        &self,
        key: String,
        interval_ms: f64,
        burst: u32,
    ) -> Result<Result<(), Duration>, Failure> {
        let mut conn = self.manager.clone();
        let mut invocation = self.script.key(key);
        invocation.arg(interval_ms).arg(burst);
        let call = invocation.invoke_async::<(i64, i64)>(&mut conn);
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(Failure::Timeout),
            Ok(Err(e)) => Err(Failure::Redis(e)),
            Ok(Ok((1, _))) => Ok(Ok(())),
            Ok(Ok((_, wait_ms))) => Ok(Err(Duration::from_millis(
                u64::try_from(wait_ms).unwrap_or(0).max(1),
            ))),
        }
    }
}

/// One limit's view of the backend.
#[derive(Clone)]
pub(super) struct SharedLimit {
    backend: Arc<RedisBackend>,
    name: &'static str,
    interval_ms: f64,
    burst: u32,
}

impl SharedLimit {
    pub(super) async fn check(&self, key: &str, local: &dyn RateLimiter) -> Result<(), Duration> {
        let b = &self.backend;
        if b.worth_trying() {
            let redis_key = format!("{}{}:{}", b.key_prefix, self.name, key);
            match b.run(redis_key, self.interval_ms, self.burst).await {
                Ok(decision) => {
                    b.mark_up();
                    return decision;
                }
                Err(failure) => b.mark_down(&failure),
            }
        }
        metrics::counter!("dcr_rate_limit_backend_fallbacks_total", "mode" => b.on_error.as_str())
            .increment(1);
        match b.on_error {
            OnBackendError::Allow => Ok(()),
            OnBackendError::Local => local.check(key),
            OnBackendError::Deny => Err(RETRY_AFTER_FAILURE),
        }
    }
}

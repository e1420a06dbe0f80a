//! The `dcr` configuration file (TOML), overridable by `DCR_`-prefixed environment variables
//! (nested keys joined with `__`, e.g. `DCR_STORAGE__URL`).

mod checks;
mod env_keys;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use dcr_core::metadata::ServerMetadata;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The whole configuration. Every key is optional.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The issuer identifier; absolute URLs in responses are built from it, never from request headers.
    pub issuer: String,
    /// Accept a plain-http issuer on a host that is not loopback (logs a warning; never in
    /// production).
    pub allow_insecure_issuer: bool,
    /// The socket address to listen on.
    pub listen: String,
    /// Where clients and tokens are kept.
    pub storage: StorageConfig,
    /// Registration options.
    pub registration: RegistrationConfig,
    /// What registration accepts, and what discovery advertises.
    pub metadata: ServerMetadata,
    /// Extra members of the discovery documents (e.g. `authorization_endpoint`).
    pub discovery: serde_json::Map<String, serde_json::Value>,
    /// Logging.
    pub log: LogConfig,
    /// Outbound fetches of `jwks_uri` and `sector_identifier_uri`.
    pub fetch: FetchConfig,
    /// Proxies (CIDRs) whose `Forwarded` / `X-Forwarded-For` headers name the client; none by default.
    pub trusted_proxies: Vec<String>,
    /// Rate limits.
    pub rate_limit: RateLimitConfig,
    /// Request, connection and shutdown limits.
    pub limits: LimitsConfig,
    /// `/metrics` (Prometheus text format) on the main listener.
    pub metrics: MetricsConfig,
    /// OAuth Client ID Metadata Documents.
    pub cimd: crate::config_cimd::CimdConfig,
    /// The admin listener (client resolution for host authorization servers).
    pub admin: crate::config_cimd::AdminConfig,
    /// Client authentication for the host authorization server (`[authn]`).
    pub authn: crate::config_clients::AuthnConfig,
    /// Clients configured by the operator (`[[clients]]`).
    pub clients: Vec<crate::config_clients::ClientConfig>,
    /// The directory relative paths are resolved against (the config file's directory).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// `DCR_` variables that name no key, left out by [`Config::load`] (see [`Config::log_warnings`]).
    #[serde(skip)]
    pub ignored_env_vars: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080".into(),
            allow_insecure_issuer: false,
            listen: "127.0.0.1:8080".into(),
            storage: StorageConfig::default(),
            registration: RegistrationConfig::default(),
            metadata: ServerMetadata::default(),
            discovery: serde_json::Map::new(),
            log: LogConfig::default(),
            fetch: FetchConfig::default(),
            trusted_proxies: Vec::new(),
            rate_limit: RateLimitConfig::default(),
            limits: LimitsConfig::default(),
            metrics: MetricsConfig::default(),
            cimd: Default::default(),
            admin: Default::default(),
            authn: Default::default(),
            clients: Vec::new(),
            base_dir: PathBuf::from("."),
            ignored_env_vars: Vec::new(),
        }
    }
}

/// `[storage]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `sqlite://PATH` (default `sqlite://dcr.db`), `memory:`, or
    /// `postgres://user:password@host:port/db` (several `dcr` processes may share it).
    pub url: String,
    /// PostgreSQL: most connections this process opens.
    pub max_connections: u32,
    /// PostgreSQL: longest wait for a connection at start-up, in milliseconds.
    pub connect_timeout_ms: u64,
    /// PostgreSQL: longest wait of a request for a pooled connection, in milliseconds.
    pub acquire_timeout_ms: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://dcr.db".into(),
            max_connections: 10,
            connect_timeout_ms: 5_000,
            acquire_timeout_ms: 5_000,
        }
    }
}

/// `initial_access_token`: `false` (open), `true` (stored tokens) or a static token string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InitialAccessTokenSetting {
    /// `false`: open registration; `true`: tokens minted with `dcr iat create`.
    Enabled(bool),
    /// One static token.
    Static(String),
}

/// `issue_registration_access_token`: a boolean, or the path of a Rhai script that decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IssueRatSetting {
    /// Always (`true`) or never (`false`).
    Fixed(bool),
    /// A Rhai script that returns a boolean.
    Script(PathBuf),
}

/// `client_id`: `"nanoid"`, `"uuid"`, or `{ format, length, prefix }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClientIdSetting {
    /// Just the format, with its default length and no prefix.
    Format(IdFormat),
    /// Format, length and prefix.
    Detailed {
        /// The format.
        format: IdFormat,
        /// Characters of a nanoid (ignored for uuid).
        #[serde(default = "default_id_length")]
        length: usize,
        /// Put before every id.
        #[serde(default)]
        prefix: Option<String>,
    },
}

/// Client id formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdFormat {
    /// URL-safe random characters.
    Nanoid,
    /// Random UUIDs.
    Uuid,
}

fn default_id_length() -> usize {
    21
}

/// `[registration]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationConfig {
    /// Serve the registration endpoints at all.
    pub enabled: bool,
    /// Allow PUT and DELETE (RFC 7592 update and delete).
    pub management: bool,
    /// Replace the registration access token on every update.
    pub rotate_registration_access_token: bool,
    /// Path of the registration endpoint below the issuer.
    pub path: String,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// How registration is authorised.
    pub initial_access_token: InitialAccessTokenSetting,
    /// Whether a registration access token is issued.
    pub issue_registration_access_token: IssueRatSetting,
    /// Policy name → Rhai script path.
    pub policies: BTreeMap<String, PathBuf>,
    /// Client id generator.
    pub client_id: ClientIdSetting,
    /// Random bytes in a generated client secret.
    pub client_secret_bytes: usize,
    /// Unknown metadata members to keep verbatim.
    pub extra_metadata: Vec<String>,
    /// Removal of abandoned open registrations.
    pub prune: PruneConfig,
}

/// `[registration.prune]`: clients registered without an initial access token and never
/// managed or used. Clients registered with an initial access token are never pruned.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PruneConfig {
    /// Keep at most this many (the oldest go first); 0 means no cap.
    pub max_unmanaged_open_clients: u64,
    /// Remove those registered longer ago than this; 0 means never by age.
    pub max_unmanaged_age_seconds: u64,
    /// How often `dcr serve` prunes, in seconds; 0 turns the background task off.
    pub interval_seconds: u64,
}

impl Default for PruneConfig {
    fn default() -> Self {
        Self {
            max_unmanaged_open_clients: 100_000,
            max_unmanaged_age_seconds: 0,
            interval_seconds: 300,
        }
    }
}

impl PruneConfig {
    /// The rules these settings describe.
    pub fn rules(&self) -> dcr_core::registrar::PruneRules {
        dcr_core::registrar::PruneRules {
            max_clients: (self.max_unmanaged_open_clients > 0)
                .then_some(self.max_unmanaged_open_clients),
            max_age_seconds: (self.max_unmanaged_age_seconds > 0)
                .then(|| i64::try_from(self.max_unmanaged_age_seconds).unwrap_or(i64::MAX)),
        }
    }
}

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

/// `[rate_limit]`: per process (each instance counts on its own).
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
    /// Read, update and delete requests per client id.
    pub management_per_client: RateConfig,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            registration_per_ip: RateConfig::new(20, 2.0),
            registration_per_token: RateConfig::new(100, 10.0),
            registration_global: RateConfig::new(500, 100.0),
            management_per_client: RateConfig::new(30, 5.0),
        }
    }
}

/// `[limits]`: request, connection and shutdown bounds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// A request not answered within this many seconds gets 408.
    pub request_timeout_seconds: u64,
    /// A connection must send its request headers within this many seconds (slow-loris guard).
    pub header_read_timeout_seconds: u64,
    /// A connection with no request in flight is closed after this many seconds idle
    /// (HTTP/1 keep-alive and HTTP/2 alike).
    pub idle_timeout_seconds: u64,
    /// Largest request head (request line and headers), in bytes; beyond it, 431.
    pub max_header_bytes: usize,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// On SIGTERM/SIGINT, in-flight requests get this many seconds to finish.
    pub shutdown_grace_seconds: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            request_timeout_seconds: 30,
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            max_header_bytes: 16 * 1024,
            max_connections: 1024,
            shutdown_grace_seconds: 10,
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics`.
    pub enabled: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            management: true,
            rotate_registration_access_token: true,
            path: "/reg".into(),
            body_limit: 56 * 1024,
            initial_access_token: InitialAccessTokenSetting::Enabled(false),
            issue_registration_access_token: IssueRatSetting::Fixed(true),
            policies: BTreeMap::new(),
            client_id: ClientIdSetting::Format(IdFormat::Nanoid),
            client_secret_bytes: 64,
            extra_metadata: Vec::new(),
            prune: PruneConfig::default(),
        }
    }
}

/// `[fetch]`: outbound fetches of client documents (https only, public addresses only).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    /// Connect timeout in milliseconds.
    pub connect_timeout_ms: u64,
    /// Total timeout in milliseconds.
    pub timeout_ms: u64,
    /// Largest accepted document, in bytes.
    pub max_body_bytes: usize,
    /// FOR TESTS ONLY: also allow http and loopback targets.
    pub allow_loopback_for_tests: bool,
    /// PEM files of certificates trusted besides the system's roots, for every fetch.
    pub extra_root_certificates: Vec<PathBuf>,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 2_000,
            timeout_ms: 5_000,
            max_body_bytes: 256 * 1024,
            allow_loopback_for_tests: false,
            extra_root_certificates: Vec::new(),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter (`RUST_LOG` syntax); `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

/// Log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// Loads the configuration: defaults, then `file` (if given), then the `DCR_*` variables
    /// that name a key (the others are kept in `ignored_env_vars`).
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let mut base_dir = PathBuf::from(".");
        if let Some(path) = file {
            anyhow::ensure!(
                path.is_file(),
                "config file {} does not exist",
                path.display()
            );
            figment = figment.merge(Toml::file_exact(path));
            base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            if base_dir.as_os_str().is_empty() {
                base_dir = PathBuf::from(".");
            }
        }
        let schema = serde_json::to_value(Config::default()).context("configuration keys")?;
        let (env, ignored) = env_keys::provider(schema);
        figment = figment.merge(env);
        let mut config = Self::extract(figment, base_dir)?;
        config.ignored_env_vars = ignored;
        Ok(config)
    }

    /// Logs what loading tolerated but an operator should know: `DCR_` variables that are
    /// not keys (by name only), and an insecure issuer.
    pub fn log_warnings(&self) {
        if !self.ignored_env_vars.is_empty() {
            tracing::warn!(
                "ignoring environment variables that are not configuration keys: {}",
                self.ignored_env_vars.join(", ")
            );
        }
        if self.allow_insecure_issuer && self.issuer.starts_with("http:") {
            tracing::warn!(issuer = %self.issuer,
                "allow_insecure_issuer is on: the issuer is plain http");
        }
    }

    /// Parses a configuration from TOML text (no environment), resolving paths against `base_dir`.
    pub fn from_toml(text: &str, base_dir: &Path) -> anyhow::Result<Self> {
        let figment =
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text));
        Self::extract(figment, base_dir.to_path_buf())
    }

    fn extract(figment: Figment, base_dir: PathBuf) -> anyhow::Result<Self> {
        let mut config: Config = figment.extract().map_err(|e| {
            let messages: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("invalid configuration: {}", messages.join("; "))
        })?;
        config.base_dir = base_dir;
        config
            .metadata
            .extra_metadata
            .extend(config.registration.extra_metadata.iter().cloned());
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        checks::issuer(&self.issuer, self.allow_insecure_issuer)?;
        self.listen
            .parse::<std::net::SocketAddr>()
            .with_context(|| {
                format!(
                    "listen: {:?} is not a socket address (like 127.0.0.1:8080)",
                    self.listen
                )
            })?;
        anyhow::ensure!(
            (1..=1000).contains(&self.storage.max_connections),
            "storage.max_connections: must be between 1 and 1000"
        );
        anyhow::ensure!(
            self.storage.connect_timeout_ms >= 1 && self.storage.acquire_timeout_ms >= 1,
            "storage.connect_timeout_ms, storage.acquire_timeout_ms: must be at least 1"
        );
        checks::registration_path(&self.registration.path)?;
        anyhow::ensure!(
            self.registration.body_limit >= 1024,
            "registration.body_limit: must be at least 1024 bytes"
        );
        anyhow::ensure!(
            (16..=1024).contains(&self.registration.client_secret_bytes),
            "registration.client_secret_bytes: must be between 16 and 1024"
        );
        if let ClientIdSetting::Detailed { length, .. } = &self.registration.client_id {
            anyhow::ensure!(
                (8..=128).contains(length),
                "registration.client_id.length: must be between 8 and 128"
            );
        }
        if let InitialAccessTokenSetting::Static(token) = &self.registration.initial_access_token {
            anyhow::ensure!(
                token.len() >= 16,
                "registration.initial_access_token: a static token must have at least 16 characters"
            );
        }
        self.trusted_proxy_nets()?;
        crate::config_cimd::validate(self)?;
        for (key, rate) in [
            ("registration_per_ip", self.rate_limit.registration_per_ip),
            (
                "registration_per_token",
                self.rate_limit.registration_per_token,
            ),
            ("registration_global", self.rate_limit.registration_global),
            (
                "management_per_client",
                self.rate_limit.management_per_client,
            ),
        ] {
            anyhow::ensure!(
                rate.burst >= 1 && rate.per_second.is_finite() && rate.per_second >= 0.001,
                "rate_limit.{key}: burst must be at least 1 and per_second at least 0.001"
            );
        }
        let l = &self.limits;
        for (key, seconds) in [
            ("request_timeout_seconds", l.request_timeout_seconds),
            ("header_read_timeout_seconds", l.header_read_timeout_seconds),
            ("idle_timeout_seconds", l.idle_timeout_seconds),
        ] {
            anyhow::ensure!(
                (1..=86_400).contains(&seconds),
                "limits.{key}: must be between 1 and 86400 seconds"
            );
        }
        anyhow::ensure!(
            l.max_header_bytes >= 8192,
            "limits.max_header_bytes: must be at least 8192"
        );
        anyhow::ensure!(
            l.max_connections >= 1,
            "limits.max_connections: must be at least 1"
        );
        anyhow::ensure!(
            self.registration.policies.is_empty()
                || self.registration.initial_access_token
                    == InitialAccessTokenSetting::Enabled(true)
                || !self.cimd.policies.is_empty(),
            "registration.policies: policies are attached to stored initial access tokens (set registration.initial_access_token = true) or named by cimd.policies"
        );
        Ok(())
    }

    /// `trusted_proxies` parsed (a bare address counts as a /32 or /128).
    pub fn trusted_proxy_nets(&self) -> anyhow::Result<Vec<ipnet::IpNet>> {
        self.trusted_proxies
            .iter()
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        anyhow::anyhow!("trusted_proxies: {s:?} is not a CIDR or an address")
                    })
            })
            .collect()
    }

    /// Resolves a path from the configuration against the config file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// The path part of the issuer, without a trailing slash (empty for a bare origin).
    pub fn issuer_path(&self) -> String {
        let after_scheme = self
            .issuer
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let path = after_scheme
            .find('/')
            .map(|i| &after_scheme[i..])
            .unwrap_or("");
        path.trim_end_matches('/').to_owned()
    }

    /// The absolute URL of the registration endpoint.
    pub fn registration_endpoint(&self) -> String {
        format!(
            "{}{}",
            self.issuer.trim_end_matches('/'),
            self.registration.path
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::from_toml("", Path::new(".")).unwrap();
        assert_eq!(c.issuer, "http://127.0.0.1:8080");
        assert_eq!(c.storage.url, "sqlite://dcr.db");
        assert_eq!(c.registration_endpoint(), "http://127.0.0.1:8080/reg");
        let c = Config::from_toml(
            "issuer = \"https://id.example.com/t1/\"\n[registration]\ninitial_access_token = \"0123456789abcdef\"\nclient_id = { format = \"uuid\", prefix = \"c_\" }",
            Path::new("/etc/dcr"),
        )
        .unwrap();
        assert_eq!(c.issuer_path(), "/t1");
        assert_eq!(
            c.registration.initial_access_token,
            InitialAccessTokenSetting::Static("0123456789abcdef".into())
        );
        assert_eq!(
            c.resolve(Path::new("p.rhai")),
            PathBuf::from("/etc/dcr/p.rhai")
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = Config::from_toml("[registration]\nrotate = true", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("rotate"), "{e}");
        let e = Config::from_toml("listen = \"nowhere\"", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen"), "{e}");
        let e = Config::from_toml("[registration]\nmanagement = \"yes\"", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("management"), "{e}");
        let e = Config::from_toml("[storage]\npool = 3", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("pool"), "{e}");
        let e = Config::from_toml("[storage]\nmax_connections = 0", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("storage.max_connections"), "{e}");
    }

    #[test]
    fn postgres_storage_settings() {
        let c = Config::from_toml(
            "[storage]\nurl = \"postgres://dcr@db:5432/dcr\"\nmax_connections = 20\nacquire_timeout_ms = 250",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(c.storage.url, "postgres://dcr@db:5432/dcr");
        assert_eq!(c.storage.max_connections, 20);
        assert_eq!(c.storage.connect_timeout_ms, 5_000);
        assert_eq!(c.storage.acquire_timeout_ms, 250);
    }

    #[test]
    fn the_readme_configuration_block_is_a_valid_configuration() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("## Configuration")
            .nth(1)
            .expect("a Configuration section");
        let block = section
            .split("```toml")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .expect("a toml block");
        let config = Config::from_toml(block, Path::new(".")).expect("the README's example parses");
        assert_eq!(config.listen, "127.0.0.1:8080");
        assert!(config.rate_limit.enabled);
    }
}

//! The `dcr` configuration file (TOML), overridable by `DCR_`-prefixed environment variables
//! (nested keys joined with `__`, e.g. `DCR_STORAGE__URL`).
//!
//! Longer than most files: it is the whole schema of `dcr.toml` with its defaults in one
//! place; checks and sections with logic of their own live in `config/` and `config_*.rs`.

mod checks;
mod discovery_checks;
mod env_keys;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use dcr_core::metadata::ServerMetadata;
use dcr_core::token::Secret;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod rate_limit;
pub use rate_limit::{BackendErrorMode, RateConfig, RateLimitConfig};

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

/// `[storage]`. `Debug` shows the password of the URL as `[redacted]`.
#[derive(Clone, Serialize, Deserialize)]
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

impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageConfig")
            .field("url", &redact_url_password(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .finish()
    }
}

/// `scheme://user:password@host...` with the password replaced by `[redacted]`.
fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:[redacted]@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// `initial_access_token`: `false` (open), `true` (stored tokens) or a static token string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InitialAccessTokenSetting {
    /// `false`: open registration; `true`: tokens minted with `dcr iat create`.
    Enabled(bool),
    /// One static token (`Debug` shows it as `[redacted]`).
    Static(#[serde(with = "secret_string")] Secret),
}

/// A [`Secret`] read from and written to the configuration as a plain string.
mod secret_string {
    use dcr_core::token::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(secret.expose())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
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
    /// Fetch a client's `jwks_uri` at registration and refuse the client when its keys cannot
    /// be fetched or used (default false: only the URI's form and host are checked).
    pub verify_jwks_uri_at_registration: bool,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 2_000,
            timeout_ms: 5_000,
            max_body_bytes: 256 * 1024,
            allow_loopback_for_tests: false,
            extra_root_certificates: Vec::new(),
            verify_jwks_uri_at_registration: false,
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
                token.expose().len() >= 16,
                "registration.initial_access_token: a static token must have at least 16 characters"
            );
        }
        self.trusted_proxy_nets()?;
        crate::config_cimd::validate(self)?;
        self.rate_limit.validate()?;
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
            InitialAccessTokenSetting::Static(Secret::new("0123456789abcdef"))
        );
        assert_eq!(
            c.resolve(Path::new("p.rhai")),
            PathBuf::from("/etc/dcr/p.rhai")
        );
    }

    #[test]
    fn debug_does_not_show_a_static_initial_access_token() {
        let c = Config::from_toml(
            "[registration]\ninitial_access_token = \"hunter2-static-token\"",
            Path::new("."),
        )
        .unwrap();
        let printed = format!("{c:?}");
        assert!(!printed.contains("hunter2-static-token"), "{printed}");
    }

    #[test]
    fn debug_does_not_show_a_database_password() {
        let c = Config::from_toml(
            "[storage]\nurl = \"postgres://dcr:hunter2-db@db.example:5432/dcr?sslmode=require\"",
            Path::new("."),
        )
        .unwrap();
        let printed = format!("{c:?}");
        assert!(!printed.contains("hunter2-db"), "{printed}");
        assert!(
            printed.contains("postgres://dcr:[redacted]@db.example:5432/dcr?sslmode=require"),
            "{printed}"
        );
        for url in ["sqlite://dcr.db", "memory:", "postgres://dcr@db/x"] {
            let c = StorageConfig {
                url: url.into(),
                ..StorageConfig::default()
            };
            assert!(format!("{c:?}").contains(url), "{c:?}");
        }
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
    fn rate_limit_backend_and_address_keys() {
        let c = Config::from_toml("", Path::new(".")).unwrap();
        assert_eq!(c.rate_limit.redis_url(), None);
        assert_eq!(
            (c.rate_limit.ipv4_prefix, c.rate_limit.ipv6_prefix),
            (32, 64)
        );
        assert_eq!(c.rate_limit.on_backend_error, BackendErrorMode::Local);
        let c = Config::from_toml(
            "[rate_limit]\nbackend = \"rediss://:pw@cache:6380/2\"\non_backend_error = \"deny\"\nredis_timeout_ms = 20\nipv6_prefix = 56",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(c.rate_limit.redis_url(), Some("rediss://:pw@cache:6380/2"));
        assert_eq!(c.rate_limit.on_backend_error, BackendErrorMode::Deny);
        assert_eq!(c.rate_limit.ipv6_prefix, 56);
        for (toml, key) in [
            ("backend = \"memcached://x\"", "rate_limit.backend"),
            ("backend = \"redis://\"", "rate_limit.backend"),
            ("backend = \"redis://:pw@:6379/0\"", "rate_limit.backend"),
            ("on_backend_error = \"retry\"", "on_backend_error"),
            ("ipv6_prefix = 129", "rate_limit.ipv6_prefix"),
            ("ipv4_prefix = 33", "rate_limit.ipv4_prefix"),
            ("redis_timeout_ms = 0", "rate_limit.redis_timeout_ms"),
            (
                "management_invalid_token_per_ip = { burst = 0, per_second = 1.0 }",
                "rate_limit.management_invalid_token_per_ip",
            ),
        ] {
            let e = Config::from_toml(&format!("[rate_limit]\n{toml}"), Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{toml}: {e}");
        }
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

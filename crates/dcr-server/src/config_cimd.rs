//! `[cimd]` (Client ID Metadata Documents) and `[admin]` (the admin listener) sections.

use std::path::PathBuf;

use anyhow::Context as _;
use dcr_core::cimd::CimdSettings;
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// `[cimd]`: OAuth Client ID Metadata Documents.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CimdConfig {
    /// Resolve `https` URL client ids to their documents, and advertise
    /// `client_id_metadata_document_supported` in discovery (default false).
    pub enabled: bool,
    /// Host patterns documents may be fetched from (`claude.ai`, `*.example.com`); empty:
    /// any public host.
    pub allowed_hosts: Vec<String>,
    /// Host patterns never fetched from; checked first.
    pub denied_hosts: Vec<String>,
    /// Shortest time a document is kept, in seconds.
    pub cache_min_seconds: u64,
    /// Longest time a document is kept, in seconds.
    pub cache_max_seconds: u64,
    /// Largest document, in bytes.
    pub max_document_bytes: usize,
    /// Names from `[registration.policies]`, run in order on every document.
    pub policies: Vec<String>,
    /// A Rhai script asked before fetching a URL: it sees `url` and `host`, returns a boolean.
    pub allow_fetch: Option<PathBuf>,
    /// A Rhai script asked on every use of a document client (cache hits included): it sees
    /// `client_id` and `client` (the validated metadata), returns a boolean.
    pub allow_client: Option<PathBuf>,
    /// Seconds after its expiry an expired document is still used when refetching fails.
    pub stale_if_error_seconds: u64,
    /// Fetches allowed at once from one host.
    pub host_fetch_burst: u32,
    /// Fetches per second refilled per host.
    pub host_fetch_per_second: f64,
    /// Documents kept in each process's memory.
    pub cache_capacity: u64,
    /// Accept document URLs with a query string (the draft says they SHOULD NOT have one).
    pub allow_query: bool,
}

impl Default for CimdConfig {
    fn default() -> Self {
        let d = CimdSettings::default();
        Self {
            enabled: false,
            allowed_hosts: d.allowed_hosts,
            denied_hosts: d.denied_hosts,
            cache_min_seconds: d.cache_min_seconds,
            cache_max_seconds: d.cache_max_seconds,
            max_document_bytes: d.max_document_bytes,
            policies: d.policies,
            allow_fetch: None,
            allow_client: None,
            stale_if_error_seconds: d.stale_if_error_seconds,
            host_fetch_burst: d.host_fetch_burst,
            host_fetch_per_second: d.host_fetch_per_second,
            cache_capacity: d.cache_capacity,
            allow_query: d.allow_query,
        }
    }
}

impl CimdConfig {
    /// The resolver settings these keys describe.
    pub fn settings(&self) -> CimdSettings {
        CimdSettings {
            allowed_hosts: self.allowed_hosts.clone(),
            denied_hosts: self.denied_hosts.clone(),
            cache_min_seconds: self.cache_min_seconds,
            cache_max_seconds: self.cache_max_seconds,
            max_document_bytes: self.max_document_bytes,
            policies: self.policies.clone(),
            allow_query: self.allow_query,
            stale_if_error_seconds: self.stale_if_error_seconds,
            host_fetch_burst: self.host_fetch_burst,
            host_fetch_per_second: self.host_fetch_per_second,
            cache_capacity: self.cache_capacity,
        }
    }
}

/// `[admin]`: the admin listener, off unless `listen` is set.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Socket address of the admin listener (separate from the public one).
    pub listen: Option<String>,
    /// The bearer token callers present (at least 32 characters).
    pub token: Option<String>,
    /// A file holding the token (instead of `token`).
    pub token_file: Option<PathBuf>,
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("token_file", &self.token_file)
            .finish()
    }
}

/// Shortest admin token accepted.
const MIN_TOKEN_LEN: usize = 32;

impl AdminConfig {
    /// The admin token (from `token`, or read from `token_file`, trimmed).
    pub fn token(&self, config: &Config) -> anyhow::Result<String> {
        let token = match (&self.token, &self.token_file) {
            (Some(_), Some(_)) => anyhow::bail!("admin: set token or token_file, not both"),
            (Some(t), None) => t.clone(),
            (None, Some(path)) => {
                let path = config.resolve(path);
                std::fs::read_to_string(&path)
                    .with_context(|| format!("admin.token_file: reading {}", path.display()))?
                    .trim()
                    .to_owned()
            }
            (None, None) => {
                anyhow::bail!("admin: listen is set, so token or token_file is required")
            }
        };
        anyhow::ensure!(
            token.chars().count() >= MIN_TOKEN_LEN,
            "admin.token: must have at least {MIN_TOKEN_LEN} characters"
        );
        Ok(token)
    }
}

/// Checks `[cimd]` and `[admin]` (called from [`Config`]'s validation).
pub fn validate(config: &Config) -> anyhow::Result<()> {
    let c = &config.cimd;
    anyhow::ensure!(
        c.cache_min_seconds <= c.cache_max_seconds,
        "cimd.cache_min_seconds: must not exceed cimd.cache_max_seconds"
    );
    anyhow::ensure!(
        (256..=1024 * 1024).contains(&c.max_document_bytes),
        "cimd.max_document_bytes: must be between 256 and 1048576"
    );
    anyhow::ensure!(
        c.host_fetch_burst >= 1
            && c.host_fetch_per_second.is_finite()
            && c.host_fetch_per_second >= 0.001,
        "cimd.host_fetch_burst, cimd.host_fetch_per_second: at least 1 and 0.001"
    );
    if let Some(name) = c
        .policies
        .iter()
        .find(|n| !config.registration.policies.contains_key(*n))
    {
        anyhow::bail!("cimd.policies: {name:?} is not in [registration.policies]");
    }
    if let Some(listen) = &config.admin.listen {
        listen.parse::<std::net::SocketAddr>().with_context(|| {
            format!("admin.listen: {listen:?} is not a socket address (like 127.0.0.1:9090)")
        })?;
        config.admin.token(config)?;
    }
    Ok(())
}

/// The discovery extras: the configured ones, plus `client_id_metadata_document_supported`
/// when documents are on.
pub fn discovery_extra(config: &Config) -> serde_json::Map<String, serde_json::Value> {
    let mut extra = config.discovery.clone();
    if config.cimd.enabled {
        extra.insert(
            "client_id_metadata_document_supported".into(),
            serde_json::Value::Bool(true),
        );
    }
    extra
}

/// The PEM files of `[fetch] extra_root_certificates`, read.
pub fn root_certificates(config: &Config) -> anyhow::Result<Vec<Vec<u8>>> {
    config
        .fetch
        .extra_root_certificates
        .iter()
        .map(|p| {
            let path = config.resolve(p);
            std::fs::read(&path).with_context(|| {
                format!("fetch.extra_root_certificates: reading {}", path.display())
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn defaults_keys_and_checks() {
        let c = Config::from_toml("", Path::new(".")).unwrap();
        assert!(!c.cimd.enabled);
        assert_eq!(c.cimd.cache_min_seconds, 30);
        assert_eq!(c.cimd.cache_max_seconds, 86_400);
        assert_eq!(c.cimd.max_document_bytes, 5_120);
        assert!(!discovery_extra(&c).contains_key("client_id_metadata_document_supported"));
        let c = Config::from_toml(
            "[cimd]\nenabled = true\nallowed_hosts = [\"claude.ai\"]\ndenied_hosts = []\npolicies = []\n",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(
            discovery_extra(&c)["client_id_metadata_document_supported"],
            true
        );
        for (bad, words) in [
            (
                "[cimd]\ncache_min_seconds = 10\ncache_max_seconds = 5",
                "cache_min_seconds",
            ),
            ("[cimd]\npolicies = [\"nope\"]", "cimd.policies"),
            ("[admin]\nlisten = \"127.0.0.1:0\"", "token"),
            ("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"short\"", "32"),
            (
                "[admin]\nlisten = \"x\"\ntoken = \"0123456789abcdef0123456789abcdef\"",
                "admin.listen",
            ),
            ("[cimd]\nbogus = 1", "bogus"),
        ] {
            let e = Config::from_toml(bad, Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(e.contains(words), "{bad}: {e}");
        }
    }

    #[test]
    fn the_admin_token_is_redacted() {
        let secret = "0123456789abcdef0123456789abcdef-secret";
        let c = Config::from_toml(
            &format!("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{secret}\""),
            Path::new("."),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains(secret));
        assert_eq!(c.admin.token(&c).unwrap(), secret);
    }
}

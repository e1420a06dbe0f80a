//! `[authn]` (client authentication for the host authorization server) and `[[clients]]`
//! (clients configured by the operator: the MCP specification's pre-registration).

use std::path::PathBuf;

use anyhow::Context as _;
use dcr_core::authn::{AuthnSettings, ClientCredentials};
use dcr_core::metadata::ClientMetadata;
use dcr_core::resolve::ClientSource;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::Config;

/// `[authn]`: limits of client authentication, usage signals and tombstones.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthnConfig {
    /// Longest `client_assertion` accepted, in bytes.
    pub max_assertion_bytes: usize,
    /// Latest `exp` of a client assertion accepted, in seconds from now.
    pub max_assertion_lifetime_seconds: i64,
    /// Clock skew tolerated on an assertion's `exp`, `nbf` and `iat`, in seconds.
    pub clock_skew_seconds: i64,
    /// How long keys fetched from a client's `jwks_uri` are kept, in seconds.
    pub jwks_cache_seconds: u64,
    /// Shortest time between two fetches of a `jwks_uri` for an unknown `kid`, in seconds.
    pub jwks_refetch_interval_seconds: u64,
    /// At most one usage write per client per this many seconds.
    pub usage_interval_seconds: u64,
    /// How long a pruned client id is remembered (id only), in seconds; 0: not at all.
    pub tombstone_seconds: u64,
}

impl Default for AuthnConfig {
    fn default() -> Self {
        let s = AuthnSettings::default();
        Self {
            max_assertion_bytes: s.max_assertion_bytes,
            max_assertion_lifetime_seconds: s.max_assertion_lifetime_seconds,
            clock_skew_seconds: s.clock_skew_seconds,
            jwks_cache_seconds: s.jwks_cache_seconds,
            jwks_refetch_interval_seconds: s.jwks_refetch_interval_seconds,
            usage_interval_seconds: 300,
            tombstone_seconds: 30 * 24 * 3600,
        }
    }
}

impl AuthnConfig {
    /// The library settings.
    pub fn settings(&self) -> AuthnSettings {
        AuthnSettings {
            max_assertion_bytes: self.max_assertion_bytes,
            max_assertion_lifetime_seconds: self.max_assertion_lifetime_seconds,
            clock_skew_seconds: self.clock_skew_seconds,
            jwks_cache_seconds: self.jwks_cache_seconds,
            jwks_refetch_interval_seconds: self.jwks_refetch_interval_seconds,
        }
    }
}

/// One `[[clients]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Its client id.
    pub client_id: String,
    /// The environment variable holding its secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// The file holding its secret (trimmed; relative to the config file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    /// Its client metadata (RFC 7591 §2), validated like a registration.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

/// The configured clients, validated with the registration rules, their secrets read.
/// An invalid entry is an error naming it (`clients[2] (client_id "x")`) and what is wrong.
pub fn configured_clients(config: &Config) -> anyhow::Result<Vec<ClientCredentials>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, entry) in config.clients.iter().enumerate() {
        let name = format!("clients[{i}] (client_id {:?})", entry.client_id);
        out.push(configured_client(config, entry).with_context(|| name.clone())?);
        anyhow::ensure!(
            seen.insert(entry.client_id.clone()),
            "{name}: client_id is configured twice"
        );
    }
    Ok(out)
}

fn configured_client(config: &Config, entry: &ClientConfig) -> anyhow::Result<ClientCredentials> {
    anyhow::ensure!(
        !entry.client_id.is_empty() && !entry.client_id.chars().any(char::is_control),
        "client_id must be non-empty, without control characters"
    );
    for member in [
        "client_id",
        "client_secret",
        "client_secret_expires_at",
        "client_id_issued_at",
        "registration_access_token",
        "registration_client_uri",
    ] {
        anyhow::ensure!(
            !entry.metadata.contains_key(member),
            "metadata.{member}: not allowed here (client_id is set on the entry; a secret comes from client_secret_env or client_secret_file, never inline)"
        );
    }
    let secret = match (&entry.client_secret_env, &entry.client_secret_file) {
        (Some(_), Some(_)) => {
            anyhow::bail!("set client_secret_env or client_secret_file, not both")
        }
        (Some(var), None) => Some(
            std::env::var(var)
                .ok()
                .filter(|s| !s.is_empty())
                .with_context(|| {
                    format!("client_secret_env: the environment variable {var} is not set")
                })?,
        ),
        (None, Some(path)) => {
            let path = config.resolve(path);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("client_secret_file: reading {}", path.display()))?;
            let text = text.trim().to_owned();
            anyhow::ensure!(
                !text.is_empty(),
                "client_secret_file: {} is empty",
                path.display()
            );
            Some(text)
        }
        (None, None) => None,
    };
    let mut input = entry.metadata.clone();
    input.insert("client_id".into(), Value::String(entry.client_id.clone()));
    let metadata = dcr_core::metadata::validate(input, &config.metadata)
        .map_err(|e| anyhow::anyhow!("metadata: {}", e.description))?;
    let method = metadata
        .str("token_endpoint_auth_method")
        .unwrap_or("client_secret_basic");
    let needs_secret = matches!(
        method,
        "client_secret_basic" | "client_secret_post" | "client_secret_jwt"
    );
    anyhow::ensure!(
        needs_secret == secret.is_some(),
        "token_endpoint_auth_method {method} {}",
        if needs_secret {
            "needs a secret: set client_secret_env or client_secret_file"
        } else {
            "takes no secret: remove client_secret_env / client_secret_file"
        }
    );
    let mut map = metadata.into_map();
    if let Some(secret) = secret {
        map.insert("client_secret".into(), Value::String(secret));
    }
    Ok(ClientCredentials::from_metadata(
        &entry.client_id,
        ClientSource::Configured,
        ClientMetadata::from_trusted(map),
    ))
}

//! `DCR_` environment variables: only those that name a configuration key override it.
//! Others (Kubernetes injects `DCR_PORT`, `DCR_SERVICE_HOST`, ... for a Service named `dcr`)
//! are left out, and named in a warning.

use figment::providers::Env;
use serde_json::Value;

/// The `DCR_` variables, keys split on `__` (`DCR_CONFIG` names the file and is read by the
/// CLI; `DCR_TEST_*` belong to the test suite: neither is ever a key nor worth a warning).
fn dcr_variables() -> Env {
    Env::prefixed("DCR_")
        .filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            key != "config" && !key.starts_with("test_")
        })
        .split("__")
}

/// The `DCR_` variables that name a key of `schema` (the default configuration serialized,
/// so that the key set follows the `Config` types), and the names of the others, sorted.
pub(super) fn provider(schema: Value) -> (Env, Vec<String>) {
    let mut ignored: Vec<String> = dcr_variables()
        .iter()
        .filter(|(key, _)| !is_key(&schema, key.as_str()))
        .map(|(key, _)| format!("DCR_{}", key.as_str().replace('.', "__")).to_ascii_uppercase())
        .collect();
    ignored.sort();
    ignored.dedup();
    let env = dcr_variables().filter(move |key| is_key(&schema, key.as_str()));
    (env, ignored)
}

/// Whether the dotted `key` names a key of `schema` or lies below one whose value is not a
/// table of known keys: an empty table is a map (`registration.policies`, `discovery`) that
/// takes any member, and a plain value may also be written as a table
/// (`registration.client_id.format`); its type then decides.
fn is_key(schema: &Value, key: &str) -> bool {
    let mut node = schema;
    for part in key.split('.') {
        match node {
            Value::Object(members) if members.is_empty() => return true,
            Value::Object(members) => match members.get(&part.to_ascii_lowercase()) {
                Some(member) => node = member,
                None => return false,
            },
            _ => return true,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn keys_come_from_the_configuration_types() {
        let schema = serde_json::to_value(Config::default()).unwrap();
        for key in [
            "issuer",
            "STORAGE.URL",
            "limits.idle_timeout_seconds",
            "rate_limit.registration_per_ip.burst",
            "metadata.features.dpop",
            "registration.client_id.format",
            "registration.policies.tenant",
            "discovery.authorization_endpoint",
            "registration.prune.interval_seconds",
        ] {
            assert!(is_key(&schema, key), "{key}");
        }
        for key in [
            "port",
            "service_host",
            "port_8080_tcp_addr",
            "bin",
            "storage.pool",
            "limits.idle",
            "base_dir",
            "ignored_env_vars",
        ] {
            assert!(!is_key(&schema, key), "{key}");
        }
    }
}

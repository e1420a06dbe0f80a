//! The redirect URI check of a host's authorization endpoint.

use url::Url;

use crate::metadata::ClientMetadata;

/// Whether `requested` is one of the client's registered `redirect_uris`: an exact string
/// match (RFC 6749 §3.1.2.3, OAuth 2.0 Security BCP §4.1.1), except that for a native client
/// (`application_type` `native`) a loopback redirect (`http://127.0.0.1`, `http://[::1]`,
/// `http://localhost`) matches a registered loopback redirect on any port (RFC 8252 §7.3).
pub fn redirect_uri_allowed(metadata: &ClientMetadata, requested: &str) -> bool {
    let registered: Vec<&str> = metadata
        .get("redirect_uris")
        .and_then(|v| v.as_array())
        .map(|uris| uris.iter().filter_map(|u| u.as_str()).collect())
        .unwrap_or_default();
    let native = metadata.str("application_type") == Some("native");
    redirect_uri_matches(&registered, requested, native)
}

/// [`redirect_uri_allowed`] over a list of registered redirect URIs.
pub fn redirect_uri_matches(registered: &[&str], requested: &str, native: bool) -> bool {
    if registered.contains(&requested) {
        return true;
    }
    if !native {
        return false;
    }
    let Some(requested) = loopback_without_port(requested) else {
        return false;
    };
    registered
        .iter()
        .filter_map(|r| loopback_without_port(r))
        .any(|r| r == requested)
}

/// An `http` loopback URL with its port removed, or `None` for any other URL.
fn loopback_without_port(uri: &str) -> Option<String> {
    let mut url = Url::parse(uri).ok()?;
    if url.scheme() != "http" || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    match url.host_str()? {
        "127.0.0.1" | "[::1]" | "localhost" => {}
        _ => return None,
    }
    url.set_port(None).ok()?;
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_for_web_clients_and_any_port_for_native_loopback() {
        let reg = [
            "https://app.example.com/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:8080/cb",
            "http://localhost/cb",
        ];
        assert!(redirect_uri_matches(
            &reg,
            "https://app.example.com/cb",
            false
        ));
        assert!(!redirect_uri_matches(
            &reg,
            "https://app.example.com/cb/",
            false
        ));
        assert!(!redirect_uri_matches(
            &reg,
            "https://app.example.com:8443/cb",
            true
        ));
        assert!(!redirect_uri_matches(
            &reg,
            "http://127.0.0.1:5000/cb",
            false
        ));
        assert!(redirect_uri_matches(&reg, "http://127.0.0.1:5000/cb", true));
        assert!(redirect_uri_matches(&reg, "http://[::1]:1/cb", true));
        assert!(redirect_uri_matches(
            &reg,
            "http://localhost:65535/cb",
            true
        ));
        assert!(!redirect_uri_matches(
            &reg,
            "http://127.0.0.1:5000/other",
            true
        ));
        assert!(!redirect_uri_matches(
            &reg,
            "http://127.0.0.1:5000/cb?x=1",
            true
        ));
        assert!(!redirect_uri_matches(
            &reg,
            "http://127.0.0.2:5000/cb",
            true
        ));
        assert!(!redirect_uri_matches(
            &reg,
            "https://127.0.0.1:5000/cb",
            true
        ));
        assert!(!redirect_uri_matches(
            &reg,
            "http://user@127.0.0.1:5000/cb",
            true
        ));
        // Loopback hosts are not interchangeable.
        assert!(!redirect_uri_matches(
            &["http://127.0.0.1/cb"],
            "http://localhost:5/cb",
            true
        ));
        assert!(!redirect_uri_matches(&reg, "not a url", true));
    }

    #[test]
    fn reads_redirect_uris_and_application_type_from_metadata() {
        let native = ClientMetadata::from_trusted(
            serde_json::json!({"redirect_uris": ["http://127.0.0.1/cb"], "application_type": "native"})
                .as_object()
                .cloned()
                .unwrap(),
        );
        assert!(redirect_uri_allowed(&native, "http://127.0.0.1:49152/cb"));
        let web = ClientMetadata::from_trusted(
            serde_json::json!({"redirect_uris": ["http://127.0.0.1/cb"]})
                .as_object()
                .cloned()
                .unwrap(),
        );
        assert!(!redirect_uri_allowed(&web, "http://127.0.0.1:49152/cb"));
        assert!(redirect_uri_allowed(&web, "http://127.0.0.1/cb"));
    }
}

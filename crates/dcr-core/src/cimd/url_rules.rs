//! Which strings are Client ID Metadata Document URLs (draft -02 §3).

use url::Url;

/// Longest accepted document URL, in bytes.
const MAX_URL_LEN: usize = 2048;

/// Whether `client_id` is meant as a metadata document URL (it starts with `https://`).
/// Such a client id is then either a valid document URL or refused; it never names a
/// registered client.
pub fn is_document_url(client_id: &str) -> bool {
    client_id
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// Checks `raw` against the URL rules of a Client ID Metadata Document: `https` scheme, a
/// host, a path other than `/`, no dot segments (plain or percent-encoded), no fragment, no
/// user information, no control characters, spaces or backslashes, and no query unless
/// `allow_query`. The string itself is the client id: no normalisation is applied to it.
pub fn check_document_url(raw: &str, allow_query: bool) -> Result<Url, String> {
    if raw.len() > MAX_URL_LEN {
        return Err(format!("the URL is longer than {MAX_URL_LEN} bytes"));
    }
    if let Some(c) = raw
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || *c == '\\')
    {
        let what = match c {
            '\\' => "a backslash".to_owned(),
            c if c.is_whitespace() && !c.is_control() => "a space".to_owned(),
            c => format!("a control character (U+{:04X})", u32::from(c)),
        };
        return Err(format!("the URL must not contain {what}"));
    }
    let Some(rest) = raw.strip_prefix("https://") else {
        return Err("the URL must start with https:// (lower case)".into());
    };
    if raw.contains('#') {
        return Err("the URL must not contain a fragment".into());
    }
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if authority.contains('@') {
        return Err("the URL must not contain user information".into());
    }
    if authority.is_empty() {
        return Err("the URL must have a host".into());
    }
    let after = &rest[authority_end..];
    let (path, query) = match after.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (after, None),
    };
    if path.is_empty() || path == "/" {
        return Err("the URL must have a path component (like /client.json)".into());
    }
    if path.split('/').any(is_dot_segment) {
        return Err("the URL must not contain . or .. path segments".into());
    }
    if query.is_some() && !allow_query {
        return Err("the URL must not contain a query string".into());
    }
    let url = Url::parse(raw).map_err(|e| format!("the URL cannot be parsed ({e})"))?;
    if url.host().is_none() {
        return Err("the URL must have a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL must not contain user information".into());
    }
    Ok(url)
}

/// `.` or `..`, also when written with `%2e` / `%2E`.
fn is_dot_segment(segment: &str) -> bool {
    let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
    decoded == "." || decoded == ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_shapes_clients_use() {
        for ok in [
            "https://claude.ai/oauth/claude-code-client-metadata",
            "https://vscode.dev/oauth/client-metadata.json",
            "https://example.com:8443/a/b.json",
            "https://[2001:db8::1]/x",
        ] {
            assert!(check_document_url(ok, false).is_ok(), "{ok}");
        }
        assert!(check_document_url("https://a.example/x?v=1", true).is_ok());
    }

    #[test]
    fn refuses_with_the_rule_broken() {
        for (bad, words) in [
            ("http://a.example/x", "https://"),
            ("HTTPS://a.example/x", "https://"),
            ("https://a.example", "path"),
            ("https://a.example/", "path"),
            ("https://a.example/x#f", "fragment"),
            ("https://u:p@a.example/x", "user information"),
            ("https://u@a.example/x", "user information"),
            ("https://a.example/a/../x", ". or .."),
            ("https://a.example/a/./x", ". or .."),
            ("https://a.example/a/%2e%2E/x", ". or .."),
            ("https://a.example/a/.%2e", ". or .."),
            ("https://a.example/x?y=1", "query"),
            ("https://a.example/a b", "space"),
            ("https://a.example/a\\b", "backslash"),
            ("https://a.example/a\u{7}b", "control character"),
            ("https://a.example/a\nb", "control character"),
            ("https:///x", "host"),
            ("https://a exa/x", "space"),
        ] {
            let err = check_document_url(bad, false).unwrap_err();
            assert!(err.contains(words), "{bad}: {err}");
        }
        let long = format!("https://a.example/{}", "a".repeat(2100));
        assert!(check_document_url(&long, false).is_err());
    }

    #[test]
    fn document_urls_are_recognised_by_their_scheme() {
        assert!(is_document_url("https://a.example/x"));
        assert!(is_document_url("HTTPS://a.example/x"));
        assert!(!is_document_url("s6BhdRkqt3"));
        assert!(!is_document_url("http://a.example/x"));
        assert!(!is_document_url("é"));
    }
}

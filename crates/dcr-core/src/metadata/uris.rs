//! URI members: every URI-valued member is read by [`parse_uri`], so what is stored is exactly
//! what was checked.
//!
//! The WHATWG URL parser the `url` crate implements removes tabs and newlines anywhere in the
//! input, trims leading and trailing spaces and control characters, percent-encodes spaces, and
//! resolves `.` and `..` segments before anything is checked. A rule checked on the parsed URL
//! would then not hold for the string that is stored and echoed (RFC 7591 §2 registers the
//! string the client sent), e.g. `https://a.example/cb\r\nSet-Cookie: x` or
//! `http://local\nhost/cb` (a loopback redirect URI for the parser, not for a browser).

use serde_json::{Map, Value};
use url::{Position, Url};

use super::members::{Uri, localized_key};
use super::types::{str_items, str_of};
use super::validate::Prepared;
use super::{MetadataError, ServerMetadata};

/// Parses the value of the URI member `member`.
///
/// `Ok(None)`: `value` is not an absolute URI (the caller words that error for its rule).
/// `Err`: `value` holds an ASCII control character or a space, or the parser would read it as
/// another URI than the one written (only the case of the scheme and host may differ, and an
/// empty path may be written as `/`).
pub(crate) fn parse_uri(member: &str, value: &str) -> Result<Option<Url>, MetadataError> {
    let Ok(url) = Url::parse(value) else {
        return Ok(None);
    };
    if value.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(MetadataError::member(
            member,
            format!("{member} must not contain control characters or spaces (got {value:?})"),
        ));
    }
    if !reads_as_written(value, &url) {
        return Err(MetadataError::member(
            member,
            format!(
                "{member} must be written as it is read: {value:?} reads as {:?} (only the case of the scheme and host may differ)",
                url.as_str()
            ),
        ));
    }
    Ok(Some(url))
}

/// Whether `url`, parsed from `written`, serialises as `written` up to the case of its scheme
/// and host, and a `/` standing for an empty path.
fn reads_as_written(written: &str, url: &Url) -> bool {
    let read = url.as_str();
    if read == written {
        return true;
    }
    let head = &url[..Position::AfterHost];
    let Some(written_head) = written.get(..head.len()) else {
        return false;
    };
    if !written_head.eq_ignore_ascii_case(head) {
        return false;
    }
    let (written_rest, read_rest) = (&written[head.len()..], &read[head.len()..]);
    written_rest == read_rest
        || (read_rest.strip_prefix('/') == Some(written_rest)
            && (written_rest.is_empty() || written_rest.starts_with(['?', '#'])))
}

/// The extra members (kept verbatim, RFC 7591 §2) that hold URIs by their name: `*_uri` and
/// `*_uris` (e.g. `request_uris`, `frontchannel_logout_uri`), language-tagged or not.
pub(crate) fn is_uri_member_name(name: &str) -> bool {
    let base = name.split_once('#').map_or(name, |(base, _)| base);
    base.ends_with("_uri") || base.ends_with("_uris")
}

/// An extra member (step 18): one named as a URI member follows [`check_extra_uri`].
pub(super) fn check_extra_member(name: &str, value: &Value) -> Result<(), MetadataError> {
    if is_uri_member_name(name) {
        check_extra_uri(name, value)?;
    }
    Ok(())
}

/// An extra URI member: each string (the value, or the strings of an array) must be an
/// absolute URI that reads as written.
pub(crate) fn check_extra_uri(member: &str, value: &Value) -> Result<(), MetadataError> {
    let one = |s: &str| match parse_uri(member, s)? {
        Some(_) => Ok(()),
        None => Err(MetadataError::member(
            member,
            format!("{member} must only contain absolute uris ({s:?} is not one)"),
        )),
    };
    match value {
        Value::String(s) => one(s),
        Value::Array(items) => items.iter().filter_map(Value::as_str).try_for_each(one),
        _ => Ok(()),
    }
}

/// Step 8: the URI members that are not redirect URIs, and their language-tagged variants.
pub(super) fn check_uri_members(
    m: &Map<String, Value>,
    localized: &Map<String, Value>,
    server: &ServerMetadata,
    prepared: &Prepared,
) -> Result<(), MetadataError> {
    for member in &prepared.uri_members {
        if let Some(s) = str_of(m, member.name) {
            let https_only = match member.uri {
                Uri::Web => false,
                // Fetched documents may be plain http only where the operator allowed it for tests.
                Uri::Fetched => !server.allow_http_document_uris_for_tests,
                _ => true,
            };
            check_web_uri(member.name, s, https_only)?;
        }
    }
    for (key, value) in localized {
        if let (Some((base, _)), Some(s)) = (localized_key(key), value.as_str())
            && base.uri == Uri::Web
        {
            check_web_uri(key, s, false)?;
        }
    }
    Ok(())
}

/// Step 10: the redirect URI members.
pub(super) fn check_redirect_uris(
    m: &Map<String, Value>,
    prepared: &Prepared,
    implicit: bool,
) -> Result<(), MetadataError> {
    let native = str_of(m, "application_type") == Some("native");
    for &label in &prepared.redirect_members {
        for uri in str_items(m, label) {
            check_redirect_uri(label, uri, native, implicit)?;
        }
    }
    Ok(())
}

/// A URI member that is not a redirect URI: `http(s)` or `https` only, absolute, with a host.
fn check_web_uri(member: &str, value: &str, https_only: bool) -> Result<(), MetadataError> {
    let url = parse_uri(member, value)?;
    let scheme = url.as_ref().map(url::Url::scheme);
    let ok = if https_only {
        scheme == Some("https")
    } else {
        matches!(scheme, Some("http" | "https"))
    };
    if !ok {
        return Err(MetadataError::member(
            member,
            if https_only {
                format!("{member} must be an https uri (got {value:?})")
            } else {
                format!("{member} must be a web uri: http or https (got {value:?})")
            },
        ));
    }
    if member == "backchannel_logout_uri" && value.contains('#') {
        return Err(MetadataError::member(
            "backchannel_logout_uri",
            "backchannel_logout_uri must not contain a fragment (OpenID Connect Back-Channel Logout §2.2)",
        ));
    }
    Ok(())
}

/// The redirect URI rules of OpenID Connect Registration §2 and RFC 8252 (native apps).
fn check_redirect_uri(
    label: &str,
    uri: &str,
    native: bool,
    implicit: bool,
) -> Result<(), MetadataError> {
    let url = parse_uri(label, uri)?.ok_or_else(|| {
        MetadataError::member(
            label,
            format!("{label} must only contain valid absolute uris ({uri:?} is not one)"),
        )
    })?;
    check_redirect_rules(label, uri, &url, native, implicit)
        .map_err(|e| MetadataError::member(label, e))
}

/// The rules of [`check_redirect_uri`] on the parsed URI.
fn check_redirect_rules(
    label: &str,
    uri: &str,
    url: &url::Url,
    native: bool,
    implicit: bool,
) -> Result<(), String> {
    if uri.contains('#') || url.fragment().is_some() {
        return Err(format!("{label} must not contain fragments ({uri:?})"));
    }
    let host = url.host_str().unwrap_or_default();
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    if native {
        match url.scheme() {
            "http" if !loopback => Err(format!(
                "{label} for native clients using http as a protocol can only use loopback addresses as hostnames ({uri:?})"
            )),
            "https" if loopback => Err(format!(
                "{label} for native clients using claimed HTTPS URIs must not be using {host} as hostname"
            )),
            "javascript" | "vbscript" | "data" | "blob" | "file" | "about" => Err(format!(
                "{label} must not use the {} URI scheme",
                url.scheme()
            )),
            _ => Ok(()),
        }
    } else {
        match url.scheme() {
            "http" | "https" => {}
            _ => {
                return Err(format!(
                    "{label} must only contain web uris (http or https) for web clients ({uri:?})"
                ));
            }
        }
        if implicit && url.scheme() == "http" {
            return Err(format!(
                "{label} for web clients using implicit flow MUST only register URLs using the https scheme ({uri:?})"
            ));
        }
        if implicit && host == "localhost" {
            return Err(format!(
                "{label} for web clients using implicit flow must not be using localhost ({uri:?})"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::MetadataErrorKind;

    fn parsed(member: &str, value: &str) -> Result<Option<String>, MetadataError> {
        parse_uri(member, value).map(|u| u.map(String::from))
    }

    #[test]
    fn values_read_as_written_are_accepted() {
        for value in [
            "https://a.example/cb",
            "HTTPS://A.Example/cb?x=1#f",
            "https://a.example",
            "https://a.example?x",
            "http://127.0.0.1:8080/cb",
            "com.example.app:/cb",
            "https://a.example/%20x",
        ] {
            assert!(parsed("redirect_uris", value).unwrap().is_some(), "{value}");
        }
        assert_eq!(parsed("logo_uri", "not a uri").unwrap(), None);
    }

    #[test]
    fn control_characters_and_spaces_are_refused() {
        for value in [
            "https://a.example/cb\r\nSet-Cookie: x=1",
            "http://local\nhost:8080/cb",
            "https://a.example/\tcb",
            " https://a.example/cb",
            "https://a.example/cb ",
            "https://a.example/a b",
            "https://a.example/\u{7f}",
        ] {
            let e = parse_uri("redirect_uris", value).unwrap_err();
            assert_eq!(e.kind, MetadataErrorKind::InvalidRedirectUri, "{value}");
            assert!(
                e.description
                    .starts_with("redirect_uris must not contain control characters"),
                "{value}: {}",
                e.description
            );
            let e = parse_uri("logo_uri#fr", value).unwrap_err();
            assert_eq!(e.kind, MetadataErrorKind::InvalidClientMetadata);
            assert!(e.description.starts_with("logo_uri#fr"));
            assert!(!e.description.contains(['\r', '\n', '\t']));
        }
    }

    #[test]
    fn values_the_parser_changes_are_refused() {
        for value in [
            "https://a.example/x/../cb",
            "https://a.example/./cb",
            "https://a.example:443/cb",
            "https://a.example/é",
            "https://bücher.example/cb",
            "https://a.example\\cb",
            "https:a.example/cb",
            "https://a.example/cb?q=<x>",
        ] {
            let e = parse_uri("jwks_uri", value).unwrap_err();
            assert_eq!(e.kind, MetadataErrorKind::InvalidClientMetadata);
            assert!(
                e.description
                    .starts_with("jwks_uri must be written as it is read"),
                "{value}: {}",
                e.description
            );
        }
    }

    #[test]
    fn extra_uri_members_by_name() {
        assert!(is_uri_member_name("request_uris"));
        assert!(is_uri_member_name("frontchannel_logout_uri"));
        assert!(is_uri_member_name("terms_uri#fr"));
        assert!(!is_uri_member_name("tenant"));
        let list = serde_json::json!(["https://a.example/r", "https://a.example/\r\n"]);
        let e = check_extra_uri("request_uris", &list).unwrap_err();
        assert!(e.description.starts_with("request_uris must not contain"));
        let e = check_extra_uri("frontchannel_logout_uri", &"x".into()).unwrap_err();
        assert!(e.description.contains("absolute uris"));
        assert!(
            check_extra_uri("request_uris", &serde_json::json!(["https://a.example/r"])).is_ok()
        );
    }

    /// Every URI member, through the whole validator: refused with the code of its member.
    #[test]
    fn every_uri_member_reads_as_written() {
        use crate::metadata::{ServerMetadata, validate};
        use serde_json::{Value, json};
        let mut server = ServerMetadata::default();
        let f = &mut server.features;
        f.backchannel_logout = true;
        f.rp_initiated_logout = true;
        f.ciba = true;
        server.extra_metadata = vec!["request_uris".into(), "frontchannel_logout_uri".into()];
        let cb = "https://rp.example.com/cb";
        let bad = "https://rp.example.com/x\r\n";
        let cases: Vec<(&str, Value, MetadataErrorKind)> = vec![
            (
                "redirect_uris",
                json!([cb, bad]),
                MetadataErrorKind::InvalidRedirectUri,
            ),
            (
                "post_logout_redirect_uris",
                json!([bad]),
                MetadataErrorKind::InvalidClientMetadata,
            ),
            (
                "logo_uri",
                json!(bad),
                MetadataErrorKind::InvalidClientMetadata,
            ),
            (
                "logo_uri#fr",
                json!(bad),
                MetadataErrorKind::InvalidClientMetadata,
            ),
            (
                "client_uri",
                json!(bad),
                MetadataErrorKind::InvalidClientMetadata,
            ),
            (
                "policy_uri",
                json!(bad),
                MetadataErrorKind::InvalidClientMetadata,
            ),
            (
                "tos_uri",
                json!(bad),
                MetadataErrorKind::InvalidClientMetadata,
            ),
            (
                "jwks_uri",
                json!(bad),
                MetadataErrorKind::InvalidClientMetadata,
            ),
            (
                "sector_identifier_uri",
                json!(bad),
                MetadataErrorKind::InvalidClientMetadata,
            ),
            (
                "initiate_login_uri",
                json!(bad),
                MetadataErrorKind::InvalidClientMetadata,
            ),
            (
                "backchannel_logout_uri",
                json!(bad),
                MetadataErrorKind::InvalidClientMetadata,
            ),
            (
                "request_uris",
                json!([bad]),
                MetadataErrorKind::InvalidClientMetadata,
            ),
            (
                "frontchannel_logout_uri",
                json!(bad),
                MetadataErrorKind::InvalidClientMetadata,
            ),
        ];
        for (member, value, kind) in cases {
            let mut doc = json!({"client_id": "abc", "redirect_uris": [cb]});
            doc[member] = value;
            let e = validate(doc.as_object().cloned().unwrap(), &server).unwrap_err();
            assert_eq!(e.kind, kind, "{member}");
            assert!(
                e.description
                    .starts_with(&format!("{member} must not contain control characters")),
                "{member}: {}",
                e.description
            );
        }
        let native = json!({"client_id": "abc", "application_type": "native", "redirect_uris": ["http://local\nhost:8080/cb"]});
        let e = validate(native.as_object().cloned().unwrap(), &server).unwrap_err();
        assert_eq!(e.kind, MetadataErrorKind::InvalidRedirectUri);
    }
}

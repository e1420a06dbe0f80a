//! URI members: every URI-valued member is read by [`parse_uri`], so what is stored is exactly
//! what was checked.
//!
//! The WHATWG URL parser the `url` crate implements removes tabs and newlines anywhere in the
//! input, trims leading and trailing spaces and control characters, percent-encodes spaces, and
//! resolves `.` and `..` segments before anything is checked. A rule checked on the parsed URL
//! would then not hold for the string that is stored and echoed (RFC 7591 §2 registers the
//! string the client sent), e.g. `https://a.example/cb\r\nSet-Cookie: x` or
//! `http://local\nhost/cb` (a loopback redirect URI for the parser, not for a browser).

use url::{Position, Url};

use super::MetadataError;

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

/// An extra URI member: each string (the value, or the strings of an array) must be an
/// absolute URI that reads as written.
pub(crate) fn check_extra_uri(
    member: &str,
    value: &serde_json::Value,
) -> Result<(), MetadataError> {
    let one = |s: &str| match parse_uri(member, s)? {
        Some(_) => Ok(()),
        None => Err(MetadataError::member(
            member,
            format!("{member} must only contain absolute uris ({s:?} is not one)"),
        )),
    };
    match value {
        serde_json::Value::String(s) => one(s),
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(serde_json::Value::as_str)
            .try_for_each(one),
        _ => Ok(()),
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

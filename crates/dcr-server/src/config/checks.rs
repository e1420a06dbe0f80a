//! Checks of values whose types admit settings that cannot work: the issuer and the
//! registration path.

use std::net::IpAddr;

use url::{Host, Url};

/// `issuer`: an absolute https URL with a host, and without query, fragment or credentials.
/// Plain http is accepted for loopback hosts (127.0.0.0/8, ::1, localhost), and elsewhere
/// only with `allow_insecure`.
pub(super) fn issuer(value: &str, allow_insecure: bool) -> anyhow::Result<()> {
    let refuse = |why: &str| anyhow::anyhow!("issuer: {value:?} {why}");
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refuse("contains whitespace or control characters"));
    }
    let url = Url::parse(value).map_err(|e| refuse(&format!("is not an absolute URL ({e})")))?;
    let Some(host) = url.host() else {
        return Err(refuse("has no host"));
    };
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("must not have a query or a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("must not carry credentials"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure || is_loopback(&host) => Ok(()),
        "http" => Err(refuse(
            "uses plain http on a host that is not loopback: use https \
             (or set allow_insecure_issuer = true, never in production)",
        )),
        _ => Err(refuse("must be an https URL")),
    }
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// `registration.path`: a literal absolute path. Route syntax (`{x}`, `{*x}`, `:x`) would
/// capture other paths or stop `dcr serve`, and a query or fragment breaks the advertised
/// endpoint.
pub(super) fn registration_path(path: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        path.starts_with('/'),
        "registration.path: {path:?} must start with '/'"
    );
    if let Some(c) = path
        .chars()
        .find(|c| matches!(c, '{' | '}' | '?' | '#' | '*') || c.is_whitespace() || c.is_control())
    {
        anyhow::bail!("registration.path: {path:?} must be a literal path; {c:?} is not allowed");
    }
    anyhow::ensure!(
        !path.split('/').any(|segment| segment.starts_with(':')),
        "registration.path: {path:?} must be a literal path; a segment may not start with ':'"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn error(toml: &str) -> String {
        match Config::from_toml(toml, Path::new(".")) {
            Ok(_) => panic!("accepted: {toml}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_registration_path_must_be_literal() {
        for path in [
            "/{*x}", "/{x}", "/reg?x", "/reg#x", "/re g", "/reg/*", "/reg/:id", "reg",
        ] {
            let e = error(&format!("[registration]\npath = {path:?}"));
            assert!(e.contains("registration.path"), "{path}: {e}");
        }
        for path in ["/reg", "/connect/register", "/v1/clients.json", "/a:b"] {
            let c = Config::from_toml(&format!("[registration]\npath = {path:?}"), Path::new("."))
                .unwrap();
            assert_eq!(c.registration.path, path);
        }
    }

    #[test]
    fn an_issuer_must_be_https_unless_loopback_or_explicitly_allowed() {
        for issuer in [
            "http://id.example.com",
            "https://id example.com",
            "https:///",
            "https://",
            "id.example.com",
            "ftp://id.example.com",
            "https://id.example.com/?tenant=1",
            "https://id.example.com/#x",
            "https://user:pw@id.example.com",
            "https://id.example.com/\n",
            "http://127.0.0.1.example.com",
        ] {
            let e = error(&format!("issuer = {issuer:?}"));
            assert!(e.starts_with("issuer:"), "{issuer}: {e}");
        }
        for issuer in [
            "https://id.example.com",
            "https://id.example.com/tenant/1",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:8080/t",
            "http://localhost:3000",
        ] {
            let c = Config::from_toml(&format!("issuer = {issuer:?}"), Path::new(".")).unwrap();
            assert_eq!(c.issuer, issuer);
        }
        let c = Config::from_toml(
            "issuer = \"http://id.example.com\"\nallow_insecure_issuer = true",
            Path::new("."),
        )
        .unwrap();
        assert!(c.allow_insecure_issuer);
        // Still an absolute URL with a host.
        let e = error("issuer = \"http:///\"\nallow_insecure_issuer = true");
        assert!(e.starts_with("issuer:"), "{e}");
    }
}

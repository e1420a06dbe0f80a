//! The client address a request is keyed on: the TCP peer, or what trusted proxies say.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
#[cfg(test)]
use axum::http::HeaderValue;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use ipnet::IpNet;

/// The address of the client that sent `parts`: the peer address, or, when the peer is one of
/// `trusted_proxies`, the nearest untrusted address of `Forwarded` (or else `X-Forwarded-For`).
///
/// `None` when the server was not run with connect info
/// (`into_make_service_with_connect_info::<SocketAddr>()`).
pub fn client_ip(parts: &Parts, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    Some(resolve_client_ip(peer, &parts.headers, trusted_proxies))
}

/// [`client_ip`] from a peer address and headers.
pub fn resolve_client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = forwarded_hops(headers);
    // Right to left: the first address not ours is the client as our proxies saw it.
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) if is_trusted(ip) => nearest = *ip,
            Some(ip) => return *ip,
            // An unparseable hop (obfuscated, "unknown"): stop at the last known address.
            None => return nearest,
        }
    }
    nearest
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The hops of `Forwarded` (RFC 7239 `for=`) if present, else of `X-Forwarded-For`, left to right.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let joined = |name: header::HeaderName| -> Option<String> {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    };
    if let Some(forwarded) = joined(header::FORWARDED) {
        return forwarded
            .split(',')
            .map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| parse_node(v.trim().trim_matches('"')))
                        .flatten()
                })
            })
            .collect();
    }
    joined(header::HeaderName::from_static("x-forwarded-for"))
        .map(|xff| xff.split(',').map(|s| parse_node(s.trim())).collect())
        .unwrap_or_default()
}

/// An address from a `for=` node or an `X-Forwarded-For` entry (`1.2.3.4`, `1.2.3.4:80`,
/// `[::1]`, `[::1]:80`, `::1`).
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    s.strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .and_then(|(ip, _)| ip.parse::<IpAddr>().ok())
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_headers_need_a_trusted_peer() {
        let spoofed = h(&[("x-forwarded-for", "9.9.9.9")]);
        assert_eq!(
            resolve_client_ip(ip("10.0.0.1"), &spoofed, &[]),
            ip("10.0.0.1")
        );
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            resolve_client_ip(ip("10.0.0.1"), &spoofed, &trusted),
            ip("9.9.9.9")
        );
        assert_eq!(
            resolve_client_ip(ip("8.8.8.8"), &spoofed, &trusted),
            ip("8.8.8.8")
        );
        // A client cannot hide behind a forged left-most entry.
        let chain = h(&[("x-forwarded-for", "1.1.1.1, 7.7.7.7, 10.0.0.2")]);
        assert_eq!(
            resolve_client_ip(ip("10.0.0.1"), &chain, &trusted),
            ip("7.7.7.7")
        );
        let fwd = h(&[
            (
                "forwarded",
                "for=1.1.1.1, for=\"[2001:db8::1]:4711\";proto=https",
            ),
            ("x-forwarded-for", "5.5.5.5"),
        ]);
        assert_eq!(
            resolve_client_ip(ip("10.0.0.1"), &fwd, &trusted),
            ip("2001:db8::1")
        );
        let junk = h(&[("x-forwarded-for", "unknown, garbage")]);
        assert_eq!(
            resolve_client_ip(ip("10.0.0.1"), &junk, &trusted),
            ip("10.0.0.1")
        );
    }

    proptest::proptest! {
        #[test]
        fn any_forwarded_header_is_safe(v in "\\PC{0,80}") {
            if let Ok(value) = HeaderValue::from_str(&v) {
                let trusted: Vec<IpNet> = vec!["0.0.0.0/0".parse().unwrap()];
                for name in ["forwarded", "x-forwarded-for"] {
                    let mut m = HeaderMap::new();
                    m.insert(header::HeaderName::from_static(name), value.clone());
                    let _ = resolve_client_ip(ip("10.0.0.1"), &m, &trusted);
                }
            }
        }
    }
}

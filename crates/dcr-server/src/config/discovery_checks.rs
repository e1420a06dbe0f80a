//! Discovery completeness: the RFC 8414 §2 members only the host authorization server can
//! publish, which `[discovery]` must carry for clients (the MCP SDKs among them) to get as
//! far as registering. dcr does not invent them; it says which are missing.

use super::Config;

/// What the MCP authorization specification requires of `code_challenge_methods_supported`.
const MCP_S256: &str = "MCP clients require S256 in it and refuse to continue without it";

impl Config {
    /// The warnings about `[discovery]`: each RFC 8414 member the authorization server must
    /// publish and that is missing (`authorization_endpoint` when a grant type uses the
    /// authorization endpoint, `token_endpoint` unless only `implicit` is advertised,
    /// `code_challenge_methods_supported` with `S256` when `authorization_code` is), and each
    /// `[discovery]` member that is ignored because dcr computes it. `dcr serve` logs them and
    /// `dcr check-config` prints them; empty when nothing is missing.
    pub fn discovery_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let discovery = &self.discovery;
        let grants = &self.metadata.grant_types_supported;
        let advertises = |g: &str| grants.iter().any(|x| x == g);
        let missing = |member: &str| discovery.get(member).is_none_or(|v| v.is_null());
        let mut need = |member: &str, why: &str| {
            if missing(member) {
                warnings.push(format!(
                    "[discovery] has no {member}: RFC 8414 §2 requires it {why}; clients \
                     that discover dcr cannot continue without it (set it to the host \
                     authorization server's)"
                ));
            }
        };
        if advertises("authorization_code") || advertises("implicit") {
            need(
                "authorization_endpoint",
                "when grant_types_supported has a grant type that uses the authorization endpoint",
            );
        }
        if grants.iter().any(|g| g != "implicit") {
            need(
                "token_endpoint",
                "unless implicit is the only grant type supported",
            );
        }
        if advertises("authorization_code") {
            let methods = discovery.get("code_challenge_methods_supported");
            let has_s256 = methods
                .and_then(|v| v.as_array())
                .is_some_and(|a| a.iter().any(|m| m == "S256"));
            if methods.is_none_or(|v| v.is_null()) {
                warnings.push(format!(
                    "[discovery] has no code_challenge_methods_supported (RFC 8414 §2, PKCE): \
                     {MCP_S256}; set it to [\"S256\"] when the host authorization server \
                     supports PKCE"
                ));
            } else if !has_s256 {
                warnings.push(format!(
                    "[discovery] code_challenge_methods_supported does not contain \"S256\": \
                     {MCP_S256}"
                ));
            }
        }
        let computed = self.metadata.discovery_members();
        for member in discovery.keys() {
            if computed.contains_key(member)
                || matches!(member.as_str(), "issuer" | "registration_endpoint")
            {
                warnings.push(format!(
                    "[discovery] {member} is ignored: dcr advertises it from its own \
                     configuration (issuer, [registration] or [metadata] {member})"
                ));
            }
        }
        warnings
    }

    /// Logs each of [`Config::discovery_warnings`] (`dcr serve`).
    pub fn log_discovery_warnings(&self) {
        for warning in self.discovery_warnings() {
            tracing::warn!("{warning}");
        }
    }

    /// Prints each of [`Config::discovery_warnings`] on stdout (`dcr check-config`).
    pub fn print_discovery_warnings(&self) {
        for warning in self.discovery_warnings() {
            println!("warning: {warning}");
        }
    }
}

//! Inferring `application_type` from the redirect URIs (`[metadata] infer_application_type`).
//!
//! OpenID Connect Registration §2 defaults `application_type` to `web`, which refuses the
//! redirect URIs native clients use (RFC 8252 §7.1 private-use schemes such as
//! `cursor://anysphere.cursor-mcp/oauth/callback`, §7.3 loopback `http://127.0.0.1:PORT/cb`).
//! Clients that send no `application_type` (the MCP SDKs among them) would then be refused.
//! With the option on, a document without `application_type` gets `native` when every
//! redirect URI is a loopback `http` URI or uses a private-use scheme, and `web` otherwise.
//!
//! Inference only chooses the type: the redirect URI rules of that type still apply in full,
//! so it never makes an invalid redirect URI valid. A set that mixes web URIs with
//! private-use-scheme URIs fits neither type and is refused here, with a description that says
//! why.

use serde_json::{Map, Value};
use url::Url;

use super::{MetadataError, ServerMetadata};

/// Schemes that are never a redirect target, whatever the client type.
const NEVER_REDIRECT: &[&str] = &["javascript", "vbscript", "data", "blob", "file", "about"];

/// What one redirect URI says about the client that registers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `http` on a loopback host (RFC 8252 §7.3).
    Loopback,
    /// A private-use (custom) scheme (RFC 8252 §7.1).
    PrivateUse,
    /// `https`, or `http` on another host.
    Web,
}

fn kind(uri: &str) -> Result<Option<Kind>, MetadataError> {
    let Ok(url) = Url::parse(uri) else {
        // Not a URI: the redirect URI rules refuse it with their own description.
        return Ok(None);
    };
    let scheme = url.scheme();
    if NEVER_REDIRECT.contains(&scheme) {
        return Err(MetadataError::redirect(format!(
            "redirect_uris must not use the {scheme} URI scheme ({uri:?})"
        )));
    }
    Ok(Some(match scheme {
        "http" if matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")) => {
            Kind::Loopback
        }
        "http" | "https" => Kind::Web,
        _ => Kind::PrivateUse,
    }))
}

/// Sets `application_type` in `m` when the option is on and the client sent none: `native`
/// when every redirect URI is loopback `http` or a private-use scheme, `web` otherwise.
/// Without redirect URIs (or with ones that are not strings) nothing is inferred and the
/// default applies.
///
/// Refuses (`invalid_redirect_uri`) a URI with a scheme no redirect may use (`javascript:`,
/// `data:`, `file:`, ...) and a set that mixes web and private-use-scheme URIs.
pub(super) fn infer(
    m: &mut Map<String, Value>,
    server: &ServerMetadata,
) -> Result<(), MetadataError> {
    if !server.infer_application_type || m.get("application_type").is_some_and(|v| !v.is_null()) {
        return Ok(());
    }
    let Some(Value::Array(uris)) = m.get("redirect_uris") else {
        return Ok(());
    };
    let (mut web, mut private_use, mut any) = (None, None, false);
    for item in uris {
        let Some(uri) = item.as_str() else {
            return Ok(());
        };
        match kind(uri)? {
            None => return Ok(()),
            Some(Kind::Web) => {
                web.get_or_insert(uri);
            }
            Some(Kind::PrivateUse) => {
                private_use.get_or_insert(uri);
            }
            Some(Kind::Loopback) => {}
        }
        any = true;
    }
    if !any {
        return Ok(());
    }
    let inferred = match (web, private_use) {
        (Some(web), Some(private_use)) => {
            return Err(MetadataError::redirect(format!(
                "redirect_uris mixes a web uri ({web:?}) with a private-use scheme uri ({private_use:?}): \
                 application_type cannot be inferred (a web client may only use http or https, a native \
                 one only loopback http, private-use schemes or claimed https); register them as two \
                 clients or send application_type"
            )));
        }
        (Some(_), None) => "web",
        (None, _) => "native",
    };
    m.insert("application_type".into(), Value::from(inferred));
    Ok(())
}

#[cfg(test)]
#[path = "application_type_tests.rs"]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::context::RequestContext;

/// A boxed, sendable future, as returned by async hooks.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The URL-safe alphabet of nanoid: `A-Z a-z 0-9 _ -` (64 symbols).
const NANOID_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

type SyncFn = Arc<dyn Fn(&RequestContext) -> String + Send + Sync>;
type AsyncFn = Arc<dyn Fn(RequestContext) -> BoxFuture<String> + Send + Sync>;

#[derive(Clone)]
enum Kind {
    NanoId { length: usize },
    Uuid,
    RandomBase64Url { bytes: usize },
    Sync(SyncFn),
    Async(AsyncFn),
}

/// A generator of client ids or client secrets (node-oidc-provider's `idFactory` / `secretFactory`).
///
/// Built-in generators cover the common choices; [`Factory::sync`] and [`Factory::from_async`]
/// plug in any Rust closure, which receives the request context.
#[derive(Clone)]
pub struct Factory {
    kind: Kind,
    prefix: Option<String>,
}

impl std::fmt::Debug for Factory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::NanoId { length } => format!("nanoid({length})"),
            Kind::Uuid => "uuid".into(),
            Kind::RandomBase64Url { bytes } => format!("random_base64url({bytes})"),
            Kind::Sync(_) => "sync closure".into(),
            Kind::Async(_) => "async closure".into(),
        };
        f.debug_struct("Factory")
            .field("kind", &kind)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Factory {
    /// Whether it looks at the request (a closure) rather than only generating.
    pub(crate) fn reads_request(&self) -> bool {
        matches!(self.kind, Kind::Sync(_) | Kind::Async(_))
    }

    /// Random ids of `length` characters over nanoid's URL-safe alphabet (6 bits each).
    pub fn nanoid(length: usize) -> Self {
        Self {
            kind: Kind::NanoId { length },
            prefix: None,
        }
    }

    /// Random (version 4) UUIDs in their hyphenated lower-case form.
    pub fn uuid() -> Self {
        Self {
            kind: Kind::Uuid,
            prefix: None,
        }
    }

    /// `bytes` random bytes encoded as base64url without padding.
    pub fn random_base64url(bytes: usize) -> Self {
        Self {
            kind: Kind::RandomBase64Url { bytes },
            prefix: None,
        }
    }

    /// A synchronous closure.
    pub fn sync(f: impl Fn(&RequestContext) -> String + Send + Sync + 'static) -> Self {
        Self {
            kind: Kind::Sync(Arc::new(f)),
            prefix: None,
        }
    }

    /// An asynchronous closure; it receives its own copy of the request context.
    pub fn from_async<F, Fut>(f: F) -> Self
    where
        F: Fn(RequestContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = String> + Send + 'static,
    {
        Self {
            kind: Kind::Async(Arc::new(move |ctx| Box::pin(f(ctx)))),
            prefix: None,
        }
    }

    /// Puts `prefix` before every generated value.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// The default client id generator: 21-character nanoid.
    pub fn default_client_id() -> Self {
        Self::nanoid(21)
    }

    /// The default client secret generator: 64 random bytes in base64url (86 characters).
    pub fn default_client_secret() -> Self {
        Self::random_base64url(64)
    }

    /// Generates one value.
    pub async fn generate(&self, ctx: &RequestContext) -> String {
        let value = match &self.kind {
            Kind::NanoId { length } => nanoid(*length),
            Kind::Uuid => uuid_v4(),
            Kind::RandomBase64Url { bytes } => {
                let mut buf = vec![0u8; *bytes];
                rand::fill(buf.as_mut_slice());
                URL_SAFE_NO_PAD.encode(buf)
            }
            Kind::Sync(f) => f(ctx),
            Kind::Async(f) => f(ctx.clone()).await,
        };
        match &self.prefix {
            Some(p) => format!("{p}{value}"),
            None => value,
        }
    }
}

fn nanoid(length: usize) -> String {
    let mut buf = vec![0u8; length];
    rand::fill(buf.as_mut_slice());
    // 256 is a multiple of 64, so masking keeps the distribution uniform.
    buf.iter()
        .map(|b| char::from(NANOID_ALPHABET[usize::from(b & 63)]))
        .collect()
}

fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn defaults_match_the_seed() {
        let ctx = RequestContext::default();
        let id = Factory::default_client_id().generate(&ctx).await;
        assert_eq!(id.len(), 21);
        assert!(id.bytes().all(|c| NANOID_ALPHABET.contains(&c)));
        let secret = Factory::default_client_secret().generate(&ctx).await;
        assert_eq!(secret.len(), 86);
        assert_ne!(
            secret,
            Factory::default_client_secret().generate(&ctx).await
        );
    }

    #[tokio::test]
    async fn uuid_and_prefix() {
        let ctx = RequestContext::default();
        let id = Factory::uuid().with_prefix("app_").generate(&ctx).await;
        assert!(id.starts_with("app_"));
        let uuid = &id[4..];
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
    }

    #[tokio::test]
    async fn closures_sync_and_async() {
        let ctx = RequestContext {
            method: "POST".into(),
            ..Default::default()
        };
        let s = Factory::sync(|c| format!("{}-x", c.method));
        assert_eq!(s.generate(&ctx).await, "POST-x");
        let a = Factory::from_async(|c| async move { format!("{}-y", c.method) });
        assert_eq!(a.generate(&ctx).await, "POST-y");
    }
}

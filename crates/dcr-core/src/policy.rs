use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::context::RequestContext;
use crate::factory::BoxFuture;
use crate::metadata::RedactedMembers;

/// What a policy receives and may change. `Debug` shows `client_secret` as `[redacted]`.
#[derive(Default)]
pub struct PolicyCall {
    /// The request that is being served.
    pub request: RequestContext,
    /// The client properties about to be validated: the request body plus the
    /// server-assigned `client_id`, `client_id_issued_at` and, when one is issued,
    /// `client_secret`. Defaults are not applied yet.
    pub properties: Map<String, Value>,
    /// The policies the registration access token will carry; `None` when no token is issued.
    /// Pre-set to the policies of the initial (on POST) or presented (on PUT) token.
    pub registration_access_token_policies: Option<Vec<String>>,
}

impl std::fmt::Debug for PolicyCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyCall")
            .field("request", &self.request)
            .field("properties", &RedactedMembers(&self.properties))
            .field(
                "registration_access_token_policies",
                &self.registration_access_token_policies,
            )
            .finish()
    }
}

/// Why a policy stopped a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Reject the request: 400 `invalid_client_metadata` with this description.
    #[error("{0}")]
    Reject(String),
    /// The policy itself failed: 500 `server_error`; the detail is logged, not sent.
    #[error("policy failed: {0}")]
    Failed(String),
}

/// A named registration policy: runs before validation, may set defaults, force values or reject.
#[async_trait::async_trait]
pub trait Policy: Send + Sync {
    /// Applies the policy to `call`.
    async fn apply(&self, call: &mut PolicyCall) -> Result<(), PolicyError>;
}

struct SyncPolicy<F>(F);

#[async_trait::async_trait]
impl<F> Policy for SyncPolicy<F>
where
    F: Fn(&mut PolicyCall) -> Result<(), PolicyError> + Send + Sync,
{
    async fn apply(&self, call: &mut PolicyCall) -> Result<(), PolicyError> {
        (self.0)(call)
    }
}

struct AsyncPolicy<F>(F);

#[async_trait::async_trait]
impl<F> Policy for AsyncPolicy<F>
where
    F: Fn(PolicyCall) -> BoxFuture<Result<PolicyCall, PolicyError>> + Send + Sync,
{
    async fn apply(&self, call: &mut PolicyCall) -> Result<(), PolicyError> {
        let owned = std::mem::take(call);
        *call = (self.0)(owned).await?;
        Ok(())
    }
}

/// Wraps a synchronous closure as a [`Policy`].
pub fn sync_policy(
    f: impl Fn(&mut PolicyCall) -> Result<(), PolicyError> + Send + Sync + 'static,
) -> Arc<dyn Policy> {
    Arc::new(SyncPolicy(f))
}

/// Wraps an asynchronous closure as a [`Policy`]: it takes the call by value and returns it.
pub fn async_policy<F, Fut>(f: F) -> Arc<dyn Policy>
where
    F: Fn(PolicyCall) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<PolicyCall, PolicyError>> + Send + 'static,
{
    Arc::new(AsyncPolicy(move |call| -> BoxFuture<_> {
        Box::pin(f(call))
    }))
}

/// The configured policies, by name.
#[derive(Clone, Default)]
pub struct PolicySet(BTreeMap<String, Arc<dyn Policy>>);

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl PolicySet {
    /// Adds (or replaces) the policy `name`.
    pub fn insert(&mut self, name: impl Into<String>, policy: Arc<dyn Policy>) {
        self.0.insert(name.into(), policy);
    }

    /// The policy `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Policy>> {
        self.0.get(name)
    }

    /// Whether `name` is configured.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The configured names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The first of `names` that is not configured.
    pub fn first_unknown<'a>(&self, names: &'a [String]) -> Option<&'a str> {
        names.iter().map(String::as_str).find(|n| !self.contains(n))
    }
}

type SyncDecision = Arc<dyn Fn(&RequestContext) -> Result<bool, String> + Send + Sync>;
type AsyncDecision = Arc<dyn Fn(RequestContext) -> BoxFuture<Result<bool, String>> + Send + Sync>;

/// Whether a registration access token is issued on registration
/// (node-oidc-provider's `issueRegistrationAccessToken`).
#[derive(Clone)]
pub enum RatIssuance {
    /// Always issue one (the default).
    Always,
    /// Never issue one: registered clients cannot be managed over RFC 7592.
    Never,
    /// Decide per request with a synchronous closure; `Err` is a server error.
    Sync(SyncDecision),
    /// Decide per request with an asynchronous closure; `Err` is a server error.
    Async(AsyncDecision),
}

impl std::fmt::Debug for RatIssuance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RatIssuance::Always => "Always",
            RatIssuance::Never => "Never",
            RatIssuance::Sync(_) => "Sync(closure)",
            RatIssuance::Async(_) => "Async(closure)",
        })
    }
}

impl RatIssuance {
    /// Whether the decision looks at the request (a closure).
    pub(crate) fn reads_request(&self) -> bool {
        matches!(self, Self::Sync(_) | Self::Async(_))
    }

    /// A per-request decision made by a synchronous closure.
    pub fn sync(
        f: impl Fn(&RequestContext) -> Result<bool, String> + Send + Sync + 'static,
    ) -> Self {
        RatIssuance::Sync(Arc::new(f))
    }

    /// A per-request decision made by an asynchronous closure.
    pub fn from_async<F, Fut>(f: F) -> Self
    where
        F: Fn(RequestContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<bool, String>> + Send + 'static,
    {
        RatIssuance::Async(Arc::new(move |ctx| -> BoxFuture<_> { Box::pin(f(ctx)) }))
    }

    /// Makes the decision for one request.
    pub async fn decide(&self, ctx: &RequestContext) -> Result<bool, String> {
        match self {
            RatIssuance::Always => Ok(true),
            RatIssuance::Never => Ok(false),
            RatIssuance::Sync(f) => f(ctx),
            RatIssuance::Async(f) => f(ctx.clone()).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn sync_and_async_policies_change_properties() {
        let force = sync_policy(|call| {
            call.properties
                .insert("client_name".into(), json!("forced"));
            Ok(())
        });
        let later = async_policy(|mut call: PolicyCall| async move {
            call.registration_access_token_policies = Some(vec!["other".into()]);
            Ok(call)
        });
        let mut call = PolicyCall::default();
        force.apply(&mut call).await.unwrap();
        later.apply(&mut call).await.unwrap();
        assert_eq!(call.properties["client_name"], json!("forced"));
        assert_eq!(
            call.registration_access_token_policies,
            Some(vec!["other".to_string()])
        );
    }

    #[tokio::test]
    async fn rejection_is_returned() {
        let p = sync_policy(|_| Err(PolicyError::Reject("no".into())));
        let mut call = PolicyCall::default();
        assert_eq!(
            p.apply(&mut call).await,
            Err(PolicyError::Reject("no".into()))
        );
    }

    #[tokio::test]
    async fn issuance_decisions() {
        let ctx = RequestContext {
            method: "POST".into(),
            ..Default::default()
        };
        assert!(RatIssuance::Always.decide(&ctx).await.unwrap());
        assert!(!RatIssuance::Never.decide(&ctx).await.unwrap());
        assert!(
            RatIssuance::sync(|c| Ok(c.method == "POST"))
                .decide(&ctx)
                .await
                .unwrap()
        );
        let a = RatIssuance::from_async(|_| async { Err("boom".to_string()) });
        assert!(a.decide(&ctx).await.is_err());
    }

    #[test]
    fn unknown_policy_names() {
        let mut set = PolicySet::default();
        set.insert("a", sync_policy(|_| Ok(())));
        assert_eq!(set.first_unknown(&["a".into(), "b".into()]), Some("b"));
        assert_eq!(set.first_unknown(&["a".into()]), None);
    }
}

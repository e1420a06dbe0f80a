//! Wiring: configuration → store → registrar → router → listening socket.

pub(crate) mod conn;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dcr_core::Registrar;
use dcr_core::factory::Factory;
use dcr_core::policy::RatIssuance;
use dcr_core::registrar::PruneRules;
use dcr_core::settings::{InitialAccessTokenMode, RegistrarSettings};
use dcr_http::ratelimit::{OnBackendError, RedisBackend, RedisSettings};
use dcr_http::{AddressKeying, Limit, Rate, RateLimits};
use hyper_util::server::graceful::GracefulShutdown;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tower::{Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::{
    BackendErrorMode, ClientIdSetting, Config, IdFormat, InitialAccessTokenSetting,
    IssueRatSetting, RateConfig,
};
use crate::storage::OpenStore;

/// Builds the registrar the configuration describes, over `store`.
pub fn build_registrar(config: &Config, store: &OpenStore) -> anyhow::Result<Registrar> {
    let reg = &config.registration;
    let mut settings = RegistrarSettings::new(config.issuer.clone());
    settings.registration_endpoint = config.registration_endpoint();
    settings.management = reg.management;
    settings.rotate_registration_access_token = reg.rotate_registration_access_token;
    settings.initial_access_token = match &reg.initial_access_token {
        InitialAccessTokenSetting::Enabled(false) => InitialAccessTokenMode::Open,
        InitialAccessTokenSetting::Enabled(true) => InitialAccessTokenMode::Stored,
        InitialAccessTokenSetting::Static(token) => {
            InitialAccessTokenMode::static_token(token.expose())
        }
    };
    let id_factory = match &reg.client_id {
        ClientIdSetting::Format(IdFormat::Nanoid) => Factory::default_client_id(),
        ClientIdSetting::Format(IdFormat::Uuid) => Factory::uuid(),
        ClientIdSetting::Detailed {
            format,
            length,
            prefix,
        } => {
            let f = match format {
                IdFormat::Nanoid => Factory::nanoid(*length),
                IdFormat::Uuid => Factory::uuid(),
            };
            match prefix {
                Some(p) => f.with_prefix(p.clone()),
                None => f,
            }
        }
    };
    let issuance = match &reg.issue_registration_access_token {
        IssueRatSetting::Fixed(true) => RatIssuance::Always,
        IssueRatSetting::Fixed(false) => RatIssuance::Never,
        IssueRatSetting::Script(path) => crate::scripting::issuance_script(&config.resolve(path))?,
    };
    let fetcher = crate::cimd::fetcher(config)?;
    if config.fetch.allow_loopback_for_tests {
        tracing::warn!(
            "fetch.allow_loopback_for_tests is on: client documents may be fetched from loopback over http"
        );
    }
    let mut server_metadata = config.metadata.clone();
    server_metadata.allow_http_document_uris_for_tests = config.fetch.allow_loopback_for_tests;
    server_metadata.verify_jwks_uri_at_registration = config.fetch.verify_jwks_uri_at_registration;
    let mut builder = Registrar::builder(store.store.clone(), server_metadata, settings)
        .fetcher(std::sync::Arc::new(fetcher))
        .id_factory(id_factory)
        .secret_factory(Factory::random_base64url(reg.client_secret_bytes))
        .issue_registration_access_token(issuance);
    // Without stored initial access tokens, the policies serve `[cimd]` only.
    let stored_tokens = reg.initial_access_token == InitialAccessTokenSetting::Enabled(true);
    for (name, path) in reg.policies.iter().filter(|_| stored_tokens) {
        builder = builder.policy(
            name.clone(),
            crate::scripting::policy_script(name, &config.resolve(path), reg.body_limit)?,
        );
    }
    Ok(builder.build()?)
}

/// The rate limits of a configuration (none when `[rate_limit] enabled = false`): in this
/// process, or shared through Redis when `backend` names it. Call within a Tokio runtime.
pub fn rate_limits(config: &Config) -> anyhow::Result<RateLimits> {
    let rl = &config.rate_limit;
    if !rl.enabled {
        return Ok(RateLimits::default());
    }
    let rate = |r: RateConfig| Rate {
        burst: r.burst,
        per_second: r.per_second,
    };
    let backend = match rl.redis_url() {
        Some(url) => Some(
            RedisBackend::new(RedisSettings {
                url: url.to_owned(),
                key_prefix: rl.redis_key_prefix.clone(),
                timeout: Duration::from_millis(rl.redis_timeout_ms),
                on_error: match rl.on_backend_error {
                    BackendErrorMode::Allow => OnBackendError::Allow,
                    BackendErrorMode::Local => OnBackendError::Local,
                    BackendErrorMode::Deny => OnBackendError::Deny,
                },
            })
            // The URL may hold a password: the error names the key, not the value.
            .map_err(|e| anyhow::anyhow!("rate_limit.backend: not a usable Redis URL ({e})"))?,
        ),
        None => None,
    };
    if backend.is_some() {
        tracing::info!(
            on_backend_error = ?rl.on_backend_error,
            timeout_ms = rl.redis_timeout_ms,
            "rate limits are shared through Redis"
        );
    }
    let make = |name: &'static str, r: RateConfig| match &backend {
        Some(b) => b.limit(name, rate(r)),
        None => Limit::in_memory(rate(r)),
    };
    Ok(RateLimits {
        registration_per_ip: make("registration_per_ip", rl.registration_per_ip),
        registration_per_token: make("registration_per_token", rl.registration_per_token),
        registration_global: make("registration_global", rl.registration_global),
        management_per_client: make("management_per_client", rl.management_per_client),
        management_invalid_token_per_ip: make(
            "management_invalid_token_per_ip",
            rl.management_invalid_token_per_ip,
        ),
        address_keying: AddressKeying::new(rl.ipv4_prefix, rl.ipv6_prefix)
            .context("rate_limit.ipv4_prefix, rate_limit.ipv6_prefix: at most 32 and 128")?,
        backend,
    })
}

/// The process-wide Prometheus recorder (installed on first use; `None` if another
/// recorder was installed first).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            const BUCKETS: &[f64] = &[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .and_then(|b| b.install_recorder())
                .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
                .ok()
        })
        .as_ref()
}

async fn render_metrics() -> Response {
    match prometheus() {
        Some(h) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            h.render(),
        )
            .into_response(),
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(serde_json::json!({
            "error": "server_error",
            "error_description": "the server could not complete the request",
        })),
    )
        .into_response()
}

/// The HTTP application of a configuration (served inside [`with_layers`]).
pub fn build_router(config: &Config, registrar: Registrar, limits: RateLimits) -> Router {
    let options = dcr_http::HttpOptions {
        registration_path: format!("{}{}", config.issuer_path(), config.registration.path),
        body_limit: config.registration.body_limit,
        discovery: true,
        discovery_extra: crate::config_cimd::discovery_extra(config),
        rate_limits: limits,
        trusted_proxies: config.trusted_proxy_nets().unwrap_or_default(),
        metrics: config.metrics.enabled,
        ..Default::default()
    };
    let mut app = if config.registration.enabled {
        dcr_http::router(registrar, options)
    } else {
        Router::new()
    };
    if config.metrics.enabled {
        let _ = prometheus();
        app = app.route("/metrics", get(render_metrics));
    }
    app
}

/// Request ids, logs without secrets, a request timeout and panic safety around `app`, as one
/// service around the whole router (a `Router::layer` would wrap every route in a boxed
/// service that axum clones on each request).
pub fn with_layers(
    app: Router,
    request_timeout: Duration,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
+ Clone
+ Send
+ Sync
+ 'static {
    let request_id = HeaderName::from_static("x-request-id");
    ServiceBuilder::new()
        .map_response(IntoResponse::into_response)
        // Outermost first: nothing below ever logs these headers.
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::PROXY_AUTHORIZATION,
            header::COOKIE,
        ]))
        .map_request(drop_unsafe_request_id)
        .layer(SetRequestIdLayer::new(request_id.clone(), RandomRequestId))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    // The path only: a query string may carry a token. Its own target, so
                    // that a filter can keep `dcr_server::app` lines without a span per request
                    // (the fields are only evaluated when the span is enabled).
                    tracing::info_span!(target: "dcr::request", "request",
                        request_id = %req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-"),
                        method = %req.method(), path = %req.uri().path())
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .service(app)
}

/// Generated request ids: random (version 4) UUIDs, as tower-http's `MakeRequestUuid` makes
/// them, but drawn from the thread's `rand` generator: `uuid` asks the kernel (a `getrandom`
/// system call) for every id, i.e. for every request.
#[derive(Debug, Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        HeaderValue::from_bytes(&uuid_v4(rand::random()))
            .ok()
            .map(RequestId::new)
    }
}

/// `bytes` as a version 4 UUID, hyphenated, in lower case (RFC 9562 §5.4).
fn uuid_v4(bytes: [u8; 16]) -> [u8; 36] {
    let mut out = [0; uuid::fmt::Hyphenated::LENGTH];
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut out);
    out
}

/// Removes a client's `x-request-id` unless it is one id of at most 64 characters of
/// `[A-Za-z0-9._:-]`: the id is logged and echoed, so anything else (spaces, braces, `=`,
/// non-text bytes) could forge log lines. A removed id is replaced by a generated one.
fn drop_unsafe_request_id(mut req: Request) -> Request {
    let headers = req.headers_mut();
    let mut ids = headers.get_all("x-request-id").iter();
    let safe = match (ids.next(), ids.next()) {
        (None, _) => return req,
        (Some(id), None) => {
            let id = id.as_bytes();
            (1..=64).contains(&id.len())
                && id
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        }
        (Some(_), Some(_)) => false,
    };
    if !safe {
        headers.remove("x-request-id");
    }
    req
}

/// A configured server, bound to its socket but not yet serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
    store: OpenStore,
    registrar: Registrar,
    limits: RateLimits,
    config: Config,
    admin: Option<crate::admin::AdminListener>,
}

impl Application {
    /// Opens the store, builds the registrar and binds the listening socket.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        Self::build_with_listener(config, listener).await
    }

    /// As [`Application::build`], but serves on `listener` (already bound) instead of
    /// binding `config.listen`: for callers that must know the address before the issuer.
    pub async fn build_with_listener(
        config: &Config,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let store = OpenStore::open(config).await?;
        let registrar = build_registrar(config, &store)?;
        for (token, policy) in registrar.tokens_with_unknown_policies().await? {
            tracing::warn!(iat_id = %token.id, label = ?token.label, policy = %policy,
                "stored initial access token names a policy that is not configured; registrations with it will fail");
        }
        let limits = rate_limits(config)?;
        let router = build_router(config, registrar.clone(), limits.clone());
        let router = crate::admin_authn::tombstone_deletes(router, config, &store);
        crate::config_clients::configured_clients(config)?;
        let resolver = crate::cimd::shared_client_resolver(config, &store, &registrar, &limits)?;
        let admin = crate::admin::AdminListener::bind(config, &store, resolver).await?;
        Ok(Self {
            listener,
            router,
            store,
            registrar,
            limits,
            config: config.clone(),
            admin,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The bound address of the admin listener, if one is configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|a| a.local_addr().ok())
    }

    /// The registrar the server runs.
    pub fn registrar(&self) -> &Registrar {
        &self.registrar
    }

    /// Serves until `shutdown` completes; then stops accepting, gives in-flight requests
    /// `limits.shutdown_grace_seconds` to finish, and closes the store.
    pub async fn run_until_stopped(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.local_addr()?;
        tracing::info!("listening on http://{addr}");
        let mut background = self.spawn_background();
        background.extend(self.admin.take().map(crate::admin::AdminListener::spawn));
        let limits = &self.config.limits;
        let builder = conn::connection_builder(limits);
        let app = with_layers(
            self.router.clone(),
            Duration::from_secs(limits.request_timeout_seconds),
        );
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let (stream, remote) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let connection =
                conn::serve_connection(&builder, &graceful, limits, stream, remote, app.clone());
            tokio::spawn(async move {
                connection.await;
                drop(permit);
            });
        }
        drop(self.listener);
        tracing::info!("shutting down: no new connections; finishing in-flight requests");
        let grace = Duration::from_secs(limits.shutdown_grace_seconds);
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_seconds = limits.shutdown_grace_seconds,
                "requests still in flight after the shutdown grace period; dropping them"
            );
        }
        for task in background {
            task.abort();
        }
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }

    /// Periodic work: metrics upkeep, rate limiter housekeeping, pruning.
    fn spawn_background(&self) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        let limits = self.limits.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                limits.housekeeping();
                if let Some(h) = prometheus() {
                    h.run_upkeep();
                }
            }
        }));
        let prune = &self.config.registration.prune;
        let rules = prune.rules();
        if prune.interval_seconds > 0 && rules != PruneRules::default() {
            let registrar = self.registrar.clone();
            let (config, store) = (self.config.clone(), self.store.clone());
            let every = Duration::from_secs(prune.interval_seconds);
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    match registrar.prune(rules, false).await {
                        Ok(gone) if !gone.is_empty() => {
                            crate::admin_authn::record_removed(&config, &store, &gone).await;
                            tracing::info!(count = gone.len(), "pruned unmanaged open clients");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "pruning failed"),
                    }
                }
            }));
        }
        tasks
    }
}
/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_version_4_uuids() {
        let id = super::uuid_v4([0xff; 16]);
        assert_eq!(&id, b"ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = super::uuid_v4([0; 16]);
        assert_eq!(&id, b"00000000-0000-4000-8000-000000000000");
        let id =
            super::uuid_v4(*b"\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef");
        assert_eq!(&id, b"01234567-89ab-4def-8123-456789abcdef");
    }
}

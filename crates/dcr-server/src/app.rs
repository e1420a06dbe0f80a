//! Wiring: configuration → store → registrar → router → listening socket.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Router;
use dcr_core::Registrar;
use dcr_core::factory::Factory;
use dcr_core::policy::RatIssuance;
use dcr_core::settings::{InitialAccessTokenMode, RegistrarSettings};
use tokio::net::TcpListener;

use crate::config::{
    ClientIdSetting, Config, IdFormat, InitialAccessTokenSetting, IssueRatSetting,
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
        InitialAccessTokenSetting::Static(token) => InitialAccessTokenMode::static_token(token),
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
    let fetcher = dcr_fetch::Fetcher::new(dcr_fetch::FetcherConfig {
        connect_timeout: std::time::Duration::from_millis(config.fetch.connect_timeout_ms),
        timeout: std::time::Duration::from_millis(config.fetch.timeout_ms),
        max_body_bytes: config.fetch.max_body_bytes,
        allow_loopback_for_tests: config.fetch.allow_loopback_for_tests,
    })?;
    if config.fetch.allow_loopback_for_tests {
        tracing::warn!(
            "fetch.allow_loopback_for_tests is on: client documents may be fetched from loopback over http"
        );
    }
    let mut server_metadata = config.metadata.clone();
    server_metadata.allow_http_document_uris_for_tests = config.fetch.allow_loopback_for_tests;
    let mut builder = Registrar::builder(store.store.clone(), server_metadata, settings)
        .fetcher(std::sync::Arc::new(fetcher))
        .id_factory(id_factory)
        .secret_factory(Factory::random_base64url(reg.client_secret_bytes))
        .issue_registration_access_token(issuance);
    for (name, path) in &reg.policies {
        builder = builder.policy(
            name.clone(),
            crate::scripting::policy_script(name, &config.resolve(path))?,
        );
    }
    Ok(builder.build()?)
}

/// The HTTP application of a configuration.
pub fn build_router(config: &Config, registrar: Registrar) -> Router {
    let options = dcr_http::HttpOptions {
        registration_path: format!("{}{}", config.issuer_path(), config.registration.path),
        body_limit: config.registration.body_limit,
        discovery: true,
        discovery_extra: config.discovery.clone(),
    };
    if config.registration.enabled {
        dcr_http::router(registrar, options)
    } else {
        Router::new()
    }
}

/// A configured server, bound to its socket but not yet serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
    store: OpenStore,
    registrar: Registrar,
}

impl Application {
    /// Opens the store, builds the registrar and binds the listening socket.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let (store, registrar, router) = Self::prepare(config).await?;
        let listener = TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        Ok(Self {
            listener,
            router,
            store,
            registrar,
        })
    }

    /// As [`Application::build`], but serves on `listener` (already bound) instead of
    /// binding `config.listen`: for callers that must know the address before the issuer.
    pub async fn build_with_listener(
        config: &Config,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let (store, registrar, router) = Self::prepare(config).await?;
        Ok(Self {
            listener,
            router,
            store,
            registrar,
        })
    }

    async fn prepare(config: &Config) -> anyhow::Result<(OpenStore, Registrar, Router)> {
        let store = OpenStore::open(config).await?;
        let registrar = build_registrar(config, &store)?;
        for (token, policy) in registrar.tokens_with_unknown_policies().await? {
            tracing::warn!(iat_id = %token.id, label = ?token.label, policy = %policy,
                "stored initial access token names a policy that is not configured; registrations with it will fail");
        }
        let router = build_router(config, registrar.clone());
        Ok((store, registrar, router))
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The registrar the server runs.
    pub fn registrar(&self) -> &Registrar {
        &self.registrar
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests and closes the store.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.local_addr()?;
        tracing::info!("listening on http://{addr}");
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await?;
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
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

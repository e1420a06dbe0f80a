//! A client's own web server for the self-test: its metadata document and JWKS over HTTPS on
//! loopback, with a certificate from a CA made here (trusted through dcr's
//! `[fetch] extra_root_certificates`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// An HTTPS origin serving JSON documents by path.
pub struct Origin {
    /// `https://127.0.0.1:PORT`.
    pub base: String,
    /// The CA's certificate (PEM), for `[fetch] extra_root_certificates`.
    pub ca_pem: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(docs): State<Arc<HashMap<String, Value>>>, req: Request) -> Response {
    match docs.get(req.uri().path()) {
        Some(doc) => axum::Json(doc.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

impl Origin {
    /// Serves the documents `content(base)` returns (path → JSON), `base` being the origin.
    pub async fn start(
        content: impl FnOnce(&str) -> HashMap<String, Value>,
    ) -> anyhow::Result<Self> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "authorization_server example CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
        let leaf_key = KeyPair::generate()?;
        let leaf =
            CertificateParams::new(vec!["127.0.0.1".to_owned()])?.signed_by(&leaf_key, &ca)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )?;
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr().context("origin address")?;
        let base = format!("https://127.0.0.1:{}", addr.port());
        let app = Router::new()
            .fallback(answer)
            .with_state(Arc::new(content(&base)));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = TowerToHyperService::new(tower::ServiceExt::map_request(
                        app,
                        |req: Request<hyper::body::Incoming>| req.map(Body::new),
                    ));
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(Self {
            base,
            ca_pem: ca.pem(),
            task,
        })
    }
}

//! A real HTTPS server on loopback with a certificate from a CA the test generates: the
//! publisher of client metadata documents in the cimd tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// What the origin answers on one path.
#[derive(Debug, Clone)]
pub struct Served {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Option<Duration>,
}

impl Served {
    /// A JSON document with an optional `Cache-Control`.
    pub fn json(doc: &Value, cache_control: Option<&str>) -> Self {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(cc) = cache_control {
            headers.push(("cache-control".to_owned(), cc.to_owned()));
        }
        Self {
            status: 200,
            headers,
            body: doc.to_string().into_bytes(),
            delay: None,
        }
    }
}

#[derive(Default)]
struct Content {
    served: HashMap<String, Served>,
    hits: HashMap<String, usize>,
}

/// The running origin.
pub struct Origin {
    pub addr: SocketAddr,
    /// The test CA's certificate (PEM).
    pub ca_pem: String,
    content: Arc<Mutex<Content>>,
    task: JoinHandle<()>,
}

async fn answer(State(content): State<Arc<Mutex<Content>>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let served = {
        let mut c = content.lock().unwrap();
        *c.hits.entry(path.clone()).or_default() += 1;
        c.served.get(&path).cloned()
    };
    let Some(s) = served else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Some(d) = s.delay {
        tokio::time::sleep(d).await;
    }
    let mut res = Response::new(Body::from(s.body));
    *res.status_mut() = StatusCode::from_u16(s.status).unwrap();
    for (k, v) in s.headers {
        res.headers_mut().insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(&v).unwrap(),
        );
    }
    res
}

impl Origin {
    /// Generates a CA and a certificate for `localhost` / `127.0.0.1`, and serves HTTPS.
    pub async fn start() -> Self {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "dcr test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let content = Arc::new(Mutex::new(Content::default()));
        let app = Router::new().fallback(answer).with_state(content.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
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
        Self {
            addr,
            ca_pem: ca.pem(),
            content,
            task,
        }
    }

    /// The absolute URL of `path` on this origin.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    /// Serves `served` at `path`.
    pub fn serve(&self, path: &str, served: Served) {
        self.content
            .lock()
            .unwrap()
            .served
            .insert(path.to_owned(), served);
    }

    /// How many requests `path` received.
    pub fn hits(&self, path: &str) -> usize {
        self.content
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

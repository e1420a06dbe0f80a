//! `loadgen`: the load generator of the dcr benchmark, and the fixed-response "ceiling" server.
//!
//! - `loadgen ceiling`: a hyper hello-world that answers every request with a fixed 201 JSON
//!   body the size of a registration response: the most an HTTP/1.1 server can do here.
//! - `loadgen run`: drives one scenario (`register`, `read`, `update`, `mixed`) against a
//!   registration endpoint over keep-alive HTTP/1.1 connections (one per concurrent worker),
//!   warms up, measures, and prints one Markdown table row (or the header with `--header`).
//!   `resolve-registered` and `resolve-document` drive dcr's admin listener instead, as do
//!   `authenticate-basic` and `authenticate-jwt` (`POST /clients/authenticate`).
//! - `loadgen origin`: an HTTPS publisher of one Client ID Metadata Document (test CA).

mod origin;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

/// The client metadata every benchmark registration sends: a typical confidential web client.
const METADATA: &str = r#""redirect_uris":["https://app.example.com/callback","https://app.example.com/silent"],"client_name":"Benchmark App","grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"client_secret_basic","contacts":["ops@example.com"]"#;

#[derive(Debug, Parser)]
#[command(name = "loadgen", about = "dcr benchmark load generator")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serves a fixed 201 JSON response to every request (the ceiling).
    Ceiling {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Size of the response body in bytes.
        #[arg(long, default_value_t = 620)]
        body_bytes: usize,
    },
    /// Runs one scenario and prints one Markdown table row.
    Run(RunArgs),
    /// Prints the Markdown table header.
    Header,
    /// Serves one Client ID Metadata Document over HTTPS (a CA generated at start).
    Origin {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Where to write the CA certificate (PEM).
        #[arg(long)]
        ca_out: std::path::PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Every request registers a client (POST).
    Register,
    /// GET of pre-registered clients with their registration access tokens, round-robin.
    Read,
    /// PUT of the full metadata of pre-registered clients.
    Update,
    /// 20% register, 70% read, 10% update.
    Mixed,
    /// GET /clients/{id} of pre-registered clients on the admin listener, round-robin.
    ResolveRegistered,
    /// GET /clients/{--document-url} on the admin listener (a cached metadata document).
    ResolveDocument,
    /// POST /clients/authenticate on the admin listener: client_secret_basic of
    /// pre-registered clients, round-robin.
    AuthenticateBasic,
    /// POST /clients/authenticate on the admin listener: private_key_jwt of pre-registered
    /// clients (an Ed25519 key in their `jwks`), a freshly signed assertion per request.
    AuthenticateJwt,
}

#[derive(Debug, Clone, clap::Args)]
struct RunArgs {
    /// Base URL of the server (`http://127.0.0.1:PORT`). Several, comma-separated, for
    /// instances sharing one store: worker `n` sets up its clients on instance `n mod k` and,
    /// with more than one instance, sends its measured requests to the next one, so every
    /// read, update or authentication crosses from one instance to another.
    #[arg(long, value_delimiter = ',', required = true)]
    url: Vec<String>,
    /// Path of the registration endpoint.
    #[arg(long, default_value = "/reg")]
    path: String,
    /// The scenario.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Concurrent connections (one request in flight on each).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Warm-up seconds (not measured).
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Measured seconds.
    #[arg(long, default_value_t = 15.0)]
    duration: f64,
    /// Pre-registered clients per connection for read, update and mixed.
    #[arg(long, default_value_t = 4)]
    clients_per_conn: usize,
    /// Labels printed in the row: server, store, and a note (e.g. "rotate", "1M stored").
    #[arg(long, default_value = "dcr")]
    server: String,
    #[arg(long, default_value = "memory")]
    store: String,
    #[arg(long, default_value = "")]
    note: String,
    /// Exit with status 2 when any request failed (for CI smoke runs).
    #[arg(long)]
    fail_on_error: bool,
    /// The admin listener (`http://127.0.0.1:PORT`), for the resolve scenarios.
    #[arg(long)]
    admin_url: Option<String>,
    /// The admin token, for the resolve scenarios.
    #[arg(long, default_value = "")]
    admin_token: String,
    /// The metadata document URL resolved by `resolve-document`.
    #[arg(long, default_value = "")]
    document_url: String,
    /// The `aud` of the assertions of `authenticate-jwt` (an audience dcr accepts: its issuer).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    audience: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Header => {
            println!(
                "| scenario | server | store | note | conc. | req/s | p50 ms | p99 ms | p99.9 ms | errors |"
            );
            println!("|---|---|---|---|---:|---:|---:|---:|---:|---:|");
            Ok(())
        }
        Cmd::Origin { listen, ca_out } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(origin::origin(listen, &ca_out)),
        Cmd::Ceiling { listen, body_bytes } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(ceiling(listen, body_bytes)),
        Cmd::Run(args) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let fail = args.fail_on_error;
            let errors = rt.block_on(run(args))?;
            if fail && errors > 0 {
                eprintln!("{errors} requests failed");
                std::process::exit(2);
            }
            Ok(())
        }
    }
}

// ===== ceiling =====

async fn ceiling(listen: SocketAddr, body_bytes: usize) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    let mut body = String::from(
        r#"{"client_id":"AAAAAAAAAAAAAAAAAAAAA","registration_access_token":"BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB","pad":""#,
    );
    while body.len() + 2 < body_bytes {
        body.push('x');
    }
    body.push_str("\"}");
    let body = Bytes::from(body);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let body = body.clone();
                async move {
                    // Read the request body so keep-alive works for POST and PUT.
                    let _ = req.into_body().collect().await;
                    let mut res = Response::new(Full::new(body));
                    *res.status_mut() = StatusCode::CREATED;
                    res.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(res)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

// ===== load =====

/// A client a worker owns: its id, its current registration access token, its update body.
struct Owned {
    id: String,
    /// Its `client_secret` (none for `private_key_jwt`).
    secret: Option<String>,
    rat: String,
    uri_path: String,
    update_body: Bytes,
}

struct Worker {
    /// Admin paths resolved round-robin, and the admin token (resolve scenarios).
    resolve_paths: Vec<String>,
    admin_token: String,
    /// The signing key of `authenticate-jwt` and the audience of its assertions.
    jwt: Option<(Arc<EncodingKey>, String)>,
    conn: SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    host: String,
    reg_path: String,
    clients: Vec<Owned>,
    cursor: usize,
    rng: u64,
}

struct Tally {
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

enum Op {
    Register,
    Read,
    Update,
    /// GET of an admin path with the admin token.
    Resolve,
    /// POST /clients/authenticate with the admin token.
    Authenticate,
}

impl Worker {
    fn next_rand(&mut self) -> u64 {
        // xorshift64: enough to pick operations.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Sends one request; `Ok(Some(body))` on a 2xx, `Ok(None)` on another status.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Bytes>,
    ) -> anyhow::Result<Option<Bytes>> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.host);
        if let Some(t) = token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(b))?,
            None => req.body(Full::new(Bytes::new()))?,
        };
        if self.conn.ready().await.is_err() {
            self.conn = connect(self.addr).await?;
        }
        let res = match self.conn.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                self.conn = connect(self.addr).await?;
                return Err(e.into());
            }
        };
        let ok = res.status().is_success();
        let bytes = res.into_body().collect().await?.to_bytes();
        Ok(ok.then_some(bytes))
    }

    /// Registers a client; returns it when the response carried what read and update need.
    async fn register(&mut self) -> anyhow::Result<Option<Owned>> {
        self.register_with(METADATA).await
    }

    /// Registers a client with `metadata` (JSON members without braces).
    async fn register_with(&mut self, metadata: &str) -> anyhow::Result<Option<Owned>> {
        let body = Bytes::from(format!("{{{metadata}}}"));
        let path = self.reg_path.clone();
        let Some(res) = self.send(Method::POST, &path, None, Some(body)).await? else {
            return Ok(None);
        };
        let v: Value = serde_json::from_slice(&res)?;
        let (Some(id), Some(rat)) = (
            v["client_id"].as_str(),
            v["registration_access_token"].as_str(),
        ) else {
            return Ok(None);
        };
        Ok(Some(Owned {
            uri_path: format!("{}/{}", self.reg_path, id),
            update_body: Bytes::from(format!("{{\"client_id\":\"{id}\",{METADATA}}}")),
            id: id.to_owned(),
            secret: v["client_secret"].as_str().map(str::to_owned),
            rat: rat.to_owned(),
        }))
    }

    async fn one(&mut self, op: &Op) -> anyhow::Result<bool> {
        match op {
            Op::Register => Ok(self.register().await?.is_some()),
            Op::Read => {
                let i = self.cursor % self.clients.len();
                self.cursor = self.cursor.wrapping_add(1);
                let (path, rat) = (
                    self.clients[i].uri_path.clone(),
                    self.clients[i].rat.clone(),
                );
                Ok(self
                    .send(Method::GET, &path, Some(&rat), None)
                    .await?
                    .is_some())
            }
            Op::Resolve => {
                let i = self.cursor % self.resolve_paths.len();
                self.cursor = self.cursor.wrapping_add(1);
                let (path, token) = (self.resolve_paths[i].clone(), self.admin_token.clone());
                Ok(self
                    .send(Method::GET, &path, Some(&token), None)
                    .await?
                    .is_some())
            }
            Op::Authenticate => {
                let i = self.cursor % self.clients.len();
                self.cursor = self.cursor.wrapping_add(1);
                let body = self.authenticate_body(i)?;
                let token = self.admin_token.clone();
                let Some(res) = self
                    .send(
                        Method::POST,
                        "/clients/authenticate",
                        Some(&token),
                        Some(body),
                    )
                    .await?
                else {
                    return Ok(false);
                };
                let v: Value = serde_json::from_slice(&res)?;
                Ok(v["client_id"].as_str() == Some(self.clients[i].id.as_str()))
            }
            Op::Update => {
                let i = self.cursor % self.clients.len();
                self.cursor = self.cursor.wrapping_add(1);
                let c = &self.clients[i];
                let (path, rat, body) = (c.uri_path.clone(), c.rat.clone(), c.update_body.clone());
                let Some(res) = self
                    .send(Method::PUT, &path, Some(&rat), Some(body))
                    .await?
                else {
                    return Ok(false);
                };
                // With rotation the response carries the next token.
                let v: Value = serde_json::from_slice(&res)?;
                if let Some(new) = v["registration_access_token"].as_str() {
                    if v["client_id"].as_str() != Some(self.clients[i].id.as_str()) {
                        return Ok(false);
                    }
                    self.clients[i].rat = new.to_owned();
                }
                Ok(true)
            }
        }
    }

    /// The admin API body that authenticates client `i`: its Basic header, or a fresh
    /// `private_key_jwt` assertion (a new `jti` each time).
    fn authenticate_body(&mut self, i: usize) -> anyhow::Result<Bytes> {
        let id = self.clients[i].id.clone();
        let jti = format!("{:016x}{:016x}", self.next_rand(), self.next_rand());
        let body = match (&self.jwt, &self.clients[i].secret) {
            (Some((key, audience)), _) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_secs();
                let claims = serde_json::json!({
                    "iss": id, "sub": id, "aud": audience, "iat": now, "exp": now + 60, "jti": jti,
                });
                let mut header = Header::new(Algorithm::EdDSA);
                header.kid = Some("bench".to_owned());
                let assertion = jsonwebtoken::encode(&header, &claims, key)?;
                serde_json::json!({
                    "authorization": null,
                    "params": {
                        "grant_type": "client_credentials",
                        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                        "client_assertion": assertion,
                    },
                })
            }
            (None, Some(secret)) => serde_json::json!({
                // Ids and secrets are URL-safe: form-urlencoding (RFC 6749 §2.3.1) leaves them.
                "authorization": format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
                "params": {"grant_type": "client_credentials"},
            }),
            (None, None) => bail!("client {id} has no secret"),
        };
        Ok(Bytes::from(body.to_string()))
    }

    async fn drive(mut self, scenario: Scenario, until: Instant) -> (Self, Tally) {
        let mut tally = Tally {
            hist: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            ok: 0,
            errors: 0,
        };
        while Instant::now() < until {
            let op = match scenario {
                Scenario::Register => Op::Register,
                Scenario::Read => Op::Read,
                Scenario::Update => Op::Update,
                Scenario::ResolveRegistered | Scenario::ResolveDocument => Op::Resolve,
                Scenario::AuthenticateBasic | Scenario::AuthenticateJwt => Op::Authenticate,
                Scenario::Mixed => match self.next_rand() % 10 {
                    0 | 1 => Op::Register,
                    9 => Op::Update,
                    _ => Op::Read,
                },
            };
            let start = Instant::now();
            let ok = matches!(self.one(&op).await, Ok(true));
            let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
            tally.hist.saturating_record(micros.max(1));
            if ok {
                tally.ok += 1;
            } else {
                tally.errors += 1;
            }
        }
        (self, tally)
    }
}

async fn phase(
    workers: Vec<Worker>,
    scenario: Scenario,
    secs: f64,
) -> anyhow::Result<(Vec<Worker>, Tally, Duration)> {
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let mut set = tokio::task::JoinSet::new();
    for w in workers {
        set.spawn(w.drive(scenario, until));
    }
    let mut back = Vec::new();
    let mut total = Tally {
        hist: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        ok: 0,
        errors: 0,
    };
    while let Some(r) = set.join_next().await {
        let (w, t) = r?;
        total.hist.add(&t.hist)?;
        total.ok += t.ok;
        total.errors += t.errors;
        back.push(w);
    }
    Ok((back, total, start.elapsed()))
}

/// The socket address and `Host` of a `http://HOST:PORT` base URL.
fn server_addr(url: &str) -> anyhow::Result<(SocketAddr, String)> {
    let hostport = url
        .strip_prefix("http://")
        .context("--url must be http://HOST:PORT")?
        .trim_end_matches('/');
    let addr: SocketAddr = hostport
        .parse()
        .context("--url must name an IP and a port")?;
    Ok((addr, hostport.to_owned()))
}

async fn run(args: RunArgs) -> anyhow::Result<u64> {
    let servers = args
        .url
        .iter()
        .map(|u| server_addr(u))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut workers = Vec::new();
    for n in 0..args.concurrency {
        let (addr, host) = servers[n % servers.len()].clone();
        workers.push(Worker {
            conn: connect(addr).await?,
            addr,
            host,
            reg_path: args.path.clone(),
            clients: Vec::new(),
            cursor: 0,
            rng: 0x9E37_79B9_7F4A_7C15 ^ (n as u64 + 1),
            resolve_paths: Vec::new(),
            admin_token: args.admin_token.clone(),
            jwt: None,
        });
    }
    if args.scenario == Scenario::ResolveDocument {
        let segment = percent_encoding::utf8_percent_encode(
            &args.document_url,
            percent_encoding::NON_ALPHANUMERIC,
        );
        for w in &mut workers {
            w.resolve_paths.push(format!("/clients/{segment}"));
        }
    }
    if args.scenario == Scenario::AuthenticateJwt {
        // One Ed25519 key; every client registers its public half in `jwks`.
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
        let x = URL_SAFE_NO_PAD.encode(pair.public_key_raw());
        let metadata = format!(
            r#""redirect_uris":["https://app.example.com/callback"],"client_name":"Benchmark service","token_endpoint_auth_method":"private_key_jwt","jwks":{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"bench","alg":"EdDSA","x":"{x}"}}]}}"#
        );
        let key = Arc::new(EncodingKey::from_ed_der(&pair.serialize_der()));
        for w in &mut workers {
            w.jwt = Some((key.clone(), args.audience.clone()));
            for _ in 0..args.clients_per_conn {
                match w.register_with(&metadata).await? {
                    Some(c) => w.clients.push(c),
                    None => bail!("setup: registration of a private_key_jwt client failed"),
                }
            }
        }
    } else if !matches!(
        args.scenario,
        Scenario::Register | Scenario::ResolveDocument
    ) {
        for w in &mut workers {
            for _ in 0..args.clients_per_conn {
                match w.register().await? {
                    Some(c) => w.clients.push(c),
                    None => bail!("setup: registration of a client to read/update failed"),
                }
            }
        }
    }
    if servers.len() > 1 {
        // Measured requests go to another instance than the one that set the clients up.
        for (n, w) in workers.iter_mut().enumerate() {
            let (addr, host) = servers[(n + 1) % servers.len()].clone();
            w.conn = connect(addr).await?;
            w.addr = addr;
            w.host = host;
        }
    }
    if matches!(
        args.scenario,
        Scenario::ResolveRegistered
            | Scenario::ResolveDocument
            | Scenario::AuthenticateBasic
            | Scenario::AuthenticateJwt
    ) {
        let admin = args
            .admin_url
            .as_deref()
            .and_then(|u| u.strip_prefix("http://"))
            .context("the admin scenarios need --admin-url http://HOST:PORT")?
            .trim_end_matches('/')
            .to_owned();
        let admin_addr: SocketAddr = admin
            .parse()
            .context("--admin-url must name an IP and a port")?;
        for w in &mut workers {
            let ids: Vec<String> = w.clients.iter().map(|c| c.id.clone()).collect();
            w.resolve_paths
                .extend(ids.into_iter().map(|id| format!("/clients/{id}")));
            w.conn = connect(admin_addr).await?;
            w.addr = admin_addr;
            w.host.clone_from(&admin);
        }
    }
    let (workers, _, _) = phase(workers, args.scenario, args.warmup).await?;
    let (_, tally, elapsed) = phase(workers, args.scenario, args.duration).await?;
    let total = tally.ok + tally.errors;
    let rps = total as f64 / elapsed.as_secs_f64();
    let ms = |q: f64| tally.hist.value_at_quantile(q) as f64 / 1000.0;
    let scenario = match args.scenario {
        Scenario::ResolveRegistered => "resolve-registered".to_owned(),
        Scenario::ResolveDocument => "resolve-document".to_owned(),
        Scenario::AuthenticateBasic => "authenticate-basic".to_owned(),
        Scenario::AuthenticateJwt => "authenticate-jwt".to_owned(),
        other => format!("{other:?}").to_lowercase(),
    };
    println!(
        "| {scenario} | {} | {} | {} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {} |",
        args.server,
        args.store,
        args.note,
        args.concurrency,
        rps,
        ms(0.5),
        ms(0.99),
        ms(0.999),
        tally.errors
    );
    Ok(tally.errors)
}

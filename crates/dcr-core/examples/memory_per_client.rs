//! Memory per stored client in the memory store: registers N clients (the documents of
//! `dcr serve --seed-clients`) through `Registrar::register` and prints the growth of VmRSS.
//!
//! `cargo run --release -p dcr-core --example memory_per_client -- 200000` (Linux only).
//!
//! With a second argument `reads`, instead registers 1,000 clients and then does N reads
//! (authorize + read + response serialisation) in `read_loop`, for
//! callgrind (Ir of N minus Ir of 1, per read). With `registers`, N registrations (with
//! response serialisation) of the same documents.

use std::sync::Arc;

use dcr_core::Registrar;
use dcr_core::context::RequestContext;
use dcr_core::metadata::ServerMetadata;
use dcr_core::seed::client_metadata as metadata;
use dcr_core::settings::RegistrarSettings;
use dcr_core::store::MemoryStore;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A registrar over a fresh memory store.
fn registrar() -> Registrar {
    Registrar::builder(
        Arc::new(MemoryStore::new()),
        ServerMetadata::default(),
        RegistrarSettings::new("http://127.0.0.1:8080"),
    )
    .build()
    .expect("registrar")
}

#[inline(never)]
async fn read_loop(registrar: &Registrar, clients: &[(String, String)], n: u64) -> usize {
    let mut bytes = 0;
    for i in 0..n {
        let (id, token) = &clients[i as usize % clients.len()];
        let authorized = registrar
            .authorize(id, Some(token))
            .await
            .expect("authorize");
        let response = registrar.read(authorized);
        bytes += response.to_json_bytes().len();
    }
    bytes
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    if std::env::args().nth(2).as_deref() == Some("registers") {
        let registrar = registrar();
        let docs: Vec<_> = (0..n).map(metadata).collect();
        let start = std::time::Instant::now();
        let mut bytes = 0;
        for doc in docs {
            let r = registrar
                .register(RequestContext::default(), None, doc)
                .await
                .expect("register");
            bytes += r.to_json_bytes().len();
        }
        let ns = start.elapsed().as_nanos() / u128::from(n.max(1));
        println!("{n} registrations ({bytes} response bytes): {ns} ns per registration");
        return;
    }
    if std::env::args().nth(2).as_deref() == Some("reads") {
        let registrar = registrar();
        let mut clients = Vec::new();
        for i in 0..1_000 {
            let r = registrar
                .register(RequestContext::default(), None, metadata(i))
                .await
                .expect("register");
            let token = r.registration_access_token.expect("token");
            clients.push((r.metadata.client_id().to_owned(), token.expose().to_owned()));
        }
        let start = std::time::Instant::now();
        let bytes = read_loop(&registrar, &clients, n).await;
        let ns = start.elapsed().as_nanos() / u128::from(n.max(1));
        println!("{n} reads ({bytes} response bytes): {ns} ns per read");
        return;
    }
    let registrar = registrar();
    // Warm up (lazy statics, first allocations) before the baseline.
    for i in 0..100 {
        registrar
            .register(RequestContext::default(), None, metadata(u64::MAX - i))
            .await
            .expect("register");
    }
    let before = rss_kib();
    for i in 0..n {
        registrar
            .register(RequestContext::default(), None, metadata(i))
            .await
            .expect("register");
    }
    let after = rss_kib();
    println!(
        "{n} clients: VmRSS {before} KiB -> {after} KiB: {} B per client",
        (after - before) * 1024 / n
    );
}

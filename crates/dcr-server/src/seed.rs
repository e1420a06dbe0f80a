//! Fills a store with generated clients for benchmarks (`dcr serve --seed-clients N`, hidden).
//!
//! Every client goes through [`Registrar::register`](dcr_core::Registrar::register), exactly as a registration over HTTP would
//! (validation, secret, registration access token, store transaction), so the stored records are
//! the real thing; only the HTTP round trip is skipped. Many registrations are in flight at once,
//! so a store that commits in groups (SQLite) writes them in large transactions.

use std::time::Instant;

use anyhow::Context as _;
use dcr_core::Registrar;
use dcr_core::context::RequestContext;
use dcr_core::seed::client_metadata;

/// Registrations in flight at once while seeding.
const IN_FLIGHT: u64 = 512;

/// Registers `count` generated clients, printing progress on stderr.
pub async fn seed(registrar: &Registrar, count: u64) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0u64;
    let mut done = 0u64;
    while done < count {
        while next < count && next - done < IN_FLIGHT {
            let registrar = registrar.clone();
            let n = next;
            tasks.spawn(async move {
                let ctx = RequestContext {
                    method: "POST".into(),
                    path: "/seed".into(),
                    ..RequestContext::default()
                };
                registrar.register(ctx, None, client_metadata(n)).await
            });
            next += 1;
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        joined
            .context("seeding task")?
            .map_err(|e| anyhow::anyhow!("seeding: {}", e.description()))?;
        done += 1;
        if done.is_multiple_of(100_000) {
            eprintln!(
                "seeded {done} clients ({:.1}s)",
                start.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "seeded {count} clients in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

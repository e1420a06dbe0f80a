//! Pruning: removing abandoned open registrations (clients registered without an initial
//! access token and never managed or used), which open registration (RFC 7591 §3) lets
//! anyone create.

use super::Registrar;
use crate::audit::{self, AuditEvent};
use crate::error::RegistrationError;

/// How many clients [`Registrar::prune`] deletes between two yields to the runtime.
const PRUNE_BATCH: usize = 512;

/// Which abandoned open registrations [`Registrar::prune`] removes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneRules {
    /// Keep at most this many unmanaged open clients (the oldest go first).
    pub max_clients: Option<u64>,
    /// Remove unmanaged open clients registered longer ago than this.
    pub max_age_seconds: Option<i64>,
}

impl Registrar {
    /// Removes clients registered without an initial access token and never managed or used:
    /// the oldest beyond `rules.max_clients`, and those older than `rules.max_age_seconds`.
    /// With `dry_run`, only lists them. Returns `(client_id, created_at)`, oldest first.
    pub async fn prune(
        &self,
        rules: PruneRules,
        dry_run: bool,
    ) -> Result<Vec<(String, i64)>, RegistrationError> {
        let result = self.prune_with(rules, dry_run).await;
        if let Err(e) = &result {
            audit::report_failure("prune", e);
        }
        result
    }

    async fn prune_with(
        &self,
        rules: PruneRules,
        dry_run: bool,
    ) -> Result<Vec<(String, i64)>, RegistrationError> {
        let store = &self.inner.store;
        let now = self.inner.clock.now();
        let total = store.count_unmanaged_open_clients().await?;
        let excess = rules.max_clients.map_or(0, |max| total.saturating_sub(max));
        let excess = usize::try_from(excess).unwrap_or(usize::MAX);
        let cutoff = rules.max_age_seconds.map(|age| now.saturating_sub(age));
        let goes = |index: usize, created_at: i64| {
            index < excess || cutoff.is_some_and(|c| created_at < c)
        };
        if dry_run {
            // Both rules select a prefix of the oldest-first list: fetch until it ends.
            let mut limit = excess.saturating_add(256);
            return Ok(loop {
                let batch = store.unmanaged_open_clients(limit).await?;
                let full = batch.len() == limit;
                let chosen: Vec<(String, i64)> = batch
                    .into_iter()
                    .enumerate()
                    .take_while(|(i, (_, created))| goes(*i, *created))
                    .map(|(_, c)| c)
                    .collect();
                if chosen.len() < limit || !full {
                    break chosen;
                }
                limit = limit.saturating_mul(2);
            });
        }
        // Deleting: take the oldest in bounded batches and yield to the runtime between them,
        // so that pruning a huge backlog never holds the store (or the worker thread) for long.
        let mut pruned = Vec::new();
        // Position in the oldest-first list of the next candidate (what `goes` counts).
        let mut index = 0usize;
        loop {
            let batch = store.unmanaged_open_clients(PRUNE_BATCH).await?;
            let fetched = batch.len();
            let mut progressed = false;
            let mut stop = false;
            for (client_id, created_at) in batch {
                if !goes(index, created_at) {
                    stop = true;
                    break;
                }
                index += 1;
                // Re-checked by the store as it deletes: a client managed meanwhile stays (and
                // leaves the list too: progress). Its record is not decoded.
                progressed = true;
                if store
                    .delete_client(&client_id, crate::store::ClientDeletion::IfUnmanagedOpen)
                    .await?
                {
                    AuditEvent {
                        created_at: Some(created_at),
                        ..AuditEvent::new("prune").with_client_id(Some(&client_id))
                    }
                    .emit();
                    pruned.push((client_id, created_at));
                }
            }
            if stop || !progressed || fetched < PRUNE_BATCH {
                break;
            }
            tokio::task::yield_now().await;
        }
        if !pruned.is_empty() {
            metrics::counter!("dcr_clients_pruned_total").increment(pruned.len() as u64);
        }
        Ok(pruned)
    }
}

//! The client authentication records of the PostgreSQL store: assertion `jti`s, usage and
//! tombstones (`dcr_core::authn`).

use std::collections::HashMap;

use dcr_core::authn::{AssertionReplayStore, ClientUsageStore};
use dcr_core::store::StoreError;

use super::PgStore;
use crate::codec::backend;

#[async_trait::async_trait]
impl AssertionReplayStore for PgStore {
    async fn record_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM assertion_jtis WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        let done = sqlx::query(
            "INSERT INTO assertion_jtis (client_id, jti, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id, jti) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE assertion_jtis.expires_at <= $4",
        )
        .bind(client_id)
        .bind(jti)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait::async_trait]
impl ClientUsageStore for PgStore {
    async fn record_use(&self, client_id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO client_usage (client_id, last_used_at) \
             SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM clients WHERE client_id = $1) \
             ON CONFLICT (client_id) DO UPDATE SET \
             last_used_at = GREATEST(client_usage.last_used_at, excluded.last_used_at)",
        )
        .bind(client_id)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn last_used(&self, client_ids: &[String]) -> Result<HashMap<String, i64>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT client_id, last_used_at FROM client_usage WHERE client_id = ANY($1)",
        )
        .bind(client_ids)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().collect())
    }

    async fn add_tombstone(&self, client_id: &str, until: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM client_usage WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        sqlx::query(
            "INSERT INTO client_tombstones (client_id, until) VALUES ($1, $2) \
             ON CONFLICT (client_id) DO UPDATE SET until = excluded.until",
        )
        .bind(client_id)
        .bind(until)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn tombstoned(&self, client_id: &str, now: i64) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT 1::BIGINT FROM client_tombstones WHERE client_id = $1 AND until > $2",
        )
        .bind(client_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Ok(row.is_some())
    }

    async fn remove_tombstone(&self, client_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM client_tombstones WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

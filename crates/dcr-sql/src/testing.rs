//! Fresh PostgreSQL databases for tests, so that tests run in parallel without seeing each
//! other's rows. The server is named by `DCR_TEST_POSTGRES_URL`
//! (e.g. `postgres://postgres@127.0.0.1:5432/test`); its user must be allowed to create databases.

use std::io::Write as _;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use dcr_core::store::StoreError;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::codec::backend;
use crate::postgres::parse_url;

/// The environment variable naming the PostgreSQL server tests use.
pub const URL_VAR: &str = "DCR_TEST_POSTGRES_URL";

/// The URL in [`URL_VAR`], or `None` when it is unset or empty. Then it says, once per test
/// process and on the real stderr (libtest does not capture it), that the PostgreSQL tests
/// of `suite` were NOT run and how to run them with `command`.
pub fn admin_url(suite: &str, command: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            static SAID: Once = Once::new();
            SAID.call_once(|| {
                // One write, so it is not interleaved with libtest's lines.
                let message = format!(
                    "\n*** {suite}: PostgreSQL tests NOT RUN ({URL_VAR} is unset; they pass \
                     without checking anything).\n*** To run them: \
                     {URL_VAR}=postgres://postgres@127.0.0.1:5432/test {command}\n\n"
                );
                let _ = std::io::stderr().lock().write_all(message.as_bytes());
            });
            None
        }
    }
}

/// A database created for one test and dropped (with `FORCE`, closing its connections) when
/// this value is dropped, also when the test panics.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database `dcr_test_<unique>` on the server of `admin_url`, with an ICU
    /// `en-US` collation when the server supports it.
    pub async fn create(admin_url: &str) -> Result<Self, StoreError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!(
            "dcr_test_{}_{}_{}",
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = PgConnection::connect_with(&parse_url(admin_url)?)
            .await
            .map_err(backend)?;
        // A natural-language collation where the server has ICU (as most production databases
        // have), so code that silently relies on byte order fails here too.
        let icu = sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        )))
        .execute(&mut conn)
        .await;
        if icu.is_err() {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut conn)
                .await
                .map_err(backend)?;
        }
        conn.close().await.map_err(backend)?;
        let url = with_database(admin_url, &name);
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }

    /// The URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The name of this database.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connection options for this database.
    pub fn connect_options(&self) -> Result<PgConnectOptions, StoreError> {
        parse_url(&self.url)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        // Drop is synchronous and may run inside a runtime: use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(backend)?;
            rt.block_on(async move {
                let mut conn = PgConnection::connect_with(&parse_url(&admin_url)?)
                    .await
                    .map_err(backend)?;
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .map_err(backend)?;
                conn.close().await.map_err(backend)
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            let _ = writeln!(
                std::io::stderr(),
                "could not drop test database {}: {dropped:?}",
                self.name
            );
        }
    }
}

/// `url` with its database (path) replaced by `name`, keeping any `?query`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[host_start..]
        .find('/')
        .map_or(base.len(), |i| host_start + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_only() {
        assert_eq!(
            with_database("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}

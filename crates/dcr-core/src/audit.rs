//! Audit events: one structured `tracing` record (target `dcr::audit`) per registration,
//! update, deletion, prune or refusal, for operators to ship to their audit trail.
//!
//! Fields: `action` (`register`, `update`, `delete`, `read`, `prune`), `outcome` (`created`,
//! `updated`, `deleted`, `denied`, `failed`), `client_addr`, `client_id`, `iat_id`,
//! `iat_label` and, when refused, `error` (the RFC error code). Never a token or a secret.
//!
//! This is also the one place where the outcome of an operation is logged and counted: a
//! refusal counts `dcr_rejections_total{error}`, a store failure `dcr_store_errors_total`, and
//! a server error is logged with its whole chain of causes. Error conversions do neither.

use std::net::IpAddr;

use crate::RegistrationError;

/// One audited operation. Build it with [`AuditEvent::new`] and the `with_*` methods (or a
/// struct literal over [`Default`]), then [`AuditEvent::emit`] it.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditEvent<'a> {
    /// What was attempted: `register`, `update`, `delete`, `read`, `prune`.
    pub action: &'static str,
    /// Who asked (the client address as the HTTP layer resolved it).
    pub client_addr: Option<IpAddr>,
    /// The client concerned, when known.
    pub client_id: Option<&'a str>,
    /// The initial access token that authorised a registration (its public id).
    pub iat_id: Option<&'a str>,
    /// That token's label.
    pub iat_label: Option<&'a str>,
    /// Who acted when it was not a client over HTTP (`cli` for an operator's command).
    pub by: Option<&'static str>,
    /// When the client was registered (recorded when pruning).
    pub created_at: Option<i64>,
    /// Why it was refused, if it was.
    pub error: Option<&'a RegistrationError>,
}

impl<'a> AuditEvent<'a> {
    /// An event of `action` with nothing else known yet.
    pub fn new(action: &'static str) -> Self {
        Self {
            action,
            ..Self::default()
        }
    }

    /// Sets the requester's address.
    pub fn with_client_addr(mut self, addr: Option<IpAddr>) -> Self {
        self.client_addr = addr;
        self
    }

    /// Sets the client concerned.
    pub fn with_client_id(mut self, client_id: Option<&'a str>) -> Self {
        self.client_id = client_id;
        self
    }

    /// Records a refusal: `error`.
    pub fn with_error(mut self, error: &'a RegistrationError) -> Self {
        self.error = Some(error);
        self
    }

    /// Sets the outcome from `result`: its error, if any.
    pub fn with_result<T>(mut self, result: &'a Result<T, RegistrationError>) -> Self {
        self.error = result.as_ref().err();
        self
    }

    /// The outcome word of this event.
    pub fn outcome(&self) -> &'static str {
        match (self.error, self.action) {
            (Some(e), _) if e.is_server_error() => "failed",
            (Some(_), _) => "denied",
            (None, "register") => "created",
            (None, "update") => "updated",
            (None, "delete" | "prune") => "deleted",
            (None, _) => "allowed",
        }
    }

    /// Writes the event as a `dcr::audit` record; a refusal is also counted, and a server
    /// error logged with its causes.
    pub fn emit(&self) {
        // Field values are only evaluated when the record is enabled.
        let addr = || self.client_addr.map(tracing::field::display);
        let outcome = self.outcome();
        match self.error {
            Some(error) => {
                count_and_log(error);
                tracing::warn!(target: "dcr::audit", action = self.action, outcome,
                    client_addr = addr(), client_id = self.client_id, iat_id = self.iat_id,
                    iat_label = self.iat_label, by = self.by, created_at = self.created_at,
                    error = error.code(), "registration {} {}", self.action, outcome);
            }
            None => {
                tracing::info!(target: "dcr::audit", action = self.action, outcome,
                    client_addr = addr(), client_id = self.client_id, iat_id = self.iat_id,
                    iat_label = self.iat_label, by = self.by, created_at = self.created_at,
                    "registration {} {}", self.action, outcome);
            }
        }
    }
}

/// Counts a refusal (and a store failure) and logs a server error with its causes.
fn count_and_log(error: &RegistrationError) {
    metrics::counter!("dcr_rejections_total", "error" => error.code()).increment(1);
    if matches!(error, RegistrationError::Store(_)) {
        metrics::counter!("dcr_store_errors_total").increment(1);
    }
    if error.is_server_error() {
        tracing::error!(detail = %Chain(error), "request failed with a server error");
    } else {
        tracing::debug!(
            error = error.code(),
            description = error.description(),
            "request refused"
        );
    }
}

/// Reports a failure of an operation that is not audited per client (a prune run): a store
/// failure is counted, and the error logged with its causes.
pub fn report_failure(action: &'static str, error: &RegistrationError) {
    if matches!(error, RegistrationError::Store(_)) {
        metrics::counter!("dcr_store_errors_total").increment(1);
    }
    tracing::error!(action, detail = %Chain(error), "operation failed");
}

/// An error followed by each of its causes, joined with `": "` (a cause whose message already
/// ends the previous one is not repeated).
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut last = self.0.to_string();
        f.write_str(&last)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            let text = c.to_string();
            if !last.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            last = text;
            cause = c.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use metrics::{
        Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    use super::*;
    use crate::store::StoreError;

    /// Counts increments by metric name.
    #[derive(Default)]
    struct Counts(Mutex<Vec<(String, Arc<AtomicU64>)>>);

    struct Handle(Arc<AtomicU64>);

    impl CounterFn for Handle {
        fn increment(&self, value: u64) {
            self.0.fetch_add(value, Ordering::Relaxed);
        }
        fn absolute(&self, value: u64) {
            self.0.store(value, Ordering::Relaxed);
        }
    }

    impl Recorder for Counts {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let cell = Arc::new(AtomicU64::new(0));
            self.0
                .lock()
                .unwrap()
                .push((key.name().to_owned(), cell.clone()));
            Counter::from_arc(Arc::new(Handle(cell)))
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    impl Counts {
        fn total(&self, name: &str) -> u64 {
            let cells = self.0.lock().unwrap();
            cells
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, c)| c.load(Ordering::Relaxed))
                .sum()
        }
    }

    #[test]
    fn conversions_count_nothing_and_emitting_counts_once() {
        let counts = Counts::default();
        metrics::with_local_recorder(&counts, || {
            let err = RegistrationError::from(StoreError::backend("connection reset"));
            assert_eq!(counts.total("dcr_store_errors_total"), 0);
            assert_eq!(counts.total("dcr_rejections_total"), 0);
            AuditEvent::new("register").with_client_id(None).emit();
            assert_eq!(counts.total("dcr_rejections_total"), 0);
            let failed = Err::<(), _>(err);
            AuditEvent::new("register").with_result(&failed).emit();
            assert_eq!(counts.total("dcr_store_errors_total"), 1);
            assert_eq!(counts.total("dcr_rejections_total"), 1);
            let refused = Err::<(), _>(RegistrationError::InvalidRedirectUri("x".into()));
            AuditEvent::new("register").with_result(&refused).emit();
            assert_eq!(counts.total("dcr_store_errors_total"), 1);
            assert_eq!(counts.total("dcr_rejections_total"), 2);
        });
    }

    #[test]
    fn outcomes() {
        let store = RegistrationError::from(StoreError::backend("x"));
        let refused = RegistrationError::InvalidClientMetadata("x".into());
        let event = |action, error| AuditEvent {
            error,
            ..AuditEvent::new(action)
        };
        assert_eq!(event("register", Some(&store)).outcome(), "failed");
        assert_eq!(event("update", Some(&refused)).outcome(), "denied");
        assert_eq!(event("register", None).outcome(), "created");
        assert_eq!(event("prune", None).outcome(), "deleted");
        assert_eq!(event("read", None).outcome(), "allowed");
    }

    #[test]
    fn chains_name_every_cause() {
        let err = RegistrationError::from(StoreError::backend(std::io::Error::other("reset")));
        assert_eq!(
            Chain(&err).to_string(),
            "server_error: store: backend: reset"
        );
        let err = RegistrationError::server_caused_by("policy p", std::io::Error::other("boom"));
        assert_eq!(Chain(&err).to_string(), "server_error: policy p: boom");
    }
}

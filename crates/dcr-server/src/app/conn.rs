//! Connection deadlines: a connection that holds a slot without making requests is closed.
//!
//! A new connection must complete a request head within the header-read timeout, whatever
//! its protocol (before HTTP/1-or-2 detection too). While a request is in flight the deadline
//! is suspended (the request timeout bounds it); when the last one is answered, the
//! connection may stay idle for the idle timeout. Bytes that are not a complete request head
//! (a trickled head, HTTP/2 pings, window updates) never extend a deadline.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tower::{Service, ServiceExt as _};

use crate::config::LimitsConfig;

/// The HTTP/1 and HTTP/2 settings of every listener (public and admin): header size limits
/// and hyper's own header-read timer.
pub(crate) fn connection_builder(limits: &LimitsConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_seconds))
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// Serves one accepted connection with `app` (watched by `graceful`) until it ends, or until
/// it has made no request before its [`ConnDeadline`]; the returned future then completes,
/// which closes the socket. Requests carry the peer address as `ConnectInfo`.
pub(crate) fn serve_connection<S>(
    builder: &auto::Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    limits: &LimitsConfig,
    stream: TcpStream,
    remote: SocketAddr,
    app: S,
) -> impl Future<Output = ()> + Send + 'static
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    let _ = stream.set_nodelay(true);
    let deadline = ConnDeadline::new(
        Duration::from_secs(limits.header_read_timeout_seconds),
        Duration::from_secs(limits.idle_timeout_seconds),
    );
    let requests = deadline.clone();
    let service = TowerToHyperService::new(
        app.map_request(move |req: Request<hyper::body::Incoming>| {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ConnectInfo(remote));
            req
        })
        .map_future(move |response| {
            let in_flight = requests.begin();
            async move {
                let response = response.await;
                drop(in_flight);
                response
            }
        }),
    );
    let conn = graceful.watch(
        builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned(),
    );
    async move {
        tokio::select! {
            ended = conn => if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            },
            () = deadline.expired() => {
                tracing::debug!(%remote, "connection closed: no request before its deadline");
            }
        }
    }
}

/// The deadline of one connection (cloned into its service, which marks requests in flight).
#[derive(Clone)]
pub(crate) struct ConnDeadline {
    inner: Arc<Inner>,
}

struct Inner {
    idle_timeout: Duration,
    state: Mutex<State>,
    /// Signalled when the last request in flight has been answered.
    idle_again: Notify,
}

struct State {
    in_flight: usize,
    /// When the connection is closed if no request is in flight by then.
    deadline: Instant,
}

/// `timeout` from now (far in the future if that is not representable).
fn after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

impl ConnDeadline {
    /// A connection accepted now: its first request head is due within `head_timeout`;
    /// between requests it may stay idle for `idle_timeout`.
    pub(crate) fn new(head_timeout: Duration, idle_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                idle_timeout,
                state: Mutex::new(State {
                    in_flight: 0,
                    deadline: after(head_timeout),
                }),
                idle_again: Notify::new(),
            }),
        }
    }

    /// A request (its head complete) is in flight until the returned guard is dropped.
    pub(crate) fn begin(&self) -> InFlight {
        self.inner.state().in_flight += 1;
        InFlight(self.inner.clone())
    }

    /// Completes once the connection has had no request in flight until its deadline.
    pub(crate) async fn expired(&self) {
        loop {
            let (in_flight, deadline) = {
                let s = self.inner.state();
                (s.in_flight, s.deadline)
            };
            if in_flight > 0 {
                // `notify_one` keeps a permit if the request ended since the state was read.
                self.inner.idle_again.notified().await;
            } else if deadline <= Instant::now() {
                return;
            } else {
                // A request may begin and end meanwhile: the loop then sees the later deadline.
                tokio::time::sleep_until(deadline).await;
            }
        }
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Marks one request in flight on its connection.
pub(crate) struct InFlight(Arc<Inner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let idle = {
            let mut s = self.0.state();
            s.in_flight -= 1;
            if s.in_flight == 0 {
                s.deadline = after(self.0.idle_timeout);
            }
            s.in_flight == 0
        };
        if idle {
            self.0.idle_again.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_head_deadline_then_the_idle_deadline_apply_and_requests_suspend_them() {
        let d = ConnDeadline::new(Duration::from_secs(1), Duration::from_secs(5));
        let start = Instant::now();
        d.expired().await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));

        let d = ConnDeadline::new(Duration::from_secs(1), Duration::from_secs(5));
        let request = d.begin();
        let watcher = tokio::spawn({
            let d = d.clone();
            async move { d.expired().await }
        });
        // A request in flight for longer than both timeouts keeps the connection.
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!watcher.is_finished());
        let answered = Instant::now();
        drop(request);
        watcher.await.unwrap();
        assert_eq!(answered.elapsed(), Duration::from_secs(5));
    }
}

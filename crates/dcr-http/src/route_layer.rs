//! The one layer every route gets: `no-store` headers on registration responses and request
//! metrics, in a single service (each `Router::layer` wraps every route in one more boxed
//! service that axum clones per request).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use tower::{Layer, Service};

use crate::observe::RequestMetrics;

/// What a route's responses get.
#[derive(Debug, Clone)]
pub(crate) struct RouteLayer {
    /// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 7591 §3.2.1, RFC 7592 §3).
    pub(crate) no_store: bool,
    /// Where requests are counted and timed, when metrics are on.
    pub(crate) metrics: Option<Arc<RequestMetrics>>,
}

impl<S> Layer<S> for RouteLayer {
    type Service = RouteService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RouteService {
            inner,
            layer: self.clone(),
        }
    }
}

/// [`RouteLayer`] around a route.
#[derive(Debug, Clone)]
pub(crate) struct RouteService<S> {
    inner: S,
    layer: RouteLayer,
}

/// What a metered request remembers until its response: when it started, its method and route.
type Metered = (Instant, Method, MatchedPath);

impl<S> Service<Request> for RouteService<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RouteFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // Layered on the routes, so the matched route is always known.
        let metered = match (
            &self.layer.metrics,
            request.extensions().get::<MatchedPath>(),
        ) {
            (Some(_), Some(route)) => {
                Some((Instant::now(), request.method().clone(), route.clone()))
            }
            _ => None,
        };
        RouteFuture {
            inner: self.inner.call(request),
            layer: self.layer.clone(),
            metered,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`RouteService`].
    pub(crate) struct RouteFuture<F> {
        #[pin]
        inner: F,
        layer: RouteLayer,
        metered: Option<Metered>,
    }
}

impl<F, E> Future for RouteFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if this.layer.no_store {
            let headers = response.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        }
        if let (Some(metrics), Some((started, method, route))) =
            (&this.layer.metrics, this.metered.take())
        {
            metrics.record(
                &method,
                route.as_str(),
                response.status(),
                started.elapsed().as_secs_f64(),
            );
        }
        Poll::Ready(Ok(response))
    }
}

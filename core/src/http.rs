//! Serving HTTP to the outside with the limits a public listener needs, for every HTTP
//! server here (the node's, the devnet's, data transfer over libp2p).
//!
//! `axum::serve` sets no header read timeout and takes every connection offered: a thousand
//! clients that send half a header each hold a thousand connections forever (slowloris).
//! [`serve`] closes a connection whose request head has not arrived in
//! [`header_read_timeout`](ServerLimits::header_read_timeout) (idle keep-alive connections
//! included), fails a request body that stalls for
//! [`body_idle_timeout`](ServerLimits::body_idle_timeout), and holds at most
//! [`max_connections`](ServerLimits::max_connections) connections: further ones wait in
//! the listen backlog until one closes. Upgraded connections (WebSockets) are not timed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower_service::Service;

/// What one listener allows its clients.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerLimits {
    /// Time for a request head to arrive, from the moment the connection waits for one.
    pub header_read_timeout: Duration,
    /// Longest pause inside a request body.
    pub body_idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Largest request head (start line and headers).
    pub max_header_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(20),
            body_idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_header_bytes: 64 << 10,
        }
    }
}

impl ServerLimits {
    /// Closes connections whose request head takes longer than `t`.
    pub fn with_header_read_timeout(mut self, t: Duration) -> Self {
        self.header_read_timeout = t;
        self
    }

    /// Fails request bodies that pause longer than `t`.
    pub fn with_body_idle_timeout(mut self, t: Duration) -> Self {
        self.body_idle_timeout = t;
        self
    }

    /// Serves at most `n` connections at once.
    pub fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }
}

/// Serves `app` on `listener` until the listener ends (never, for a TCP listener).
pub async fn serve<L>(mut listener: L, app: axum::Router, limits: ServerLimits)
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        // Take a slot before accepting: over the limit, connections wait in the backlog.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (io, peer) = listener.accept().await;
        let (app, limits) = (app.clone(), limits.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let idle = limits.body_idle_timeout;
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let req = req.map(|body| Body::new(IdleTimeout::new(body, idle)));
                // A Router is always ready; calling it needs no poll_ready.
                app.clone().call(req)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(limits.max_header_bytes.max(8192));
            let conn = builder
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(?peer, error = %e, "HTTP connection ended");
            }
        });
    }
}

/// A request body that fails when no frame comes for `idle`.
struct IdleTimeout {
    inner: Incoming,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// The clock starts at the first read: a handler may look at the head first, and
    /// hyper only sends `100 Continue` then.
    started: bool,
}

impl IdleTimeout {
    fn new(inner: Incoming, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            started: false,
        }
    }
}

/// Why a request body was cut.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("request body stalled for {0:?}")]
    Stalled(Duration),
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
}

impl HttpBody for IdleTimeout {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if !this.started {
            this.started = true;
            let deadline = tokio::time::Instant::now() + this.idle;
            this.timer.as_mut().reset(deadline);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            let deadline = tokio::time::Instant::now() + this.idle;
            this.timer.as_mut().reset(deadline);
            return Poll::Ready(frame.map(|f| f.map_err(BodyError::from)));
        }
        ready!(this.timer.as_mut().poll(cx));
        Poll::Ready(Some(Err(BodyError::Stalled(this.idle))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

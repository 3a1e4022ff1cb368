//! The accept loop: what a TCP connection may cost before it has
//! authenticated.
//!
//! `axum::serve` gives hyper no timer, so hyper's header-read timeout never
//! fires and a client that sends half a request line holds its socket and
//! task forever (slowloris). Here each connection gets:
//! - `TCP_NODELAY` (a small frame goes out at once, not after Nagle's
//!   delay);
//! - a slot among [`Limits::max_connections`], held until the HTTP side
//!   ends (the upgrade, or the connection closing); with none free the
//!   socket is closed at once;
//! - hyper's header-read timeout ([`Limits::header_timeout`]), which also
//!   ends a keep-alive connection that sends nothing, so an idle
//!   unauthenticated socket is dropped.
//!
//! Upgraded WebSocket clients leave the slot and count against
//! `max_clients` instead.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// Largest request head hyper buffers (the handshake is a few hundred
/// bytes; hyper's default is ~400 KiB).
const MAX_HEAD: usize = 16 << 10;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` turns true, then lets the
/// open HTTP exchanges finish. `tap` sees each accepted socket after it is
/// set up (tests check its options there).
pub(crate) async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
    on_refused: impl Fn() + Send + Sync + 'static,
    mut tap: impl FnMut(&TcpStream) + Send,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            accepted = listener.accept() => accepted,
            // Reap finished connection tasks so the set stays small.
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) if transient(&e) => continue,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!(error = %e, "feed: accept failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            on_refused();
            drop(tcp);
            continue;
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "feed: cannot set TCP_NODELAY");
        }
        tap(&tcp);
        conns.spawn(connection(
            tcp,
            peer,
            app.clone(),
            limits,
            shutdown.clone(),
            slot,
        ));
    }
    // Open HTTP exchanges finish (each closes gracefully); upgraded clients
    // watch the same flag and close themselves.
    while conns.join_next().await.is_some() {}
    Ok(())
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: axum::Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
    slot: tokio::sync::OwnedSemaphorePermit,
) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        async move { tower_service::Service::call(&mut app, req).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD);
    let conn = builder
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => Some(r),
        _ = stopped(&mut shutdown) => None,
    };
    let result = match result {
        Some(r) => r,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::trace!(error = %e, "feed connection ended");
    }
    drop(slot);
}

/// Resolves when the flag turns true (or its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Errors that concern one connection only.
fn transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset | Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn every_accepted_socket_has_tcp_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop_tx, stop) = watch::channel(false);
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let limits = Limits {
            max_connections: 8,
            header_timeout: Duration::from_secs(5),
        };
        let record = seen.clone();
        let server = tokio::spawn(serve(
            listener,
            app,
            limits,
            stop,
            || {},
            move |tcp| {
                record.lock().unwrap().push(tcp.nodelay().unwrap());
            },
        ));
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        while seen.lock().unwrap().len() < 3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(*seen.lock().unwrap(), [true, true, true]);
        drop(clients);
        stop_tx.send(true).unwrap();
        server.await.unwrap().unwrap();
    }
}

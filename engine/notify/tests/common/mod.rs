//! A webhook receiver on loopback (axum) that verifies signatures, dedupes
//! by idempotency key and fails on request; and helpers to run a notifier
//! against it with short backoffs.
#![allow(dead_code)] // each test file uses its own part

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use candlewick_notify::webhook::{verify, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use candlewick_notify::{
    Notification, Notifier, NotifyConfig, Retry, Secret, Service, WebhookConfig,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const SECRET: &str = "s3cr3t-webhook-key-that-must-never-leak";

/// What the receiver answers.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The first this many requests get a 500.
    pub fail_first: usize,
    /// Every request gets this status (a permanent failure).
    pub always: Option<u16>,
    /// The first request gets a 429 with `Retry-After: N`.
    pub too_many_first: Option<u64>,
    /// The first request is answered (200) only after this long.
    pub slow_first: Option<Duration>,
    /// Unsigned requests are accepted (a chat service's webhook).
    pub unsigned: bool,
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub key: String,
    pub signature_ok: bool,
    pub status: u16,
    pub at: Instant,
    pub body: String,
}

#[derive(Debug, Default)]
pub struct Receiver {
    plan: Plan,
    requests: AtomicUsize,
    pub hits: Mutex<Vec<Hit>>,
    /// Key -> 2xx answers given for it (a deduping receiver acts on the first).
    pub accepted: Mutex<HashMap<String, usize>>,
}

impl Receiver {
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub fn accepted(&self) -> HashMap<String, usize> {
        self.accepted.lock().unwrap().clone()
    }
}

async fn hook(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    let n = r.requests.fetch_add(1, Ordering::SeqCst);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let key = header(IDEMPOTENCY_HEADER);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let signature_ok = verify(
        SECRET.as_bytes(),
        &header(TIMESTAMP_HEADER),
        &body,
        &header(SIGNATURE_HEADER),
        now,
        300,
    )
    .is_ok();
    let plan = &r.plan;
    let (status, retry_after) = if n < plan.fail_first {
        (500, None)
    } else if let Some(s) = plan.always {
        (s, None)
    } else if let (Some(secs), 0) = (plan.too_many_first, n) {
        (429, Some(secs))
    } else if !signature_ok && !plan.unsigned {
        (401, None)
    } else {
        (200, None)
    };
    if status == 200 {
        *r.accepted.lock().unwrap().entry(key.clone()).or_insert(0) += 1;
    }
    r.hits.lock().unwrap().push(Hit {
        key,
        signature_ok,
        status,
        at: Instant::now(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    // Acted on, then answered late (the sender may have given up by then).
    if let (Some(wait), 0) = (r.plan.slow_first, n) {
        tokio::time::sleep(wait).await;
    }
    let status = StatusCode::from_u16(status).unwrap();
    match retry_after {
        Some(secs) => (status, [("retry-after", secs.to_string())]).into_response(),
        None => status.into_response(),
    }
}

/// Serves `plan` on `addr` (port 0: any) until the returned task is aborted.
pub async fn receiver(addr: SocketAddr, plan: Plan) -> (Arc<Receiver>, SocketAddr, JoinHandle<()>) {
    let state = Arc::new(Receiver {
        plan,
        ..Receiver::default()
    });
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (state, addr, task)
}

/// A loopback port nothing listens on (bound, then released).
pub fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// One webhook to `addr` with quick retries: 10 ms doubling to 50 ms.
pub fn config(addr: SocketAddr, max_attempts: u32) -> NotifyConfig {
    let secret = Secret::new(SECRET, "test").unwrap();
    let mut hook = WebhookConfig::new("receiver", &format!("http://{addr}/hook"), secret);
    hook.max_attempts = max_attempts;
    hook.rate_per_min = 60_000.0;
    hook.timeout = Duration::from_secs(5);
    hook.retry = Retry {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
    };
    NotifyConfig {
        webhooks: vec![hook],
        drain: Duration::from_millis(200),
        ..NotifyConfig::default()
    }
}

/// A running notifier: its handle, its service, how to stop it.
pub struct Running {
    pub notifier: Notifier,
    pub service: Arc<Service>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), candlewick_notify::NotifyError>>,
}

impl Running {
    pub fn start(config: &NotifyConfig, outbox: &Path) -> Running {
        let (notifier, service) = candlewick_notify::start(config, outbox, false).unwrap();
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(service.clone().run(stop_rx));
        Running {
            notifier,
            service,
            stop,
            task,
        }
    }

    /// Stops it and waits (bounded) for the task; the outbox closes when
    /// the value is dropped.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the notifier stops within 30 s")
            .unwrap()
            .unwrap();
    }
}

/// `n` distinct engine notifications (ids `engine:start:I`).
pub fn events(n: i64) -> Vec<Notification> {
    (0..n)
        .map(|i| Notification::engine(i, false, i, "test"))
        .collect()
}

/// Waits until `done()` holds, failing the test after 30 s instead of
/// hanging.
pub async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

//! `candlewick run` with `[notify]` against a loopback webhook receiver,
//! and `candlewick notify list-failed` / `retry-failed`.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use candlewick_notify::webhook::{verify, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use candlewick_notify::{Outbox, Record};
use common::{candlewick, repo};

const SECRET: &str = "end-to-end-signing-key-0123456789";

/// (idempotency key, signature valid) per request.
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

async fn hook(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ok = verify(
        SECRET.as_bytes(),
        &h(TIMESTAMP_HEADER),
        &body,
        &h(SIGNATURE_HEADER),
        now,
        300,
    )
    .is_ok();
    seen.lock().unwrap().push((h(IDEMPOTENCY_HEADER), ok));
    StatusCode::NO_CONTENT
}

/// The embedded default without strategies (no plugin build needed),
/// with `[notify]` sending engine events to `url`.
fn config(url: &str) -> String {
    let default = std::fs::read_to_string(repo().join("config/default.toml")).unwrap();
    let mut text: String = default
        .lines()
        .filter(|l| !l.starts_with("[[strategies]]") && !l.starts_with("wasm = "))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(&format!(
        "\n[notify]\ndrain_s = 20\n[[notify.webhooks]]\nname = \"e2e\"\nurl = \"{url}\"\n\
         secret_env = \"CW_E2E_HOOK_SECRET\"\nevents = [\"engine\"]\nretry_initial_ms = 10\nretry_max_s = 0.1\n"
    ));
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sends_signed_engine_start_and_stop_to_a_webhook() {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        config(&format!("http://{addr}/hook")),
    )
    .unwrap();
    let cwd = dir.path().to_path_buf();
    let output = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_candlewick"))
                .args(["run", "--config", "c.toml", "--exit-at-end", "--speed", "0"])
                .args(["--listen", "127.0.0.1:0"])
                .current_dir(cwd)
                .env_remove("RUST_LOG")
                .env("CW_E2E_HOOK_SECRET", SECRET)
                .output()
                .unwrap()
        }),
    )
    .await
    .expect("the run ends")
    .unwrap();
    server.abort();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("notifications on"), "{log}");
    assert!(!log.contains(SECRET), "{log}");
    let seen = seen.lock().unwrap().clone();
    let keys: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys.len(), 2, "{seen:?}\n{log}");
    assert!(
        keys[0].starts_with("engine:start:") && keys[1].starts_with("engine:stop:"),
        "{keys:?}"
    );
    assert!(
        seen.iter().all(|(_, ok)| *ok),
        "signatures verify: {seen:?}"
    );
    // Delivered: nothing left behind.
    let outbox = Outbox::open_read_only(dir.path().join("var/state/notify")).unwrap();
    assert!(outbox.pending().unwrap().is_empty());
}

fn dead(id: &str) -> Record {
    Record {
        id: id.into(),
        dest: "ops".into(),
        host: "hooks.example.com".into(),
        kind: "signal".into(),
        body: "{}".into(),
        attempts: 8,
        created_ms: 1_700_000_000_000,
        due_ms: 1_700_000_600_000,
        last_error: Some("HTTP 500 Internal Server Error".into()),
    }
}

#[test]
fn list_failed_shows_dead_letters_and_retry_failed_queues_them_again() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    {
        let outbox = Outbox::open(state.join("notify"), false).unwrap();
        for id in ["sma_cross:BTCUSDT:1m:60000", "engine:stop:1"] {
            let r = dead(id);
            outbox.enqueue(std::slice::from_ref(&r)).unwrap();
            outbox.bury(&r, &r).unwrap();
        }
    }
    let state_arg = state.display().to_string();
    let o = candlewick(
        dir.path(),
        &["notify", "list-failed", "--state", &state_arg, "--json"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().any(|r| r["id"] == "sma_cross:BTCUSDT:1m:60000"
        && r["webhook"] == "ops"
        && r["host"] == "hooks.example.com"
        && r["attempts"] == 8
        && r["last_error"] == "HTTP 500 Internal Server Error"));

    let o = candlewick(
        dir.path(),
        &["notify", "list-failed", "--state", &state_arg],
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("2 failed notification(s)"), "{text}");
    assert!(
        text.contains("engine:stop:1  webhook=ops host=hooks.example.com attempts=8"),
        "{text}"
    );

    let o = candlewick(
        dir.path(),
        &["notify", "retry-failed", "--state", &state_arg],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("2 notification(s) queued again"));
    let outbox = Outbox::open_read_only(state.join("notify")).unwrap();
    assert_eq!(outbox.dead_letters().unwrap().len(), 0);
    assert!(outbox.pending().unwrap().iter().all(|r| r.attempts == 0));
    drop(outbox);

    // No outbox yet: an empty list, not an error.
    let empty = dir.path().join("none").display().to_string();
    let o = candlewick(
        dir.path(),
        &["notify", "list-failed", "--state", &empty, "--json"],
    );
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
}

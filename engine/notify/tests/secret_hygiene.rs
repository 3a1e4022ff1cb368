//! The signing secret never appears in logs (captured at TRACE, every
//! crate), errors, dead letters, or any Debug output, through deliveries,
//! failures and dead-lettering.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use candlewick_notify::{Outbox, Secret, Stats};
use common::{config, events, free_port, receiver, until, Plan, Running, SECRET};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(SECRET),
        "the secret leaked into {what}: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_never_appears_in_logs_errors_or_debug_output() {
    let logs = Capture::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    // A receiver that refuses everything, and one that is down.
    let (_rx, addr, server) = receiver(
        "127.0.0.1:0".parse().unwrap(),
        Plan {
            always: Some(500),
            ..Plan::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(addr, 2);
    let mut down = c.webhooks[0].clone();
    down.name = "down".into();
    down.url = format!("http://{}/hook", free_port());
    c.webhooks.push(down);
    assert_clean("the config's Debug", &format!("{c:?}"));

    let running = Running::start(&c, &dir.path().join("notify"));
    assert_clean("the service's Debug", &format!("{:?}", running.service));
    assert_clean("the notifier's Debug", &format!("{:?}", running.notifier));
    for n in events(3) {
        assert!(running.notifier.try_notify(n));
    }
    let stats = running.service.stats().clone();
    until("6 dead letters", || Stats::get(&stats.dead_lettered) == 6).await;
    running.stop().await;
    server.abort();

    let outbox = Outbox::open_read_only(dir.path().join("notify")).unwrap();
    let dead = outbox.dead_letters().unwrap();
    assert_eq!(dead.len(), 6);
    assert_clean("the dead letters", &format!("{dead:?}"));
    assert_clean("the outbox's Debug", &format!("{outbox:?}"));

    // Refusals quote where the secret came from, never the secret.
    let short = Secret::new(&SECRET[..8], "test").unwrap_err();
    assert_clean("an error", &format!("{short} {short:?}"));
    let mut bad = c.clone();
    bad.webhooks[0].url = format!("http://user:{SECRET}@example.com/");
    let e = candlewick_notify::start(&bad, &dir.path().join("other"), false).unwrap_err();
    assert_clean("a URL error", &format!("{e} {e:?}"));

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("dead letters"),
        "the logs were captured: {logs}"
    );
    assert_clean("the logs", &logs);
}

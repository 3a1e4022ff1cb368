//! The notifier against a real webhook receiver on loopback: retries,
//! restarts, dead letters, `Retry-After`, a full hand-off channel. Waits
//! are bounded (a hang fails the test); assertions are on counts and
//! order, never on how fast.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use candlewick_notify::{Outbox, Stats};
use common::{config, events, free_port, receiver, until, Plan, Running};

fn stat(s: &std::sync::atomic::AtomicU64) -> u64 {
    Stats::get(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_once_per_key_after_failed_requests() {
    let (rx, addr, server) = receiver(
        "127.0.0.1:0".parse().unwrap(),
        Plan {
            fail_first: 3,
            ..Plan::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let running = Running::start(&config(addr, 20), &dir.path().join("notify"));
    for n in events(10) {
        assert!(running.notifier.try_notify(n));
    }
    until("10 keys accepted", || rx.accepted().len() == 10).await;
    let stats = running.service.stats().clone();
    running.stop().await;
    server.abort();

    let accepted = rx.accepted();
    let expected: Vec<String> = events(10).into_iter().map(|n| n.id).collect();
    for id in &expected {
        assert_eq!(accepted.get(id), Some(&1), "{id}: {accepted:?}");
    }
    let hits = rx.hits();
    assert_eq!(hits.len(), 13, "3 failures then 10 deliveries: {hits:#?}");
    assert!(
        hits.iter().all(|h| h.signature_ok),
        "every request is signed"
    );
    assert_eq!(hits.iter().filter(|h| h.status == 500).count(), 3);
    assert_eq!(
        (stat(&stats.delivered), stat(&stats.failed_attempts)),
        (10, 3)
    );
    assert_eq!(stats.pending.load(Relaxed), 0);
    let outbox = Outbox::open_read_only(dir.path().join("notify")).unwrap();
    assert!(outbox.pending().unwrap().is_empty());
    assert!(outbox.dead_letters().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_times_out_and_the_retry_is_deduped_by_key() {
    let (rx, addr, server) = receiver(
        "127.0.0.1:0".parse().unwrap(),
        Plan {
            slow_first: Some(Duration::from_millis(3000)),
            ..Plan::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(addr, 20);
    c.webhooks[0].timeout = Duration::from_millis(1000);
    let running = Running::start(&c, &dir.path().join("notify"));
    for n in events(5) {
        assert!(running.notifier.try_notify(n));
    }
    // The receiver acts on the first request but answers it too late: the
    // notifier times out and retries, so one key comes twice.
    until("every key, and the retry", || {
        rx.accepted().len() == 5 && rx.hits().len() >= 6
    })
    .await;
    let stats = running.service.stats().clone();
    running.stop().await;
    server.abort();
    let accepted = rx.accepted();
    assert!(
        accepted.values().any(|&n| n >= 2),
        "a key came twice: {accepted:?}"
    );
    assert!(rx.hits().iter().all(|h| h.signature_ok));
    assert_eq!(stat(&stats.delivered), 5);
    assert!(stat(&stats.failed_attempts) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_across_a_restart_while_the_receiver_is_down() {
    let addr = free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let first = Running::start(&config(addr, 1000), &path);
    for n in events(5) {
        assert!(first.notifier.try_notify(n));
    }
    let stats = first.service.stats().clone();
    until("failed attempts", || stat(&stats.failed_attempts) >= 5).await;
    // Handed off just before the stop: the stop writes it to the outbox.
    assert!(first
        .notifier
        .try_notify(candlewick_notify::Notification::engine(
            99, true, 99, "stop"
        )));
    first.stop().await;
    {
        let outbox = Outbox::open_read_only(&path).unwrap();
        let pending = outbox.pending().unwrap();
        assert_eq!(pending.len(), 6, "{pending:#?}");
        assert!(pending.iter().any(|r| r.id == "engine:stop:99"));
        assert!(pending
            .iter()
            .all(|r| r.last_error.is_some() || r.attempts == 0));
    }

    let (rx, _, server) = receiver(addr, Plan::default()).await;
    let second = Running::start(&config(addr, 1000), &path);
    let stats = second.service.stats().clone();
    until("6 keys accepted", || rx.accepted().len() == 6).await;
    second.stop().await;
    assert_eq!(
        (stat(&stats.delivered), stats.pending.load(Relaxed)),
        (6, 0)
    );
    server.abort();
    let accepted = rx.accepted();
    assert!(accepted.values().all(|&n| n == 1), "{accepted:?}");
    assert!(accepted.contains_key("engine:stop:99"));
    assert!(rx.hits().iter().all(|h| h.signature_ok));
    let outbox = Outbox::open_read_only(&path).unwrap();
    assert!(outbox.pending().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failures_are_dead_lettered_after_max_attempts() {
    for status in [400u16, 500] {
        let (rx, addr, server) = receiver(
            "127.0.0.1:0".parse().unwrap(),
            Plan {
                always: Some(status),
                ..Plan::default()
            },
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let running = Running::start(&config(addr, 3), &path);
        for n in events(2) {
            assert!(running.notifier.try_notify(n));
        }
        let stats = running.service.stats().clone();
        until("2 dead letters", || stat(&stats.dead_lettered) == 2).await;
        running.stop().await;
        server.abort();
        assert_eq!(rx.hits().len(), 6, "3 attempts each");
        assert!(rx.accepted().is_empty());
        assert_eq!(stats.dead_letters.load(Relaxed), 2);
        let outbox = Outbox::open_read_only(&path).unwrap();
        let dead = outbox.dead_letters().unwrap();
        assert_eq!(dead.len(), 2);
        for d in &dead {
            assert_eq!(d.attempts, 3);
            assert_eq!(d.host, addr.to_string());
            let error = d.last_error.as_deref().unwrap();
            assert!(error.contains(&status.to_string()), "{error}");
        }
        assert!(outbox.pending().unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_429_is_honoured() {
    let (rx, addr, server) = receiver(
        "127.0.0.1:0".parse().unwrap(),
        Plan {
            too_many_first: Some(1),
            ..Plan::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let running = Running::start(&config(addr, 5), &dir.path().join("notify"));
    assert!(running.notifier.try_notify(events(1).remove(0)));
    until("the retry accepted", || rx.accepted().len() == 1).await;
    running.stop().await;
    server.abort();
    let hits = rx.hits();
    let statuses: Vec<u16> = hits.iter().map(|h| h.status).collect();
    assert_eq!(statuses, [429, 200]);
    // The backoff alone would retry after 5-10 ms; the receiver asked for
    // a second. (A lower bound only: it cannot be met early by chance.)
    let gap = hits[1].at - hits[0].at;
    assert!(gap >= Duration::from_millis(900), "retried after {gap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_channel_counts_drops_never_blocks_and_delivers_what_it_took() {
    let (rx, addr, server) = receiver("127.0.0.1:0".parse().unwrap(), Plan::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(addr, 5);
    c.queue = 4;
    let (notifier, service) =
        candlewick_notify::start(&c, &dir.path().join("notify"), false).unwrap();
    // The service is not running yet: the channel fills. A plain thread
    // (an engine worker) offers 100; a blocking hand-off would hang it.
    let worker = notifier.clone();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let sent = events(100)
            .into_iter()
            .filter(|n| worker.try_notify(n.clone()))
            .count();
        let _ = done_tx.send(sent);
    });
    let sent = done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("try_notify never blocks");
    assert_eq!(sent, 4);
    let stats = service.stats().clone();
    assert_eq!(
        (stat(&stats.queued), stat(&stats.dropped_channel_full)),
        (4, 96)
    );
    let mut text = String::new();
    stats.render_prometheus(&mut text);
    assert!(
        text.contains("candlewick_notify_dropped_channel_full_total 96"),
        "{text}"
    );

    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(service.clone().run(stop_rx));
    until("4 keys accepted", || rx.accepted().len() == 4).await;
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    server.abort();
    assert!(rx.accepted().values().all(|&n| n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_preset_gets_one_readable_line_per_event_through_the_same_retries() {
    let (rx, addr, server) = receiver(
        "127.0.0.1:0".parse().unwrap(),
        Plan {
            fail_first: 2,
            unsigned: true,
            ..Plan::default()
        },
    )
    .await;
    let mut config = config(addr, 10);
    let hook = &mut config.webhooks[0];
    hook.preset = candlewick_notify::Preset::Slack;
    hook.secret = None;
    let dir = tempfile::tempdir().unwrap();
    let running = Running::start(&config, &dir.path().join("notify"));
    let sent = events(3);
    for n in sent.clone() {
        assert!(running.notifier.try_notify(n));
    }
    until("3 keys accepted", || rx.accepted().len() == 3).await;
    running.stop().await;
    server.abort();

    let delivered: Vec<_> = rx.hits().into_iter().filter(|h| h.status == 200).collect();
    assert_eq!(delivered.len(), 3, "{delivered:#?}");
    for hit in &delivered {
        let n = sent.iter().find(|n| n.id == hit.key).expect("a sent key");
        assert!(!hit.signature_ok, "no secret, no signature");
        let v: serde_json::Value = serde_json::from_str(&hit.body).unwrap();
        let text = v["text"].as_str().unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        assert_eq!(text, candlewick_notify::notification_text(&n.body()));
        assert!(
            text.contains(&n.id) && text.contains("engine start"),
            "{text}"
        );
    }
}

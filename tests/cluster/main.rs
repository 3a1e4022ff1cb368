//! The cluster on NATS JetStream end to end (issue 12), over real sockets
//! on loopback: exchange simulator (in this process) -> `candlewick
//! ingest` (child) -> a real nats-server (child, JetStream, a temporary
//! store) -> `candlewick run` with `source.kind = "nats"` (children) ->
//! feed clients (in this process).
//!
//! Nothing here asserts a duration: tests wait for counts, with a
//! generous overall limit that only turns a hang into a failure.

#[path = "../common/mod.rs"]
mod common;
#[allow(dead_code)] // shared with tests/live, which uses other parts
#[path = "../live/support.rs"]
mod support;

mod auth;
mod nats;

use std::collections::{BTreeMap, BTreeSet};

use candlewick_cluster::subjects::partition_of;
use candlewick_simulator::{SimConfig, Simulator};
use nats::*;
use support::*;

const TOKEN: &str = "a-test-token-0123456789";
/// N of the partition hash in these tests.
const PARTITIONS: u32 = 4;

/// `candlewick ingest`'s config: the simulator's streams, from its first
/// candle, published to `nats`.
fn ingest_config(sim: &Simulator, nats: &impl Bus) -> String {
    let symbols: Vec<String> = sim
        .config()
        .symbols
        .iter()
        .map(|s| format!("{s:?}"))
        .collect();
    format!(
        r#"
[binance]
ws_url = "{ws}"
rest_url = "{rest}"
allowed_hosts = []
allow_loopback = true
symbols = [{symbols}]
intervals = ["1m"]
idle_timeout_s = 1.0
start_from_ms = {start}

[nats]
servers = [{servers}]
partition_count = {PARTITIONS}
"#,
        ws = sim.ws_url(),
        rest = sim.rest_url(),
        symbols = symbols.join(", "),
        start = sim.config().start_ms,
        servers = servers_toml(nats),
    )
}

/// An engine consuming `partitions` of the cluster: the live tests'
/// engine config with `[source] kind = "nats"` and `[nats]` in place of
/// `[binance]`.
fn engine_config(
    sim: &Simulator,
    nats: &impl Bus,
    partitions: &[u32],
    publish_signals: bool,
) -> String {
    let single = binance_config(sim, 4, TOKEN, 8192);
    let (head, rest) = single.split_once("[binance]").unwrap();
    let (_, tail) = rest.split_once("[indicators]").unwrap();
    let symbols: Vec<String> = sim
        .config()
        .symbols
        .iter()
        .map(|s| format!("{s:?}"))
        .collect();
    format!(
        r#"{head}
[nats]
servers = [{servers}]
partition_count = {PARTITIONS}
partitions = {partitions:?}
symbols = [{symbols}]
intervals = ["1m"]
publish_signals = {publish_signals}

[indicators]{tail}"#,
        head = head.replace("kind = \"binance\"", "kind = \"nats\""),
        servers = servers_toml(nats),
        symbols = symbols.join(", "),
    )
}

/// The simulator's symbols whose partition is in `partitions`.
fn symbols_of(sim: &Simulator, partitions: &[u32]) -> Vec<String> {
    sim.config()
        .symbols
        .iter()
        .filter(|s| partitions.contains(&partition_of(s, PARTITIONS)))
        .cloned()
        .collect()
}

/// Reads until the last candle of each of `symbols` has arrived.
async fn wait_for(client: &mut Client, sim: &Simulator, symbols: &[String]) {
    let last = sim.candles(0).last().unwrap().open_time;
    client
        .read_until(|c| symbols.iter().all(|s| c.last_time.get(s) == Some(&last)))
        .await;
}

/// The signal ids SIGNALS holds, each with how often.
async fn signal_ids(nats: &impl Bus) -> BTreeMap<String, usize> {
    let js = bus_js(nats).await;
    let mut ids = BTreeMap::new();
    for body in stream_bodies(&js, "SIGNALS").await {
        assert_eq!(body["type"], "signal", "{body}");
        *ids.entry(body["id"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    ids
}

/// (a) + (d): simulator -> ingest -> JetStream -> two engines, each on
/// half of the partitions -> feed clients. Together they send exactly the
/// signals of a single-process `candlewick run` on the same simulator
/// (same ids, actions and strengths), which are the reference replay's;
/// and SIGNALS holds each of them once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingest_to_jetstream_to_engines_equals_the_single_process_run() {
    let (n_symbols, steps) = (6, 300);
    let sim = Simulator::start(SimConfig::symbols(n_symbols, steps), 0)
        .await
        .unwrap();
    let nats = NatsServer::start().await;
    let halves: [&[u32]; 2] = [&[0, 1], &[2, 3]];
    let served: Vec<Vec<String>> = halves.iter().map(|p| symbols_of(&sim, p)).collect();
    assert!(
        served.iter().all(|s| !s.is_empty()),
        "each engine serves a symbol: {served:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let ingest = Ingest::start(dir.path(), "ingest", &ingest_config(&sim, &nats));

    let mut engines = Vec::new();
    let mut clients = Vec::new();
    for (i, partitions) in halves.iter().enumerate() {
        let d = dir.path().join(format!("engine-{i}"));
        std::fs::create_dir_all(&d).unwrap();
        let engine = Engine::start(&d, &engine_config(&sim, &nats, partitions, true));
        let mut client = Client::connect(engine.addr, TOKEN, true).await;
        client.ping().await;
        engines.push(engine);
        clients.push(client);
    }
    let single_dir = dir.path().join("single");
    std::fs::create_dir_all(&single_dir).unwrap();
    let single = Engine::start(&single_dir, &binance_config(&sim, 4, TOKEN, 8192));
    let mut single_client = Client::connect(single.addr, TOKEN, true).await;
    single_client.ping().await;

    sim.play(300.0);
    // Shorter than the clients' own patience, so that a hang shows the logs.
    let patience = PATIENCE - std::time::Duration::from_secs(30);
    for (i, (client, symbols)) in clients.iter_mut().zip(&served).enumerate() {
        let done = tokio::time::timeout(patience, wait_for(client, &sim, symbols)).await;
        if done.is_err() {
            panic!(
                "engine {i} did not send every candle of {symbols:?}:\n{}\n--- ingest:\n{}",
                engines[i].log(),
                ingest.log()
            );
        }
    }
    let done = tokio::time::timeout(patience, single_client.wait_for_symbols_done(&sim)).await;
    assert!(
        done.is_ok(),
        "the single process did not finish:\n{}",
        single.log()
    );

    let mut got = BTreeMap::new();
    for (client, engine) in clients.iter().zip(&engines) {
        assert_gapless(&client.seqs);
        assert_eq!(
            client.signals().len(),
            client.signal_count,
            "an engine sent an id twice:\n{}",
            engine.log()
        );
        for (id, content) in client.signals() {
            assert!(
                got.insert(id.clone(), content).is_none(),
                "{id} from both engines"
            );
        }
    }
    let single_signals = single_client.signals();
    assert!(!single_signals.is_empty());
    assert_eq!(got, single_signals, "cluster != single process");
    assert_eq!(got, reference_signals(&sim), "cluster != reference replay");

    // (d) Every signal in SIGNALS, once (the publisher drains at stop).
    for engine in engines {
        let log = engine.terminate();
        assert!(log.contains("consuming the cluster's candles"), "{log}");
    }
    single.terminate();
    ingest.terminate();
    let ids = signal_ids(&nats).await;
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "ids stored more than once: {twice:?}");
    let want: BTreeSet<&String> = got.keys().collect();
    let have: BTreeSet<&String> = ids.keys().collect();
    assert_eq!(have, want, "SIGNALS != the signals sent");
}

/// (b): two ingest processes publish the same candles (both see every
/// frame): CANDLES holds each candle once, deduplicated by `Nats-Msg-Id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_ingest_processes_store_each_candle_once() {
    let (n_symbols, steps) = (4, 200);
    let sim = Simulator::start(SimConfig::symbols(n_symbols, steps), 0)
        .await
        .unwrap();
    let nats = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = ingest_config(&sim, &nats);
    let a = Ingest::start(dir.path(), "a", &config);
    let b = Ingest::start(dir.path(), "b", &config);
    // Both connected to the exchange before anything is published, so
    // both get (and publish) every candle.
    let start = std::time::Instant::now();
    while sim
        .stats()
        .connections
        .load(std::sync::atomic::Ordering::Relaxed)
        < 2
    {
        assert!(start.elapsed() < PATIENCE, "ingest did not connect");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    sim.play(400.0);
    let js = bus_js(&nats).await;
    let total = (n_symbols * steps) as u64;
    let patience = PATIENCE - std::time::Duration::from_secs(30);
    let stored = tokio::time::timeout(patience, wait_stream_messages(&js, "CANDLES", total)).await;
    assert!(
        stored.is_ok(),
        "CANDLES never held every candle:\n--- a:\n{}\n--- b:\n{}",
        a.log(),
        b.log()
    );
    let (log_a, log_b) = (a.terminate(), b.terminate());

    let bodies = stream_bodies(&js, "CANDLES").await;
    assert_eq!(bodies.len() as u64, total);
    let mut seen = BTreeSet::new();
    for body in &bodies {
        let id = format!("{}:{}", body["symbol"], body["open_time"]);
        assert!(seen.insert(id.clone()), "{id} stored twice");
    }
    let stored = |log: &str| logged_number(log, "ingest stopped", "stored");
    let duplicates = |log: &str| logged_number(log, "ingest stopped", "duplicates");
    assert_eq!(stored(&log_a) + stored(&log_b), total, "{log_a}\n{log_b}");
    assert!(
        duplicates(&log_a) + duplicates(&log_b) > 0,
        "the second publisher's copies were refused as duplicates:\n{log_a}\n{log_b}"
    );
}

/// (c) + (d): kill -9 of the engine at random points mid-stream, then a
/// restart on the same state: no signal is missing (resume from the
/// checkpoint, and the unacknowledged candles come again), a signal seen
/// twice has the same content; SIGNALS holds every signal, each id once
/// (what a kill left unpublished is published from the outbox at start).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_of_a_cluster_engine_loses_no_signal() {
    let kills: usize = std::env::var("CANDLEWICK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let (n_symbols, steps) = (4, 40 * (kills + 2));
    let (sim, nats, dir, _ingest) = one_server_with_ingest(n_symbols, steps).await;
    let names = sim.config().symbols.clone();
    let config = engine_config(&sim, &nats, &[0, 1, 2, 3], true).replace(
        "tail_bars = 64",
        "tail_bars = 64\ncheckpoint_interval_ms = 50",
    );
    let mut next = kill_points();
    let mut got: BTreeMap<String, String> = BTreeMap::new();
    let mut since = None;
    for k in 0..kills {
        let engine = Engine::start(dir.path(), &config);
        let mut client = Client::connect_since(engine.addr, TOKEN, false, since).await;
        client.ping().await;
        sim.play_to(2000.0, 40 * (k + 1));
        engine
            .wait_metric_at_least("candles_applied_total", 1)
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(next(120))).await;
        client.drain_now().await;
        engine.kill9();
        record_signals(&client, &mut got);
        since = client.resume_point(&names).or(since);
    }
    let last = Engine::start(dir.path(), &config);
    let mut client = Client::connect_since(last.addr, TOKEN, true, since).await;
    client.ping().await;
    sim.play(2000.0);
    client.wait_for_symbols_done(&sim).await;
    client.drain_now().await;
    let log = last.terminate();
    assert!(log.contains("resuming after the candle of"), "{log}");
    record_signals(&client, &mut got);

    assert_state_is_every_candle_once(dir.path(), &sim);
    let want = reference_signals(&sim);
    let missing: Vec<_> = want.keys().filter(|id| !got.contains_key(*id)).collect();
    assert!(missing.is_empty(), "signals never delivered: {missing:?}");
    assert_eq!(got, want, "the delivered signals are not the replay's");

    let ids = signal_ids(&nats).await;
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "ids stored more than once: {twice:?}");
    let have: BTreeSet<&String> = ids.keys().collect();
    let want_ids: BTreeSet<&String> = want.keys().collect();
    assert_eq!(have, want_ids, "SIGNALS != the reference's signals");
}

/// A delivery lost on the way (what a server going down with a pull in
/// flight does): a second puller takes one candle from the engine's
/// consumer mid-stream and never acks it. The server sends the engine
/// newer candles first; the engine sees the jump in the delivery sequence
/// and consumes the partition again from its ack floor, so its state is
/// still every candle once, in order, and its signals the reference's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_lost_on_the_way_is_consumed_again_in_order() {
    use async_nats::jetstream::consumer::PullConsumer;
    use futures_util::StreamExt;
    let (n_symbols, steps) = (4, 240);
    let (sim, nats, dir, _ingest) = one_server_with_ingest(n_symbols, steps).await;
    let engine = Engine::start(
        dir.path(),
        &engine_config(&sim, &nats, &[0, 1, 2, 3], false),
    );
    let mut client = Client::connect(engine.addr, TOKEN, true).await;
    client.ping().await;
    sim.play_to(500.0, steps / 4);
    engine
        .wait_metric_at_least("candles_applied_total", 1)
        .await;

    // The thief pulls from the consumer of the first symbol's partition
    // (the engine's, `<consumer_prefix>-p<P>`) until it gets a candle.
    let partition = partition_of(&sim.config().symbols[0], PARTITIONS);
    let prefix = candlewick_cluster::ClusterConfig::default().consumer_prefix;
    let js = bus_js(&nats).await;
    let consumer: PullConsumer = js
        .get_stream("CANDLES")
        .await
        .unwrap()
        .get_consumer(&format!("{prefix}-p{partition}"))
        .await
        .unwrap();
    let thief = tokio::spawn(async move {
        loop {
            let mut batch = consumer
                .fetch()
                .max_messages(1)
                .expires(std::time::Duration::from_millis(200))
                .messages()
                .await
                .unwrap();
            if let Some(Ok(stolen)) = batch.next().await {
                // Held, never acked, until the test ends.
                return stolen;
            }
        }
    });
    sim.play(500.0);
    let stolen = tokio::time::timeout(PATIENCE, thief).await;
    assert!(
        matches!(stolen, Ok(Ok(_))),
        "the second puller never got a candle:\n{}",
        engine.log()
    );
    let done = tokio::time::timeout(PATIENCE, client.wait_for_symbols_done(&sim)).await;
    assert!(done.is_ok(), "the engine did not finish:\n{}", engine.log());
    client.drain_now().await;
    let gaps = engine
        .wait_metric_at_least("cluster_candles_delivery_gaps_total", 1)
        .await;
    let log = engine.terminate();
    assert!(
        log.contains("deliveries lost on the way"),
        "{gaps} gaps, yet not logged:\n{log}"
    );
    assert_state_is_every_candle_once(dir.path(), &sim);
    let mut got = BTreeMap::new();
    record_signals(&client, &mut got);
    assert_eq!(
        got,
        reference_signals(&sim),
        "the engine != the reference replay"
    );
}

/// An engine sharing the partitions by leases (TTL 2 s), named `id`.
fn leased_config(sim: &Simulator, nats: &impl Bus, id: &str) -> String {
    engine_config(sim, nats, &[0], true)
        .replace(
            "partitions = [0]",
            &format!("assignment = \"lease\"\nlease_ttl_s = 2.0\nengine_id = \"{id}\""),
        )
        .replace(
            "tail_bars = 64",
            "tail_bars = 64\ncheckpoint_interval_ms = 50",
        )
}

/// The simulator with `n_symbols` x `steps` candles, one nats-server, a
/// scratch folder and `candlewick ingest` publishing the simulator's
/// candles to the server.
async fn one_server_with_ingest(
    n_symbols: usize,
    steps: usize,
) -> (Simulator, NatsServer, tempfile::TempDir, Ingest) {
    let sim = Simulator::start(SimConfig::symbols(n_symbols, steps), 0)
        .await
        .unwrap();
    let nats = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ingest = Ingest::start(dir.path(), "ingest", &ingest_config(&sim, &nats));
    (sim, nats, dir, ingest)
}

/// Engines sharing the partitions by leases, each in its own folder of
/// `dir`, by id; `edit` changes each one's config.
fn leased_engines(
    dir: &std::path::Path,
    sim: &Simulator,
    nats: &impl Bus,
    ids: &[&str],
    edit: impl Fn(String) -> String,
) -> BTreeMap<String, Engine> {
    ids.iter()
        .map(|id| {
            let d = dir.join(id);
            std::fs::create_dir_all(&d).unwrap();
            let engine = Engine::start(&d, &edit(leased_config(sim, nats, id)));
            ((*id).to_owned(), engine)
        })
        .collect()
}

/// Every engine's log, for a failure message.
fn logs_of(engines: &BTreeMap<String, Engine>) -> String {
    engines
        .iter()
        .map(|(id, e)| format!("--- {id}:\n{}\n", e.log()))
        .collect()
}

/// Partitions held by `id`.
fn held_by(owners: &BTreeMap<u32, String>, id: &str) -> usize {
    owners.values().filter(|v| *v == id).count()
}

/// Waits until the partitions are spread over `engines`: every one holds
/// at least one and at most ⌈partitions / engines⌉.
async fn wait_spread(nats: &impl Bus, engines: &BTreeMap<String, Engine>) -> BTreeMap<u32, String> {
    let most = (PARTITIONS as usize).div_ceil(engines.len());
    wait_owners(
        nats,
        |o| {
            engines
                .keys()
                .all(|id| (1..=most).contains(&held_by(o, id)))
        },
        || logs_of(engines),
    )
    .await
}

/// Partition -> the engine holding its lease, from the lease bucket.
async fn lease_owners(nats: &impl Bus) -> BTreeMap<u32, String> {
    use futures_util::TryStreamExt;
    let js = bus_js(nats).await;
    let Ok(kv) = js.get_key_value("candlewick-leases").await else {
        return BTreeMap::new();
    };
    let keys: Vec<String> = kv.keys().await.unwrap().try_collect().await.unwrap();
    let mut owners = BTreeMap::new();
    for key in keys {
        let Some(p) = key.strip_prefix('p').and_then(|p| p.parse().ok()) else {
            continue;
        };
        if let Ok(Some(v)) = kv.get(&key).await {
            owners.insert(p, String::from_utf8_lossy(&v).into_owned());
        }
    }
    owners
}

/// Waits until every partition is held, by engines that all satisfy
/// `ok`; returns the owners.
async fn wait_owners(
    nats: &impl Bus,
    ok: impl Fn(&BTreeMap<u32, String>) -> bool,
    logs: impl Fn() -> String,
) -> BTreeMap<u32, String> {
    let start = std::time::Instant::now();
    loop {
        let owners = lease_owners(nats).await;
        if owners.len() == PARTITIONS as usize && ok(&owners) {
            return owners;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "partitions never settled: {owners:?}\n{}",
            logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// SIGNALS as id -> "action strength" (as the feed clients record them),
/// asserting each id is stored once.
async fn signals_stored(nats: &impl Bus) -> BTreeMap<String, String> {
    let js = bus_js(nats).await;
    let mut out = BTreeMap::new();
    for body in stream_bodies(&js, "SIGNALS").await {
        let id = body["id"].as_str().unwrap().to_owned();
        let content = format!(
            "{} {}",
            body["action"].as_str().unwrap(),
            body["strength"].as_f64().unwrap()
        );
        assert!(
            out.insert(id.clone(), content).is_none(),
            "{id} stored twice"
        );
    }
    out
}

/// Waits until SIGNALS holds as many signals as `want`, then asserts it
/// holds exactly them.
async fn assert_signals_become(
    nats: &impl Bus,
    want: &BTreeMap<String, String>,
    logs: impl Fn() -> String,
) {
    let start = std::time::Instant::now();
    loop {
        let have = signals_stored(nats).await;
        if have.len() >= want.len() {
            let missing: Vec<_> = want.keys().filter(|id| !have.contains_key(*id)).collect();
            assert!(
                missing.is_empty(),
                "missing from SIGNALS: {missing:?}\n{}",
                logs()
            );
            assert_eq!(&have, want, "SIGNALS != the reference replay");
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "SIGNALS holds {} of {} signals:\n{}",
            have.len(),
            want.len(),
            logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Leases and failover: three engines share the four partitions by
/// leases; the one holding the most is killed -9 mid-stream. Its
/// partitions move to the other two, which take its shared checkpoints
/// over, and SIGNALS ends holding exactly the reference replay's signals
/// (ids, actions, strengths), each once: nothing lost across the
/// failover, nothing applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leases_move_a_killed_engines_partitions_and_lose_nothing() {
    let (n_symbols, steps) = (8, 240);
    let (sim, nats, dir, _ingest) = one_server_with_ingest(n_symbols, steps).await;
    let mut engines = leased_engines(dir.path(), &sim, &nats, &["e0", "e1", "e2"], |c| c);
    let owners = wait_spread(&nats, &engines).await;
    let victim = engines
        .keys()
        .max_by_key(|id| held_by(&owners, id))
        .unwrap()
        .clone();
    sim.play_to(1000.0, steps / 2);
    engines[&victim]
        .wait_metric_at_least("candles_applied_total", 1)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    engines.remove(&victim).unwrap().kill9();
    sim.play(1000.0);
    // The survivors hold everything once the victim's leases expired.
    wait_owners(
        &nats,
        |o| o.values().all(|v| *v != victim),
        || logs_of(&engines),
    )
    .await;
    assert_signals_become(&nats, &reference_signals(&sim), || logs_of(&engines)).await;
    for (id, engine) in engines {
        let log = engine.terminate();
        assert!(log.contains("partition lease acquired"), "{id}:\n{log}");
        assert!(
            log.contains("partition state taken over from the cluster"),
            "{id} took over a partition with its shared state:\n{log}"
        );
    }
}

/// Fencing: an engine frozen (SIGSTOP) past its lease TTL loses its
/// partitions to the other engine; when it comes back (SIGCONT) it routes,
/// acknowledges and publishes nothing for them (its leases lapsed on its
/// own clock, and its consumer is gone), then rejoins with a new share.
/// SIGNALS holds exactly the reference replay's signals, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_engine_back_after_its_partitions_moved_is_fenced() {
    let (n_symbols, steps) = (8, 240);
    let (sim, nats, dir, _ingest) = one_server_with_ingest(n_symbols, steps).await;
    let mut engines = leased_engines(dir.path(), &sim, &nats, &["a", "b"], |c| c);
    wait_spread(&nats, &engines).await;
    sim.play_to(1000.0, steps / 2);
    engines["a"]
        .wait_metric_at_least("candles_applied_total", 1)
        .await;
    engines["a"].pause(true);
    sim.play(1000.0);
    // b takes a's partitions once a's leases expired, and finishes.
    wait_owners(
        &nats,
        |o| o.values().all(|v| v == "b"),
        || engines["b"].log(),
    )
    .await;
    let want = reference_signals(&sim);
    assert_signals_become(&nats, &want, || engines["b"].log()).await;
    engines["a"].pause(false);
    // a notices at its next renewal that its leases lapsed, and rejoins.
    let start = std::time::Instant::now();
    while !engines["a"].log().contains("partition lease lost: fenced") {
        assert!(
            start.elapsed() < PATIENCE,
            "a never noticed:\n{}",
            logs_of(&engines)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    wait_spread(&nats, &engines).await;
    assert_signals_become(&nats, &want, || logs_of(&engines)).await;
    let b = engines.remove("b").unwrap().terminate();
    let a = engines.remove("a").unwrap().terminate();
    // Nothing a held when frozen was published after it thawed: the run
    // that ended with the lost leases published no signal SIGNALS already
    // had (b's), and dropped what it had queued.
    let (_, fenced_run) = a
        .split_once("partition lease lost: fenced")
        .expect("a was fenced");
    let summary = fenced_run
        .lines()
        .find(|l| l.contains("cluster: candles consumed"))
        .unwrap_or_else(|| panic!("no summary after the fencing:\n{a}"));
    assert!(
        summary.contains("signals_already_in_stream=0"),
        "{summary}\n{a}"
    );
    assert!(
        b.contains("partition state taken over from the cluster"),
        "{b}"
    );
}

/// The feed role: one `candlewick feed` over SIGNALS serves every engine's
/// signals (two engines sharing the partitions by leases) to a client:
/// exactly the reference replay's, with gapless `seq`. A client that
/// connects afterwards with `since` gets those from that time on: the
/// feed replayed them from SIGNALS when it started, and keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_feed_role_serves_every_engines_signals() {
    let (n_symbols, steps) = (6, 200);
    let (sim, nats, dir, _ingest) = one_server_with_ingest(n_symbols, steps).await;
    let engines = leased_engines(dir.path(), &sim, &nats, &["a", "b"], |c| c);
    let mut feed = start_feed(dir.path(), &nats, TOKEN);
    let logs = |feed: &common::process::Process| format!("--- feed:\n{}", feed.log());
    let mut client = Client::connect(feed.addr(), TOKEN, false).await;
    client.ping().await;
    sim.play(1000.0);
    let want = reference_signals(&sim);
    let patience = PATIENCE - std::time::Duration::from_secs(30);
    let all = tokio::time::timeout(
        patience,
        client.read_until(|c| c.signal_count >= want.len()),
    )
    .await;
    assert!(
        all.is_ok(),
        "the feed sent {} of {} signals\n{}",
        client.signal_count,
        want.len(),
        logs(&feed)
    );
    client.drain_now().await;
    assert_gapless(&client.seqs);
    assert_eq!(
        client.signals(),
        want,
        "the feed role != the reference replay"
    );

    // Resume: everything from the median signal's candle time on.
    let time_of = |id: &str| id.rsplit(':').next().unwrap().parse::<i64>().unwrap();
    let mut times: Vec<i64> = want.keys().map(|id| time_of(id)).collect();
    times.sort_unstable();
    let since = times[times.len() / 2];
    let later: BTreeMap<String, String> = want
        .iter()
        .filter(|(id, _)| time_of(id) >= since)
        .map(|(id, c)| (id.clone(), c.clone()))
        .collect();
    let mut resumed = Client::connect_since(feed.addr(), TOKEN, false, Some(since)).await;
    resumed.ping().await;
    let done = tokio::time::timeout(
        patience,
        resumed.read_until(|c| c.signal_count >= later.len()),
    )
    .await;
    assert!(
        done.is_ok(),
        "resumed with {} of {} signals\n{}",
        resumed.signal_count,
        later.len(),
        logs(&feed)
    );
    resumed.drain_now().await;
    assert_eq!(
        resumed.signals(),
        later,
        "a resume from {since} != the reference from then on"
    );

    let (status, log) = feed.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("following the cluster's signals"), "{log}");
    for engine in engines.into_values() {
        // Each engine's /metrics shows its leases, acks and lag.
        let m = engine.metrics().await;
        let at_least_one = |name: &str| m.get(name).copied().unwrap_or(0) >= 1;
        assert!(at_least_one("cluster_leases_held"), "{m:?}");
        assert!(at_least_one("cluster_candles_acked_total"), "{m:?}");
        assert!(at_least_one("cluster_ack_latency_seconds_count"), "{m:?}");
        assert!(at_least_one("cluster_shared_state_writes_total"), "{m:?}");
        assert!(
            m.keys()
                .any(|k| k.starts_with("cluster_consumer_lag{partition=")),
            "{m:?}"
        );
        engine.terminate();
    }
}

/// A fault injected mid-stream into the three-node run below.
#[derive(Debug, Clone, Copy)]
enum Fault {
    KillIngest,
    RestartNode,
}

/// The whole cluster on loopback: simulator -> 2 ingest -> a 3-node
/// JetStream cluster (every stream and bucket with 3 replicas) -> 3
/// engines sharing the partitions by leases -> 1 feed -> a client; with
/// `fault` injected halfway. The client gets exactly the reference
/// replay's signals (ids, actions, strengths), each once, and so does
/// SIGNALS.
async fn three_nodes_with(fault: Fault) {
    let (n_symbols, steps) = (6, 240);
    let sim = Simulator::start(SimConfig::symbols(n_symbols, steps), 0)
        .await
        .unwrap();
    let mut nats = NatsCluster::start(3).await;
    let three =
        |config: String| config.replace("partition_count =", "replicas = 3\npartition_count =");
    let dir = tempfile::tempdir().unwrap();
    let mut ingests: Vec<Ingest> = ["i1", "i2"]
        .iter()
        .map(|name| Ingest::start(dir.path(), name, &three(ingest_config(&sim, &nats))))
        .collect();
    let engines = leased_engines(dir.path(), &sim, &nats, &["e0", "e1", "e2"], three);
    wait_spread(&nats, &engines).await;
    let mut feed = start_feed(dir.path(), &nats, TOKEN);
    let mut client = Client::connect(feed.addr(), TOKEN, false).await;
    client.ping().await;

    sim.play_to(1000.0, steps / 2);
    engines["e0"]
        .wait_metric_at_least("candles_applied_total", 1)
        .await;
    match fault {
        Fault::KillIngest => ingests.remove(0).kill9(),
        Fault::RestartNode => {
            nats.kill(1);
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            nats.restart(1).await;
        }
    }
    sim.play(1000.0);
    let want = reference_signals(&sim);
    let patience = PATIENCE - std::time::Duration::from_secs(30);
    let all = tokio::time::timeout(
        patience,
        client.read_until(|c| {
            let got = c.signals();
            want.keys().all(|id| got.contains_key(id))
        }),
    )
    .await;
    let got = client.signals();
    assert!(
        all.is_ok(),
        "{fault:?}: the feed sent {} of {} signals; missing {:?}; not in the reference {:?}\n--- feed:\n{}\n{}",
        got.len(),
        want.len(),
        want.keys().filter(|id| !got.contains_key(*id)).collect::<Vec<_>>(),
        got.keys().filter(|id| !want.contains_key(*id)).collect::<Vec<_>>(),
        feed.log(),
        logs_of(&engines)
    );
    client.drain_now().await;
    assert_gapless(&client.seqs);
    let mut got = BTreeMap::new();
    record_signals(&client, &mut got);
    assert_eq!(got, want, "{fault:?}: the feed != the reference replay");
    assert_signals_become(&nats, &want, || logs_of(&engines)).await;
    let (status, log) = feed.terminate();
    assert!(status.success(), "{log}");
    // After a node's restart an engine may end without a partition: its
    // lease lapsed while the lease bucket was away (CI saw 5 s) and the
    // others took them all. Every signal is checked above either way.
    for engine in engines.into_values() {
        engine.terminate_leased();
    }
    for ingest in ingests {
        ingest.terminate();
    }
}

/// Three nodes, and one of the two ingest processes killed -9 mid-stream:
/// the other one publishes every candle.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_node_cluster_survives_the_kill_of_an_ingest() {
    three_nodes_with(Fault::KillIngest).await;
}

/// Three nodes, and one NATS server killed and restarted mid-stream: the
/// clients reconnect to the others, the streams (3 replicas) lose nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_node_cluster_survives_the_restart_of_a_node() {
    three_nodes_with(Fault::RestartNode).await;
}

//! Emit first, checkpoint off the path (ARCHITECTURE §3), on the bundled
//! EURUSD data with the example `sma_cross` plugin and a real RocksDB
//! store.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use candlewick_market::Candle;
use candlewick_pipeline::{
    CandleEvent, CheckpointPolicy, Engine, OutboxPolicy, Signal, Sink, Strategy, StreamId,
};
use candlewick_plugins::{HostConfig, Limits, PluginHost};
use candlewick_state::{Checkpoint, StateStore, Store, StreamKey, StreamState};
use common::{wasm, Hooked};

const STREAMS: [&str; 2] = ["EURUSD/1h", "GBPUSD/1h"];
const BARS: usize = 1500;
const KEEP_ALL: OutboxPolicy = OutboxPolicy {
    retention_ms: i64::MAX,
};

fn candles() -> Vec<Candle> {
    common::eurusd(BARS)
}

/// Records each signal with the stream's committed offset at the moment
/// the signal reached the sink.
struct Witness {
    store: Arc<Store>,
    seen: Mutex<Vec<(Signal, Option<i64>)>>,
}

impl Sink for Witness {
    fn signal(&self, s: Signal) {
        let key: StreamKey = format!("{}/{}", s.symbol, s.interval).parse().unwrap();
        let committed = self.store.offset(&key).unwrap();
        self.seen.lock().unwrap().push((s, committed));
    }
}

/// Runs every bar of both streams through a pipeline with `policy` on a
/// fresh RocksDB store; returns what the sink saw and the store.
fn run(
    policy: CheckpointPolicy,
    outbox: OutboxPolicy,
    dir: &Path,
) -> (Vec<(Signal, Option<i64>)>, Arc<Store>) {
    let store = Arc::new(Store::open(dir).unwrap());
    let host = PluginHost::new(HostConfig::default()).unwrap();
    let mut strategy = Strategy::new(host.load_file(&wasm("sma_cross")).unwrap());
    strategy.limits = Limits {
        deadline: Duration::from_secs(10),
        ..Limits::default()
    };
    let sink = Arc::new(Witness {
        store: store.clone(),
        seen: Mutex::default(),
    });
    let (pipeline, router) = Engine::live(STREAMS.iter().map(|k| k.parse().unwrap()).collect())
        .configure(|c| {
            c.checkpoint = policy;
            c.max_batch = 16;
        })
        .outbox(outbox)
        .store(store.clone())
        .strategies(&host, std::slice::from_ref(&strategy))
        .sink(sink.clone())
        .start()
        .unwrap();
    let ids: Vec<_> = router.table().ids().collect();
    let data = candles();
    for chunk in data.chunks(10) {
        router.route_batch(events(chunk, &ids)).unwrap();
    }
    drop(router);
    pipeline.join().unwrap();
    let seen = std::mem::take(&mut *sink.seen.lock().unwrap());
    (seen, store)
}

/// Each candle of `chunk` for every stream of `ids`, in time order.
fn events(chunk: &[Candle], ids: &[StreamId]) -> Vec<CandleEvent> {
    chunk
        .iter()
        .flat_map(|c| {
            ids.iter().map(|&stream| CandleEvent {
                stream,
                candle: *c,
                ingest_ns: 0,
            })
        })
        .collect()
}

#[test]
fn commit_before_emit_holds_every_signal_until_its_candle_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (seen, _) = run(CheckpointPolicy::EveryBatch, KEEP_ALL, dir.path());
    assert!(
        seen.len() > 20,
        "sma_cross gave only {} signals",
        seen.len()
    );
    for (s, committed) in &seen {
        assert!(
            committed.is_some_and(|c| c >= s.time),
            "{} emitted before its commit",
            s.id
        );
    }
}

#[test]
fn emit_first_never_waits_for_the_checkpoint_and_the_outbox_keeps_every_signal() {
    let dir = tempfile::tempdir().unwrap();
    // One checkpoint per 400 applied candles: most signals are emitted
    // before the checkpoint that covers their candle exists.
    let policy = CheckpointPolicy::Every {
        interval: Duration::from_secs(3600),
        max_candles: 400,
    };
    let (seen, store) = run(policy, KEEP_ALL, dir.path());
    let ahead = seen
        .iter()
        .filter(|(s, committed)| committed.is_none_or(|c| c < s.time))
        .count();
    assert!(
        ahead * 2 > seen.len(),
        "only {ahead} of {} signals went out before their checkpoint",
        seen.len()
    );

    // After the final checkpoint (taken as the pipeline stops) the outbox
    // holds every signal, in (time, id) order, as the feed sends it.
    let mut want: Vec<(i64, String, String)> = seen
        .iter()
        .map(|(s, _)| (s.time, s.id.clone(), s.feed_body()))
        .collect();
    want.sort();
    let stored: Vec<(i64, String, String)> = store
        .outbox_since(i64::MIN, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|r| (r.time, r.id, String::from_utf8(r.body).unwrap()))
        .collect();
    assert_eq!(stored, want);
    // `since` is inclusive of its time and skips everything before.
    let middle = want[want.len() / 2].0;
    let tail = store.outbox_since(middle, usize::MAX).unwrap();
    assert_eq!(tail.len(), want.iter().filter(|w| w.0 >= middle).count());
    // Every stream's final state is durable.
    let last = candles().last().unwrap().open_time;
    for key in STREAMS {
        assert_eq!(store.offset(&key.parse().unwrap()).unwrap(), Some(last));
    }
}

#[test]
fn never_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (seen, store) = run(CheckpointPolicy::Never, KEEP_ALL, dir.path());
    assert!(!seen.is_empty());
    assert_eq!(store.offset(&STREAMS[0].parse().unwrap()).unwrap(), None);
    assert!(store.outbox_since(i64::MIN, 10).unwrap().is_empty());
}

#[test]
fn the_outbox_keeps_its_retention_of_candle_time() {
    let dir = tempfile::tempdir().unwrap();
    let week = 7 * 24 * 3_600_000;
    let policy = CheckpointPolicy::Every {
        interval: Duration::from_secs(3600),
        max_candles: 400,
    };
    let (seen, store) = run(policy, OutboxPolicy { retention_ms: week }, dir.path());
    let newest = seen.iter().map(|(s, _)| s.time).max().unwrap();
    let want = seen.iter().filter(|(s, _)| s.time >= newest - week).count();
    let stored = store.outbox_since(i64::MIN, usize::MAX).unwrap();
    assert!(
        want > 0 && want < seen.len(),
        "the data spans more than a week"
    );
    assert_eq!(stored.len(), want);
    assert!(stored.iter().all(|r| r.time >= newest - week));
}

/// The hook a cluster consumer acks by (`Durability::offset`): a stream's
/// durable offset never runs ahead of what the store holds, ends at the
/// last candle, and after a restart starts at the store's offset.
#[test]
fn durable_offsets_never_run_ahead_of_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let keys: Vec<StreamKey> = STREAMS.iter().map(|k| k.parse().unwrap()).collect();
    let start = || {
        Engine::live(keys.clone())
            .configure(|c| {
                c.checkpoint = CheckpointPolicy::Every {
                    interval: Duration::from_millis(1),
                    max_candles: 50,
                };
                c.max_batch = 16;
            })
            .store(store.clone())
            .start()
            .unwrap()
    };
    let (pipeline, router) = start();
    let ids: Vec<_> = router.table().ids().collect();
    let data = candles();
    let durability = || {
        keys.iter()
            .map(|k| pipeline.metrics().durability.offset(k))
            .collect::<Vec<_>>()
    };
    assert_eq!(durability(), [None, None]);
    for chunk in data.chunks(25) {
        router.route_batch(events(chunk, &ids)).unwrap();
        for (k, d) in keys.iter().zip(durability()) {
            let stored = store.offset(k).unwrap();
            assert!(
                d <= stored,
                "{k}: durable {d:?} ahead of the store's {stored:?}"
            );
        }
    }
    drop(router);
    let metrics = pipeline.metrics().clone();
    pipeline.join().unwrap();
    let last = data.last().unwrap().open_time;
    for k in &keys {
        assert_eq!(metrics.durability.offset(k), Some(last), "{k}");
    }
    // A restart reports what the store holds before anything is applied.
    let (pipeline, router) = start();
    for k in &keys {
        assert_eq!(pipeline.metrics().durability.offset(k), Some(last), "{k}");
    }
    drop(router);
    pipeline.join().unwrap();
}

/// A stream keeps in memory only the candles since its last checkpoint;
/// the checkpoint appends them to the stored warm-up tail, which must be
/// the last `tail_bars` candles applied, whatever the policy, as if the
/// whole tail had been written each time.
#[test]
fn every_checkpoint_leaves_the_last_tail_bars_candles_stored() {
    let tail_bars = candlewick_pipeline::PipelineConfig::default().tail_bars;
    let data = candles();
    let want: Vec<Candle> = data[data.len() - tail_bars..].to_vec();
    let background = CheckpointPolicy::Every {
        interval: Duration::from_secs(3600),
        max_candles: 70, // not a multiple of the routed chunks
    };
    for policy in [background, CheckpointPolicy::EveryBatch] {
        let dir = tempfile::tempdir().unwrap();
        let (_, store) = run(policy, KEEP_ALL, dir.path());
        for key in STREAMS {
            let bytes = store
                .plugin_snapshot(candlewick_pipeline::TAIL_SNAPSHOT, &key.parse().unwrap())
                .unwrap()
                .expect("a stored tail");
            let tail = candlewick_pipeline::decode_tail(&bytes).unwrap();
            assert_eq!(tail, want, "{policy:?} {key}");
        }
    }
}

/// A shard of 600 streams checkpoints them in slices of at most 256, so
/// that a checkpoint holds up the shard's next candle for one slice's
/// copy, not for all 600; every stream still ends whole and durable.
#[test]
fn a_checkpoint_of_many_streams_is_committed_in_slices_each_stream_whole() {
    const MANY: usize = 600;
    const SLICE: usize = 256;
    let dir = tempfile::tempdir().unwrap();
    // How many streams each commit carried.
    let commits = Arc::new(Mutex::new(Vec::new()));
    let seen = commits.clone();
    let store = Arc::new(Hooked {
        inner: Store::open(dir.path()).unwrap(),
        hook: move |c: &Checkpoint<'_>| {
            seen.lock().unwrap().push(c.streams().len());
            Ok(())
        },
    });
    let keys: Vec<StreamKey> = (0..MANY)
        .map(|i| format!("S{i:03}USD/1h").parse().unwrap())
        .collect();
    let spec = "sma(20) rsi(14)";
    let (pipeline, router) = Engine::live(keys.clone())
        .configure(|c| {
            c.workers = 1;
            c.indicator_spec = spec.into();
            c.checkpoint = CheckpointPolicy::Every {
                interval: Duration::from_millis(1),
                max_candles: u64::MAX,
            };
        })
        .store(store.clone())
        .start()
        .unwrap();
    let ids: Vec<_> = router.table().ids().collect();
    let data = candles();
    let data = &data[..60];
    for c in data {
        router
            .route_batch(events(std::slice::from_ref(c), &ids))
            .unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(router);
    pipeline.join().unwrap();

    let commits = commits.lock().unwrap().clone();
    let (last, during) = commits.split_last().unwrap();
    assert!(
        during.iter().all(|&n| n <= SLICE),
        "a commit carried more than a slice: {during:?}"
    );
    assert!(
        during.iter().filter(|&&n| n == SLICE).count() >= 2,
        "no checkpoint was sliced: {commits:?}"
    );
    assert!(*last <= MANY);
    // Every stream whole: as if its candles had been applied directly.
    for key in &keys {
        let mut expected = StreamState::new(key.clone(), spec).unwrap();
        let mut out = vec![0.0; expected.set().width()];
        for c in data {
            expected.apply(c, &mut out).unwrap();
        }
        let stored = store.inner.load(key, spec).unwrap();
        assert!(stored == expected, "{key}: stored state differs");
        assert_eq!(store.inner.offset(key).unwrap(), Some(data[59].open_time));
    }
}

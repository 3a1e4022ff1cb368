//! Latency mode's run to completion (ARCHITECTURE §2): sources on several
//! threads run candles through idle shards themselves, and every stream
//! still sees each of its candles once, in order, with the signals a
//! queued engine gives. Bundled EURUSD data, the example `sma_cross`.

use std::collections::BTreeMap;
mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use candlewick_market::Candle;
use candlewick_pipeline::{
    CandleEvent, CheckpointPolicy, Engine, RouteError, Signal, Sink, Strategy,
};
use candlewick_plugins::{HostConfig, Limits, PluginHost};
use candlewick_state::{Checkpoint, MemoryStore, StateError, StreamKey};
use common::{wasm, Hooked};

const STREAMS: usize = 8;
const SOURCES: usize = 4;
const BARS: usize = 600;

fn candles() -> Vec<Candle> {
    common::eurusd(BARS)
}

/// What reached the sink, and on which threads.
#[derive(Default)]
struct Seen {
    candles: Mutex<BTreeMap<String, Vec<i64>>>,
    signals: Mutex<Vec<Signal>>,
    /// Candles emitted by a shard worker's own thread / by another.
    on_workers: Mutex<(usize, usize)>,
}

impl Sink for Seen {
    fn signal(&self, s: Signal) {
        self.signals.lock().unwrap().push(s);
    }

    fn wants_candles(&self) -> bool {
        true
    }

    fn candle(&self, stream: &StreamKey, candle: &Candle) {
        let mut c = self.candles.lock().unwrap();
        c.entry(stream.to_string())
            .or_default()
            .push(candle.open_time);
        let worker = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("cw-shard-"));
        let mut on = self.on_workers.lock().unwrap();
        if worker {
            on.0 += 1;
        } else {
            on.1 += 1;
        }
    }
}

/// Every bar of every stream, one candle per route, from `SOURCES` threads
/// at once (each owns `STREAMS / SOURCES` streams); returns the sink.
fn run(inline: bool) -> Arc<Seen> {
    let host = PluginHost::new(HostConfig::default()).unwrap();
    let mut strategy = Strategy::new(host.load_file(&wasm("sma_cross")).unwrap());
    strategy.limits = Limits {
        deadline: Duration::from_secs(10),
        ..Limits::default()
    };
    let seen = Arc::new(Seen::default());
    let keys: Vec<StreamKey> = (0..STREAMS)
        .map(|i| format!("S{i}USD/1h").parse().unwrap())
        .collect();
    let (pipeline, router) = Engine::live(keys)
        .configure(|c| {
            c.inline = inline;
            c.checkpoint = CheckpointPolicy::Every {
                interval: Duration::from_secs(3600),
                max_candles: 500,
            };
        })
        .strategies(&host, std::slice::from_ref(&strategy))
        .sink(seen.clone())
        .start()
        .unwrap();
    let metrics = pipeline.metrics().clone();
    let data = candles();
    let ids: Vec<_> = router.table().ids().collect();
    std::thread::scope(|scope| {
        for source in ids.chunks(STREAMS / SOURCES) {
            let router = router.clone();
            let data = &data;
            scope.spawn(move || {
                for candle in data {
                    for &stream in source {
                        let event = CandleEvent {
                            stream,
                            candle: *candle,
                            ingest_ns: 0,
                        };
                        router.route(event).unwrap();
                    }
                }
            });
        }
    });
    drop(router);
    let reports = pipeline.join().unwrap();
    assert_eq!(
        reports.iter().map(|r| r.applied).sum::<u64>(),
        (STREAMS * BARS) as u64
    );
    assert_eq!(reports.iter().map(|r| r.duplicates).sum::<u64>(), 0);
    let c = &metrics.counters;
    let (ran, busy) = (c.inline_ran.load(Relaxed), c.inline_busy.load(Relaxed));
    assert_eq!(ran + busy, if inline { (STREAMS * BARS) as u64 } else { 0 });
    seen
}

/// The signals by id, with what they say (not when they were sent).
fn decided(seen: &Seen) -> Vec<String> {
    let mut out: Vec<_> = seen
        .signals
        .lock()
        .unwrap()
        .iter()
        .map(|s| {
            let (action, strength, price) = (s.action, s.strength, s.price);
            format!("{} {action:?} {strength} {price}", s.id)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn sources_run_idle_shards_themselves_and_every_stream_keeps_its_order() {
    let inline = run(true);
    let want: Vec<i64> = candles().iter().map(|c| c.open_time).collect();
    let streams = inline.candles.lock().unwrap();
    assert_eq!(streams.len(), STREAMS);
    for (stream, times) in streams.iter() {
        assert_eq!(times, &want, "{stream}: candles lost, doubled or reordered");
    }
    let (on_workers, on_sources) = *inline.on_workers.lock().unwrap();
    assert_eq!(on_workers + on_sources, STREAMS * BARS);
    assert!(
        on_sources > 0,
        "no candle ran on a source's thread ({on_workers} on the workers)"
    );

    let queued = run(false);
    assert_eq!(queued.on_workers.lock().unwrap().1, 0);
    let (a, b) = (decided(&inline), decided(&queued));
    assert!(
        a.len() > 20 * STREAMS,
        "sma_cross gave only {} signals",
        a.len()
    );
    assert!(a == b, "the two modes decided differently");
}

#[test]
fn a_failure_on_a_sources_thread_stops_the_shard_and_is_reported_once() {
    let keys: Vec<StreamKey> = vec!["S0USD/1h".parse().unwrap()];
    let (pipeline, router) = Engine::live(keys)
        .configure(|c| {
            c.workers = 1;
            c.checkpoint = CheckpointPolicy::Every {
                interval: Duration::from_secs(3600),
                max_candles: 10,
            };
        })
        // A store whose commits fail: the checkpoint writer stops at the
        // first.
        .store(Arc::new(Hooked {
            inner: MemoryStore::new(),
            hook: |_: &Checkpoint<'_>| {
                Err(StateError::Shared {
                    what: "test store".into(),
                    detail: "the disk is full".into(),
                })
            },
        }))
        .start()
        .unwrap();
    let failed = pipeline.failed();
    let stream = router.table().ids().next().unwrap();
    let data = candles();
    let route = |candle: &Candle| {
        router.route(CandleEvent {
            stream,
            candle: *candle,
            ingest_ns: 0,
        })
    };
    // The first checkpoint is due at 10 candles; the writer fails on it
    // and says so.
    for candle in &data[..10] {
        route(candle).unwrap();
    }
    let waited = std::time::Instant::now();
    while *failed.borrow() == 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "the writer never failed"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // The next checkpoint due finds the writer gone, on this thread: the
    // shard stops and routing to it fails.
    let routed = data[10..].iter().take_while(|c| route(c).is_ok()).count();
    assert!(
        routed <= 10,
        "{routed} more candles routed after the failure"
    );
    assert!(matches!(
        route(&data[11 + routed]),
        Err(RouteError::Stopped { .. })
    ));
    // Once the shard's own thread has returned the error, too.
    while *failed.borrow() < 2 {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "the shard never stopped"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(matches!(
        route(&data[12 + routed]),
        Err(RouteError::Stopped { .. })
    ));
    drop(router);
    let e = pipeline.join().unwrap_err().to_string();
    assert!(e.contains("the disk is full"), "{e}");
    assert_eq!(*failed.borrow(), 2, "the writer and the shard, once each");
}

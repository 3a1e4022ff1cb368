//! `candlewick run`: the main job, the live engine.
//!
//! Assembles one engine from the configuration and runs it until asked to
//! stop:
//!
//! ```text
//! source (replay thread | Binance connections) -> pipeline (shard workers, RocksDB)
//!     -> hub -> feed server (ws://.../v1/feed, /healthz, /metrics)
//! ```
//!
//! With `[source] kind = "nats"` the source is the cluster's CANDLES
//! stream, one consumer per partition of `nats.partitions`, and the hub
//! may be teed to SIGNALS (`run/cluster.rs`, ARCHITECTURE.md §7).
//!
//! # Stopping
//!
//! SIGINT or SIGTERM (or the end of a replay with `--exit-at-end`, or a
//! part that fails for good) starts the same orderly stop: the sources stop
//! and drop their routers; the workers drain their queues, commit the last
//! checkpoint and emit its signals; then each feed client gets what is
//! queued for it and a close frame; the process exits 0 (or 1 with the
//! failure's cause on one line).

use std::io::Cursor;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use candlewick_analyst::context::Predictions;
use candlewick_analyst::{AnalystTap, Service as AnalystService, Triggers};
use candlewick_feed::{FeedConfig, FeedState, Hub};
use candlewick_ingest::binance::Connection;
use candlewick_ingest::replay::{Replay, ReplayReport};
use candlewick_ingest::IngestError;
use candlewick_market::{time::format_ms, CsvReader};
use candlewick_notify::watch::HealthWatch;
use candlewick_notify::{Notification, Notifier, NotifyTap, Service};
use candlewick_pipeline::{
    load_models, load_strategies, supervise, Backoff, Clock, Engine, Health, Metrics, ModelSpec,
    OutboxPolicy, Router, Sink, Strategy, StrategySpec, StreamTable, SuperviseError, TaskState,
};
use candlewick_state::{StateStore, Store, StoreOptions, StreamKey};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, DataRef, ModelConfig, SourceKind, StrategyConfig, DEMO_TOKEN};

mod cluster;

/// Run the engine: candles in (replay or Binance), strategies, signals out
/// on the WebSocket feed, state checkpointed to RocksDB so the next run
/// resumes where this one stopped.
///
/// With no --config, uses the embedded default (config/default.toml):
/// offline, the bundled EURUSD hourly candles replayed in real time at a
/// speed-up, the example strategies, the feed on 127.0.0.1:8765.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Configuration file (TOML). Default: the embedded config/default.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Stop when a replay reaches the end of its data (for scripts and CI).
    #[arg(long)]
    pub exit_at_end: bool,
    /// Replay speed-up over real time (overrides source.speed); 0 replays
    /// as fast as the workers take candles.
    #[arg(long, value_name = "X")]
    pub speed: Option<f64>,
    /// Feed address (overrides feed.listen); port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(speed) = args.speed {
        if !(speed.is_finite() && speed >= 0.0) {
            bail!("--speed must be a number >= 0");
        }
        config.source.speed = speed;
    }
    config.source.exit_at_end |= args.exit_at_end;
    if let Some(listen) = args.listen {
        config.feed.listen = listen;
    }
    let runtime = super::io_runtime("cw-io")?;
    runtime.block_on(engine_runs(config))
}

/// Signals the hub keeps in memory for resuming feed clients.
const RECENT_SIGNALS: usize = 16_384;

/// Why the engine is stopping.
#[derive(Debug)]
enum Stop {
    Signal(&'static str),
    EndOfReplay,
    /// With leases: this engine's partitions changed; it runs again with
    /// the new set.
    Reassign,
    Failed(anyhow::Error),
}

/// Runs the engine once; with partition leases, again each time this
/// engine's share of the partitions changes (ARCHITECTURE.md §7).
async fn engine_runs(config: Config) -> anyhow::Result<()> {
    // The feed's port first: a busy port is a clear error before any
    // state is opened or thread started (an error after that would leave
    // RocksDB's threads running as the process exits).
    let listener = tokio::net::TcpListener::bind(config.feed.listen)
        .await
        .map_err(|e| crate::config::listen_error(config.feed.listen, e))?;
    let leased = match (&config.nats, config.source.kind) {
        (Some(n), SourceKind::Nats) if n.leased() => Some(n),
        _ => None,
    };
    // SIGINT or SIGTERM, noted once for the whole process: one that comes
    // between two runs (leases) stops the next one at once.
    let (signalled_tx, signalled) = watch::channel(None);
    tokio::spawn(async move {
        let s = shutdown_signal().await;
        let _ = signalled_tx.send(Some(s));
    });
    let Some(n) = leased else {
        return engine(&config, None, listener, signalled).await.map(drop);
    };
    // One socket for every run: clients that connect while the engine
    // changes its partitions wait in the backlog, on the same port.
    let listener = listener.into_std()?;
    let link = cluster::LeaseLink::start(n).await?;
    let mut transient = cluster::Transient::default();
    let result = loop {
        let held = match link.rebalance().await {
            Ok(held) => held,
            Err(e) => {
                let e = e.into();
                if transient.retry(&e).await {
                    continue;
                }
                break Err(e);
            }
        };
        if held.is_empty() {
            tracing::info!("no partition is free for this engine; waiting for one");
            let mut signalled = signalled.clone();
            tokio::select! {
                s = signal_noted(&mut signalled) => {
                    tracing::info!("{s}: stopping");
                    break Ok(());
                }
                () = link.changed() => continue,
            }
        }
        let run_listener = tokio::net::TcpListener::from_std(listener.try_clone()?)?;
        match engine(&config, Some(&link), run_listener, signalled.clone()).await {
            Ok(Stop::Reassign) => transient.reset(),
            Ok(_) => break Ok(()),
            Err(e) if transient.retry(&e).await => {}
            Err(e) => break Err(e),
        }
    };
    link.stop().await;
    result
}

/// One run of the engine on `listener`, until something says stop.
async fn engine(
    config: &Config,
    lease: Option<&cluster::LeaseLink>,
    listener: tokio::net::TcpListener,
    mut signalled: watch::Receiver<Option<&'static str>>,
) -> anyhow::Result<Stop> {
    let started = Instant::now();
    // The feed's settings first, like its port: a bad one is a clear
    // error before any state is opened.
    let addr = listener.local_addr()?;
    let server_config = config.feed.server_config()?;
    let clock = Clock::new();
    let health = Arc::new(Health::new());
    let keys = match lease {
        Some(l) => l.streams(config)?,
        None => stream_keys(config)?,
    };
    let table = StreamTable::new(keys.clone(), config.engine.workers);
    let store = Arc::new(
        Store::open_with(
            &config.state.path,
            StoreOptions::default().sync(config.state.sync),
        )
        .with_context(|| format!("state.path {}", config.state.path.display()))?,
    );
    let offsets: Vec<Option<i64>> = table
        .ids()
        .map(|id| store.offset(table.key(id)))
        .collect::<Result<_, _>>()?;
    for id in table.ids().take(4) {
        match offsets[id.0 as usize] {
            Some(t) => {
                tracing::info!(stream = %table.key(id), "resuming after the candle of {}", format_ms(t))
            }
            None => {
                tracing::info!(stream = %table.key(id), "no checkpoint yet: starting from the first candle")
            }
        }
    }

    let run_ms = unix_ms();
    let (notifier, notify_service) = start_notifier(config)?;
    let (host, strategies) = load_strategies(&strategy_specs(&config.strategies), table.len())?;
    let models = load_models(&model_specs(&config.models))?;
    // The hub keeps the signals of about one checkpoint interval (and
    // more) for clients that resume with `since`; the outbox has the rest.
    let hub = Hub::new(config.feed.client_queue, config.feed.candles)
        .keep_recent(RECENT_SIGNALS)
        .timed(clock);
    let (triggers, predictions, analyst_service) = start_analyst(
        config,
        store.clone(),
        keys.clone(),
        &strategies,
        (&hub, &notifier),
    )?;
    // The cluster: connected (and its streams verified) before anything
    // starts, so that a wrong address or setting is a clear error at once.
    let mut cluster = match (&config.nats, config.source.kind) {
        (Some(n), SourceKind::Nats) => Some(cluster::Cluster::start(n, lease).await?),
        _ => None,
    };
    // With leases, the pipeline's store also shares each checkpoint with
    // the cluster, after taking the partitions' shared state over.
    let pipeline_store: Arc<dyn StateStore> = match (cluster.as_mut(), lease) {
        (Some(c), Some(l)) => c.take_over(l, store.clone(), &keys).await?,
        _ => store.clone(),
    };
    if let Some(c) = &cluster {
        c.republish(&*store, &strategies, &table).await?;
    }
    // The workers' sink: the hub, with notifications and the cluster's
    // SIGNALS publisher on the side when they are on.
    let (sink, signal_publisher) = match &cluster {
        Some(c) => c.sink(engine_sink(
            &hub,
            &notifier,
            &triggers,
            &predictions,
            run_ms,
        )),
        None => (
            engine_sink(&hub, &notifier, &triggers, &predictions, run_ms),
            None,
        ),
    };
    let engine = Engine::live(keys.clone())
        .configure(|c| {
            c.workers = config.engine.workers;
            c.queue_capacity = config.engine.queue_capacity;
            c.max_batch = config.engine.max_batch;
            c.indicator_spec.clone_from(&config.indicators.spec);
            c.tail_bars = config.engine.tail_bars;
            c.checkpoint = config.engine.checkpoint();
            c.spin = Duration::from_micros(config.engine.spin_us);
            c.inline = config.engine.inline;
            c.small_pages = config.engine.small_pages;
        })
        .models(models)
        .outbox(OutboxPolicy {
            retention_ms: (config.state.outbox_retention_h as i64) * 3_600_000,
        })
        .store(pipeline_store)
        .sink(sink)
        .clock(clock);
    let (pipeline, router) = match &host {
        Some(host) => engine.strategies(host, &strategies).start()?,
        None => engine.start()?,
    };
    let metrics = pipeline.metrics().clone();
    let (notify_stop_tx, notify_stop) = watch::channel(false);
    let mut notify_task = notify_service.map(|service| {
        let down_after = config.notify.as_ref().map_or(30.0, |n| n.down_after_s);
        let down_after = Duration::from_secs_f64(down_after);
        let (notifier, health_for_watch, metrics_for_watch) =
            (notifier.clone(), health.clone(), metrics.clone());
        // The delivery and its health watch, supervised together (a failure
        // of either restarts both; the watch starts afresh, the outbox
        // keeps what was handed over).
        spawn_supervised("notify", health.clone(), metrics.clone(), move || {
            let delivery = service.clone().run(notify_stop.clone());
            let watching = candlewick_notify::watch::watch(
                HealthWatch::new(run_ms, down_after),
                notifier.clone(),
                health_for_watch.clone(),
                metrics_for_watch.clone(),
                notify_stop.clone(),
            );
            async move { tokio::try_join!(delivery, watching).map(drop) }
        })
    });
    let (analyst_stop_tx, analyst_stop) = watch::channel(false);
    let analyst_stats = analyst_service
        .as_ref()
        .map(|s| s.analyst().stats().clone());
    let asker = analyst_service.as_ref().map(|s| s.analyst().clone());
    let mut analyst_task = analyst_service.map(|service| {
        spawn_supervised("analyst", health.clone(), metrics.clone(), move || {
            service.clone().run(analyst_stop.clone())
        })
    });
    for shard in 0..config.engine.workers {
        health.set(&format!("shard-{shard}"), TaskState::Running);
    }

    // The feed, on the listener bound at the start.
    let (feed_stop_tx, feed_stop) = watch::channel(false);
    let feed_config = FeedConfig {
        dashboard: candlewick_feed::DashboardConfig::for_streams(
            strategies.iter().map(|s| s.name.to_string()).collect(),
            table.len(),
        ),
        ..server_config
    };
    let demo = feed_config.tokens.iter().any(|t| t == DEMO_TOKEN);
    let mut feed_state = FeedState::new(
        feed_config,
        hub.clone(),
        metrics.clone(),
        health.clone(),
        feed_stop,
    )
    .with_outbox(store.clone())
    .with_known(
        router
            .table()
            .ids()
            .map(|id| router.table().key(id).symbol.to_string()),
        strategies.iter().map(|s| s.name.to_string()),
    );
    let notify_stats = notifier.stats().cloned();
    let cluster_metrics = cluster.as_ref().map(|c| c.render_metrics());
    if notify_stats.is_some() || analyst_stats.is_some() || cluster_metrics.is_some() {
        let analyst_stats = analyst_stats.clone();
        feed_state = feed_state.with_extra_metrics(Arc::new(move |out: &mut String| {
            if let Some(s) = &notify_stats {
                s.render_prometheus(out);
            }
            if let Some(s) = &analyst_stats {
                s.render_prometheus(out);
            }
            if let Some(render) = &cluster_metrics {
                render(out);
            }
        }));
    }
    if let Some(c) = &cluster {
        feed_state = feed_state.with_extra_health("nats", c.health());
    }
    if let Some(stats) = analyst_stats {
        feed_state = feed_state.with_extra_health("analyst", Arc::new(move || stats.health()));
    }
    if let Some(analyst) = asker {
        feed_state = feed_state.with_ask(Arc::new(move |r: candlewick_feed::ask::AskRequest| {
            let analyst = analyst.clone();
            Box::pin(async move {
                candlewick_analyst::ask::answer_http(&analyst, &r.question, r.symbol.as_deref())
                    .await
            })
        }));
    }
    let feed_health = health.clone();
    let mut feed_task = tokio::spawn(async move {
        feed_health.set("feed", TaskState::Running);
        let r = candlewick_feed::serve(listener, feed_state).await;
        match &r {
            Ok(()) => feed_health.set("feed", TaskState::Finished),
            Err(e) => feed_health.set(
                "feed",
                TaskState::Failed {
                    error: e.to_string(),
                },
            ),
        }
        r
    });
    tracing::info!(
        strategies = strategies.len(),
        streams = router.table().len(),
        "signal feed on ws://{addr}/v1/feed (health: http://{addr}/healthz, metrics: http://{addr}/metrics)"
    );
    // The demo token is public; a real one is never logged.
    let page = if demo {
        format!("http://{addr}/#token={DEMO_TOKEN}")
    } else {
        format!("http://{addr}/ (it asks for one of feed.tokens)")
    };
    tracing::info!("dashboard: {page}");
    if demo {
        tracing::info!("watch it: candlewick watch --url ws://{addr}/v1/feed --token {DEMO_TOKEN}");
    } else {
        tracing::info!(
            "watch it: candlewick watch --url ws://{addr}/v1/feed --token <one of feed.tokens>"
        );
    }

    notifier.try_notify(Notification::engine(
        run_ms,
        false,
        unix_ms(),
        &format!(
            "{} streams, {} strategies",
            router.table().len(),
            strategies.len()
        ),
    ));

    // The source.
    let (source_stop_tx, source_stop) = watch::channel(false);
    let stop_flag = Arc::new(AtomicBool::new(false));
    let (source_done_tx, mut source_done) =
        tokio::sync::mpsc::channel::<anyhow::Result<Option<ReplayReport>>>(4);
    let sources = match &cluster {
        Some(c) => Ok(c.start_sources(router, clock, &health, source_stop.clone(), source_done_tx)),
        None => start_source(
            config,
            router,
            clock,
            &offsets,
            store.clone(),
            &health,
            source_stop.clone(),
            stop_flag.clone(),
            source_done_tx,
        ),
    };
    let n_sources = match sources {
        Ok(n) => n,
        Err(e) => {
            // Nothing was started and the router is gone: stop the feed and
            // let the workers drain, so that the store closes before the
            // process exits (RocksDB's threads must not outlive it).
            feed_task.abort();
            let _ = (&mut feed_task).await;
            for task in [notify_task.take(), analyst_task.take()]
                .into_iter()
                .flatten()
            {
                task.abort();
                let _ = task.await;
            }
            let _ = tokio::task::spawn_blocking(move || pipeline.join()).await;
            return Err(e);
        }
    };

    // Run until something says stop.
    let mut workers_failed = pipeline.failed();
    let mut replay_report = ReplayReport::default();
    let mut sources_left = n_sources;
    let mut sources_open = true;
    let mut reassign = lease.map(|l| l.changes());
    let stop = loop {
        tokio::select! {
            s = signal_noted(&mut signalled) => break Stop::Signal(s),
            Some(()) = changed(&mut reassign) => break Stop::Reassign,
            done = source_done.recv(), if sources_open => match done {
                Some(Ok(report)) => {
                    sources_left -= 1;
                    if let Some(r) = report {
                        replay_report = r;
                        tracing::info!(routed = r.routed, "replay reached the end of its data");
                    }
                    if sources_left == 0 && config.source.exit_at_end {
                        break Stop::EndOfReplay;
                    }
                }
                Some(Err(e)) => break Stop::Failed(e),
                None => {
                    // Every source ended; keep serving until told to stop.
                    if config.source.exit_at_end {
                        break Stop::EndOfReplay;
                    }
                    sources_open = false;
                }
            },
            // Err: every worker ended normally (the sender is gone).
            Ok(()) = workers_failed.changed() => break Stop::Failed(anyhow!("a shard worker failed; see the log above")),
            r = task_ended(&mut notify_task) => break Stop::Failed(match r {
                Ok(Ok(())) => anyhow!("the notifier stopped"),
                Ok(Err(e)) => e.into(),
                Err(e) => anyhow!("the notifier panicked: {e}"),
            }),
            r = task_ended(&mut analyst_task) => break Stop::Failed(match r {
                Ok(Ok(())) => anyhow!("the analyst stopped"),
                Ok(Err(e)) => e.into(),
                Err(e) => anyhow!("the analyst panicked: {e}"),
            }),
            r = &mut feed_task => break Stop::Failed(match r {
                Ok(Ok(())) => anyhow!("the feed server stopped"),
                Ok(Err(e)) => e.into(),
                Err(e) => anyhow!("the feed server panicked: {e}"),
            }),
        }
    };
    match &stop {
        Stop::Signal(s) => tracing::info!("{s}: draining and stopping"),
        Stop::EndOfReplay => tracing::info!("end of replay: draining and stopping"),
        Stop::Reassign => tracing::info!(
            "this engine's partitions change: draining, then running again with the new set"
        ),
        Stop::Failed(e) => tracing::error!(cause = %format!("{e:#}"), "stopping after a failure"),
    }

    // Orderly stop: the analyst (a round in flight is abandoned; what it
    // stored stays), sources, then workers (drain + final checkpoint), then
    // the feed (queued frames + close frames).
    let _ = analyst_stop_tx.send(true);
    if let Some(task) = analyst_task.take().filter(|t| !t.is_finished()) {
        if tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
        {
            tracing::warn!("the analyst did not stop in time");
        }
    }
    let _ = source_stop_tx.send(true);
    stop_flag.store(true, Ordering::Relaxed);
    while let Some(done) = source_done.recv().await {
        if let Ok(Some(r)) = done {
            replay_report = r;
        }
    }
    let reports = tokio::task::spawn_blocking(move || pipeline.join())
        .await
        .map_err(|e| anyhow!("joining the workers: {e}"))?;
    // The workers are gone, and with them the signal tee: the publisher
    // drains what is queued for SIGNALS and ends.
    if let Some(task) = signal_publisher {
        cluster::finish_publisher(task).await;
    }
    if let Some(c) = &cluster {
        c.summary();
    }
    // Every signal is emitted: tell the stop, then let the notifier write
    // what it was handed to its outbox and deliver what it can.
    let reason = match &stop {
        Stop::Signal(s) => (*s).to_owned(),
        Stop::EndOfReplay => "end of replay".to_owned(),
        Stop::Reassign => "partitions reassigned".to_owned(),
        Stop::Failed(_) => "failure (see the engine's log)".to_owned(),
    };
    notifier.try_notify(Notification::engine(run_ms, true, unix_ms(), &reason));
    let _ = notify_stop_tx.send(true);
    if let Some(task) = notify_task.take().filter(|t| !t.is_finished()) {
        let limit = config
            .notify
            .as_ref()
            .map_or(Duration::ZERO, |n| Duration::from_secs_f64(n.drain_s))
            + Duration::from_secs(10);
        if tokio::time::timeout(limit, task).await.is_err() {
            tracing::warn!(
                "the notifier did not stop in time; its outbox keeps what is undelivered"
            );
        }
    }
    let _ = feed_stop_tx.send(true);
    // Let each client get its last frames and a close frame.
    let closing = Instant::now();
    while metrics.counters.feed_clients.load(Ordering::Relaxed) > 0
        && closing.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if !feed_task.is_finished() {
        match tokio::time::timeout(Duration::from_secs(10), &mut feed_task).await {
            Ok(_) => {}
            Err(_) => tracing::warn!("feed clients did not close within 10 s"),
        }
    }
    let reports = reports?;
    let applied: u64 = reports.iter().map(|r| r.applied).sum();
    let duplicates: u64 = reports.iter().map(|r| r.duplicates).sum();
    let signals: u64 = reports.iter().map(|r| r.signals).sum();
    let latency = metrics.latency();
    tracing::info!(
        applied,
        already_applied = replay_report.already_applied + duplicates,
        signals,
        batches = reports.iter().map(|r| r.batches).sum::<u64>(),
        ingest_to_emit_p50_us = latency.p50 as f64 / 1e3,
        ingest_to_emit_p99_us = latency.p99 as f64 / 1e3,
        seconds = started.elapsed().as_secs_f64(),
        "stopped; state in {}",
        config.state.path.display()
    );
    match stop {
        Stop::Failed(e) => Err(e),
        stop => Ok(stop),
    }
}

/// Resolves (to `Some`) when the watched value changes; never without a
/// watch, or once its sender is gone.
async fn changed(rx: &mut Option<watch::Receiver<u64>>) -> Option<()> {
    if let Some(rx) = rx {
        if rx.changed().await.is_ok() {
            return Some(());
        }
    }
    std::future::pending().await
}

/// Milliseconds since the Unix epoch.
fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The notifier of `[notify]` (its outbox opened, its webhooks checked),
/// or a disabled one when the section is absent.
fn start_notifier(config: &Config) -> anyhow::Result<(Notifier, Option<Arc<Service>>)> {
    let Some(n) = &config.notify else {
        return Ok((Notifier::disabled(), None));
    };
    let settings = n.build()?;
    let path = n.outbox(&config.state.path);
    let (notifier, service) =
        candlewick_notify::start(&settings, &path, config.state.sync).context("notify")?;
    let stats = service.stats();
    tracing::info!(
        webhooks = settings.webhooks.len(),
        pending = stats.pending.load(Ordering::Relaxed),
        dead_letters = stats.dead_letters.load(Ordering::Relaxed),
        "notifications on; outbox in {}",
        path.display()
    );
    Ok((notifier, Some(service)))
}

/// The analyst of `[analyst]` (its settings checked, its key read, its
/// results opened), publishing `analysis` frames on `hub`; nothing when
/// the section is absent.
fn start_analyst(
    config: &Config,
    store: Arc<Store>,
    streams: Vec<StreamKey>,
    strategies: &[Strategy],
    (hub, notifier): (&Hub, &Notifier),
) -> anyhow::Result<AnalystParts> {
    let Some(a) = &config.analyst else {
        return Ok((None, None, None));
    };
    if let Some(name) = a
        .on_signals
        .iter()
        .find(|n| !strategies.iter().any(|s| *s.name == ***n))
    {
        let loaded: Vec<&str> = strategies.iter().map(|s| &*s.name).collect();
        bail!("analyst.on_signals: no strategy named {name:?} runs (loaded: {loaded:?})");
    }
    let settings = a.build()?;
    let mut symbols: Vec<String> = Vec::new();
    for k in &streams {
        if !symbols.iter().any(|s| s == k.symbol.as_str()) {
            symbols.push(k.symbol.as_str().to_owned());
        }
    }
    if !a.symbols.is_empty() {
        if let Some(other) = a.symbols.iter().find(|s| !symbols.contains(s)) {
            bail!("analyst.symbols: the engine runs no stream of {other:?}");
        }
        symbols = a.symbols.clone();
    }
    let path = a.results_path(&config.state.path);
    let results = Arc::new(candlewick_analyst::Results::open(&path, config.state.sync)?);
    let analyst = Arc::new(candlewick_analyst::Analyst::new(settings, results)?);
    if a.on_prediction_score.is_some() && config.models.is_empty() {
        bail!("analyst.on_prediction_score: the config has no [[models]] to predict");
    }
    // The models' latest predictions, kept by the workers' sink.
    let predictions = (!config.models.is_empty()).then(Arc::default);
    let plan = candlewick_analyst::Plan {
        predictions: predictions.clone(),
        store,
        streams,
        symbols,
        spec: config.indicators.spec.clone(),
        signals: a.signals,
        every: (a.every_minutes > 0).then(|| Duration::from_secs(a.every_minutes * 60)),
        cooldown: Duration::from_secs(a.trigger_cooldown_s),
        retention: Duration::from_secs(a.retention_days.saturating_mul(86_400)),
        retention_per_symbol: a.retention_per_symbol,
    };
    let (feed, notifier) = (hub.clone(), notifier.clone());
    let publish: candlewick_analyst::Publish = Arc::new(move |r| {
        let (Some(body), Some(a)) = (candlewick_analyst::frame_body(r), &r.analysis) else {
            return;
        };
        // The webhooks' filters (kind, symbol, min_confidence) decide;
        // `try_notify` never waits.
        let data = format!("{{{body}");
        notifier.try_notify(Notification::analysis(
            &r.symbol,
            r.time,
            a.confidence,
            data,
        ));
        feed.publish_analysis(&r.symbol, r.time, body);
    });
    let (triggers, service) = candlewick_analyst::service(
        analyst,
        plan,
        a.on_signals.clone(),
        a.on_prediction_score,
        Some(publish),
    );
    tracing::info!(
        model = %a.model,
        every_minutes = a.every_minutes,
        on_signals = ?a.on_signals,
        budget_usd = ?a.daily_budget_usd,
        "analyst on; results in {}",
        path.display()
    );
    let triggers =
        (!a.on_signals.is_empty() || a.on_prediction_score.is_some()).then_some(triggers);
    Ok((triggers, predictions, Some(service)))
}

/// What `start_analyst` gives: the workers' triggers (with `on_signals`),
/// the kept predictions (with models), the task.
type AnalystParts = (
    Option<Triggers>,
    Option<Arc<Predictions>>,
    Option<Arc<AnalystService>>,
);

/// The workers' sink: the hub, with notifications and the analyst's
/// triggers on the side when on (a `try_send` per wanted signal; nothing
/// more on the path), and the models' latest predictions kept for it.
fn engine_sink(
    hub: &Hub,
    notifier: &Notifier,
    triggers: &Option<Triggers>,
    predictions: &Option<Arc<Predictions>>,
    run_ms: i64,
) -> Arc<dyn Sink> {
    let sink: Arc<dyn Sink> = if notifier.is_enabled() {
        Arc::new(NotifyTap::wrap(hub.clone(), notifier.clone(), run_ms))
    } else {
        Arc::new(hub.clone())
    };
    if triggers.is_none() && predictions.is_none() {
        return sink;
    }
    Arc::new(AnalystTap::wrap(
        sink,
        triggers.clone(),
        predictions.clone(),
    ))
}

/// A task of the engine's beside the pipeline (the notifier, the
/// analyst), supervised like the others.
fn spawn_supervised<F, Fut, E>(
    name: &'static str,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    make: F,
) -> JoinHandle<Result<(), SuperviseError>>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    tokio::spawn(async move { supervise(name, &health, &metrics, &Backoff::default(), make).await })
}

/// A supervised task ending (it ends only when stopped, or when its
/// supervisor gives up); never, when there is none.
async fn task_ended(
    task: &mut Option<JoinHandle<Result<(), SuperviseError>>>,
) -> Result<Result<(), SuperviseError>, tokio::task::JoinError> {
    match task {
        Some(t) => t.await,
        None => std::future::pending().await,
    }
}

/// The signal noted in `rx` (at once when one came before).
async fn signal_noted(rx: &mut watch::Receiver<Option<&'static str>>) -> &'static str {
    match rx.wait_for(Option::is_some).await {
        Ok(s) => s.unwrap_or("SIGTERM"),
        // The noting task is gone only with the runtime.
        Err(_) => std::future::pending().await,
    }
}

/// SIGINT or SIGTERM, whichever comes first.
pub(crate) async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// The streams the engine runs for `config`'s source.
pub(crate) fn stream_keys(config: &Config) -> anyhow::Result<Vec<StreamKey>> {
    Ok(match config.source.kind {
        SourceKind::Replay => {
            let (Some(symbol), Some(interval)) = (&config.source.symbol, config.source.interval)
            else {
                bail!("source: replay needs symbol and interval");
            };
            vec![StreamKey::new(symbol.clone(), interval)]
        }
        SourceKind::Binance => {
            let b = config
                .binance
                .as_ref()
                .ok_or_else(|| anyhow!("source: binance needs a [binance] section"))?;
            b.streams()
        }
        SourceKind::Nats => {
            let n = config
                .nats
                .as_ref()
                .ok_or_else(|| anyhow!("source: nats needs a [nats] section"))?;
            let keys = n.engine_streams();
            if keys.is_empty() {
                bail!(
                    "nats.partitions {:?}: none of nats.symbols hashes to them (of {} partitions); this engine would serve nothing",
                    n.partitions,
                    n.partition_count
                );
            }
            keys
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn start_source(
    config: &Config,
    router: Router,
    clock: Clock,
    offsets: &[Option<i64>],
    store: Arc<Store>,
    health: &Arc<Health>,
    stop: watch::Receiver<bool>,
    stop_flag: Arc<AtomicBool>,
    done: tokio::sync::mpsc::Sender<anyhow::Result<Option<ReplayReport>>>,
) -> anyhow::Result<usize> {
    match config.source.kind {
        SourceKind::Replay => {
            let data = config
                .source
                .data
                .clone()
                .ok_or_else(|| anyhow!("source.data is required for replay"))?;
            let replay = Replay {
                stream: candlewick_pipeline::StreamId(0),
                speed: config.source.speed,
                resume_after: offsets.first().copied().flatten(),
            };
            let health = health.clone();
            health.set("source", TaskState::Running);
            tokio::task::spawn_blocking(move || {
                let result = match &data {
                    DataRef::Bundled(b) => {
                        CsvReader::new(Path::new(b.name()), Cursor::new(b.text().as_bytes()))
                            .map_err(anyhow::Error::from)
                            .and_then(|r| {
                                replay
                                    .run(r, &router, clock, &stop_flag)
                                    .map_err(Into::into)
                            })
                    }
                    DataRef::File(path) => CsvReader::open(path)
                        .map_err(anyhow::Error::from)
                        .and_then(|r| {
                            replay
                                .run(r, &router, clock, &stop_flag)
                                .map_err(Into::into)
                        }),
                };
                drop(router);
                match &result {
                    Ok(_) => health.set("source", TaskState::Finished),
                    Err(e) => health.set(
                        "source",
                        TaskState::Failed {
                            error: format!("{e:#}"),
                        },
                    ),
                }
                let _ = done.blocking_send(result.map(Some));
            });
            Ok(1)
        }
        SourceKind::Nats => bail!("source: nats is started by the cluster module"),
        SourceKind::Binance => {
            let b = config
                .binance
                .as_ref()
                .ok_or_else(|| anyhow!("source: binance needs a [binance] section"))?;
            let bc = Arc::new(b.adapter()?);
            let chunks = bc.connections(router.table());
            let n = chunks.len();
            let _ = offsets;
            for (i, streams) in chunks.into_iter().enumerate() {
                let (bc, router, store, health, stop, done) = (
                    bc.clone(),
                    router.clone(),
                    store.clone(),
                    health.clone(),
                    stop.clone(),
                    done.clone(),
                );
                let metrics = router.metrics().clone();
                tokio::spawn(async move {
                    let name = format!("binance-{i}");
                    let result = supervise(&name, &health, &metrics, &Backoff::default(), || {
                        let (bc, router, store, stop, streams, health) = (
                            bc.clone(),
                            router.clone(),
                            store.clone(),
                            stop.clone(),
                            streams.clone(),
                            health.clone(),
                        );
                        async move {
                            // Offsets from the store at each (re)start: the
                            // worker refuses anything already applied.
                            let table = router.table().clone();
                            let mut offsets = vec![None; table.len()];
                            for &id in &streams {
                                offsets[id.0 as usize] = store
                                    .offset(table.key(id))
                                    .map_err(|e| IngestError::Offsets(e.into()))?;
                            }
                            let conn = Connection::new(i, bc, streams, offsets, router, clock)?
                                .with_health(health);
                            conn.run(stop).await
                        }
                    })
                    .await;
                    let _ = done.send(result.map(|()| None).map_err(Into::into)).await;
                });
            }
            Ok(n)
        }
    }
}

/// The configured strategies as the engine's assembly takes them.
fn strategy_specs(configs: &[StrategyConfig]) -> Vec<StrategySpec> {
    configs
        .iter()
        .map(|c| StrategySpec {
            wasm: c.wasm.clone(),
            name: c.name.clone(),
            deadline_ms: c.deadline_ms,
            params: c
                .params
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        toml::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        })
        .collect()
}

/// The configured models as the engine's assembly takes them.
fn model_specs(configs: &[ModelConfig]) -> Vec<ModelSpec> {
    configs
        .iter()
        .map(|c| ModelSpec {
            name: c.name.clone(),
            dir: c.dir.clone(),
        })
        .collect()
}

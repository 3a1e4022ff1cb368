//! The analyst against a real OpenAI-compatible stub server on loopback:
//! concurrency, rate limits, the budget, retries, validation, the key.

mod common;

use std::io::Write;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candlewick_analyst::{
    Analyst, AnalystConfig, AnalystError, Bias, Cause, Job, Price, Results, Secret, Settings,
};
use common::{Reply, Stub};

fn settings(stub: &Stub) -> Settings {
    let mut s = Settings::new(&stub.base_url(), "stub-model").unwrap();
    s.retry.initial = Duration::from_millis(10);
    s.retry.max = Duration::from_millis(50);
    s
}

fn analyst(s: Settings, dir: &tempfile::TempDir) -> Arc<Analyst> {
    let results = Arc::new(Results::open(dir.path(), false).unwrap());
    Arc::new(Analyst::new(s, results).unwrap())
}

fn job(symbol: &str) -> Job {
    Job {
        symbol: symbol.to_owned(),
        context: serde_json::json!({"symbol": symbol, "streams": [{"interval": "1m", "candles": {"count": 3}}]}),
        trigger: "manual".to_owned(),
    }
}

fn jobs(n: usize) -> Vec<Job> {
    (0..n).map(|i| job(&format!("SYM{i}USDT"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_symbols_take_about_the_time_of_one() {
    let stub = Stub::start(Reply::good(300)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&stub);
    s.concurrency = 8;
    let a = analyst(s, &dir);

    let t = Instant::now();
    let one = a.analyze_all(jobs(1)).await;
    let t1 = t.elapsed();
    let t = Instant::now();
    let eight = a.analyze_all(jobs(8)).await;
    let t8 = t.elapsed();

    assert!(one[0].1.as_ref().unwrap().is_ok());
    assert_eq!(eight.len(), 8);
    for (symbol, r) in &eight {
        let r = r.as_ref().unwrap();
        assert_eq!(&r.symbol, symbol);
        assert_eq!(r.analysis.as_ref().unwrap().bias, Bias::Bullish);
    }
    // One after another would be 8 x t1.
    let ratio = t8.as_secs_f64() / t1.as_secs_f64();
    assert!(
        ratio < 3.0,
        "8 symbols took {ratio:.2} x one ({t8:?} vs {t1:?})"
    );
    assert_eq!(stub.seen.max_in_flight.load(SeqCst), 8);
    assert_eq!(stub.seen.requests(), 9);
    // Stored, by symbol and time.
    let stored = a.results().range("SYM3USDT", 0, i64::MAX, 10).unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].is_ok() && stored[0].tokens_in > 0 && stored[0].attempts == 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_limit_holds() {
    let stub = Stub::start(Reply::good(100)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&stub);
    s.concurrency = 3;
    let a = analyst(s, &dir);
    let done = a.analyze_all(jobs(9)).await;
    assert!(done.iter().all(|(_, r)| r.as_ref().unwrap().is_ok()));
    assert_eq!(stub.seen.max_in_flight.load(SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_and_token_rates_are_held() {
    // 2 requests a minute: the bucket holds 2, the third waits 30 s.
    let stub = Stub::start(Reply::good(0)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&stub);
    s.requests_per_min = 2.0;
    let a = analyst(s, &dir);
    let running = tokio::spawn({
        let a = a.clone();
        async move { a.analyze_all(jobs(5)).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(stub.seen.requests(), 2);
    running.abort();

    // 3,000 tokens a minute with max_output_tokens 1,500: one request (of
    // at least 1,516 estimated tokens) fits; the next waits for a refill.
    // The stub holds its answer for 3 s: an answer settles the tokens it
    // did not use back into the bucket, and an instant one could settle
    // before the second request was paced (then rightly let it through).
    let stub = Stub::start(Reply::good(3000)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&stub);
    s.tokens_per_min = 3000.0;
    s.max_output_tokens = 1500;
    let a = analyst(s, &dir);
    let running = tokio::spawn({
        let a = a.clone();
        async move { a.analyze_all(jobs(3)).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(stub.seen.requests(), 1);
    running.abort();

    // A request that can never fit a minute's tokens fails without a call.
    let stub = Stub::start(Reply::good(0)).await;
    let mut s = settings(&stub);
    s.tokens_per_min = 1100.0;
    s.max_output_tokens = 1000;
    let a = analyst(s, &tempfile::tempdir().unwrap());
    let r = a.analyze(&job("BTCUSDT")).await.unwrap();
    assert_eq!((r.cause, r.attempts), (Some(Cause::TooLarge), 0));
    assert_eq!(stub.seen.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_budget_stops_the_calls_and_survives_a_restart() {
    let stub = Stub::start(Reply::good(0)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&stub);
    // 100 USD per million tokens each way: a call of ~300 tokens costs
    // a few cents; 0.25 USD buys a handful.
    s.price = Some(Price {
        input_per_mtok: 100.0,
        output_per_mtok: 100.0,
    });
    s.daily_budget_usd = Some(0.25);
    s.concurrency = 1;
    s.max_output_tokens = 100;
    let a = analyst(s.clone(), &dir);
    let done = a.analyze_all(jobs(20)).await;
    let ok = done.iter().filter(|(_, r)| r.is_ok()).count();
    let skipped = done
        .iter()
        .filter(|(_, r)| matches!(r, Err(AnalystError::Budget { .. })))
        .count();
    let calls = stub.seen.requests();
    assert!(ok > 0 && skipped > 0, "ok {ok}, skipped {skipped}");
    assert_eq!(ok + skipped, 20);
    // One call per analysis made, none after the budget was reached.
    assert_eq!(calls, ok as u64);
    let stats = a.stats();
    assert!(stats.budget_reached.load(Relaxed));
    assert_eq!(stats.skipped_budget.load(Relaxed), skipped as u64);
    let spent = stats.spent_today_micro_usd.load(Relaxed) as f64 / 1e6;
    assert!(spent <= 0.25 && spent > 0.1, "spent {spent}");
    let tokens = stub.seen.tokens_in.load(SeqCst) + stub.seen.tokens_out.load(SeqCst);
    assert!(
        (spent - tokens as f64 * 100.0 / 1e6).abs() < 1e-5,
        "{spent} vs {tokens} tokens"
    );
    let mut metrics = String::new();
    stats.render_prometheus(&mut metrics);
    assert!(
        metrics.contains("candlewick_analyst_budget_reached 1\n"),
        "{metrics}"
    );

    // A restart keeps the day's spend: still no call.
    drop(a);
    let a = analyst(s, &dir);
    assert!(matches!(
        a.analyze(&job("BTCUSDT")).await,
        Err(AnalystError::Budget { .. })
    ));
    assert!(a.budget_reached());
    assert_eq!(stub.seen.requests(), calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_spent_between_attempts_fails_the_analysis_with_its_cause() {
    let stub = Stub::start(Reply::good(0)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&stub);
    s.price = Some(Price {
        input_per_mtok: 100.0,
        output_per_mtok: 100.0,
    });
    s.max_output_tokens = 100;
    let probe = analyst(s.clone(), &tempfile::tempdir().unwrap());
    let worst = probe.worst_cost_usd(&job("BTCUSDT"));
    assert!(worst > 0.0);
    // Room for one attempt's worst case, not for a second after the first
    // is spent (the stub counts fewer tokens than the estimate's worst).
    s.daily_budget_usd = Some(worst * 1.5);
    let a = analyst(s, &dir);
    stub.script([Reply::bad()]);
    let r = a.analyze(&job("BTCUSDT")).await.unwrap();
    assert_eq!((r.cause, r.attempts), (Some(Cause::Budget), 1), "{r:?}");
    assert!(r.analysis.is_none() && r.cost_usd > 0.0);
    assert_eq!(stub.seen.requests(), 1);
    assert_eq!(a.stats().failures(Cause::Budget), 1);
    assert_eq!(a.results().range("BTCUSDT", 0, i64::MAX, 9).unwrap(), [r]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_retried_a_bounded_number_of_times() {
    let stub = Stub::start(Reply::good(0)).await;
    let dir = tempfile::tempdir().unwrap();
    let a = analyst(settings(&stub), &dir);
    stub.script([
        Reply::TooMany { retry_after_s: 1 },
        Reply::ServerError,
        Reply::ServerError,
    ]);
    let r = a.analyze(&job("BTCUSDT")).await.unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert_eq!((r.attempts, stub.seen.requests()), (4, 4));
    // Retry-After was waited out (a lower bound: it cannot come sooner).
    let arrivals = stub.seen.arrivals.lock().unwrap().clone();
    assert!(arrivals[1] - arrivals[0] >= Duration::from_secs(1));

    // max_retries = 3: four 500s in a row fail the analysis.
    stub.script(vec![Reply::ServerError; 4]);
    let r = a.analyze(&job("ETHUSDT")).await.unwrap();
    assert_eq!(r.cause, Some(Cause::Server));
    assert!(r.analysis.is_none());
    assert!(r.error.as_deref().unwrap().contains("HTTP 500"), "{r:?}");
    assert_eq!((r.attempts, stub.seen.requests()), (4, 8));
    assert_eq!(a.stats().failures(Cause::Server), 1);

    // A timeout is retried too, then recorded as one.
    let mut s = settings(&stub);
    s.timeout = Duration::from_millis(200);
    s.max_retries = 1;
    let dir2 = tempfile::tempdir().unwrap();
    let a = analyst(s, &dir2);
    stub.script(vec![Reply::good(2_000); 2]);
    let r = a.analyze(&job("BTCUSDT")).await.unwrap();
    assert_eq!((r.cause, r.attempts), (Some(Cause::Timeout), 2));

    // A Retry-After longer than max_retry_after_s is not waited out.
    let mut s = settings(&stub);
    s.max_retry_after = Duration::from_secs(5);
    let dir3 = tempfile::tempdir().unwrap();
    let a = analyst(s, &dir3);
    stub.script([Reply::TooMany {
        retry_after_s: 3600,
    }]);
    let r = a.analyze(&job("BTCUSDT")).await.unwrap();
    assert_eq!((r.cause, r.attempts), (Some(Cause::RateLimited), 1));
    assert!(r.error.unwrap().contains("max_retry_after_s"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_answer_is_asked_for_once_more_then_recorded_as_failed() {
    let stub = Stub::start(Reply::good(0)).await;
    let dir = tempfile::tempdir().unwrap();
    let a = analyst(settings(&stub), &dir);
    stub.script([Reply::bad()]);
    let r = a.analyze(&job("BTCUSDT")).await.unwrap();
    assert!(r.is_ok());
    assert_eq!(r.attempts, 2);

    stub.script([Reply::Malformed, Reply::bad()]);
    let r = a.analyze(&job("ETHUSDT")).await.unwrap();
    assert_eq!(r.cause, Some(Cause::Invalid));
    assert!(r.analysis.is_none(), "nothing stands in for the answer");
    assert!(
        r.error.as_deref().unwrap().contains("unknown variant `up`"),
        "{r:?}"
    );
    assert_eq!((r.attempts, stub.seen.requests()), (2, 4));
    let stored = a.results().range("ETHUSDT", 0, i64::MAX, 10).unwrap();
    assert_eq!(stored, [r]);
    assert_eq!(a.stats().failures(Cause::Invalid), 1);

    // The request asked for the schema.
    let body = stub.seen.bodies.lock().unwrap()[0].clone();
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["model"], "stub-model");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let stub = Stub::start(Reply::Redirect).await;
    let dir = tempfile::tempdir().unwrap();
    let a = analyst(settings(&stub), &dir);
    let r = a.analyze(&job("BTCUSDT")).await.unwrap();
    assert_eq!(r.cause, Some(Cause::Refused));
    assert!(r.error.unwrap().contains("302"));
    assert_eq!(stub.seen.redirected.load(SeqCst), 0);
}

/// Log lines written through `tracing` while the test runs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

const KEY: &str = "sk-test-never-print-me-0123456789";

#[tokio::test]
async fn the_api_key_is_sent_but_never_logged_stored_or_shown() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let stub = Stub::start(Reply::good(0)).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let config: AnalystConfig = toml::from_str(&format!(
        "base_url = \"{}\"\nmodel = \"m\"\napi_key_file = \"{}\"\nbackoff_ms = 10\nmax_retries = 1\n",
        stub.base_url(),
        key_file.display()
    ))
    .unwrap();
    let s = config.build().unwrap();
    let shown = format!("{s:?} {config:?}");
    let a = analyst(s, &tempfile::tempdir().unwrap());
    stub.script([
        Reply::Unauthorized,
        Reply::ServerError,
        Reply::ServerError,
        Reply::Malformed,
        Reply::bad(),
    ]);
    let mut errors = String::new();
    for symbol in ["A", "B", "C", "D"] {
        match a.analyze(&job(symbol)).await {
            Ok(r) => errors.push_str(&format!("{r:?} {}\n", serde_json::to_string(&r).unwrap())),
            Err(e) => errors.push_str(&format!("{e} {e:?}\n")),
        }
    }
    let mut metrics = String::new();
    a.stats().render_prometheus(&mut metrics);

    let sent = stub.seen.auth.lock().unwrap().clone();
    assert!(
        sent.iter().all(|h| h == &format!("Bearer {KEY}")),
        "{sent:?}"
    );
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("analysis failed"),
        "the capture works: {logs}"
    );
    assert!(errors.contains("HTTP 401"), "{errors}");
    for (what, text) in [
        ("logs", &logs),
        ("errors and records", &errors),
        ("Debug", &shown),
        ("metrics", &metrics),
    ] {
        assert!(!text.contains(KEY), "the key is in the {what}: {text}");
        assert!(
            !text.contains("never-print"),
            "part of the key is in the {what}"
        );
    }
    assert_eq!(format!("{}", Secret::new(KEY, "t").unwrap()), "***");
}

//! `candlewick analyze` end to end: the engine's state written as a run
//! leaves it, an OpenAI-compatible stub server on loopback.

mod common;
#[path = "../engine/analyst/tests/common/mod.rs"]
mod stub;

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use candlewick_market::Candle;
use candlewick_state::{Checkpoint, OutboxRecord, StateStore, Store, StreamKey};
use common::{error_line, repo};
use stub::{Reply, Stub};

const KEY: &str = "sk-e2e-analyst-key-0123456789";

/// The embedded default without strategies, its state in `state`, with
/// `[analyst]` pointed at `base_url`.
fn config(base_url: &str, extra: &str) -> String {
    let default = std::fs::read_to_string(repo().join("config/default.toml")).unwrap();
    let mut text: String = default
        .lines()
        .filter(|l| !l.starts_with("[[strategies]]") && !l.starts_with("wasm = "))
        .map(|l| l.replace("path = \"var/state\"", "path = \"state\"") + "\n")
        .collect();
    text.push_str(&format!(
        "\n[analyst]\nbase_url = \"{base_url}\"\nmodel = \"stub-model\"\napi_key_env = \"CW_E2E_ANALYST_KEY\"\n\
         backoff_ms = 10\n{extra}[analyst.prices.\"stub-model\"]\ninput_per_mtok = 2.5\noutput_per_mtok = 10.0\n"
    ));
    text
}

/// What a run leaves for EURUSD/1h: a tail of 60 hourly candles rising
/// from 1.0, and two signals of sma_cross.
fn write_state(dir: &std::path::Path) {
    let key: StreamKey = "EURUSD/1h".parse().unwrap();
    let t0 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000;
    let candles: Vec<Candle> = (0..60)
        .map(|i| {
            let p = 1.0 + i as f64 * 0.001;
            Candle {
                open_time: t0 + i * 3_600_000,
                open: p,
                high: p + 0.0005,
                low: p - 0.0005,
                close: p + 0.0004,
                volume: 100.0,
            }
        })
        .collect();
    let store = Store::open(dir.join("state")).unwrap();
    let mut c = Checkpoint::new();
    c.plugin(
        candlewick_pipeline::TAIL_SNAPSHOT,
        &key,
        candlewick_pipeline::encode_tail(candles.iter()),
    );
    for (i, action) in [(30, "buy"), (50, "sell")] {
        let time = t0 + i * 3_600_000;
        c.signal(OutboxRecord {
            time,
            id: format!("sma_cross:EURUSD:1h:{time}"),
            body: format!(
                r#"{{"type":"signal","id":"sma_cross:EURUSD:1h:{time}","symbol":"EURUSD","interval":"1h","strategy":"sma_cross","time":{time},"action":"{action}","strength":0.5,"price":1.03}}"#
            )
            .into_bytes(),
        });
    }
    store.commit(&c).unwrap();
}

fn analyze(dir: &std::path::Path, symbol: &str, json: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_candlewick"));
    cmd.args(["analyze", "--symbol", symbol, "--config", "c.toml"])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("CW_E2E_ANALYST_KEY", KEY);
    if json {
        cmd.arg("--json");
    }
    cmd.output().unwrap()
}

/// Runs `f` (a blocking command) while the stub serves.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyze_prints_the_analysis_and_its_cost_from_the_engines_state() {
    let stub = Stub::start(Reply::good(0)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.toml"), config(&stub.base_url(), "")).unwrap();
    write_state(dir.path());

    let d = dir.path().to_path_buf();
    let o = blocking(move || analyze(&d, "EURUSD", false)).await;
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(stdout.starts_with("EURUSD at "), "{stdout}");
    assert!(
        stdout.contains(": bullish (confidence 0.70, horizon 1-3 days)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  - a reversal below the 20-bar low"),
        "{stdout}"
    );
    let (tin, tout) = (
        stub.seen
            .tokens_in
            .load(std::sync::atomic::Ordering::SeqCst),
        stub.seen
            .tokens_out
            .load(std::sync::atomic::Ordering::SeqCst),
    );
    let usd = (tin as f64 * 2.5 + tout as f64 * 10.0) / 1e6;
    assert!(
        stdout.contains(&format!(
            "cost: {tin} tokens in, {tout} out, {usd:.6} USD (stub-model, 1 request(s)"
        )),
        "{stdout}"
    );
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY));
    assert_eq!(stub.seen.auth.lock().unwrap()[0], format!("Bearer {KEY}"));

    // What the model was shown: the tail summarised, indicators, signals.
    let body = stub.seen.bodies.lock().unwrap()[0].clone();
    assert!(body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("market analyst for EURUSD"));
    let ctx: serde_json::Value =
        serde_json::from_str(body["messages"][1]["content"].as_str().unwrap()).unwrap();
    let s = &ctx["streams"][0];
    assert_eq!(s["interval"], "1h");
    assert_eq!(s["candles"]["count"], 60);
    assert_eq!(s["candles"]["last_close"], 1.0594);
    assert!(s["indicators"]["sma(20)"].as_f64().unwrap() > 1.04, "{s}");
    let signals = s["signals"]["sma_cross"].as_array().unwrap();
    assert_eq!(signals.len(), 2);
    assert_eq!(signals[1]["action"], "sell");

    // Stored: --json prints the record, the context with it.
    let d = dir.path().to_path_buf();
    let o = blocking(move || analyze(&d, "EURUSD", true)).await;
    assert!(o.status.success());
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["analysis"]["bias"], "bullish");
    assert_eq!(r["trigger"], "manual");
    assert_eq!(r["context"]["symbol"], "EURUSD");
    let results =
        candlewick_analyst::Results::open_read_only(dir.path().join("state/analyst")).unwrap();
    assert_eq!(results.range("EURUSD", 0, i64::MAX, 10).unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyze_refuses_symbols_without_data_and_reports_a_failed_analysis() {
    let stub = Stub::start(Reply::ServerError).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        config(&stub.base_url(), "max_retries = 1\n"),
    )
    .unwrap();
    write_state(dir.path());

    let d = dir.path().to_path_buf();
    let o = blocking(move || analyze(&d, "BTCUSDT", false)).await;
    let e = error_line(&o, 1);
    assert!(
        e.contains("no data for BTCUSDT: the engine runs no stream of it"),
        "{e}"
    );
    assert_eq!(stub.seen.requests(), 0, "no call without data");

    let d = dir.path().to_path_buf();
    let o = blocking(move || analyze(&d, "EURUSD", false)).await;
    let e = error_line(&o, 1);
    assert!(
        e.contains("the analysis of EURUSD failed (server): HTTP 500"),
        "{e}"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("no analysis (server)"));
    assert_eq!(stub.seen.requests(), 2);
    assert!(!common::text(&o).contains(KEY));

    // A budget too small for one call: refused before any request.
    std::fs::write(
        dir.path().join("c.toml"),
        config(&stub.base_url(), "daily_budget_usd = 0.000001\n"),
    )
    .unwrap();
    let d = dir.path().to_path_buf();
    let o = blocking(move || analyze(&d, "EURUSD", false)).await;
    let e = error_line(&o, 1);
    assert!(e.contains("the daily budget is spent"), "{e}");
    assert_eq!(stub.seen.requests(), 2);

    // Plain http to anything but loopback is refused at load.
    std::fs::write(
        dir.path().join("c.toml"),
        config("http://api.example.com/v1", ""),
    )
    .unwrap();
    let d = dir.path().to_path_buf();
    let o = blocking(move || analyze(&d, "EURUSD", false)).await;
    let e = error_line(&o, 1);
    assert!(e.contains("analyst.base_url refused: plain http"), "{e}");
}

/// An HTTP/1.0 GET on loopback: (status line, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    http(addr, "GET", path, "", "").await
}

/// An HTTP/1.0 request on loopback: (status line, body).
async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: x\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_analyses_on_signals_and_publishes_opt_in_analysis_frames() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let stub = Stub::start(Reply::good(0)).await;
    let dir = tempfile::tempdir().unwrap();
    let wasm = common::wasm("sma_cross");
    let default = std::fs::read_to_string(repo().join("config/default.toml")).unwrap();
    let mut text: String = default
        .lines()
        .filter(|l| !l.starts_with("[[strategies]]") && !l.starts_with("wasm = "))
        .map(|l| {
            l.replace("path = \"var/state\"", "path = \"state\"")
                .replace("listen = \"127.0.0.1:8765\"", "listen = \"127.0.0.1:0\"")
                + "\n"
        })
        .collect();
    // A Slack-style webhook wanting confident analyses only.
    let slack: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = slack.clone();
    let app = axum::Router::new().route(
        "/slack",
        axum::routing::post(move |body: String| async move {
            seen.lock().unwrap().push(body);
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    text.push_str(&format!(
        "\n[[strategies]]\nwasm = \"{wasm}\"\n\n[analyst]\nbase_url = \"{}\"\nmodel = \"stub-model\"\n\
         api_key_env = \"CW_E2E_ANALYST_KEY\"\nevery_minutes = 0\non_signals = [\"sma_cross\"]\n\
         trigger_cooldown_s = 3600\n\n[notify]\n[[notify.webhooks]]\nname = \"desk\"\npreset = \"slack\"\n\
         url = \"http://{hook}/slack\"\nevents = [\"analysis\"]\nmin_confidence = 0.5\n",
        stub.base_url()
    ));
    std::env::set_var("CW_E2E_ANALYST_KEY", KEY);
    // A trigger on a strategy that does not run is refused at the start.
    std::fs::write(
        dir.path().join("bad.toml"),
        text.replace("[\"sma_cross\"]", "[\"sma_crosss\"]"),
    )
    .unwrap();
    let o = common::candlewick(dir.path(), &["run", "--config", "bad.toml"]);
    let e = error_line(&o, 1);
    assert!(
        e.contains("analyst.on_signals: no strategy named \"sma_crosss\" runs"),
        "{e}"
    );
    let d = dir.path().to_path_buf();
    let mut engine = blocking(move || {
        common::process::Process::start(
            &d,
            "run",
            "c.toml",
            &text,
            "signal feed on ws://",
            std::time::Duration::from_secs(120),
        )
    })
    .await;
    let addr = engine.addr();

    let url = format!("ws://{addr}/v1/feed?token=candlewick-local-demo");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::Text(
        r#"{"op":"subscribe","symbols":["EURUSD"],"analysis":true}"#.into(),
    ))
    .await
    .unwrap();
    let frame = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "analysis" {
                    return v;
                }
            }
        }
        panic!("the feed closed without an analysis frame");
    })
    .await
    .unwrap_or_else(|_| panic!("no analysis frame: {}", engine.log()));
    assert_eq!(frame["symbol"], "EURUSD");
    assert_eq!(frame["bias"], "bullish");
    assert_eq!(frame["trigger"], "signal:sma_cross");
    assert!(frame["seq"].as_u64().unwrap() >= 1);

    // The same analysis reached the webhook, as one readable line.
    let start = std::time::Instant::now();
    while slack.lock().unwrap().is_empty() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "no analysis notification: {}",
            engine.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let posted: serde_json::Value = serde_json::from_str(&slack.lock().unwrap()[0]).unwrap();
    let line = posted["text"].as_str().unwrap();
    assert!(
        line.contains("analyst on EURUSD: bullish (confidence 0.7"),
        "{line}"
    );
    assert!(
        line.contains(&format!("id analysis:EURUSD:{}", frame["time"])),
        "{line}"
    );

    let (status, health) = get(addr, "/healthz").await;
    assert!(status.contains("200"), "{status} {health}");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["analyst"]["budget_reached"], false);
    assert_eq!(health["tasks"]["analyst"]["state"], "running");
    let (_, metrics) = get(addr, "/metrics").await;
    assert!(
        metrics.contains("candlewick_analyst_requests_total "),
        "{metrics}"
    );
    assert!(
        !metrics.contains("candlewick_analyst_analyses_total 0\n"),
        "{metrics}"
    );

    // POST /v1/ask: the feed's token, a question, an answer from the record.
    let (status, _) = http(addr, "POST", "/v1/ask", "", r#"{"question":"why?"}"#).await;
    assert!(status.contains("401"), "{status}");
    let auth = "Authorization: Bearer candlewick-local-demo\r\n";
    let (status, body) = http(addr, "POST", "/v1/ask", auth, r#"{"question":""}"#).await;
    assert!(
        status.contains("400") && body.contains("bad_request"),
        "{status} {body}"
    );
    let id = format!("EURUSD@{}", frame["time"]);
    stub.script([Reply::Answer {
        content: format!(r#"{{"answer":"bullish, 0.70","records":["{id}"],"no_data":false}}"#),
        delay_ms: 0,
    }]);
    let (status, body) = http(
        addr,
        "POST",
        "/v1/ask",
        auth,
        r#"{"question":"why is EURUSD bullish?"}"#,
    )
    .await;
    assert!(status.contains("200"), "{status} {body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["answer"], "bullish, 0.70");
    assert_eq!(answer["records"][0]["id"], id.as_str());
    assert_eq!(answer["records"][0]["analysis"]["bias"], "bullish");
    let (status, body) = http(
        addr,
        "POST",
        "/v1/ask",
        auth,
        r#"{"question":"and BTCUSDT?","symbol":"BTCUSDT"}"#,
    )
    .await;
    assert!(
        status.contains("200") && body.contains("no data for that"),
        "{status} {body}"
    );

    // What the model saw: the stream's signals of sma_cross.
    let body = stub.seen.bodies.lock().unwrap()[0].clone();
    let ctx: serde_json::Value =
        serde_json::from_str(body["messages"][1]["content"].as_str().unwrap()).unwrap();
    assert_eq!(ctx["trigger"]["strategy"], "sma_cross", "{ctx}");
    assert_eq!(ctx["streams"][0]["interval"], "1h", "{ctx}");
    assert!(
        ctx["streams"][0]["indicators"]["sma(20)"].is_number(),
        "{ctx}"
    );

    drop(ws);
    let (status, log) = blocking(move || engine.terminate()).await;
    assert!(status.success(), "{log}");
    assert!(log.contains("analyst on"), "{log}");
    assert!(!log.contains(KEY), "{log}");
}

fn ask(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_candlewick"))
        .arg("ask")
        .args(args)
        .args(["--config", "c.toml"])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("CW_E2E_ANALYST_KEY", KEY)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_answers_only_from_stored_records_and_lists_them() {
    let stub = Stub::start(Reply::good(0)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.toml"), config(&stub.base_url(), "")).unwrap();
    write_state(dir.path());
    let question = "why is EURUSD bullish?";

    // Nothing stored yet: no data, and no call.
    let d = dir.path().to_path_buf();
    let o = blocking(move || ask(&d, &[question])).await;
    assert!(o.status.success(), "{}", common::text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("no data for that"));
    assert_eq!(stub.seen.requests(), 0);

    let d = dir.path().to_path_buf();
    assert!(blocking(move || analyze(&d, "EURUSD", false))
        .await
        .status
        .success());
    let stored = candlewick_analyst::Results::open_read_only(dir.path().join("state/analyst"))
        .unwrap()
        .range("EURUSD", 0, i64::MAX, 10)
        .unwrap();
    let id = format!("EURUSD@{}", stored[0].time);
    let answer = |records: &str, no_data: bool, text: &str| Reply::Answer {
        content: format!(r#"{{"answer":"{text}","records":[{records}],"no_data":{no_data}}}"#),
        delay_ms: 0,
    };

    stub.script([answer(
        &format!("\"{id}\""),
        false,
        "bullish (0.70): the close is above sma(20)",
    )]);
    let d = dir.path().to_path_buf();
    let o = blocking(move || ask(&d, &[question])).await;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", common::text(&o));
    assert!(
        out.starts_with("bullish (0.70): the close is above sma(20)\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!("records used:\n  {id}  EURUSD at ")),
        "{out}"
    );
    assert!(out.contains("(manual) bullish 0.70"), "{out}");
    assert!(out.contains("cost: "), "{out}");
    // The question went with the record and the data behind it.
    let body = stub.seen.bodies.lock().unwrap()[1].clone();
    let user: serde_json::Value =
        serde_json::from_str(body["messages"][1]["content"].as_str().unwrap()).unwrap();
    assert_eq!(user["question"], question);
    assert_eq!(user["records"][0]["id"], id.as_str());
    assert_eq!(user["records"][0]["data"]["streams"][0]["interval"], "1h");
    assert_eq!(body["response_format"]["json_schema"]["name"], "answer");

    // An answer citing a record it was not given: asked once more, failed.
    stub.script([
        answer("\"EURUSD@1\"", false, "x"),
        answer("\"EURUSD@1\"", false, "x"),
    ]);
    let d = dir.path().to_path_buf();
    let o = blocking(move || ask(&d, &[question])).await;
    let e = error_line(&o, 1);
    assert!(
        e.contains("could not be answered (invalid): the answer cites record \"EURUSD@1\""),
        "{e}"
    );
    assert_eq!(stub.seen.requests(), 4);

    // The model finds nothing in the records: no data, not a guess.
    stub.script([answer("", true, "no data for that")]);
    let d = dir.path().to_path_buf();
    let o = blocking(move || ask(&d, &["what did sma_cross do on ETHUSDT?"])).await;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.starts_with("no data for that\n") && !out.contains("records used"),
        "{out}"
    );

    // A symbol without records: no data, no call.
    let d = dir.path().to_path_buf();
    let o = blocking(move || ask(&d, &[question, "--symbol", "BTCUSDT"])).await;
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("no data for that"));
    assert_eq!(stub.seen.requests(), 5);
    assert!(!common::text(&o).contains(KEY));
}

//! The dashboard end to end, in a real browser: `candlewick run` on the
//! bundled replay (the example strategies and the hostile test plugin,
//! which panics on every bar), then Debian's chromium, driven headless by
//! playwright-core (tests/dashboard/browser.mjs), asserts from the DOM that
//! candles render, the marker of a signal the feed sent appears, the
//! strategy table lists the strategies with the hostile one quarantined,
//! and a wrong token shows an error and no data.
//!
//! Needs chromium and dashboard/node_modules: `scripts/install-browser`
//! (run by `scripts/bootstrap`) installs both. With
//! `CANDLEWICK_SCREENSHOTS=DIR` it also writes a PNG of each view there
//! (`scripts/screenshots`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::{connect, Message};

#[path = "../common/mod.rs"]
mod common;

use common::process::Process;

/// A hang guard, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(180);
const TOKEN: &str = "dashboard-test-token";
const STRATEGIES: [&str; 4] = [
    "sma_cross",
    "rsi_reversion",
    "bollinger_breakout",
    "hostile",
];

fn config() -> String {
    let mut c = String::from(
        r#"
[engine]
workers = 2
queue_capacity = 4096
max_batch = 256
tail_bars = 64

[source]
kind = "replay"
data = "bundled:EURUSD-1h"
symbol = "EURUSD"
interval = "1h"
# 10 hourly candles a second: the 5,000 candles last minutes, so the page
# sees history on open and live candles after.
speed = 36000.0

[indicators]
spec = "sma(20) rsi(14)"

[state]
path = "state"

[feed]
listen = "127.0.0.1:0"
tokens = ["dashboard-test-token"]
"#,
    );
    for name in &STRATEGIES[..3] {
        c.push_str(&format!(
            "\n[[strategies]]\nwasm = {:?}\ndeadline_ms = 250.0\n",
            common::wasm(name)
        ));
    }
    // Panics (traps) on every bar: quarantined, restarted, quarantined.
    c.push_str(&format!(
        "\n[[strategies]]\nwasm = {:?}\nparams = {{ mode = 3 }}\n",
        common::wasm("hostile")
    ));
    c
}

/// `candlewick run` as a child; killed on drop. `addr` serves the
/// dashboard, the feed and the HTTP routes.
struct Engine {
    process: Process,
    addr: SocketAddr,
}

impl Engine {
    fn start(dir: &Path) -> Engine {
        // The line `candlewick run` prints for people.
        let process = Process::start(
            dir,
            "run",
            "engine.toml",
            &config(),
            "dashboard: http://",
            PATIENCE,
        );
        let addr = process.addr();
        Engine { process, addr }
    }

    fn log(&self) -> String {
        self.process.log()
    }

    /// One HTTP/1.0 GET: (status, body).
    fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut s = TcpStream::connect(self.addr).unwrap();
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n{auth}\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, body.to_owned())
    }
}

/// The first buy, sell or exit signal the feed sends: its id.
fn first_signal(addr: SocketAddr) -> String {
    let (mut ws, _) = connect(format!("ws://{addr}/v1/feed?token={TOKEN}")).expect("feed");
    ws.send(Message::text(r#"{"op":"subscribe"}"#)).unwrap();
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < PATIENCE, "no signal on the feed");
        let Message::Text(text) = ws.read().expect("feed frame") else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        if v["type"] == "signal" && v["action"] != "hold" {
            return v["id"].as_str().unwrap().to_owned();
        }
    }
}

fn prerequisites() -> PathBuf {
    let chromium =
        std::env::var_os("CANDLEWICK_CHROMIUM").map_or("/usr/bin/chromium".into(), PathBuf::from);
    let driver = common::repo().join("dashboard/node_modules/playwright-core");
    assert!(
        chromium.is_file() && driver.is_dir(),
        "the browser tests need {} and {}: run scripts/install-browser",
        chromium.display(),
        driver.display()
    );
    chromium
}

#[test]
fn the_dashboard_shows_candles_signals_and_a_quarantined_plugin() {
    let _chromium = prerequisites();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path());

    // The JSON endpoints: a token or nothing.
    for path in ["/v1/status", "/v1/history?symbol=EURUSD"] {
        let (code, body) = engine.get(path, None);
        assert_eq!(code, 401, "{path} without a token: {body}");
        let (code, body) = engine.get(path, Some("wrong"));
        assert_eq!(code, 401, "{path} with a wrong token: {body}");
        assert!(!body.contains("EURUSD"), "{body}");
    }
    let (code, shell) = engine.get("/", None);
    assert_eq!(code, 200);
    assert!(shell.contains("id=\"token\""), "the shell asks for a token");
    let (code, _) = engine.get("/v1/history?symbol=%3Cx%3E", Some(TOKEN));
    assert_eq!(code, 400, "a bad symbol is refused");

    let signal = first_signal(engine.addr);
    let (code, body) = engine.get("/v1/history?symbol=EURUSD", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    let history: serde_json::Value = serde_json::from_str(&body).unwrap();
    let stream = &history["streams"][0];
    assert_eq!(stream["interval"], "1h");
    assert!(!stream["candles"].as_array().unwrap().is_empty(), "{body}");

    let mut args = serde_json::json!({
        "url": format!("http://{}/", engine.addr),
        "token": TOKEN,
        "signal": signal,
        "strategies": STRATEGIES,
        "quarantined": ["hostile"],
    });
    if let Some(dir) = std::env::var_os("CANDLEWICK_SCREENSHOTS") {
        args["screenshots"] = PathBuf::from(dir).display().to_string().into();
    }
    let out = Command::new("node")
        .arg(common::repo().join("tests/dashboard/browser.mjs"))
        .arg(args.to_string())
        .output()
        .expect("node runs (scripts/install-browser installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser check failed:\n{}\n{stdout}\nengine log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        engine.log()
    );
    println!("browser: {stdout}");

    // The engine's own view agrees with what the page showed.
    let (_, body) = engine.get("/v1/status", Some(TOKEN));
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let hostile = status["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "hostile")
        .expect("hostile listed");
    assert_eq!(hostile["state"], "quarantined", "{hostile}");
    assert_eq!(hostile["kind"], "trap", "{hostile}");
    assert!(hostile["quarantines"].as_u64().unwrap() >= 1);
}

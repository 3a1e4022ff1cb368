//! Test support: real nats-server processes and the cluster roles as
//! child processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use candlewick_cluster::{ClusterConfig, JetStream};

use crate::common::process::Process;

/// Longest any wait may take (a hang guard, not a timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(180);

/// The version scripts/install-nats pins.
const NATS_VERSION: &str = "2.14.6";

/// The nats-server binary: `CANDLEWICK_NATS_SERVER`, else where
/// scripts/install-nats puts it, else `nats-server` on PATH.
pub fn nats_server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CANDLEWICK_NATS_SERVER") {
        return PathBuf::from(p);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = Path::new(&home)
            .join(".cache/candlewick/nats")
            .join(NATS_VERSION)
            .join("bin/nats-server");
        if p.is_file() {
            return p;
        }
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("nats-server"))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!("nats-server not found: run scripts/install-nats (or set CANDLEWICK_NATS_SERVER)")
    })
}

/// A nats-server with JetStream on a free loopback port, its store in a
/// temporary directory; killed on drop.
pub struct NatsServer {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    pub async fn start() -> NatsServer {
        let dir = tempfile::tempdir().unwrap();
        // The server picks its port (-p -1) and writes it to a ports file:
        // probing for a free port first would race with other tests'
        // servers, which could end up sharing one server.
        let child = Command::new(nats_server_bin())
            .args(["-a", "127.0.0.1", "-p", "-1", "-js", "-sd"])
            .arg(dir.path().join("js"))
            .arg("--ports_file_dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts (scripts/install-nats)");
        let url = wait_for_ports_file(dir.path(), child.id());
        let server = NatsServer {
            child,
            url,
            _dir: dir,
        };
        // Ready when JetStream answers.
        let start = Instant::now();
        loop {
            if let Ok(js) = server.try_connect().await {
                if js.query_account().await.is_ok() {
                    break;
                }
            }
            assert!(
                start.elapsed() < PATIENCE,
                "nats-server did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    async fn try_connect(&self) -> Result<JetStream, candlewick_cluster::ClusterError> {
        let cfg = ClusterConfig {
            servers: vec![self.url.clone()],
            connect_timeout: Duration::from_secs(2),
            ..ClusterConfig::default()
        };
        candlewick_cluster::connect(&cfg, "candlewick-test").await
    }

    pub async fn js(&self) -> JetStream {
        self.try_connect().await.unwrap()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The client URL in the ports file nats-server `pid` writes to `dir`.
fn wait_for_ports_file(dir: &Path, pid: u32) -> String {
    let start = Instant::now();
    loop {
        let found = std::fs::read_dir(dir).ok().and_then(|entries| {
            entries.filter_map(Result::ok).map(|e| e.path()).find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(&format!("_{pid}.ports")))
            })
        });
        if let Some(text) = found.and_then(|p| std::fs::read_to_string(p).ok()) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                if let Some(url) = v["nats"][0].as_str() {
                    return url.to_owned();
                }
            }
        }
        assert!(
            start.elapsed() < PATIENCE,
            "nats-server wrote no ports file in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `candlewick ingest` as a child process; killed on drop.
pub struct Ingest(Process);

impl Ingest {
    pub fn start(dir: &Path, name: &str, config: &str) -> Ingest {
        Ingest(Process::start(
            dir,
            "ingest",
            &format!("{name}.toml"),
            config,
            "ingest: publishing closed candles",
            PATIENCE,
        ))
    }

    pub fn log(&self) -> String {
        self.0.log()
    }

    /// SIGTERM; it must exit 0. Returns its whole log.
    pub fn terminate(mut self) -> String {
        let (status, log) = self.0.terminate();
        assert!(status.success(), "exit {status}:\n{log}");
        log
    }
}

/// `candlewick feed` (the feed role) as a child process, serving the
/// WebSocket feed of SIGNALS on `nats` with `token`.
pub fn start_feed(dir: &Path, nats: &NatsServer, token: &str) -> Process {
    let config = format!(
        "[nats]\nservers = [\"{}\"]\n\n[feed]\nlisten = \"127.0.0.1:0\"\ntokens = [\"{token}\"]\n",
        nats.url
    );
    Process::start(
        dir,
        "feed",
        "feed.toml",
        &config,
        "signal feed on ws://",
        PATIENCE,
    )
}

/// A `key=value` number from the log line holding `marker`.
pub fn logged_number(log: &str, marker: &str, key: &str) -> u64 {
    let line = log
        .lines()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no line with {marker:?}:\n{log}"));
    let at = line
        .find(&format!("{key}="))
        .unwrap_or_else(|| panic!("no {key}= in {line}"));
    line[at + key.len() + 1..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{key} is not a number in {line}"))
}

/// Messages a stream holds now.
pub async fn stream_messages(js: &JetStream, stream: &str) -> u64 {
    let mut s = js.get_stream(stream).await.unwrap();
    s.info().await.unwrap().state.messages
}

/// Waits until `stream` holds at least `n` messages; returns how many.
pub async fn wait_stream_messages(js: &JetStream, stream: &str, n: u64) -> u64 {
    let start = Instant::now();
    loop {
        let have = stream_messages(js, stream).await;
        if have >= n {
            return have;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{stream} holds {have} messages, not {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every message body of `stream`, in order.
pub async fn stream_bodies(js: &JetStream, stream: &str) -> Vec<serde_json::Value> {
    let mut s = js.get_stream(stream).await.unwrap();
    let state = &s.info().await.unwrap().state;
    let (first, last) = (state.first_sequence, state.last_sequence);
    let mut out = Vec::new();
    for seq in first..=last {
        if let Ok(m) = s.get_raw_message(seq).await {
            out.push(serde_json::from_slice(&m.payload).unwrap());
        }
    }
    out
}

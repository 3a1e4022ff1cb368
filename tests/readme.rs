//! The README, run: every command of its ```sh blocks, in order, in a
//! scratch folder laid out as the checkout (`data/`, `config/`, the built
//! plugins under `target/wasm/`), so the README cannot drift from the
//! binary.
//!
//! A trailing comment says how a line is run:
//! - none: run to the end; it must exit 0 (within a generous bound);
//! - `runs until Ctrl-C`: started, checked to serve (an engine until its
//!   feed listens, a watcher until it prints), then sent SIGINT; an engine
//!   must exit 0, as the README promises;
//! - `needs network`: run against the loopback exchange of
//!   `tests/simulator` instead of Binance (the URLs swapped, nothing else);
//! - `not run by the README test`: the build scripts, which are what runs
//!   this test; the test checks that they exist. A block whose first line
//!   says so marks all its lines.
//!
//! Any other line (a command that is not `candlewick`, without a marker)
//! fails the test: nothing is skipped silently.
//!
//! `scripts/run` is run as what it ends with, `candlewick run` (building
//! and installing are what this test binary's build already did). If port
//! 8765 is taken on this machine by something else, every `8765` is
//! swapped for a free port and the engine gets `--listen` for it, and the
//! test says so.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{repo, wasm};

use candlewick_history::CandleReader;
use candlewick_simulator::{SimConfig, Simulator};

const NEEDS_NETWORK: &str = "needs network";
const UNTIL_CTRL_C: &str = "runs until Ctrl-C";
const NOT_RUN: &str = "not run by the README test";

/// The longest a command that ends by itself may take (a cold
/// `plugin build` compiles the SDK for wasm32).
const BOUND: Duration = Duration::from_secs(600);

/// One command line of the README.
#[derive(Debug, Clone)]
struct Line {
    text: String,
    env: Vec<(String, String)>,
    argv: Vec<String>,
    comment: String,
}

/// Splits a command into words: whitespace separates, double quotes group.
fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut started) = (false, false);
    for c in command.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    out.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quotes in {command:?}");
    if started {
        out.push(word);
    }
    out
}

/// The command and its trailing comment (a `#` outside quotes after a space).
fn split_comment(line: &str) -> (&str, &str) {
    let mut quoted = false;
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'#' if !quoted && (i == 0 || bytes[i - 1].is_ascii_whitespace()) => {
                return (line[..i].trim(), line[i + 1..].trim());
            }
            _ => {}
        }
    }
    (line.trim(), "")
}

/// The ```sh blocks, each as its command lines (continuations joined).
fn blocks(readme: &str) -> Vec<Vec<Line>> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(l) = lines.next() {
        if l.trim() != "```sh" {
            continue;
        }
        let mut block = Vec::new();
        let mut block_comment = String::new();
        let mut pending = String::new();
        for l in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            let joined = format!("{pending}{l}");
            if let Some(head) = joined.strip_suffix('\\') {
                pending = format!("{head} ");
                continue;
            }
            pending.clear();
            let (command, comment) = split_comment(&joined);
            if command.is_empty() {
                if block.is_empty() && block_comment.is_empty() {
                    block_comment = comment.to_owned();
                }
                continue;
            }
            let mut argv = words(command);
            let mut env = Vec::new();
            while let Some((k, v)) = argv.first().and_then(|w| w.split_once('=')) {
                if !k.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                    break;
                }
                env.push((k.to_owned(), v.to_owned()));
                argv.remove(0);
            }
            let comment = if block_comment.contains(NOT_RUN) {
                format!("{comment} ({block_comment})")
            } else {
                comment.to_owned()
            };
            block.push(Line {
                text: joined.trim().to_owned(),
                env,
                argv,
                comment,
            });
        }
        blocks.push(block);
    }
    blocks
}

/// A process whose stderr and stdout lines are collected as they come.
struct Running {
    line: String,
    child: Child,
    output: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(mut cmd: Command, line: &str) -> Running {
        // As from a terminal, where Ctrl-C is what stops these commands: a
        // test run in the background (a CI job) hands its children SIGINT
        // ignored, and a signal that arrives before a program installs its
        // handler would be dropped.
        // SAFETY: between fork and exec only signal(2) runs, which is
        // async-signal-safe; no memory is allocated or shared.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        let (tx, rx) = mpsc::channel();
        let pipes: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("piped")),
            Box::new(child.stderr.take().expect("piped")),
        ];
        for pipe in pipes {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
            });
        }
        Running {
            line: line.to_owned(),
            child,
            output: rx,
            seen: Vec::new(),
        }
    }

    /// Waits until a line of output satisfies `ready` (or `also` holds),
    /// the process ends, or `bound` passes; true if ready.
    fn wait_for(
        &mut self,
        bound: Duration,
        ready: &dyn Fn(&str) -> bool,
        also: &dyn Fn() -> bool,
    ) -> bool {
        let until = Instant::now() + bound;
        while Instant::now() < until {
            if self.seen.iter().any(|l| ready(l)) || also() {
                return true;
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                self.drain();
                return self.seen.iter().any(|l| ready(l));
            }
            if let Ok(l) = self.output.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(l);
            }
        }
        false
    }

    fn drain(&mut self) {
        std::thread::sleep(Duration::from_millis(50));
        while let Ok(l) = self.output.try_recv() {
            self.seen.push(l);
        }
    }

    fn log(&self) -> String {
        self.seen.join("\n")
    }

    /// Waits for the end, killing the process past `bound`.
    fn finish(mut self, bound: Duration) -> (std::process::ExitStatus, String) {
        let until = Instant::now() + bound;
        loop {
            while let Ok(l) = self.output.try_recv() {
                self.seen.push(l);
            }
            if let Some(status) = self.child.try_wait().expect("wait") {
                self.drain();
                return (status, self.log());
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{}: still running after {bound:?}:\n{}",
                    self.line,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ctrl-C, then the exit status and the output.
    fn interrupt(self) -> (std::process::ExitStatus, String) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: sends a signal to our own child; no memory is touched.
        unsafe { libc::kill(pid, libc::SIGINT) };
        self.finish(Duration::from_secs(60))
    }
}

/// A failed test leaves no process behind (an engine would hold the
/// README's port for the next run).
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The loopback exchange and the runtime serving it.
struct Exchange {
    _runtime: tokio::runtime::Runtime,
    sim: Simulator,
}

impl Exchange {
    fn start(symbols: &[&str], start_ms: i64, steps: usize, rate: f64) -> Exchange {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let mut config = SimConfig::symbols(symbols.len(), steps);
        config.symbols = symbols.iter().map(|s| (*s).to_owned()).collect();
        config.start_ms = start_ms;
        config.rate = rate;
        let sim = runtime
            .block_on(Simulator::start(config, 0))
            .expect("simulator binds");
        Exchange {
            _runtime: runtime,
            sim,
        }
    }
}

/// The scratch folder the README's commands run in.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = |from: &Path, to: &str| {
        std::os::unix::fs::symlink(from, dir.path().join(to)).expect("symlink");
    };
    link(&repo().join("data"), "data");
    link(&repo().join("config"), "config");
    // target/wasm/wasm32-unknown-unknown/release/*.wasm, as scripts/bootstrap leaves it.
    let plugin = PathBuf::from(wasm("sma_cross"));
    let wasm_dir = plugin.ancestors().nth(3).expect("target/wasm");
    std::fs::create_dir(dir.path().join("target")).expect("mkdir");
    link(wasm_dir, "target/wasm");
    dir
}

/// 8765 if free, else a free port (the README's port, or its stand-in).
fn feed_port() -> u16 {
    if std::net::TcpListener::bind("127.0.0.1:8765").is_ok() {
        return 8765;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    eprintln!("port 8765 is taken on this machine: the README's 8765 is {port} in this run");
    port
}

/// Walks the README.
struct Walk {
    dir: tempfile::TempDir,
    port: u16,
    /// The engine serving the feed, while one runs.
    engine: Option<Running>,
    exchange: Option<Exchange>,
    ran: usize,
}

impl Walk {
    fn command(&self, line: &Line) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_candlewick"));
        let argv: Vec<String> = line.argv[1..]
            .iter()
            .map(|a| a.replace("8765", &self.port.to_string()))
            .collect();
        cmd.args(&argv)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            // A fresh shell: `plugin build` builds where the README says.
            .env_remove("CARGO_TARGET_DIR");
        for (k, v) in &line.env {
            cmd.env(k, v);
        }
        cmd
    }

    fn stop_engine(&mut self) {
        if let Some(engine) = self.engine.take() {
            let line = engine.line.clone();
            let (status, log) = engine.interrupt();
            assert!(
                status.success(),
                "{line}: Ctrl-C must exit 0, got {status}:\n{log}"
            );
        }
    }

    fn run(&mut self, line: &Line) {
        let program = line.argv.first().map(String::as_str).unwrap_or_default();
        if line.comment.contains(NOT_RUN) {
            let path = program.trim_start_matches("./");
            if path.contains('/') {
                assert!(repo().join(path).is_file(), "{}: no such script", line.text);
            } else {
                assert!(
                    ["cargo", "."].contains(&program),
                    "{}: marked not run, but it is not a build command",
                    line.text
                );
            }
            return;
        }
        let mut line = line.clone();
        if program == "scripts/run" {
            assert!(
                line.argv.len() == 1,
                "{}: scripts/run with arguments",
                line.text
            );
            line.argv = vec!["candlewick".into(), "run".into()];
        }
        assert_eq!(
            line.argv[0], "candlewick",
            "{}: a README command this test cannot run and that is not marked",
            line.text
        );
        let network = line.comment.contains(NEEDS_NETWORK);
        let until_ctrl_c = line.comment.contains(UNTIL_CTRL_C);
        let sub = line.argv.get(1).cloned().unwrap_or_default();
        if network {
            self.point_at_the_simulator(&mut line, &sub);
        }
        let mut cmd = self.command(&line);
        if sub == "run" && self.port != 8765 && !network {
            cmd.args(["--listen", &format!("127.0.0.1:{}", self.port)]);
        }
        self.ran += 1;
        if !until_ctrl_c {
            let (status, log) = Running::start(cmd, &line.text).finish(BOUND);
            assert!(status.success(), "{}: {status}\n{log}", line.text);
            self.check_result(&line, &sub);
            return;
        }
        if sub == "run" {
            self.stop_engine();
            let mut engine = Running::start(cmd, &line.text);
            let ready = if network {
                let exchange = self.exchange.as_ref().expect("started");
                engine.wait_for(Duration::from_secs(60), &|_| false, &|| {
                    exchange.sim.stats().connections.load(Ordering::Relaxed) > 0
                })
            } else {
                engine.wait_for(
                    Duration::from_secs(60),
                    &|l| l.contains("watch it:"),
                    &|| false,
                )
            };
            assert!(
                ready,
                "{}: not serving after 60 s:\n{}",
                line.text,
                engine.log()
            );
            self.engine = Some(engine);
            return;
        }
        let mut watcher = Running::start(cmd, &line.text);
        let printed = watcher.wait_for(Duration::from_secs(60), &|l| !l.trim().is_empty(), &|| {
            false
        });
        let (status, log) = watcher.interrupt();
        assert!(printed, "{}: printed nothing in 60 s\n{log}", line.text);
        assert!(
            status.success()
                || std::os::unix::process::ExitStatusExt::signal(&status) == Some(libc::SIGINT),
            "{}: {status}\n{log}",
            line.text
        );
    }

    /// Points a network command at the loopback exchange.
    fn point_at_the_simulator(&mut self, line: &mut Line, sub: &str) {
        match sub {
            "fetch" => {
                // 2024-01-01 00:00 UTC, a day of minutes.
                let exchange = Exchange::start(&["BTCUSDT"], 1_704_067_200_000, 1440, 0.0);
                exchange.sim.publish(1440);
                line.argv.extend([
                    "--base-url".into(),
                    exchange.sim.rest_url(),
                    "--allow-insecure-loopback".into(),
                ]);
                self.exchange = Some(exchange);
            }
            "run" => {
                let config_at = line
                    .argv
                    .iter()
                    .position(|a| a == "--config")
                    .expect("a Binance run names its config");
                let original =
                    std::fs::read_to_string(self.dir.path().join(&line.argv[config_at + 1]))
                        .expect("the config");
                let exchange = Exchange::start(
                    &["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"],
                    1_704_067_200_000,
                    10_000,
                    10.0,
                );
                let config = original
                    .replace("wss://stream.binance.com:9443", &exchange.sim.ws_url())
                    .replace("https://api.binance.com", &exchange.sim.rest_url())
                    .replace(
                        "allowed_hosts = [\"stream.binance.com\", \"api.binance.com\"]",
                        "allowed_hosts = [\"127.0.0.1\"]",
                    )
                    .replace("allow_loopback = false", "allow_loopback = true")
                    .replace("8765", &self.port.to_string());
                assert_ne!(config, original, "the Binance config's URLs moved");
                let path = self.dir.path().join("binance-simulated.toml");
                std::fs::write(&path, config).expect("write");
                line.argv[config_at + 1] = path.display().to_string();
                self.stop_engine(); // one engine on the feed's port at a time
                self.exchange = Some(exchange);
            }
            other => panic!("{}: no simulator stand-in for `{other}`", line.text),
        }
    }

    /// What a finished command must have left.
    fn check_result(&self, line: &Line, sub: &str) {
        let out = line
            .argv
            .iter()
            .position(|a| a == "--out")
            .map(|i| self.dir.path().join(&line.argv[i + 1]));
        match (sub, out) {
            ("fetch", Some(out)) => {
                let n = CandleReader::open(&out).expect("fetched file").count();
                assert_eq!(n, 1440, "{}: a day of minutes", line.text);
            }
            ("backtest", Some(out)) => {
                let sweep = out.join("sweep.csv").is_file();
                assert!(
                    sweep
                        || (out.join("stats.json").is_file()
                            && out.join("equity.parquet").is_file()),
                    "{}: no results in {}",
                    line.text,
                    out.display()
                );
            }
            (_, Some(out)) => assert!(out.exists(), "{}: wrote nothing", line.text),
            _ => {}
        }
    }
}

#[test]
fn every_readme_command_runs_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let blocks = blocks(&readme);
    assert!(blocks.len() >= 3, "the README has its command blocks");
    let mut walk = Walk {
        dir: workspace(),
        port: feed_port(),
        engine: None,
        exchange: None,
        ran: 0,
    };
    for line in blocks.iter().flatten() {
        eprintln!("README: {}", line.text);
        walk.run(line);
    }
    walk.stop_engine();
    assert!(walk.ran >= 12, "ran {} commands", walk.ran);
}

#[test]
fn the_parser_reads_continuations_quotes_env_and_comments() {
    let text = "x\n```sh\n# Builds; not run by the README test: it is what runs it\ncargo test   # fast\n```\n\
                ```sh\nA_B=1 candlewick indicators --spec \"sma(2) ema(3)\" \\\n    --out o.csv   # needs network\n```\n";
    let b = blocks(text);
    assert_eq!(b.len(), 2);
    assert!(b[0][0].comment.contains(NOT_RUN), "{:?}", b[0]);
    let l = &b[1][0];
    assert_eq!(l.env, vec![("A_B".to_owned(), "1".to_owned())]);
    assert_eq!(
        l.argv,
        [
            "candlewick",
            "indicators",
            "--spec",
            "sma(2) ema(3)",
            "--out",
            "o.csv"
        ]
    );
    assert_eq!(l.comment, NEEDS_NETWORK);
}

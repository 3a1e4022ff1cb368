//! `candlewick run` as a child process: its stderr kept as a log, and the
//! address it announces once it listens.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// A running `candlewick run`; killed (and reaped) on drop.
pub struct EngineProcess {
    pub child: Child,
    /// The `host:port` that followed `marker` in the log.
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl EngineProcess {
    /// Writes `config` to `dir/engine.toml` and runs the engine on it in
    /// `dir`. Waits up to `patience` for the log line holding `marker`
    /// (e.g. `"signal feed on ws://"`) followed by the listening address;
    /// panics with the log if it never comes.
    pub fn start(dir: &Path, config: &str, marker: &'static str, patience: Duration) -> Self {
        let path = dir.join("engine.toml");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_candlewick"))
            .args(["run", "--config"])
            .arg(&path)
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("the binary runs");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find(marker) {
                    let rest = &line[i + marker.len()..];
                    let _ = tx.send(rest.split('/').next().unwrap_or_default().to_owned());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match rx.recv_timeout(patience) {
            Ok(a) => a.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!("engine did not start:\n{}", log.lock().unwrap());
            }
        };
        EngineProcess { child, addr, log }
    }

    /// Everything the engine wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

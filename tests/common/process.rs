//! A `candlewick` subcommand as a child process: its stderr kept as a log,
//! and the rest of the log line that says it is ready (for `run`, the
//! address it listens on).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running `candlewick COMMAND --config FILE`; killed (and reaped) on drop.
pub struct Process {
    pub child: Child,
    /// What followed `marker` on the line that held it.
    ready: String,
    log: Arc<Mutex<String>>,
    /// Reads the child's stderr to its end.
    reader: Option<JoinHandle<()>>,
}

impl Process {
    /// Writes `config` to `dir/file` and runs `candlewick COMMAND --config
    /// FILE` in `dir`. Waits up to `patience` for the log line holding
    /// `marker`; panics with the log if it never comes.
    pub fn start(
        dir: &Path,
        command: &str,
        file: &str,
        config: &str,
        marker: &'static str,
        patience: Duration,
    ) -> Self {
        let path = dir.join(file);
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_candlewick"))
            .args([command, "--config"])
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
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find(marker) {
                    let _ = tx.send(line[i + marker.len()..].to_owned());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let Ok(ready) = rx.recv_timeout(patience) else {
            let _ = child.kill();
            panic!(
                "candlewick {command} did not start:\n{}",
                log.lock().unwrap()
            );
        };
        Process {
            child,
            ready,
            log,
            reader: Some(reader),
        }
    }

    /// The `host:port` that followed the marker (e.g. `"signal feed on
    /// ws://"`).
    pub fn addr(&self) -> SocketAddr {
        let addr = self.ready.split('/').next().unwrap_or_default();
        addr.parse()
            .unwrap_or_else(|_| panic!("no address after the marker: {:?}", self.ready))
    }

    /// Everything the process wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, then its exit status and its whole log (to the last line:
    /// stderr closes when it exits).
    pub fn terminate(&mut self) -> (ExitStatus, String) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        (status, self.log())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

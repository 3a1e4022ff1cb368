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

/// Where the roles find the servers.
pub trait Bus {
    fn urls(&self) -> Vec<String>;

    /// How the test itself connects (credentials, TLS files).
    fn client(&self) -> ClusterConfig {
        ClusterConfig {
            servers: self.urls(),
            connect_timeout: Duration::from_secs(2),
            ..ClusterConfig::default()
        }
    }
}

impl Bus for NatsServer {
    fn urls(&self) -> Vec<String> {
        vec![self.url.clone()]
    }

    fn client(&self) -> ClusterConfig {
        ClusterConfig {
            servers: self.urls(),
            connect_timeout: Duration::from_secs(2),
            ..self.client.clone()
        }
    }
}

/// The servers as a TOML array's items.
pub fn servers_toml(bus: &impl Bus) -> String {
    let quoted: Vec<String> = bus.urls().iter().map(|u| format!("{u:?}")).collect();
    quoted.join(", ")
}

/// A JetStream context on the servers.
pub async fn bus_js(bus: &impl Bus) -> JetStream {
    candlewick_cluster::connect(&bus.client(), "candlewick-test")
        .await
        .unwrap()
}

/// Waits until JetStream answers on the servers (a cluster: once its
/// meta leader is elected).
async fn wait_ready(bus: &impl Bus) {
    let start = Instant::now();
    loop {
        if let Ok(js) = candlewick_cluster::connect(&bus.client(), "candlewick-test").await {
            if js.query_account().await.is_ok() {
                return;
            }
        }
        assert!(
            start.elapsed() < PATIENCE,
            "nats-server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the cluster places a stream on all `n` servers. A quorum
/// elects the meta leader (and [`wait_ready`] returns) before the last
/// server has joined; until it has, every stream or bucket with `n`
/// replicas is refused ("no suitable peers for placement"), and a role
/// started then exits with that error.
async fn wait_placement(bus: &impl Bus, n: usize) {
    use async_nats::jetstream::stream::{Config, StorageType};
    const PROBE: &str = "READY_PROBE";
    let js = bus_js(bus).await;
    let start = Instant::now();
    loop {
        let probe = Config {
            name: PROBE.to_owned(),
            subjects: vec!["ready.probe".to_owned()],
            num_replicas: n,
            storage: StorageType::Memory,
            ..Config::default()
        };
        if js.create_stream(probe).await.is_ok() {
            let _ = js.delete_stream(PROBE).await;
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the cluster never placed a stream on all {n} servers"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A nats-server with JetStream on a free loopback port, its store in a
/// temporary directory; killed on drop.
pub struct NatsServer {
    child: Child,
    pub url: String,
    /// How the test connects (see [`Bus::client`]).
    pub client: ClusterConfig,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    pub async fn start() -> NatsServer {
        Self::start_with("", "nats", ClusterConfig::default()).await
    }

    /// A server with `conf` (nats-server configuration text, e.g. a `tls`
    /// or `authorization` block) in its config file, whose client URL has
    /// `scheme`; the test connects with `client`'s credentials and TLS.
    pub async fn start_with(conf: &str, scheme: &str, client: ClusterConfig) -> NatsServer {
        let dir = tempfile::tempdir().unwrap();
        let conf_path = dir.path().join("server.conf");
        std::fs::write(&conf_path, conf).unwrap();
        // The server picks its port (-p -1) and writes it to a ports file:
        // probing for a free port first would race with other tests'
        // servers, which could end up sharing one server.
        let mut child = Command::new(nats_server_bin())
            .arg("-c")
            .arg(&conf_path)
            .args(["-a", "127.0.0.1", "-p", "-1", "-js", "-sd"])
            .arg(dir.path().join("js"))
            .arg("--ports_file_dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(server_log(dir.path()))
            .spawn()
            .expect("nats-server starts (scripts/install-nats)");
        let port = port_of(&wait_for_ports_file(dir.path(), &mut child));
        let server = NatsServer {
            child,
            url: format!("{scheme}://127.0.0.1:{port}"),
            client,
            _dir: dir,
        };
        wait_ready(&server).await;
        server
    }
}

/// One server of a [`NatsCluster`]: its store and ports outlive its
/// process, so that a restart is the same server coming back.
struct Node {
    child: Option<Child>,
    dir: tempfile::TempDir,
    name: String,
    client: u16,
    cluster: u16,
}

/// Three (or more) nats-servers in one JetStream cluster on loopback;
/// killed on drop.
pub struct NatsCluster {
    nodes: Vec<Node>,
}

impl Bus for NatsCluster {
    fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.client))
            .collect()
    }
}

/// The port of `url` (`nats://host:port`).
fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

impl NatsCluster {
    pub async fn start(n: usize) -> NatsCluster {
        // A JetStream cluster needs its routes at start, so the cluster
        // ports are chosen first (free ones, from the kernel); the client
        // ports are each server's choice, from its ports file. A port
        // chosen so can be taken by another test's server before this one
        // binds it: that server exits, and the cluster starts again on
        // other ports.
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            match Self::spawn_nodes(n) {
                Ok(nodes) => {
                    let cluster = NatsCluster { nodes };
                    wait_ready(&cluster).await;
                    wait_placement(&cluster, n).await;
                    return cluster;
                }
                Err(why) if attempt < ATTEMPTS => {
                    eprintln!("a cluster node did not start ({why}); again on other ports");
                }
                Err(why) => panic!("a cluster node did not start {ATTEMPTS} times: {why}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// `n` nodes on fresh cluster ports, or why one exited at start (the
    /// ones started are killed as they drop).
    fn spawn_nodes(n: usize) -> Result<Vec<Node>, String> {
        let cluster_ports: Vec<u16> = (0..n)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect::<Vec<_>>()
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        let mut nodes = NatsCluster { nodes: Vec::new() };
        for (i, &cluster) in cluster_ports.iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let name = format!("n{}", i + 1);
            let mut child = spawn_node(dir.path(), &name, 0, cluster, &routes(&cluster_ports, i));
            let ports = wait_for_ports(dir.path(), &mut child)?;
            nodes.nodes.push(Node {
                child: Some(child),
                dir,
                name,
                client: port_of(ports["nats"][0].as_str().unwrap()),
                cluster,
            });
        }
        Ok(std::mem::take(&mut nodes.nodes))
    }

    /// SIGKILL of server `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Server `i` again, on its ports and store, routed to the others.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        let ports: Vec<u16> = self.nodes.iter().map(|n| n.cluster).collect();
        let n = &self.nodes[i];
        let child = spawn_node(
            n.dir.path(),
            &n.name,
            n.client,
            n.cluster,
            &routes(&ports, i),
        );
        self.nodes[i].child = Some(child);
        wait_ready(self).await;
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Routes from server `i` to the others.
fn routes(cluster_ports: &[u16], i: usize) -> Vec<String> {
    cluster_ports
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(_, p)| format!("nats://127.0.0.1:{p}"))
        .collect()
}

/// A clustered nats-server: client and cluster ports (0: its choice).
fn spawn_node(dir: &Path, name: &str, client: u16, cluster: u16, routes: &[String]) -> Child {
    let port = |p: u16| {
        if p == 0 {
            "-1".to_owned()
        } else {
            p.to_string()
        }
    };
    let mut cmd = Command::new(nats_server_bin());
    cmd.args(["-a", "127.0.0.1", "-p", &port(client), "-js", "-n", name])
        .args(["--cluster_name", "candlewick-test"])
        .arg("--cluster")
        .arg(format!("nats://127.0.0.1:{}", port(cluster)))
        .arg("-sd")
        .arg(dir.join("js"))
        .arg("--ports_file_dir")
        .arg(dir);
    if !routes.is_empty() {
        cmd.arg("--routes").arg(routes.join(","));
    }
    cmd.stdout(Stdio::null())
        .stderr(server_log(dir))
        .spawn()
        .expect("nats-server starts (scripts/install-nats)")
}

/// Where a server in `dir` writes its log (appended: a restarted node
/// keeps its first run's lines).
fn server_log(dir: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .expect("a server log in the temporary directory")
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The client URL in the ports file `child` writes to `dir`.
fn wait_for_ports_file(dir: &Path, child: &mut Child) -> String {
    wait_for_ports(dir, child).unwrap_or_else(|why| panic!("{why}"))["nats"][0]
        .as_str()
        .expect("a client port")
        .to_owned()
}

/// The ports file nats-server `child` writes to `dir`, once it has a
/// client port; why not, with the server's log, when it exits first.
fn wait_for_ports(dir: &Path, child: &mut Child) -> Result<serde_json::Value, String> {
    let start = Instant::now();
    let pid = child.id();
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
                if v["nats"][0].is_string() {
                    return Ok(v);
                }
            }
        }
        let log = || std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("nats-server exited ({status}):\n{}", log()));
        }
        assert!(
            start.elapsed() < PATIENCE,
            "nats-server wrote no ports file in {}:\n{}",
            dir.display(),
            log()
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

    /// SIGKILL: it stops mid-publish.
    pub fn kill9(mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
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
pub fn start_feed(dir: &Path, nats: &impl Bus, token: &str) -> Process {
    let config = format!(
        "[nats]\nservers = [{}]\n\n[feed]\nlisten = \"127.0.0.1:0\"\ntokens = [\"{token}\"]\n",
        servers_toml(nats)
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

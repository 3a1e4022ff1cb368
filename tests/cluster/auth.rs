//! The cluster roles against servers that want TLS with a private CA and
//! client certificates, or an NKey: the candles arrive; without the
//! client certificate, or with another key, the role stops at start with
//! the cause.

use std::path::Path;
use std::process::Command;

use candlewick_cluster::{Auth, ClusterConfig, Secret, TlsFiles};
use candlewick_simulator::{SimConfig, Simulator};

use crate::ingest_config;
use crate::nats::*;

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate,
/// all EC P-256, in `dir`.
fn certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=candlewick-test-ca",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca-key.pem", "-out", "ca.pem"]);
    openssl(dir, &ca);
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let (key, csr, pem) = (
            format!("{name}-key.pem"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        let mut req = vec!["req", "-subj", "/CN=candlewick-test"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr]);
        openssl(dir, &req);
        let ext = format!("{name}.ext");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-extfile",
                &ext,
                "-out",
                &pem,
            ],
        );
    }
}

/// A server with `conf` on `scheme`, which `client` (the test's own
/// connection) can reach; a simulator of 2 symbols x 30 candles; and the
/// ingest config for both, without the server's credential.
async fn secured(
    conf: &str,
    scheme: &str,
    client: ClusterConfig,
) -> (NatsServer, Simulator, String) {
    let nats = NatsServer::start_with(conf, scheme, client).await;
    let sim = Simulator::start(SimConfig::symbols(2, 30), 0)
        .await
        .unwrap();
    let base = ingest_config(&sim, &nats);
    (nats, sim, base)
}

/// `candlewick ingest` with `config` until every candle of `sim` is in
/// CANDLES.
async fn candles_arrive(dir: &Path, sim: &Simulator, nats: &NatsServer, config: &str) {
    let ingest = Ingest::start(dir, "ingest", config);
    sim.play(1000.0);
    let js = bus_js(nats).await;
    let total = (sim.config().symbols.len() * sim.candles(0).len()) as u64;
    let stored = tokio::time::timeout(PATIENCE, wait_stream_messages(&js, "CANDLES", total)).await;
    assert!(
        stored.is_ok(),
        "CANDLES never held every candle:\n{}",
        ingest.log()
    );
    ingest.terminate();
}

/// `candlewick ingest` with `config`, which must fail at start; its stderr.
fn refused(dir: &Path, config: &str) -> String {
    let path = dir.join("refused.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_candlewick"))
        .args(["ingest", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success(), "started without the credential");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// TLS with a private CA, the server verifying client certificates.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_with_a_private_ca_and_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    let file = |n: &str| d.join(n);
    let conf = format!(
        "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify: true\n}}\n",
        file("server.pem"),
        file("server-key.pem"),
        file("ca.pem")
    );
    let client = ClusterConfig {
        tls: TlsFiles {
            ca: Some(file("ca.pem")),
            client: Some((file("client.pem"), file("client-key.pem"))),
        },
        ..ClusterConfig::default()
    };
    let (nats, sim, base) = secured(&conf, "tls", client).await;
    let tls_keys = format!(
        "tls_ca_file = {:?}\ntls_cert_file = {:?}\ntls_key_file = {:?}\npartition_count =",
        file("ca.pem"),
        file("client.pem"),
        file("client-key.pem")
    );
    let e = refused(
        d,
        &base.replace(
            "partition_count =",
            &format!("tls_ca_file = {:?}\npartition_count =", file("ca.pem")),
        ),
    );
    assert!(e.contains("cannot connect to the NATS servers"), "{e}");
    candles_arrive(
        d,
        &sim,
        &nats,
        &base.replace("partition_count =", &tls_keys),
    )
    .await;
}

/// NKey authentication: the server knows the user's public key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_nkey_seed_authenticates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let user = nkeys::KeyPair::new_user();
    let seed = d.join("user.nk");
    std::fs::write(&seed, user.seed().unwrap()).unwrap();
    let conf = format!(
        "authorization {{\n  users = [ {{ nkey: {:?} }} ]\n}}\n",
        user.public_key()
    );
    let client = ClusterConfig {
        auth: Auth::NKey(
            Secret::resolve("nkey_seed", &format!("file:{}", seed.display())).unwrap(),
        ),
        ..ClusterConfig::default()
    };
    let (nats, sim, base) = secured(&conf, "nats", client).await;
    let other = d.join("other.nk");
    std::fs::write(&other, nkeys::KeyPair::new_user().seed().unwrap()).unwrap();
    let with_seed = |path: &Path| {
        base.replace(
            "partition_count =",
            &format!("nkey_seed = \"file:{}\"\npartition_count =", path.display()),
        )
    };
    let e = refused(d, &with_seed(&other));
    assert!(e.contains("cannot connect to the NATS servers"), "{e}");
    assert!(
        !e.contains(&other_seed_text(&other)),
        "the seed leaked: {e}"
    );
    candles_arrive(d, &sim, &nats, &with_seed(&seed)).await;
}

fn other_seed_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

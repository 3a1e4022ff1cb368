//! `candlewick-simulator --symbols N --steps N --rate STEPS_PER_S [--port P]`:
//! the loopback exchange as a process, for manual runs and benchmarks.
#![forbid(unsafe_code)]

use candlewick_simulator::{SimConfig, Simulator};

fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let mut config = SimConfig::symbols(
        arg(&args, "--symbols", 10.0) as usize,
        arg(&args, "--steps", 1000.0) as usize,
    );
    config.rate = arg(&args, "--rate", 1.0);
    let sim = Simulator::start(config, arg(&args, "--port", 0.0) as u16).await?;
    println!("simulator: ws {} rest {}", sim.ws_url(), sim.rest_url());
    tokio::signal::ctrl_c().await
}

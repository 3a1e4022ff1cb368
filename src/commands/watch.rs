//! `candlewick watch`: the feed, readable in a terminal.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use candlewick_market::time::format_ms;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Print the signal feed of a running engine for a person.
///
/// Example: candlewick watch --url ws://127.0.0.1:8765/v1/feed --token T
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The feed, e.g. ws://127.0.0.1:8765/v1/feed.
    #[arg(long)]
    pub url: String,
    /// A token the engine accepts (sent as `Authorization: Bearer`).
    #[arg(long)]
    pub token: String,
    /// Symbols to show (comma-separated); default all.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub symbols: Vec<String>,
    /// Strategies to show (comma-separated); default all.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub strategies: Vec<String>,
    /// Show applied candles too.
    #[arg(long)]
    pub candles: bool,
    /// Show the models' predictions too (engines with `[[models]]`).
    #[arg(long)]
    pub predictions: bool,
    /// Print the raw JSON frames instead.
    #[arg(long)]
    pub json: bool,
    /// Exit after this many signals.
    #[arg(long)]
    pub count: Option<u64>,
    /// Resume: first the signals of candles that opened at or after TIME
    /// (epoch ms, or a date/time such as 2024-01-02T10:00:00Z), from the
    /// engine's outbox, then the live ones; each signal id once. Pass the
    /// time of the last signal you saw to miss nothing after a reconnect
    /// or an engine restart.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
}

pub fn run(args: WatchArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(watch(args))
}

async fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let mut request = args
        .url
        .as_str()
        .into_client_request()
        .with_context(|| format!("--url {}", args.url))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {}", args.token))
        .map_err(|_| anyhow!("--token holds characters a header cannot carry"))?;
    request.headers_mut().insert("authorization", bearer);
    let (mut ws, _) = match tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(request),
    )
    .await
    {
        Err(_) => bail!("{}: no answer within 10 s", args.url),
        Ok(Err(WsError::Http(r))) if r.status() == 401 => {
            bail!("{}: the feed refused the token (401)", args.url)
        }
        Ok(Err(e)) => bail!("{}: {e} (is `candlewick run` running?)", args.url),
        Ok(Ok(pair)) => pair,
    };
    let since = args
        .since
        .as_deref()
        .map(candlewick_market::time::parse_timestamp)
        .transpose()
        .map_err(|e| anyhow!("--since: {e}"))?;
    let mut subscribe = serde_json::json!({
        "op": "subscribe",
        "symbols": args.symbols,
        "strategies": args.strategies,
        "candles": args.candles,
        "predictions": args.predictions,
    });
    if let Some(since) = since {
        subscribe["since"] = since.into();
    }
    ws.send(Message::Text(subscribe.to_string().into())).await?;
    eprintln!("connected to {}; Ctrl-C to stop", args.url);
    let mut signals = 0u64;
    loop {
        let msg = tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                let _ = ws.close(None).await;
                return Ok(());
            }
            msg = ws.next() => msg,
        };
        let text = match msg {
            None => bail!("the feed closed the connection"),
            Some(Err(e)) => bail!("the feed connection failed: {e}"),
            Some(Ok(Message::Close(frame))) => {
                let why = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                eprintln!("the feed closed the connection: {why}");
                return Ok(());
            }
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
        };
        if args.json {
            println!("{text}");
        }
        let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("?").to_owned();
        let n = |k: &str| v.get(k).and_then(|x| x.as_f64()).unwrap_or(f64::NAN);
        let time = v
            .get("time")
            .and_then(|t| t.as_i64())
            .map(format_ms)
            .unwrap_or_default();
        match v.get("type").and_then(|t| t.as_str()) {
            Some("signal") => {
                signals += 1;
                if !args.json {
                    println!(
                        "{time}  {:<10} {:<4} {:<20} {:<5} strength {:+.2}  price {}",
                        s("symbol"),
                        s("interval"),
                        s("strategy"),
                        s("action").to_uppercase(),
                        n("strength"),
                        n("price"),
                    );
                }
                if args.count.is_some_and(|c| signals >= c) {
                    let _ = ws.close(None).await;
                    return Ok(());
                }
            }
            Some("candle") if !args.json => println!(
                "{time}  {:<10} {:<4} candle O {} H {} L {} C {} V {}",
                s("symbol"),
                s("interval"),
                n("open"),
                n("high"),
                n("low"),
                n("close"),
                n("volume")
            ),
            Some("prediction") if !args.json => println!(
                "{time}  {:<10} {:<4} {:<20} p_up {:.3}  p_flat {:.3}  p_down {:.3}",
                s("symbol"),
                s("interval"),
                s("model"),
                n("p_up"),
                n("p_flat"),
                n("p_down")
            ),
            Some("error") if !args.json => eprintln!("! feed error: {text}"),
            _ => {}
        }
    }
}

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
/// Example: CANDLEWICK_FEED_TOKEN=T candlewick watch --url ws://127.0.0.1:8765/v1/feed
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The feed, e.g. ws://127.0.0.1:8765/v1/feed.
    #[arg(long)]
    pub url: String,
    /// A token the engine accepts (sent as `Authorization: Bearer`).
    /// On a shared machine prefer `--token-file` or the
    /// `CANDLEWICK_FEED_TOKEN` variable: a command line is visible to
    /// every user (`ps`).
    #[arg(long, conflicts_with = "token_file")]
    pub token: Option<String>,
    /// A file holding the token (surrounding whitespace ignored).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<std::path::PathBuf>,
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
    /// Show the analyst's analyses too (engines with `[analyst]`).
    #[arg(long)]
    pub analysis: bool,
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

/// The variable `watch` reads the token from when no flag gives it.
pub const TOKEN_VAR: &str = "CANDLEWICK_FEED_TOKEN";

/// Largest token file read (a token is a line).
const MAX_TOKEN_FILE: u64 = 4096;

/// The token: `--token`, else `--token-file`, else the variable.
///
/// # Errors
/// None given, an unreadable or oversized file, or an empty token. The
/// token itself is never in a message.
fn feed_token(
    flag: Option<&str>,
    file: Option<&std::path::Path>,
    var: Option<String>,
) -> anyhow::Result<String> {
    let token = match (flag, file) {
        (Some(t), _) => t.to_owned(),
        (None, Some(path)) => {
            use std::io::Read;
            let mut text = String::new();
            std::fs::File::open(path)
                .and_then(|f| f.take(MAX_TOKEN_FILE + 1).read_to_string(&mut text))
                .with_context(|| format!("--token-file {}", path.display()))?;
            if text.len() as u64 > MAX_TOKEN_FILE {
                bail!(
                    "--token-file {}: longer than {MAX_TOKEN_FILE} bytes; a token is one line",
                    path.display()
                );
            }
            text.trim().to_owned()
        }
        (None, None) => match var {
            Some(v) => v.trim().to_owned(),
            None => bail!("no feed token: give --token-file PATH, set {TOKEN_VAR}, or --token"),
        },
    };
    if token.is_empty() {
        bail!("the feed token is empty");
    }
    Ok(token)
}

pub fn run(args: WatchArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(watch(args))
}

/// Resolves on Ctrl-C (SIGINT), listening from the call on. One listener
/// for the whole watch: a fresh `ctrl_c()` per frame misses a SIGINT that
/// arrives between two frames, and since the handler is installed by then,
/// the default exit does not happen either: the watcher would run on.
fn interrupted() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut sigint = signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?;
        Ok(async move {
            sigint.recv().await;
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

async fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let mut request = args
        .url
        .as_str()
        .into_client_request()
        .with_context(|| format!("--url {}", args.url))?;
    let token = feed_token(
        args.token.as_deref(),
        args.token_file.as_deref(),
        std::env::var(TOKEN_VAR).ok(),
    )?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| anyhow!("the token holds characters a header cannot carry"))?;
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
        "analysis": args.analysis,
    });
    if let Some(since) = since {
        subscribe["since"] = since.into();
    }
    ws.send(Message::Text(subscribe.to_string().into())).await?;
    let interrupted = interrupted()?;
    tokio::pin!(interrupted);
    eprintln!("connected to {}; Ctrl-C to stop", args.url);
    let mut signals = 0u64;
    loop {
        let msg = tokio::select! {
            _ = &mut interrupted => {
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
            Some("analysis") if !args.json => println!(
                "{time}  {:<10} analysis {} (confidence {:.2}, horizon {}, {}): {}",
                s("symbol"),
                s("bias").to_uppercase(),
                n("confidence"),
                s("horizon"),
                s("trigger"),
                s("rationale")
            ),
            Some("error") if !args.json => eprintln!("! feed error: {text}"),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_the_flag_the_file_or_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file-0123456789\n").unwrap();
        let var = || Some("from-var-0123456789".to_owned());
        assert_eq!(feed_token(Some("flag"), None, var()).unwrap(), "flag");
        assert_eq!(
            feed_token(None, Some(&file), var()).unwrap(),
            "from-file-0123456789"
        );
        assert_eq!(
            feed_token(None, None, var()).unwrap(),
            "from-var-0123456789"
        );
        let e = feed_token(None, None, None).unwrap_err().to_string();
        assert!(e.contains(TOKEN_VAR) && e.contains("--token-file"), "{e}");
        std::fs::write(&file, "  \n").unwrap();
        assert!(feed_token(None, Some(&file), None).is_err());
        std::fs::write(&file, "x".repeat(10_000)).unwrap();
        let e = feed_token(None, Some(&file), None).unwrap_err().to_string();
        assert!(e.contains("longer than"), "{e}");
        assert!(!e.contains("xxxx"), "never the token: {e}");
    }
}

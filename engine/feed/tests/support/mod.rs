//! A feed server on loopback for the hardening tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use candlewick_core::StreamKey;
use candlewick_core::{Health, Metrics, Sink};
use candlewick_feed::{FeedConfig, FeedState, Hub};
use candlewick_market::Candle;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

pub const TOKEN: &str = "test-token-0123456789";

pub struct Server {
    pub addr: SocketAddr,
    pub hub: Hub,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub stop: watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<Result<(), candlewick_feed::FeedError>>,
}

pub async fn start(config: FeedConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hub = Hub::new(1024, true);
    let health = Arc::new(Health::new());
    let metrics = Arc::new(Metrics::detached());
    let (stop, stop_rx) = watch::channel(false);
    let state = FeedState::new(
        FeedConfig {
            tokens: vec![TOKEN.into()],
            ..config
        },
        hub.clone(),
        metrics.clone(),
        health.clone(),
        stop_rx,
    )
    .with_known(
        ["BTCUSDT".to_owned(), "ETHUSDT".to_owned()],
        ["sma_cross".to_owned()],
    );
    let task = tokio::spawn(candlewick_feed::serve(listener, state));
    Server {
        addr,
        hub,
        health,
        metrics,
        stop,
        task,
    }
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Server {
    pub fn url(&self) -> String {
        format!("ws://{}/v1/feed?token={TOKEN}", self.addr)
    }

    /// A client subscribed to BTCUSDT candles.
    pub async fn client(&self) -> Ws {
        let (mut ws, _) = tokio_tungstenite::connect_async(self.url()).await.unwrap();
        ws.send(Message::Text(
            r#"{"op":"subscribe","symbols":["BTCUSDT"],"candles":true}"#.into(),
        ))
        .await
        .unwrap();
        // A ping round trip: the subscribe was applied before it.
        ws.send(Message::Text(r#"{"op":"ping"}"#.into()))
            .await
            .unwrap();
        let pong = next_text(&mut ws).await;
        assert!(pong.contains("pong"), "{pong}");
        ws
    }

    /// Publishes one BTCUSDT/1m candle opening at `time`.
    pub fn publish(&self, time: i64) {
        let key: StreamKey = "BTCUSDT/1m".parse().unwrap();
        let c = Candle {
            open_time: time,
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume: 10.0,
        };
        self.hub.candle(&key, &c);
    }
}

/// The next text frame (pings skipped); panics on anything else or after
/// 20 s (a guard against hanging, not a timing assertion).
pub async fn next_text(ws: &mut Ws) -> String {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a frame within 20 s")
            .expect("the connection is open")
            .expect("a frame");
        match msg {
            Message::Text(t) => return t.to_string(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

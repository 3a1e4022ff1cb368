//! What an unauthenticated or hostile client can make the feed do.

mod support;

use std::time::Duration;

use candlewick_core::TaskState;
use candlewick_feed::FeedConfig;
use futures_util::{SinkExt, StreamExt};
use support::{next_text, start, TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

/// The handshake's HTTP status with `origin` (None: upgraded).
async fn handshake_status(url: &str, origin: &str) -> Option<u16> {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("Origin", origin.parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => None,
        Err(tungstenite::Error::Http(resp)) => Some(resp.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn a_foreign_origin_is_refused_with_403() {
    let s = start(FeedConfig {
        allowed_origins: vec!["https://dash.example.com".into()],
        ..FeedConfig::default()
    })
    .await;
    let url = s.url();
    assert_eq!(
        handshake_status(&url, "https://evil.example").await,
        Some(403)
    );
    assert_eq!(handshake_status(&url, "null").await, Some(403));
    assert_eq!(
        handshake_status(&url, "https://dash.example.com").await,
        None
    );
    let own = format!("http://{}", s.addr);
    assert_eq!(
        handshake_status(&url, &own).await,
        None,
        "the engine's own page"
    );
    // Without an Origin (a program) the token decides.
    assert!(tokio_tungstenite::connect_async(url).await.is_ok());
}

#[tokio::test]
async fn unknown_names_get_an_error_frame() {
    let s = start(FeedConfig::default()).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.url()).await.unwrap();
    ws.send(Message::Text(
        r#"{"op":"subscribe","symbols":["NOPEUSDT"]}"#.into(),
    ))
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&next_text(&mut ws).await).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["code"], "unknown_symbol");
    assert_eq!(v["name"], "NOPEUSDT");
    ws.send(Message::Text(
        r#"{"op":"subscribe","strategies":["nope"]}"#.into(),
    ))
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&next_text(&mut ws).await).unwrap();
    assert_eq!(v["code"], "unknown_strategy");
}

#[tokio::test]
async fn a_client_over_its_message_rate_is_closed_with_1008() {
    let s = start(FeedConfig {
        ops_per_second: 1.0,
        ops_burst: 10,
        ..FeedConfig::default()
    })
    .await;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.url()).await.unwrap();
    // 200 messages at 1/s would take over three minutes to be within the
    // rate; the close comes well before.
    let mut code = None;
    let mut sent = 0;
    for _ in 0..200 {
        if ws
            .send(Message::Text(r#"{"op":"ping"}"#.into()))
            .await
            .is_err()
        {
            break;
        }
        sent += 1;
    }
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
        match msg {
            Ok(Message::Close(Some(frame))) => {
                code = Some(u16::from(frame.code));
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(sent > 10, "{sent}");
    assert_eq!(code, Some(1008));
}

/// Raw TCP connections that start a request and never finish it.
async fn slowloris(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut socks = Vec::new();
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.unwrap();
        // Half a request head: hyper waits for the rest.
        let _ = s
            .write_all(b"GET /v1/feed HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await;
        socks.push(s);
    }
    socks
}

/// Whether the server closed `s` (EOF or reset) within 20 s.
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or similar before the close.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn slowloris_is_dropped_and_authenticated_clients_keep_being_served() {
    let s = start(FeedConfig {
        max_connections: 16,
        header_timeout: Duration::from_millis(300),
        ..FeedConfig::default()
    })
    .await;
    let mut before = s.client().await;
    let mut socks = slowloris(s.addr, 64).await;
    // Clients already connected are served throughout.
    for t in 0..20 {
        s.publish(t * 60_000);
        let frame = next_text(&mut before).await;
        assert!(
            frame.contains(&format!("\"time\":{}", t * 60_000)),
            "{frame}"
        );
    }
    // Every slow socket is closed by the server: the 48 past the cap at
    // once, the 16 holding slots at the header timeout.
    let mut closed = 0;
    for sock in &mut socks {
        closed += usize::from(closed_by_server(sock).await);
    }
    assert_eq!(closed, socks.len());
    // With the attackers gone a new client gets in and is served.
    let mut after = s.client().await;
    s.publish(99 * 60_000);
    assert!(next_text(&mut after).await.contains("\"time\":5940000"));
    assert!(next_text(&mut before).await.contains("\"time\":5940000"));
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once() {
    let s = start(FeedConfig {
        max_connections: 4,
        header_timeout: Duration::from_secs(600),
        ..FeedConfig::default()
    })
    .await;
    let mut held = slowloris(s.addr, 4).await;
    // Let the server accept the four before the fifth arrives.
    for sock in &mut held {
        sock.write_all(b"a").await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fifth = TcpStream::connect(s.addr).await.unwrap();
    assert!(closed_by_server(&mut fifth).await);
    let refused = s
        .metrics
        .counters
        .feed_refused
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(refused >= 1, "{refused}");
    // The four are still open (their header timeout is ten minutes away).
    let mut buf = [0u8; 8];
    for sock in &mut held {
        let r = tokio::time::timeout(Duration::from_millis(100), sock.read(&mut buf)).await;
        assert!(r.is_err(), "a held connection was closed: {r:?}");
    }
}

#[tokio::test]
async fn healthz_shows_codes_and_short_reasons_not_paths_or_urls() {
    let s = start(FeedConfig::default()).await;
    s.health.set(
        "source",
        TaskState::Restarting {
            failures: 3,
            last_error: "GET https://api.binance.com/api/v3/klines?symbol=BTCUSDT: connection reset by 10.1.2.3:443".into(),
        },
    );
    s.health.set(
        "state",
        TaskState::Failed {
            error: "state.path /srv/candlewick/secret-db: permission denied".into(),
        },
    );
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    tcp.read_to_string(&mut body).await.unwrap();
    for leak in ["binance", "/srv", "secret-db", "10.1.2.3", "klines"] {
        assert!(!body.contains(leak), "{leak} in {body}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&body[body.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    assert_eq!(json["tasks"]["state"]["code"], "task_failed");
    assert_eq!(json["tasks"]["source"]["code"], "task_restarting");
    assert!(json["tasks"]["state"]["reason"]
        .as_str()
        .unwrap()
        .contains("permission denied"));
}

#[tokio::test]
async fn a_wrong_token_is_refused_without_upgrading() {
    let s = start(FeedConfig::default()).await;
    let url = format!("ws://{}/v1/feed?token=wrong-{TOKEN}", s.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

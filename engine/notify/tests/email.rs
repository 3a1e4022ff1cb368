//! The notifier against a real SMTP exchange on loopback: a small SMTP
//! server (EHLO, MAIL, RCPT, DATA, QUIT) that refuses the first messages
//! with a transient 451, then accepts. Every notification arrives as one
//! plain-text message whose `Message-ID` is the same on every retry.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use candlewick_notify::{EmailConfig, Preset, WebhookConfig};
use common::{config, events, Running};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One message as the server saw it, and what it answered.
#[derive(Debug, Clone)]
struct Mail {
    from: String,
    to: Vec<String>,
    data: String,
    accepted: bool,
}

impl Mail {
    fn header(&self, name: &str) -> Option<&str> {
        self.data.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Serves SMTP on loopback; the first `refuse_first` messages get a 451
/// after their data.
async fn smtp_server(refuse_first: usize) -> (Arc<Mutex<Vec<Mail>>>, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mails = Arc::new(Mutex::new(Vec::new()));
    let seen = mails.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 test ESMTP\r\n").await.unwrap();
                let (mut from, mut to) = (String::new(), Vec::new());
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                    let answer = match verb.as_str() {
                        "EHLO" | "HELO" => "250 test\r\n",
                        "MAIL" => {
                            from = line[10..].to_owned();
                            "250 ok\r\n"
                        }
                        "RCPT" => {
                            to.push(line[8..].to_owned());
                            "250 ok\r\n"
                        }
                        "DATA" => {
                            write.write_all(b"354 go on\r\n").await.unwrap();
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(&l);
                                data.push('\n');
                            }
                            let mut all = seen.lock().unwrap();
                            let accepted = all.len() >= refuse_first;
                            all.push(Mail {
                                from: std::mem::take(&mut from),
                                to: std::mem::take(&mut to),
                                data,
                                accepted,
                            });
                            if accepted {
                                "250 queued\r\n"
                            } else {
                                "451 try again later\r\n"
                            }
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => "250 ok\r\n",
                    };
                    if write.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (mails, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_notification_is_mailed_once_after_transient_refusals() {
    let (mails, addr) = smtp_server(2).await;
    let mut c = config(addr, 10);
    let retry = c.webhooks[0].retry;
    let mut mail = WebhookConfig::preset("mail", &format!("smtp://{addr}"), Preset::Candlewick);
    mail.email = Some(EmailConfig {
        from: "Candlewick <cw@example.com>".into(),
        to: vec!["desk@example.com".into(), "ops@example.com".into()],
        username: None,
        password: None,
    });
    mail.rate_per_min = 60_000.0;
    mail.retry = retry;
    c.webhooks = vec![mail];
    let dir = tempfile::tempdir().unwrap();
    let running = Running::start(&c, &dir.path().join("notify"));
    let sent = events(3);
    for n in sent.clone() {
        assert!(running.notifier.try_notify(n));
    }
    let accepted = || mails.lock().unwrap().iter().filter(|m| m.accepted).count();
    let start = std::time::Instant::now();
    while accepted() < 3 {
        if start.elapsed() > std::time::Duration::from_secs(30) {
            let outbox = candlewick_notify::Outbox::open_read_only(dir.path().join("notify"));
            let dead = outbox.and_then(|o| o.dead_letters());
            panic!(
                "3 messages were not accepted; dead letters: {dead:#?}; server saw {:#?}",
                mails.lock().unwrap()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let stats = running.service.stats().clone();
    running.stop().await;

    let all = mails.lock().unwrap().clone();
    assert_eq!(all.len(), 5, "2 refusals, then 3 messages: {all:#?}");
    assert_eq!(
        stats.delivered.load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    for n in &sent {
        let line = candlewick_notify::notification_text(&n.body());
        let json_id = format!("{{\"id\":\"{}\"", n.id);
        let got: Vec<&Mail> = all.iter().filter(|m| m.data.contains(&json_id)).collect();
        let delivered = got.iter().filter(|m| m.accepted).count();
        assert_eq!(delivered, 1, "{}: {got:#?}", n.id);
        let ids: Vec<_> = got.iter().map(|m| m.header("Message-ID")).collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
        let m = got[0];
        assert_eq!(m.from, "<cw@example.com>");
        assert_eq!(m.to, ["<desk@example.com>", "<ops@example.com>"]);
        assert!(
            m.data.contains(&line) && m.data.contains(&n.id),
            "{}",
            m.data
        );
    }
}

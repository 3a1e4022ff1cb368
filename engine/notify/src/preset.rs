//! Presets: the same notification as a chat service's incoming-webhook
//! message (Slack, Discord, a Telegram bot) instead of Candlewick's signed
//! JSON.
//!
//! Those services take a plain JSON message at a URL that is itself the
//! credential (its path holds the token), so a preset needs no signing
//! secret, and the URL is treated as a secret: logs and listings show its
//! origin only ([`crate::redact_url`]). The outbox keeps Candlewick's body
//! whatever the preset (one record format, one retry path); a preset
//! shapes the request only when it is sent.

use candlewick_market::time::format_ms;
use serde_json::{json, Value};

/// How a webhook's requests look.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Preset {
    /// Candlewick's JSON body, signed (`X-Candlewick-Signature`).
    #[default]
    Candlewick,
    /// A Slack incoming webhook: `{"text": ...}`.
    Slack,
    /// A Discord webhook: `{"content": ...}` (at most 2,000 characters).
    Discord,
    /// A Telegram bot's `sendMessage`: `{"chat_id": ..., "text": ...}`.
    Telegram { chat_id: String },
}

/// Discord refuses longer messages.
const DISCORD_MAX_CHARS: usize = 2000;

impl Preset {
    /// The preset named `name` (`candlewick`, `slack`, `discord`,
    /// `telegram`); Telegram needs the chat to post to.
    ///
    /// # Errors
    /// An unknown name, or `telegram` without a chat id, in words.
    pub fn parse(name: &str, chat_id: Option<&str>) -> Result<Preset, String> {
        match (name, chat_id) {
            ("candlewick", None) => Ok(Preset::Candlewick),
            ("slack", None) => Ok(Preset::Slack),
            ("discord", None) => Ok(Preset::Discord),
            ("telegram", Some(chat)) if !chat.trim().is_empty() => Ok(Preset::Telegram {
                chat_id: chat.trim().to_owned(),
            }),
            ("telegram", _) => Err("telegram needs chat_id (the chat the bot posts to)".into()),
            ("candlewick" | "slack" | "discord", Some(_)) => {
                Err(format!("chat_id is for the telegram preset, not {name}"))
            }
            _ => Err(format!(
                "{name:?} is not one of \"candlewick\", \"slack\", \"discord\", \"telegram\""
            )),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Preset::Candlewick => "candlewick",
            Preset::Slack => "slack",
            Preset::Discord => "discord",
            Preset::Telegram { .. } => "telegram",
        }
    }

    /// Whether requests carry Candlewick's HMAC signature (and so need a
    /// secret).
    pub fn signs(&self) -> bool {
        *self == Preset::Candlewick
    }

    /// The request body for a notification whose Candlewick body is `body`.
    pub fn render(&self, body: &str) -> String {
        match self {
            Preset::Candlewick => body.to_owned(),
            Preset::Slack => json!({ "text": text(body) }).to_string(),
            Preset::Discord => {
                let content: String = text(body).chars().take(DISCORD_MAX_CHARS).collect();
                json!({ "content": content }).to_string()
            }
            Preset::Telegram { chat_id } => {
                json!({ "chat_id": chat_id, "text": text(body) }).to_string()
            }
        }
    }
}

/// One line a person reads, made from a Candlewick body: what happened,
/// where, when (UTC), and the notification's id to trace it.
pub fn text(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return format!("candlewick: {body}");
    };
    let d = &v["data"];
    let s = |k: &str| d[k].as_str().unwrap_or("?").to_owned();
    let when = v["time"].as_i64().map(format_ms).unwrap_or_default();
    let what = match v["kind"].as_str() {
        Some("signal") => {
            let mut line = format!(
                "{} {} {} {} strength {}",
                s("strategy"),
                s("action").to_uppercase(),
                s("symbol"),
                s("interval"),
                d["strength"]
            );
            if let Some(price) = d["price"].as_f64() {
                line.push_str(&format!(" at {price}"));
            }
            line
        }
        Some("quarantine") => format!(
            "{} quarantined on {}/{}: {}",
            s("strategy"),
            s("symbol"),
            s("interval"),
            s("fault")
        ),
        Some("engine") => format!("engine {}: {}", s("event"), s("detail")),
        Some("analysis") => format!(
            "analyst on {}: {} (confidence {}, horizon {}): {}",
            s("symbol"),
            s("bias"),
            d["confidence"],
            s("horizon"),
            s("rationale")
        ),
        Some("reload") => format!(
            "{} reloaded ({} reloads, {} refused)",
            s("strategy"),
            d["reloads"],
            d["failures"]
        ),
        Some("health") => match d["event"].as_str() {
            Some("down") => format!("{} is down: {}", s("task"), s("error")),
            Some("up") => format!(
                "{} is back after {} s",
                s("task"),
                d["down_ms"].as_i64().unwrap_or(0) / 1000
            ),
            _ => format!(
                "feed clients fell behind: {} messages dropped",
                d["dropped"]
            ),
        },
        Some(kind) => format!("{kind}: {d}"),
        None => format!("{v}"),
    };
    format!(
        "candlewick: {what} ({when} UTC, id {})",
        v["id"].as_str().unwrap_or("?")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Notification;

    fn signal_body() -> String {
        Notification::signal(&crate::event::tests::signal()).body()
    }

    #[test]
    fn presets_parse_by_name_and_telegram_needs_a_chat() {
        assert_eq!(Preset::parse("slack", None), Ok(Preset::Slack));
        assert_eq!(
            Preset::parse("telegram", Some(" -1001 ")),
            Ok(Preset::Telegram {
                chat_id: "-1001".into()
            })
        );
        assert!(Preset::parse("telegram", None)
            .unwrap_err()
            .contains("chat_id"));
        assert!(Preset::parse("slack", Some("1"))
            .unwrap_err()
            .contains("telegram"));
        assert!(Preset::parse("teams", None).unwrap_err().contains("teams"));
        assert!(Preset::Candlewick.signs() && !Preset::Slack.signs());
    }

    #[test]
    fn chat_bodies_carry_a_readable_line_and_candlewick_keeps_its_json() {
        let body = signal_body();
        assert_eq!(Preset::Candlewick.render(&body), body);
        let slack: Value = serde_json::from_str(&Preset::Slack.render(&body)).unwrap();
        let line = slack["text"].as_str().unwrap();
        assert!(
            line.contains("sma_cross BUY BTCUSDT 1m strength 0.5 at 10.5"),
            "{line}"
        );
        assert!(line.contains("1970-01-01 00:01:00 UTC"), "{line}");
        assert!(line.contains("id sma_cross:BTCUSDT:1m:60000"), "{line}");
        let discord: Value = serde_json::from_str(&Preset::Discord.render(&body)).unwrap();
        assert_eq!(discord["content"], slack["text"]);
        let tg = Preset::Telegram {
            chat_id: "42".into(),
        };
        let telegram: Value = serde_json::from_str(&tg.render(&body)).unwrap();
        assert_eq!(
            (&telegram["chat_id"], &telegram["text"]),
            (&json!("42"), &slack["text"])
        );
    }

    #[test]
    fn discord_messages_are_cut_to_its_limit() {
        let e = Notification::engine(1, true, 2, &"x".repeat(5000));
        let discord: Value = serde_json::from_str(&Preset::Discord.render(&e.body())).unwrap();
        assert_eq!(
            discord["content"].as_str().unwrap().chars().count(),
            DISCORD_MAX_CHARS
        );
    }
}

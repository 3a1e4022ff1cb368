//! Email: a destination whose URL is `smtp://HOST[:PORT]` (STARTTLS
//! required, port 587 by default) or `smtps://HOST[:PORT]` (TLS from the
//! first byte, port 465), sending one plain-text message per notification.
//!
//! The message's subject and first line are the notification's readable
//! line ([`crate::notification_text`]); the body then carries the JSON a
//! webhook would get, for tools. Its `Message-ID` is made from the
//! notification's id, so a retried message is recognisable as the same one.
//! The SMTP password is a [`Secret`]: never in a log, an error, or a
//! `Debug`.
//!
//! To a loopback relay (a local MTA, or a test server) `smtp://` is plain
//! SMTP, as plain `http` is for webhooks; anywhere else STARTTLS is
//! required, since plain text would carry the credentials and the signals
//! in the clear.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};
use url::Url;

use crate::webhook::{host_of, is_loopback, Outcome};
use crate::{NotifyError, Secret};

/// Who sends, who receives, and the relay's login.
#[derive(Clone)]
pub struct EmailConfig {
    pub from: String,
    pub to: Vec<String>,
    /// The relay's login; both or neither.
    pub username: Option<String>,
    pub password: Option<Secret>,
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

/// An SMTP relay and the addresses of one destination.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// `host[:port]`, for listings.
    host: String,
    from: Mailbox,
    to: Vec<Mailbox>,
}

/// Whether `url` names an email destination (`smtp://` or `smtps://`).
pub fn is_email_url(url: &str) -> bool {
    Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "smtp" | "smtps"))
}

impl Mailer {
    /// A mailer for `url` (see the module's docs) sending as `config`
    /// says, giving up on a message after `timeout`.
    ///
    /// # Errors
    /// [`NotifyError::Url`] for a URL or an address that does not pass,
    /// in words.
    pub fn new(
        name: &str,
        url: &str,
        config: &EmailConfig,
        timeout: Duration,
    ) -> Result<Mailer, NotifyError> {
        let refuse = |reason: String| NotifyError::Url {
            name: name.to_owned(),
            reason,
        };
        let parsed = Url::parse(url).map_err(|e| refuse(format!("not a URL ({e})")))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(refuse(
                "credentials in the URL; use username and password_env".into(),
            ));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| refuse("no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tls = |host: &str| {
            TlsParameters::new(host.to_owned())
                .map_err(|e| refuse(format!("TLS cannot be set up ({e})")))
        };
        let (tls, default_port) = match parsed.scheme() {
            "smtps" => (Tls::Wrapper(tls(&host)?), 465),
            "smtp" if is_loopback(&parsed) => (Tls::None, 587),
            "smtp" => (Tls::Required(tls(&host)?), 587),
            other => return Err(refuse(format!("scheme {other:?} is not smtp or smtps"))),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(parsed.port().unwrap_or(default_port))
            .tls(tls)
            .timeout(Some(timeout));
        match (&config.username, &config.password) {
            (Some(user), Some(password)) => {
                let password = String::from_utf8_lossy(password.expose()).into_owned();
                builder = builder.credentials(Credentials::new(user.clone(), password));
            }
            (None, None) => {}
            _ => return Err(refuse("give both username and password, or neither".into())),
        }
        let mailbox = |field: &str, address: &str| {
            address
                .parse::<Mailbox>()
                .map_err(|e| refuse(format!("{field} {address:?} is not an email address ({e})")))
        };
        let from = mailbox("from", &config.from)?;
        if config.to.is_empty() {
            return Err(refuse("give at least one address in to".into()));
        }
        let to = config
            .to
            .iter()
            .map(|a| mailbox("to", a))
            .collect::<Result<_, _>>()?;
        Ok(Mailer {
            transport: builder.build(),
            host: host_of(&parsed),
            from,
            to,
        })
    }

    /// `host[:port]` of the relay.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Sends notification `id` (its Candlewick `body`) as one message.
    pub async fn send(&self, id: &str, body: &str) -> Outcome {
        let message = match self.message(id, body) {
            Ok(m) => m,
            Err(error) => {
                return Outcome::Failed {
                    error,
                    retry_after: None,
                }
            }
        };
        match self.transport.send(message).await {
            Ok(_) => Outcome::Delivered,
            Err(e) => Outcome::Failed {
                error: describe(&e),
                retry_after: None,
            },
        }
    }

    fn message(&self, id: &str, body: &str) -> Result<Message, String> {
        let line = crate::notification_text(body);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(line.chars().take(200).collect::<String>())
            .message_id(Some(message_id(id)))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .body(format!("{line}\n\n{body}\n"))
            .map_err(|e| format!("the message cannot be built ({e})"))
    }
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .finish_non_exhaustive()
    }
}

/// `<HASH@candlewick>`: the same for every retry of one notification.
fn message_id(id: &str) -> String {
    let hash = Sha256::digest(id.as_bytes());
    let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("<{hex}@candlewick>")
}

/// An SMTP failure in words: the kind and the server's answer, never the
/// login (lettre's errors do not carry it; the relay's text is cut short).
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_transient() {
        "refused for now"
    } else if e.is_permanent() {
        "refused"
    } else {
        "failed"
    };
    let text: String = e.to_string().chars().take(200).collect();
    format!("SMTP {kind}: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EmailConfig {
        EmailConfig {
            from: "Candlewick <cw@example.com>".into(),
            to: vec!["desk@example.com".into()],
            username: Some("cw".into()),
            password: Some(Secret::new("a-relay-password-nobody-sees", "test").unwrap()),
        }
    }

    #[test]
    fn relays_need_tls_unless_loopback_and_no_login_in_the_url() {
        let t = Duration::from_secs(1);
        let ok = |url: &str| Mailer::new("m", url, &config(), t).map(drop);
        ok("smtp://smtp.example.com").unwrap();
        ok("smtps://smtp.example.com:465").unwrap();
        ok("smtp://127.0.0.1:2525").unwrap();
        assert!(is_loopback(&Url::parse("smtp://127.0.0.1:2525").unwrap()));
        assert!(is_loopback(&Url::parse("smtp://[::1]:2525").unwrap()));
        assert!(!is_loopback(&Url::parse("smtp://10.0.0.1:2525").unwrap()));
        let e = ok("smtp://me:pw@smtp.example.com").unwrap_err().to_string();
        assert!(
            e.contains("credentials in the URL") && !e.contains("pw@"),
            "{e}"
        );
        let e = ok("https://smtp.example.com").unwrap_err().to_string();
        assert!(e.contains("not smtp or smtps"), "{e}");
        let mut half = config();
        half.password = None;
        let e = Mailer::new("m", "smtp://smtp.example.com", &half, t).unwrap_err();
        assert!(e.to_string().contains("both username and password"), "{e}");
        let mut bad = config();
        bad.to = vec!["not an address".into()];
        let e = Mailer::new("m", "smtp://smtp.example.com", &bad, t).unwrap_err();
        assert!(e.to_string().contains("to \"not an address\""), "{e}");
    }

    #[test]
    fn the_password_never_prints_and_retries_share_a_message_id() {
        let c = config();
        assert!(!format!("{c:?}").contains("nobody-sees"));
        let m = Mailer::new("m", "smtp://smtp.example.com", &c, Duration::from_secs(1)).unwrap();
        assert!(!format!("{m:?}").contains("nobody-sees"));
        assert_eq!(message_id("a:1"), message_id("a:1"));
        assert_ne!(message_id("a:1"), message_id("a:2"));
        assert!(is_email_url("smtp://x") && is_email_url("smtps://x"));
        assert!(!is_email_url("https://x"));
    }
}

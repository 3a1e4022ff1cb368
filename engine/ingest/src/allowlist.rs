//! [`Allowlist`]: which exchange URLs a config may name.

use url::{Host, Url};

use crate::IngestError;

/// Hosts a source may connect to, and whether plain-text loopback is allowed.
///
/// ```
/// use candlewick_ingest::Allowlist;
///
/// let prod = Allowlist::new(["stream.binance.com", "api.binance.com"], false);
/// assert!(prod.check("wss://stream.binance.com:9443/stream").is_ok());
/// assert!(prod.check("wss://stream.binance.com.evil.example/stream").is_err());
/// assert!(prod.check("ws://stream.binance.com/stream").is_err(), "plain text");
/// assert!(prod.check("ws://127.0.0.1:9000/stream").is_err(), "loopback not enabled");
///
/// let tests = Allowlist::new(Vec::<String>::new(), true);
/// assert!(tests.check("ws://127.0.0.1:9000/stream").is_ok());
/// assert!(tests.check("http://localhost:9000/api/v3/klines").is_ok());
/// assert!(tests.check("ws://10.0.0.1:9000/stream").is_err(), "not loopback");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowlist {
    hosts: Vec<String>,
    loopback: bool,
}

impl Allowlist {
    /// `hosts` are exact host names (no wildcards); `loopback` allows
    /// `ws://`/`http://` (and `wss`/`https`) to 127.0.0.1, ::1 and localhost.
    pub fn new<S: Into<String>>(hosts: impl IntoIterator<Item = S>, loopback: bool) -> Self {
        Allowlist {
            hosts: hosts
                .into_iter()
                .map(|h| h.into().to_ascii_lowercase())
                .collect(),
            loopback,
        }
    }

    /// The parsed URL when it may be used.
    ///
    /// # Errors
    /// [`IngestError::UrlRefused`] with the reason: unparsable, credentials
    /// in the URL, an unknown scheme, a host not listed, or plain text to a
    /// host other than loopback.
    pub fn check(&self, url: &str) -> Result<Url, IngestError> {
        let refuse = |reason: &str| IngestError::UrlRefused {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed = Url::parse(url).map_err(|e| refuse(&e.to_string()))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(refuse("credentials in the URL"));
        }
        let secure = match parsed.scheme() {
            "wss" | "https" => true,
            "ws" | "http" => false,
            _ => return Err(refuse("scheme must be wss or https")),
        };
        let loopback = match parsed.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => return Err(refuse("no host")),
        };
        if loopback {
            if self.loopback {
                return Ok(parsed);
            }
            return Err(refuse(
                "loopback is allowed only with allow_loopback = true (tests)",
            ));
        }
        if !secure {
            return Err(refuse("plain ws/http is allowed only to loopback"));
        }
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        if self.hosts.contains(&host) {
            Ok(parsed)
        } else {
            Err(refuse("host is not in allowed_hosts"))
        }
    }
}

//! A webhook destination: the URL checks, the signature, one POST.
//!
//! # What a receiver gets
//!
//! `POST` of the JSON body ([`crate::Notification::body`]) with
//! - `Content-Type: application/json`
//! - `Idempotency-Key: ID`, the notification's id: the same on every retry,
//!   so a receiver that stores the keys it accepted sees each event once
//!   (delivery is at-least-once);
//! - `X-Candlewick-Timestamp: T`, Unix seconds when this attempt was sent;
//! - `X-Candlewick-Signature: sha256=HEX`, HMAC-SHA256 with the shared
//!   secret over `T.BODY` (the timestamp, a dot, the body bytes).
//!
//! A receiver recomputes the HMAC ([`verify`] does it), compares in
//! constant time, and refuses a timestamp too far from its clock, so that a
//! captured request cannot be replayed later.

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use sha2::Sha256;
use url::{Host, Url};

use crate::{NotifyError, Preset, Secret};

/// Whether `url`'s host is a loopback address (or `localhost`): the only
/// place a plain-text connection is allowed to.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        // A URL of a scheme the url crate does not know (smtp) keeps an IP
        // address as an opaque host name.
        Some(Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    }
}

/// `host[:port]` of a URL: what listings show of a destination (its path
/// may be a credential).
pub(crate) fn host_of(url: &Url) -> String {
    match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    }
}

/// Header names, for receivers.
pub const SIGNATURE_HEADER: &str = "X-Candlewick-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Candlewick-Timestamp";
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// Longest `Retry-After` honoured: a receiver cannot park a notification
/// for longer than this per attempt.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

type HmacSha256 = Hmac<Sha256>;

/// Checks a webhook URL: `https` (plain `http` only to a loopback
/// address), a host, no user or password in it. Returns the parsed URL.
///
/// # Errors
/// [`NotifyError::Url`] with the reason (the URL itself is not repeated:
/// its path may be a credential).
pub fn check_url(name: &str, url: &str) -> Result<Url, NotifyError> {
    let refuse = |reason: &str| NotifyError::Url {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = Url::parse(url).map_err(|e| refuse(&format!("not a URL ({e})")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refuse(
            "credentials in the URL; use the signing secret instead",
        ));
    }
    if parsed.host().is_none() {
        return Err(refuse("no host"));
    }
    let loopback = is_loopback(&parsed);
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        "http" => Err(refuse(
            "plain http is allowed only to a loopback address; use https",
        )),
        other => Err(refuse(&format!("scheme {other:?} is not https"))),
    }
}

/// `sha256=HEX`: the HMAC-SHA256 of `TIMESTAMP.BODY` under `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mac = mac(secret, &timestamp.to_string(), body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Why a request's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("the timestamp is {0} s away from now, more than allowed")]
    Stale(u64),
    #[error("the signature is not sha256=HEX")]
    Malformed,
    #[error("the signature does not match")]
    Mismatch,
}

/// Checks a received request: the timestamp header `timestamp` is within
/// `tolerance_s` seconds of `now_s`, and `signature` (the
/// `X-Candlewick-Signature` header) is the HMAC of `timestamp.body` under
/// `secret`, compared in constant time.
///
/// ```
/// use candlewick_notify::webhook::{sign, verify};
/// let body = br#"{"id":"x"}"#;
/// let sig = sign(b"0123456789abcdef", 1_700_000_000, body);
/// assert!(verify(b"0123456789abcdef", "1700000000", body, &sig, 1_700_000_030, 300).is_ok());
/// assert!(verify(b"0123456789abcdef", "1700000000", body, &sig, 1_700_001_000, 300).is_err());
/// assert!(verify(b"another-secret-16", "1700000000", body, &sig, 1_700_000_000, 300).is_err());
/// ```
///
/// # Errors
/// [`VerifyError`] saying which check failed.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now_s: i64,
    tolerance_s: u64,
) -> Result<(), VerifyError> {
    let t: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    let skew = now_s.abs_diff(t);
    if skew > tolerance_s {
        return Err(VerifyError::Stale(skew));
    }
    let hex_sig = signature
        .trim()
        .strip_prefix("sha256=")
        .ok_or(VerifyError::Malformed)?;
    let bytes = unhex(hex_sig).ok_or(VerifyError::Malformed)?;
    mac(secret, timestamp.trim(), body)
        .verify_slice(&bytes)
        .map_err(|_| VerifyError::Mismatch)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|p| Some((digit(p[0])? << 4) | digit(p[1])?))
        .collect()
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer: done.
    Delivered,
    /// Anything else: retry later (not before `retry_after` when the
    /// receiver said so with a 429 or 503).
    Failed {
        error: String,
        retry_after: Option<Duration>,
    },
}

/// One configured webhook, ready to send. `Debug` shows its name and
/// host only.
pub struct Webhook {
    name: String,
    url: Url,
    secret: Option<Secret>,
    preset: Preset,
    http: reqwest::Client,
}

impl Webhook {
    /// A webhook for a URL that passes [`check_url`], with a client that
    /// follows no redirect (the checks were for this URL, not wherever a
    /// redirect leads) and gives up on a request after `timeout`.
    ///
    /// # Errors
    /// [`NotifyError::Url`], or [`NotifyError::Client`] when TLS cannot be
    /// set up.
    pub fn new(
        name: &str,
        url: &str,
        secret: Option<Secret>,
        preset: Preset,
        timeout: Duration,
    ) -> Result<Webhook, NotifyError> {
        let url = check_url(name, url)?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("candlewick/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifyError::Client {
                name: name.to_owned(),
                reason: describe(e),
            })?;
        Ok(Webhook {
            name: name.to_owned(),
            url,
            secret,
            preset,
            http,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL's host, for listings (the path may be a credential).
    pub fn host(&self) -> String {
        host_of(&self.url)
    }

    /// POSTs notification `id` (its Candlewick `body`, shaped by the
    /// preset), signed at `now_s` when there is a secret.
    pub async fn send(&self, id: &str, body: &str, now_s: i64) -> Outcome {
        let body = self.preset.render(body);
        let mut request = self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, id);
        if let Some(secret) = &self.secret {
            request = request.header(TIMESTAMP_HEADER, now_s.to_string()).header(
                SIGNATURE_HEADER,
                sign(secret.expose(), now_s, body.as_bytes()),
            );
        }
        let request = request.body(body);
        match request.send().await {
            Ok(response) if response.status().is_success() => Outcome::Delivered,
            Ok(response) => {
                let status = response.status();
                let retry_after = match status.as_u16() {
                    429 | 503 => retry_after(response.headers()),
                    _ => None,
                };
                Outcome::Failed {
                    error: format!("HTTP {status}"),
                    retry_after,
                }
            }
            Err(e) => Outcome::Failed {
                error: describe(e),
                retry_after: None,
            },
        }
    }
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("host", &self.host())
            .field("preset", &self.preset.name())
            .finish_non_exhaustive()
    }
}

/// A `Retry-After` of delay-seconds, at most [`MAX_RETRY_AFTER`]; an
/// HTTP date or anything else is ignored (the backoff applies).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// A transport error in words, without its URL, causes included.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123";

    #[test]
    fn urls_must_be_https_unless_loopback_and_carry_no_credentials() {
        for ok in [
            "https://hooks.example.com/x",
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "http://[::1]:8080/",
        ] {
            check_url("w", ok).unwrap();
        }
        for (bad, why) in [
            ("http://hooks.example.com/x", "plain http"),
            ("https://user:pw@hooks.example.com/", "credentials"),
            ("ftp://hooks.example.com/", "scheme"),
            ("not a url", "not a URL"),
        ] {
            let e = check_url("w", bad).unwrap_err().to_string();
            assert!(e.contains(why) && e.starts_with("webhook w"), "{bad}: {e}");
            assert!(!e.contains("pw@"), "{e}");
        }
    }

    #[test]
    fn a_signature_verifies_only_with_its_secret_body_and_fresh_timestamp() {
        let body = br#"{"id":"a"}"#;
        let sig = sign(KEY, 1000, body);
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert_eq!(verify(KEY, "1000", body, &sig, 1000, 300), Ok(()));
        assert_eq!(verify(KEY, "1000", body, &sig, 1300, 300), Ok(()));
        assert_eq!(
            verify(KEY, "1000", body, &sig, 1301, 300),
            Err(VerifyError::Stale(301))
        );
        assert_eq!(
            verify(KEY, "1001", body, &sig, 1000, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(KEY, "1000", b"{}", &sig, 1000, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"other-key-0123456", "1000", body, &sig, 1000, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(KEY, "x", body, &sig, 1000, 300),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            verify(KEY, "1000", body, "sha1=ab", 1000, 300),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            verify(KEY, "1000", body, "sha256=zz", 1000, 300),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn matches_a_known_hmac_sha256_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(unhex("0"), None);
    }

    #[test]
    fn retry_after_takes_seconds_and_is_capped() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(RETRY_AFTER, "99999999".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}

//! Limits on what one feed client may cost: a token bucket for its ops, a
//! rate-limited log for refused handshakes, the names that exist, and the
//! `Origin` check.

use std::collections::HashSet;
use std::time::Instant;

/// A token bucket: `burst` ops at once, refilled at `per_second`.
#[derive(Debug)]
pub(crate) struct Bucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
}

impl Bucket {
    pub(crate) fn new(per_second: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Bucket {
            tokens: burst,
            burst,
            per_second: per_second.max(0.0),
            last: now,
        }
    }

    /// Takes one token at `now`; false when none is left.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The symbols and strategies the engine runs: the only names a client may
/// subscribe to.
#[derive(Debug, Default, Clone)]
pub struct Known {
    pub symbols: HashSet<String>,
    pub strategies: HashSet<String>,
}

/// Whether a WebSocket handshake's `Origin` may open the feed.
///
/// No `Origin` (a program, not a browser) passes: the token decides. A
/// browser always sends one; it passes when it is on `allowed`, or when it
/// is the page the engine itself serves on a loopback address
/// (`http://127.0.0.1:PORT` with that same `Host`). A page elsewhere
/// (including a DNS-rebinding one, whose `Host` is its own name) is
/// refused, so it cannot read a local feed with the public demo token.
pub(crate) fn origin_allowed(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let origin = origin.trim_end_matches('/');
    if allowed.iter().any(|a| a.trim_end_matches('/') == origin) {
        return true;
    }
    let Some(host) = host else {
        return false;
    };
    let same = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host));
    same && is_loopback_host(host)
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An error text as `/healthz` may show it: anything that looks like a
/// path, a URL or an address is replaced, and the whole is kept short.
/// The full text is in the engine's log, for the operator.
pub(crate) fn public_reason(error: &str) -> String {
    const MAX: usize = 120;
    let mut out = String::new();
    for word in error.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        let sensitive = word.contains('/')
            || word.contains('\\')
            || word.contains("://")
            || word.chars().filter(|c| *c == ':').count() >= 2
            || looks_like_address(word);
        out.push_str(if sensitive { "<redacted>" } else { word });
        if out.len() > MAX {
            break;
        }
    }
    if out.len() > MAX {
        let mut cut = MAX;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// `host:port` or an IP literal (trailing punctuation ignored).
fn looks_like_address(word: &str) -> bool {
    let w = word.trim_end_matches([',', ':', ';', ')', '.']);
    let w = w.trim_start_matches('(');
    w.parse::<std::net::SocketAddr>().is_ok()
        || w.parse::<std::net::IpAddr>().is_ok()
        || w.rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && h.contains('.') && p.parse::<u16>().is_ok())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(2.0, 3, t0);
        assert_eq!((0..5).filter(|_| b.take(t0)).count(), 3);
        // Half a second at 2/s: one more.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!((0..5).filter(|_| b.take(t1)).count(), 1);
        // A long pause refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..10).filter(|_| b.take(t2)).count(), 3);
    }

    #[test]
    fn origins_off_the_allowlist_are_refused() {
        let allowed = vec!["https://dash.example.com".to_owned()];
        assert!(origin_allowed(None, Some("127.0.0.1:8765"), &[]));
        assert!(origin_allowed(
            Some("https://dash.example.com/"),
            Some("feed.example.com"),
            &allowed
        ));
        assert!(!origin_allowed(
            Some("https://evil.example"),
            Some("127.0.0.1:8765"),
            &allowed
        ));
        // The engine's own page on loopback.
        assert!(origin_allowed(
            Some("http://127.0.0.1:8765"),
            Some("127.0.0.1:8765"),
            &[]
        ));
        assert!(origin_allowed(
            Some("http://localhost:8765"),
            Some("localhost:8765"),
            &[]
        ));
        // DNS rebinding: same origin as Host, but not a loopback name.
        assert!(!origin_allowed(
            Some("http://evil.example:8765"),
            Some("evil.example:8765"),
            &[]
        ));
        // `null` (a sandboxed page or a file://) is refused.
        assert!(!origin_allowed(Some("null"), Some("127.0.0.1:8765"), &[]));
    }

    #[test]
    fn public_reasons_hide_paths_urls_and_addresses() {
        let r = public_reason(
            "state.path /home/ops/secret/db: cannot open; ws wss://stream.binance.com:9443/ws failed at 10.0.0.7:443 (C:\\x)",
        );
        for leak in ["/home", "binance", "10.0.0.7", "C:\\"] {
            assert!(!r.contains(leak), "{r}");
        }
        assert!(r.contains("cannot open"), "{r}");
        let long = public_reason(&"word ".repeat(200));
        assert!(long.chars().count() <= 121, "{}", long.len());
    }
}

//! The engine's side: [`Notifier`], a cheap handle whose
//! [`Notifier::try_notify`] never waits, and the settings it is built from.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candlewick_pipeline::Signal;
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::limits::Retry;
use crate::stats::Stats;
use crate::{EmailConfig, Filter, Kind, Notification, Preset, Secret};
use candlewick_pipeline::LogLimiter;

/// One webhook's settings (checked: see [`crate::Service::new`]). Its
/// `Debug` shows the URL's origin only: a path may be a credential.
#[derive(Clone)]
pub struct WebhookConfig {
    /// Names the destination in the outbox, logs and listings: records
    /// queued for it survive a restart only under the same name.
    pub name: String,
    pub url: String,
    /// Signs each request; required by [`Preset::Candlewick`], optional
    /// for the chat presets (their URL is the credential).
    pub secret: Option<Secret>,
    pub preset: Preset,
    /// For an `smtp://` or `smtps://` URL: the message's addresses and the
    /// relay's login (see [`crate::email`]).
    pub email: Option<EmailConfig>,
    pub filter: Filter,
    /// Attempts before a notification goes to the dead letters.
    pub max_attempts: u32,
    /// Most requests a minute to this webhook.
    pub rate_per_min: f64,
    /// One request's limit (connect included).
    pub timeout: Duration,
    pub retry: Retry,
}

impl WebhookConfig {
    /// A webhook with the defaults: every kind, 8 attempts, 60 a minute,
    /// 10 s per request, retries from 1 s up to 10 minutes.
    pub fn new(name: &str, url: &str, secret: Secret) -> Self {
        WebhookConfig {
            secret: Some(secret),
            ..WebhookConfig::preset(name, url, Preset::Candlewick)
        }
    }

    /// A webhook of a chat preset (no signing secret), with the defaults
    /// of [`WebhookConfig::new`].
    pub fn preset(name: &str, url: &str, preset: Preset) -> Self {
        WebhookConfig {
            name: name.to_owned(),
            url: url.to_owned(),
            secret: None,
            preset,
            email: None,
            filter: Filter::default(),
            max_attempts: 8,
            rate_per_min: 60.0,
            timeout: Duration::from_secs(10),
            retry: Retry::default(),
        }
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &redact_url(&self.url))
            .field("secret", &self.secret)
            .field("preset", &self.preset.name())
            .field("email", &self.email)
            .field("filter", &self.filter)
            .field("max_attempts", &self.max_attempts)
            .field("rate_per_min", &self.rate_per_min)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

/// A URL as `scheme://host[:port]/...`, or `(not a URL)`: for logs and
/// listings, where its path (which may be a credential) must not go.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}/...",
            u.scheme(),
            u.host_str().unwrap_or_default(),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(not a URL)".to_owned(),
    }
}

/// The notifier's settings.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub webhooks: Vec<WebhookConfig>,
    /// Notifications the hand-off channel holds before `try_notify` drops.
    pub queue: usize,
    /// Records one webhook's outbox holds before new ones are dropped
    /// (counted): a receiver down for days cannot fill the disk.
    pub max_pending: usize,
    /// At stop, how long destinations may go on delivering what is due.
    pub drain: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            webhooks: Vec::new(),
            queue: 4096,
            max_pending: 100_000,
            drain: Duration::from_secs(5),
        }
    }
}

/// The receiving end of the hand-off channel, kept across restarts of the
/// delivery task (what is queued in it is not lost when the task fails).
#[derive(Debug, Clone)]
pub struct Inbox(pub(crate) Arc<tokio::sync::Mutex<mpsc::Receiver<Notification>>>);

/// The engine's handle: clone it anywhere. [`Notifier::try_notify`] filters
/// and `try_send`s: it never waits, never blocks a worker. A full channel
/// is counted (`dropped_channel_full`) and logged at most once a second.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    inner: Option<Arc<Handoff>>,
}

#[derive(Debug)]
struct Handoff {
    tx: mpsc::Sender<Notification>,
    filters: Vec<Filter>,
    stats: Arc<Stats>,
    log: LogLimiter,
}

/// The hand-off channel for `config`: the engine's [`Notifier`] and the
/// [`Inbox`] a [`crate::Service`] drains.
pub fn channel(config: &NotifyConfig, stats: Arc<Stats>) -> (Notifier, Inbox) {
    let (tx, rx) = mpsc::channel(config.queue.max(1));
    let handoff = Handoff {
        tx,
        filters: config.webhooks.iter().map(|w| w.filter.clone()).collect(),
        stats,
        log: LogLimiter::new(Duration::from_secs(1)),
    };
    (
        Notifier {
            inner: Some(Arc::new(handoff)),
        },
        Inbox(Arc::new(tokio::sync::Mutex::new(rx))),
    )
}

impl Notifier {
    /// A notifier that sends nothing (no `[notify]` section).
    pub fn disabled() -> Notifier {
        Notifier::default()
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The counters, when enabled.
    pub fn stats(&self) -> Option<&Arc<Stats>> {
        self.inner.as_ref().map(|h| &h.stats)
    }

    /// Whether any webhook wants a notification with these parts.
    pub fn wants(
        &self,
        kind: Kind,
        strategy: Option<&str>,
        symbol: Option<&str>,
        action: Option<&str>,
        strength: Option<f64>,
    ) -> bool {
        self.inner.as_ref().is_some_and(|h| {
            h.filters
                .iter()
                .any(|f| f.accepts_parts(kind, strategy, symbol, action, strength))
        })
    }

    /// Hands `n` to the notifier if any webhook wants it. Returns whether it
    /// was queued; never waits.
    pub fn try_notify(&self, n: Notification) -> bool {
        let Some(h) = &self.inner else { return false };
        if !h.filters.iter().any(|f| f.accepts(&n)) {
            return false;
        }
        match h.tx.try_send(n) {
            Ok(()) => {
                Stats::add(&h.stats.queued, 1);
                true
            }
            Err(TrySendError::Full(n) | TrySendError::Closed(n)) => {
                Stats::add(&h.stats.dropped_channel_full, 1);
                if let Some(held_back) = h.log.admit(Instant::now()) {
                    tracing::warn!(
                        id = %n.id,
                        held_back,
                        "notification dropped: the notifier's queue is full (or it stopped)"
                    );
                }
                false
            }
        }
    }

    /// A signal, if any webhook wants it: the filters are checked before
    /// its notification is built, so an unwanted signal costs a few
    /// comparisons.
    pub fn signal(&self, s: &Signal) -> bool {
        self.wants(
            Kind::Signal,
            Some(&s.strategy),
            Some(s.symbol.as_str()),
            Some(s.action.as_str()),
            Some(s.strength),
        ) && self.try_notify(Notification::signal(s))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;

    fn config(queue: usize, filter: Filter) -> NotifyConfig {
        let secret = Secret::new("0123456789abcdef", "test").unwrap();
        let mut hook = WebhookConfig::new("w", "http://127.0.0.1:1/", secret);
        hook.filter = filter;
        NotifyConfig {
            webhooks: vec![hook],
            queue,
            ..NotifyConfig::default()
        }
    }

    #[test]
    fn a_full_channel_drops_and_counts_without_waiting() {
        let stats = Arc::new(Stats::default());
        let (n, _inbox) = channel(&config(2, Filter::default()), stats.clone());
        let sent: Vec<bool> = (0..5)
            .map(|i| n.try_notify(Notification::engine(i, false, i, "")))
            .collect();
        assert_eq!(sent, [true, true, false, false, false]);
        assert_eq!(
            (
                stats.queued.load(Relaxed),
                stats.dropped_channel_full.load(Relaxed)
            ),
            (2, 3)
        );
    }

    #[test]
    fn unwanted_notifications_are_not_queued_and_disabled_sends_nothing() {
        let filter = Filter {
            kinds: vec![Kind::Signal],
            ..Filter::default()
        };
        let stats = Arc::new(Stats::default());
        let (n, _inbox) = channel(&config(8, filter), stats.clone());
        assert!(!n.try_notify(Notification::engine(1, false, 1, "")));
        assert_eq!(stats.queued.load(Relaxed), 0);
        assert!(!Notifier::disabled().try_notify(Notification::engine(1, false, 1, "")));
        assert!(!Notifier::disabled().is_enabled());
    }
}

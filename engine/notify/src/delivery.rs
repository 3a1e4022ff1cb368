//! [`Service`]: the task that writes handed-off notifications to the
//! outbox and delivers them, one loop per webhook.
//!
//! # A notification's life
//!
//! 1. **Hand-off.** The engine's [`crate::Notifier`] puts it on a bounded
//!    channel (never waiting).
//! 2. **Intake.** The service takes what is queued, makes one [`Record`]
//!    per webhook whose filter accepts it, and writes them in one batch to
//!    the [`Outbox`]; then it wakes those webhooks' loops. A webhook whose
//!    outbox holds `max_pending` records gets no more (counted).
//! 3. **Delivery.** Each webhook's loop takes its record due first, waits
//!    for its rate limit, and POSTs it. A 2xx deletes the record; anything
//!    else reschedules it after a backoff with jitter (or the receiver's
//!    `Retry-After`), and after `max_attempts` moves it to the dead letters.
//! 4. **Stop.** Intake moves what is left in the channel to the outbox;
//!    the loops go on for at most `drain` while records are due, then stop.
//!    Whatever was not delivered is in the outbox for the next start.

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use crate::email::{is_email_url, Mailer};
use crate::limits::{jitter, RateLimit, Retry};
use crate::outbox::{Outbox, Record};
use crate::stats::Stats;
use crate::webhook::{Outcome, Webhook};
use crate::WebhookConfig;
use crate::{Filter, Inbox, Notification, NotifyConfig, NotifyError};
use candlewick_pipeline::LogLimiter;

/// How long a loop with nothing queued sleeps before looking again (it is
/// woken at once by new records; this only bounds a missed wake-up).
const IDLE: Duration = Duration::from_secs(30);

/// Most notifications taken from the channel into one outbox write.
const INTAKE_BATCH: usize = 256;

/// Upper bounds on the settings.
pub mod bounds {
    pub const MAX_ATTEMPTS: u32 = 1000;
    pub const RATE_PER_MIN: f64 = 60_000.0;
    pub const QUEUE: usize = 1 << 20;
    pub const MAX_PENDING: usize = 1 << 24;
}

/// Where one destination's requests go: an HTTP webhook, or an SMTP
/// relay (an `smtp://` or `smtps://` URL).
#[derive(Debug)]
enum Target {
    Webhook(Webhook),
    Email { name: String, mailer: Mailer },
}

impl Target {
    fn new(w: &WebhookConfig) -> Result<Target, NotifyError> {
        match &w.email {
            Some(email) => Ok(Target::Email {
                name: w.name.clone(),
                mailer: Mailer::new(&w.name, &w.url, email, w.timeout)?,
            }),
            None => Ok(Target::Webhook(Webhook::new(
                &w.name,
                &w.url,
                w.secret.clone(),
                w.preset.clone(),
                w.timeout,
            )?)),
        }
    }

    fn name(&self) -> &str {
        match self {
            Target::Webhook(w) => w.name(),
            Target::Email { name, .. } => name,
        }
    }

    fn host(&self) -> String {
        match self {
            Target::Webhook(w) => w.host(),
            Target::Email { mailer, .. } => mailer.host().to_owned(),
        }
    }

    async fn send(&self, id: &str, body: &str, now_s: i64) -> Outcome {
        match self {
            Target::Webhook(w) => w.send(id, body, now_s).await,
            Target::Email { mailer, .. } => mailer.send(id, body).await,
        }
    }
}

/// One destination and its delivery state.
#[derive(Debug)]
struct Destination {
    webhook: Target,
    host: String,
    filter: Filter,
    max_attempts: u32,
    rate_per_min: f64,
    retry: Retry,
    /// Records in the outbox for this webhook.
    pending: AtomicI64,
    wake: Notify,
    log: LogLimiter,
}

/// The notifier's delivery task. Build it once; run it under the engine's
/// supervisor (a failed run restarts with the same outbox and channel).
#[derive(Debug)]
pub struct Service {
    outbox: Arc<Outbox>,
    dests: Vec<Arc<Destination>>,
    inbox: Inbox,
    stats: Arc<Stats>,
    max_pending: usize,
    drain: Duration,
    /// Notifications taken from the channel whose outbox write failed:
    /// the next run (after the supervisor's restart) writes them first.
    carry: std::sync::Mutex<Vec<Notification>>,
}

impl Service {
    /// Checks `config` (URLs, names, bounds), builds the HTTP clients, counts
    /// what the outbox holds, and buries records of webhooks no longer
    /// configured (they show in the dead letters, and can be retried once
    /// the webhook is back under the same name).
    ///
    /// # Errors
    /// [`NotifyError::Url`], [`NotifyError::Config`], [`NotifyError::Client`],
    /// or the outbox's errors.
    pub fn new(
        config: &NotifyConfig,
        outbox: Arc<Outbox>,
        inbox: Inbox,
        stats: Arc<Stats>,
    ) -> Result<Service, NotifyError> {
        check(config)?;
        let mut dests = Vec::with_capacity(config.webhooks.len());
        for w in &config.webhooks {
            let webhook = Target::new(w)?;
            let pending = outbox.count_pending(&w.name)? as i64;
            dests.push(Arc::new(Destination {
                host: webhook.host(),
                webhook,
                filter: w.filter.clone(),
                max_attempts: w.max_attempts,
                rate_per_min: w.rate_per_min,
                retry: w.retry,
                pending: AtomicI64::new(pending),
                wake: Notify::new(),
                log: LogLimiter::new(Duration::from_secs(10)),
            }));
        }
        let service = Service {
            outbox,
            dests,
            inbox,
            stats,
            max_pending: config.max_pending,
            drain: config.drain,
            carry: std::sync::Mutex::new(Vec::new()),
        };
        service.bury_orphans()?;
        let pending: i64 = service.dests.iter().map(|d| d.pending.load(Relaxed)).sum();
        service.stats.pending.store(pending, Relaxed);
        service
            .stats
            .dead_letters
            .store(service.outbox.count_dead()? as i64, Relaxed);
        Ok(service)
    }

    fn bury_orphans(&self) -> Result<(), NotifyError> {
        let now = now_ms();
        for r in self.outbox.pending()? {
            if self.dests.iter().any(|d| d.webhook.name() == r.dest) {
                continue;
            }
            let error = format!("no webhook named {:?} is configured now", r.dest);
            tracing::warn!(webhook = %r.dest, id = %r.id, "{error}; moved to the dead letters");
            let dead = Record {
                due_ms: now,
                last_error: Some(error),
                ..r.clone()
            };
            self.outbox.bury(&r, &dead)?;
        }
        Ok(())
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Runs intake and one delivery loop per webhook until `stop` says
    /// `true` (or its sender is dropped), then drains (see the module doc).
    ///
    /// # Errors
    /// The outbox's errors (a delivery loop that fails stops the others;
    /// nothing is lost, the records stay in the outbox).
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) -> Result<(), NotifyError> {
        let (draining_tx, draining) = watch::channel(false);
        let mut loops = JoinSet::new();
        for dest in &self.dests {
            loops.spawn(deliver(
                dest.clone(),
                self.outbox.clone(),
                self.stats.clone(),
                draining.clone(),
            ));
        }
        let mut inbox = self.inbox.0.lock().await;
        let mut batch = std::mem::take(
            &mut *self
                .carry
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        self.intake_or_keep(&mut batch)?;
        loop {
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                n = inbox.recv_many(&mut batch, INTAKE_BATCH) => {
                    if n == 0 {
                        break; // every Notifier is gone
                    }
                    self.intake_or_keep(&mut batch)?;
                }
                changed = stop.changed() => if changed.is_err() { break },
                Some(done) = loops.join_next() => {
                    end(&mut loops).await;
                    return done_to_result(done).and(Err(NotifyError::Delivery(
                        "a delivery loop returned before the stop".into(),
                    )));
                }
            }
        }
        // Stop: nothing handed off is left behind in memory.
        while let Ok(n) = inbox.try_recv() {
            batch.push(n);
            if batch.len() >= INTAKE_BATCH {
                self.intake_or_keep(&mut batch)?;
            }
        }
        self.intake_or_keep(&mut batch)?;
        let _ = draining_tx.send(true);
        let drained = tokio::time::timeout(self.drain, async {
            let mut result = Ok(());
            while let Some(done) = loops.join_next().await {
                result = result.and(done_to_result(done));
            }
            result
        })
        .await;
        end(&mut loops).await;
        drained.unwrap_or(Ok(()))
    }

    /// [`Service::intake`]; on failure `batch` is kept for the next run.
    fn intake_or_keep(&self, batch: &mut Vec<Notification>) -> Result<(), NotifyError> {
        self.intake(batch).inspect_err(|_| {
            let mut carry = self
                .carry
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            carry.append(batch);
        })
    }

    /// Writes `batch`'s records (one per accepting webhook) to the outbox in
    /// one write and wakes their loops. Empties `batch` once written.
    fn intake(&self, batch: &mut Vec<Notification>) -> Result<(), NotifyError> {
        if batch.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut records = Vec::with_capacity(batch.len());
        let mut owners = Vec::with_capacity(batch.len());
        for n in batch.iter() {
            let body = n.body();
            for (i, d) in self.dests.iter().enumerate() {
                if !d.filter.accepts(n) {
                    continue;
                }
                let queued =
                    d.pending.load(Relaxed) + owners.iter().filter(|&&o| o == i).count() as i64;
                if queued >= self.max_pending as i64 {
                    Stats::add(&self.stats.dropped_outbox_full, 1);
                    if let Some(held_back) = d.log.admit(Instant::now()) {
                        tracing::warn!(
                            webhook = d.webhook.name(),
                            max_pending = self.max_pending,
                            held_back,
                            "notification dropped: the webhook's outbox is full"
                        );
                    }
                    continue;
                }
                records.push(Record {
                    id: n.id.clone(),
                    dest: d.webhook.name().to_owned(),
                    host: d.host.clone(),
                    kind: n.kind.as_str().to_owned(),
                    body: body.clone(),
                    attempts: 0,
                    created_ms: now,
                    due_ms: now,
                    last_error: None,
                });
                owners.push(i);
            }
        }
        let added = self.outbox.enqueue(&records)?;
        batch.clear();
        for (i, added) in owners.iter().zip(added) {
            if added {
                self.dests[*i].pending.fetch_add(1, Relaxed);
                self.stats.pending.fetch_add(1, Relaxed);
                Stats::add(&self.stats.outbox_writes, 1);
            }
        }
        owners.dedup();
        for i in owners {
            self.dests[i].wake.notify_one();
        }
        Ok(())
    }
}

/// The settings' bounds, each error naming its field.
fn check(config: &NotifyConfig) -> Result<(), NotifyError> {
    use bounds::*;
    let bad = |field: String, reason: String| Err(NotifyError::Config { field, reason });
    if config.queue == 0 || config.queue > QUEUE {
        return bad("queue".into(), format!("must be between 1 and {QUEUE}"));
    }
    if config.max_pending == 0 || config.max_pending > MAX_PENDING {
        return bad(
            "max_pending".into(),
            format!("must be between 1 and {MAX_PENDING}"),
        );
    }
    for (i, w) in config.webhooks.iter().enumerate() {
        let field = |f: &str| format!("webhooks[{i}].{f}");
        if !is_name(&w.name) {
            return bad(
                field("name"),
                format!("{:?} must be 1-64 of [a-z0-9_.-]", w.name),
            );
        }
        if config.webhooks[..i].iter().any(|o| o.name == w.name) {
            return bad(
                field("name"),
                format!(
                    "{:?} is given twice; give each webhook its own name",
                    w.name
                ),
            );
        }
        if is_email_url(&w.url) != w.email.is_some() {
            return bad(
                field("email"),
                "an smtp:// or smtps:// URL needs the email settings, and only it".into(),
            );
        }
        if w.email.is_some() && !w.preset.signs() {
            return bad(field("preset"), "is for chat webhooks, not email".into());
        }
        if w.preset.signs() && w.secret.is_none() && w.email.is_none() {
            return bad(
                field("secret"),
                "Candlewick's JSON webhooks are signed: give a secret (or a chat preset)".into(),
            );
        }
        if w.max_attempts == 0 || w.max_attempts > MAX_ATTEMPTS {
            return bad(
                field("max_attempts"),
                format!("must be between 1 and {MAX_ATTEMPTS}"),
            );
        }
        if !(w.rate_per_min.is_finite() && w.rate_per_min > 0.0 && w.rate_per_min <= RATE_PER_MIN) {
            return bad(
                field("rate_per_min"),
                format!("must be above 0 and at most {RATE_PER_MIN}"),
            );
        }
        if w.timeout.is_zero() || w.timeout > Duration::from_secs(300) {
            return bad(field("timeout"), "must be above 0 and at most 300 s".into());
        }
        if w.retry.initial.is_zero()
            || w.retry.initial > w.retry.max
            || w.retry.max > Duration::from_secs(86_400)
        {
            return bad(field("retry"), "needs 0 < initial <= max <= a day".into());
        }
    }
    Ok(())
}

/// A webhook name: 1-64 of `[a-z0-9_.-]` (it keys the outbox).
pub fn is_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

/// Aborts the loops and waits until each is gone, so that none holds the
/// outbox open after `run` returns (a restart reopens it).
async fn end(loops: &mut JoinSet<Result<(), NotifyError>>) {
    loops.abort_all();
    while loops.join_next().await.is_some() {}
}

fn done_to_result(
    done: Result<Result<(), NotifyError>, tokio::task::JoinError>,
) -> Result<(), NotifyError> {
    match done {
        Ok(r) => r,
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => Err(NotifyError::Delivery(format!(
            "a delivery loop panicked: {e}"
        ))),
    }
}

/// Milliseconds since the Unix epoch, by the wall clock (due times survive
/// a restart, so they cannot be `Instant`s).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One webhook's loop: the record due first, the rate limit, one POST, the
/// outcome written back. Returns when draining and nothing is due.
async fn deliver(
    dest: Arc<Destination>,
    outbox: Arc<Outbox>,
    stats: Arc<Stats>,
    mut draining: watch::Receiver<bool>,
) -> Result<(), NotifyError> {
    let mut limit = RateLimit::new(dest.rate_per_min, Instant::now());
    loop {
        let now = now_ms();
        let next = outbox.first(dest.webhook.name())?;
        let record = match next {
            Some(r) if r.due_ms <= now => r,
            other => {
                if *draining.borrow() {
                    return Ok(());
                }
                let wait = other.map_or(IDLE, |r| Duration::from_millis((r.due_ms - now) as u64));
                tokio::select! {
                    () = dest.wake.notified() => {}
                    () = tokio::time::sleep(wait.min(IDLE)) => {}
                    changed = draining.changed() => if changed.is_err() { return Ok(()) },
                }
                continue;
            }
        };
        if let Some(wait) = limit.take(Instant::now()) {
            if *draining.borrow() {
                return Ok(());
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                changed = draining.changed() => if changed.is_err() { return Ok(()) },
            }
            continue;
        }
        let outcome = dest
            .webhook
            .send(&record.id, &record.body, now_ms() / 1000)
            .await;
        settle(&dest, &outbox, &stats, record, outcome)?;
    }
}

/// Writes one attempt's outcome: delete, reschedule, or bury.
fn settle(
    dest: &Destination,
    outbox: &Outbox,
    stats: &Stats,
    record: Record,
    outcome: Outcome,
) -> Result<(), NotifyError> {
    let name = dest.webhook.name();
    let (error, retry_after) = match outcome {
        Outcome::Delivered => {
            outbox.delivered(&record)?;
            dest.pending.fetch_sub(1, Relaxed);
            stats.pending.fetch_sub(1, Relaxed);
            Stats::add(&stats.delivered, 1);
            tracing::debug!(webhook = name, id = %record.id, attempts = record.attempts + 1, "notification delivered");
            return Ok(());
        }
        Outcome::Failed { error, retry_after } => (error, retry_after),
    };
    Stats::add(&stats.failed_attempts, 1);
    let attempts = record.attempts.saturating_add(1);
    let now = now_ms();
    if attempts >= dest.max_attempts {
        let dead = Record {
            attempts,
            due_ms: now,
            last_error: Some(error.clone()),
            ..record.clone()
        };
        outbox.bury(&record, &dead)?;
        dest.pending.fetch_sub(1, Relaxed);
        stats.pending.fetch_sub(1, Relaxed);
        stats.dead_letters.fetch_add(1, Relaxed);
        Stats::add(&stats.dead_lettered, 1);
        tracing::warn!(
            webhook = name,
            id = %record.id,
            attempts,
            error = %error,
            "notification moved to the dead letters (candlewick notify list-failed)"
        );
        return Ok(());
    }
    let delay = dest.retry.delay(attempts, jitter(), retry_after);
    let again = Record {
        attempts,
        due_ms: now.saturating_add(delay.as_millis() as i64),
        last_error: Some(error.clone()),
        ..record.clone()
    };
    outbox.reschedule(&record, &again)?;
    if let Some(held_back) = dest.log.admit(Instant::now()) {
        tracing::warn!(
            webhook = name,
            id = %record.id,
            attempts,
            error = %error,
            retry_in_ms = delay.as_millis() as u64,
            held_back,
            "notification not delivered; will retry"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_and_plain() {
        for ok in ["ops", "pager-duty_2", "a.b"] {
            assert!(is_name(ok), "{ok}");
        }
        for bad in ["", "Ops", "a b", "a\0b", &"x".repeat(65)] {
            assert!(!is_name(bad), "{bad}");
        }
    }

    #[test]
    fn settings_out_of_range_name_their_field() {
        let secret = crate::Secret::new("0123456789abcdef", "t").unwrap();
        let hook = crate::WebhookConfig::new("w", "http://127.0.0.1:1/", secret);
        let with = |f: &dyn Fn(&mut NotifyConfig)| {
            let mut c = NotifyConfig {
                webhooks: vec![hook.clone()],
                ..NotifyConfig::default()
            };
            f(&mut c);
            check(&c).err().map(|e| e.to_string())
        };
        assert_eq!(with(&|_| {}), None);
        let e = with(&|c| c.webhooks[0].max_attempts = 0).unwrap();
        assert!(e.contains("webhooks[0].max_attempts"), "{e}");
        let e = with(&|c| c.webhooks.push(c.webhooks[0].clone())).unwrap();
        assert!(e.contains("webhooks[1].name") && e.contains("twice"), "{e}");
        let e = with(&|c| c.webhooks[0].rate_per_min = f64::NAN).unwrap();
        assert!(e.contains("rate_per_min"), "{e}");
        let e = with(&|c| c.queue = 0).unwrap();
        assert!(e.contains("queue"), "{e}");
    }
}

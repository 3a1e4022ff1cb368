//! [`Outbox`]: notifications not yet delivered, and those given up on, in
//! their own RocksDB database (by default `notify/` in the engine's state
//! directory), so that a restart resumes delivery where it stopped.
//!
//! # Layout
//!
//! - `pending`: key `DEST NUL DUE ID` (DUE: the next attempt's time, ms,
//!   big-endian u64) so that a destination's records read in due order from
//!   a prefix seek; value: the [`Record`] as JSON.
//! - `ids`: key `DEST NUL ID`, value DUE: finds a pending record by id, and
//!   keeps one record per (destination, id) however often it is queued.
//! - `dead`: key `DEST NUL ID`, value the [`Record`]: the dead letters,
//!   kept until retried or cleared by hand.
//! - `meta`: the layout version, checked on open.

use std::fmt;
use std::path::{Path, PathBuf};

use rocksdb::{ColumnFamily, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use serde::{Deserialize, Serialize};

use crate::NotifyError;

const PENDING: &str = "pending";
const IDS: &str = "ids";
const DEAD: &str = "dead";
const META: &str = "meta";
const FAMILIES: [&str; 4] = [PENDING, IDS, DEAD, META];
const VERSION_KEY: &[u8] = b"version";

/// Version of this layout; another is refused, never reset.
pub const OUTBOX_VERSION: u32 = 1;

/// One notification for one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The notification's id (the `Idempotency-Key`).
    pub id: String,
    /// The webhook's name.
    pub dest: String,
    /// The webhook's host (for listings; the URL's path is not stored).
    pub host: String,
    pub kind: String,
    /// The request body.
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it was queued (ms since the epoch).
    pub created_ms: i64,
    /// When the next attempt is due; for a dead letter, when it died.
    pub due_ms: i64,
    pub last_error: Option<String>,
}

/// The durable queue of notifications, per destination.
pub struct Outbox {
    db: DB,
    path: PathBuf,
    write: WriteOptions,
}

impl Outbox {
    /// Opens (or creates) the outbox at `path`; `sync` makes each write
    /// wait for fsync (as `state.sync` does for checkpoints).
    ///
    /// # Errors
    /// [`NotifyError::Rocks`] (permissions, a lock held by another
    /// process), [`NotifyError::Corrupt`] for another layout version.
    pub fn open(path: impl AsRef<Path>, sync: bool) -> Result<Outbox, NotifyError> {
        let path = path.as_ref().to_path_buf();
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_db_write_buffer_size(4 << 20);
        let db = DB::open_cf(&options, &path, FAMILIES).map_err(|source| NotifyError::Rocks {
            path: path.clone(),
            source,
        })?;
        let mut write = WriteOptions::default();
        write.set_sync(sync);
        let outbox = Outbox { db, path, write };
        outbox.check_version(true)?;
        Ok(outbox)
    }

    /// Opens an existing outbox to read only: works while the engine holds
    /// it open (no lock is taken), and sees what was written when it opened.
    ///
    /// # Errors
    /// As [`Outbox::open`]; also when there is no outbox at `path`.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Outbox, NotifyError> {
        let path = path.as_ref().to_path_buf();
        let db = DB::open_cf_for_read_only(&Options::default(), &path, FAMILIES, false).map_err(
            |source| NotifyError::Rocks {
                path: path.clone(),
                source,
            },
        )?;
        let outbox = Outbox {
            db,
            path,
            write: WriteOptions::default(),
        };
        outbox.check_version(false)?;
        Ok(outbox)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_version(&self, writable: bool) -> Result<(), NotifyError> {
        let meta = self.cf(META)?;
        match self
            .db
            .get_cf(meta, VERSION_KEY)
            .map_err(|e| self.rocks(e))?
        {
            Some(v) if v == OUTBOX_VERSION.to_be_bytes() => Ok(()),
            Some(v) => Err(self.corrupt(format!(
                "layout version {v:?}, this build reads {OUTBOX_VERSION}"
            ))),
            None if writable => self
                .db
                .put_cf_opt(meta, VERSION_KEY, OUTBOX_VERSION.to_be_bytes(), &self.write)
                .map_err(|e| self.rocks(e)),
            None => Ok(()),
        }
    }

    /// Queues `records`, skipping any whose (destination, id) is already
    /// pending. Returns, per record, whether it was added. One atomic
    /// write.
    ///
    /// # Errors
    /// [`NotifyError::Rocks`].
    pub fn enqueue(&self, records: &[Record]) -> Result<Vec<bool>, NotifyError> {
        let (pending, ids) = (self.cf(PENDING)?, self.cf(IDS)?);
        let mut batch = WriteBatch::default();
        let mut seen = std::collections::HashSet::new();
        let mut added = Vec::with_capacity(records.len());
        for r in records {
            let id_key = id_key(&r.dest, &r.id);
            let stored = self
                .db
                .get_pinned_cf(ids, &id_key)
                .map_err(|e| self.rocks(e))?
                .is_some();
            if stored || !seen.insert(id_key.clone()) {
                added.push(false);
                continue;
            }
            batch.put_cf(
                pending,
                pending_key(&r.dest, r.due_ms, &r.id),
                self.encode(r)?,
            );
            batch.put_cf(ids, &id_key, due_bytes(r.due_ms));
            added.push(true);
        }
        if !batch.is_empty() {
            self.db
                .write_opt(batch, &self.write)
                .map_err(|e| self.rocks(e))?;
        }
        Ok(added)
    }

    /// `dest`'s pending record due first, if any.
    ///
    /// # Errors
    /// [`NotifyError::Rocks`], [`NotifyError::Corrupt`].
    ///
    /// A record that does not decode cannot block its webhook: it is moved
    /// to the dead letters as it is (kind `corrupt`, its bytes as the
    /// body) and the next one is read.
    pub fn first(&self, dest: &str) -> Result<Option<Record>, NotifyError> {
        let prefix = prefix(dest);
        loop {
            let mut iter = self.db.iterator_cf(
                self.cf(PENDING)?,
                IteratorMode::From(&prefix, Direction::Forward),
            );
            let Some(entry) = iter.next() else {
                return Ok(None);
            };
            let (key, value) = entry.map_err(|e| self.rocks(e))?;
            if !key.starts_with(&prefix) {
                return Ok(None);
            }
            match self.decode(&value) {
                Ok(record) => return Ok(Some(record)),
                Err(e) => self.bury_corrupt(dest, &key, &value, &e)?,
            }
        }
    }

    fn bury_corrupt(
        &self,
        dest: &str,
        key: &[u8],
        value: &[u8],
        error: &NotifyError,
    ) -> Result<(), NotifyError> {
        let id: String = key[prefix(dest).len()..]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dead = Record {
            id: format!("corrupt-{id}"),
            dest: dest.to_owned(),
            host: String::new(),
            kind: "corrupt".to_owned(),
            body: String::from_utf8_lossy(value).into_owned(),
            attempts: 0,
            created_ms: 0,
            due_ms: 0,
            last_error: Some(error.to_string()),
        };
        tracing::warn!(webhook = dest, id = %dead.id, "an outbox record does not decode; moved to the dead letters");
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(PENDING)?, key);
        // The id follows the due time in the key: its `ids` entry goes too.
        if let Some(raw_id) = key.get(prefix(dest).len() + 8..) {
            batch.delete_cf(self.cf(IDS)?, [prefix(dest).as_slice(), raw_id].concat());
        }
        batch.put_cf(self.cf(DEAD)?, id_key(dest, &dead.id), self.encode(&dead)?);
        self.db
            .write_opt(batch, &self.write)
            .map_err(|e| self.rocks(e))
    }

    /// Moves `record` (as read, with its old `due_ms`) to `updated`'s due
    /// time, attempts and error.
    ///
    /// # Errors
    /// [`NotifyError::Rocks`].
    pub fn reschedule(&self, record: &Record, updated: &Record) -> Result<(), NotifyError> {
        let mut batch = WriteBatch::default();
        batch.delete_cf(
            self.cf(PENDING)?,
            pending_key(&record.dest, record.due_ms, &record.id),
        );
        batch.put_cf(
            self.cf(PENDING)?,
            pending_key(&updated.dest, updated.due_ms, &updated.id),
            self.encode(updated)?,
        );
        batch.put_cf(
            self.cf(IDS)?,
            id_key(&updated.dest, &updated.id),
            due_bytes(updated.due_ms),
        );
        self.db
            .write_opt(batch, &self.write)
            .map_err(|e| self.rocks(e))
    }

    /// Removes a delivered record.
    ///
    /// # Errors
    /// [`NotifyError::Rocks`].
    pub fn delivered(&self, record: &Record) -> Result<(), NotifyError> {
        let mut batch = WriteBatch::default();
        self.remove_pending(&mut batch, record)?;
        self.db
            .write_opt(batch, &self.write)
            .map_err(|e| self.rocks(e))
    }

    /// Moves `record` (as read) to the dead letters as `dead` (its final
    /// attempts, error and time).
    ///
    /// # Errors
    /// [`NotifyError::Rocks`].
    pub fn bury(&self, record: &Record, dead: &Record) -> Result<(), NotifyError> {
        let mut batch = WriteBatch::default();
        self.remove_pending(&mut batch, record)?;
        batch.put_cf(
            self.cf(DEAD)?,
            id_key(&dead.dest, &dead.id),
            self.encode(dead)?,
        );
        self.db
            .write_opt(batch, &self.write)
            .map_err(|e| self.rocks(e))
    }

    fn remove_pending(&self, batch: &mut WriteBatch, r: &Record) -> Result<(), NotifyError> {
        batch.delete_cf(self.cf(PENDING)?, pending_key(&r.dest, r.due_ms, &r.id));
        batch.delete_cf(self.cf(IDS)?, id_key(&r.dest, &r.id));
        Ok(())
    }

    /// Every dead letter, by destination then id.
    ///
    /// # Errors
    /// [`NotifyError::Rocks`], [`NotifyError::Corrupt`].
    pub fn dead_letters(&self) -> Result<Vec<Record>, NotifyError> {
        self.all(DEAD)
    }

    /// Every pending record, by destination then due time.
    ///
    /// # Errors
    /// [`NotifyError::Rocks`], [`NotifyError::Corrupt`].
    pub fn pending(&self) -> Result<Vec<Record>, NotifyError> {
        self.all(PENDING)
    }

    fn all(&self, cf: &'static str) -> Result<Vec<Record>, NotifyError> {
        self.db
            .iterator_cf(self.cf(cf)?, IteratorMode::Start)
            .map(|entry| {
                let (_, value) = entry.map_err(|e| self.rocks(e))?;
                self.decode(&value)
            })
            .collect()
    }

    /// Pending records of `dest` (read once at start, then kept in memory).
    ///
    /// # Errors
    /// [`NotifyError::Rocks`].
    pub fn count_pending(&self, dest: &str) -> Result<usize, NotifyError> {
        let prefix = prefix(dest);
        let mut n = 0;
        for entry in self.db.iterator_cf(
            self.cf(PENDING)?,
            IteratorMode::From(&prefix, Direction::Forward),
        ) {
            let (key, _) = entry.map_err(|e| self.rocks(e))?;
            if !key.starts_with(&prefix) {
                break;
            }
            n += 1;
        }
        Ok(n)
    }

    /// Dead letters held now.
    ///
    /// # Errors
    /// [`NotifyError::Rocks`].
    pub fn count_dead(&self) -> Result<usize, NotifyError> {
        let mut n = 0;
        for entry in self.db.iterator_cf(self.cf(DEAD)?, IteratorMode::Start) {
            entry.map_err(|e| self.rocks(e))?;
            n += 1;
        }
        Ok(n)
    }

    /// Puts the dead letters (of `dest` only, when given) back in the
    /// queue, due at `now_ms` with their attempts reset. Returns how many.
    ///
    /// # Errors
    /// [`NotifyError::Rocks`], [`NotifyError::Corrupt`].
    pub fn retry_dead(&self, dest: Option<&str>, now_ms: i64) -> Result<usize, NotifyError> {
        let mut batch = WriteBatch::default();
        let mut moved = 0;
        for dead in self.dead_letters()? {
            if dest.is_some_and(|d| d != dead.dest) {
                continue;
            }
            batch.delete_cf(self.cf(DEAD)?, id_key(&dead.dest, &dead.id));
            let again = Record {
                attempts: 0,
                due_ms: now_ms,
                ..dead
            };
            let ids = self.cf(IDS)?;
            let id_key = id_key(&again.dest, &again.id);
            if self
                .db
                .get_pinned_cf(ids, &id_key)
                .map_err(|e| self.rocks(e))?
                .is_none()
            {
                batch.put_cf(
                    self.cf(PENDING)?,
                    pending_key(&again.dest, now_ms, &again.id),
                    self.encode(&again)?,
                );
                batch.put_cf(ids, id_key, due_bytes(now_ms));
            }
            moved += 1;
        }
        self.db
            .write_opt(batch, &self.write)
            .map_err(|e| self.rocks(e))?;
        Ok(moved)
    }

    fn encode(&self, r: &Record) -> Result<Vec<u8>, NotifyError> {
        serde_json::to_vec(r).map_err(|e| self.corrupt(format!("cannot encode a record: {e}")))
    }

    fn decode(&self, bytes: &[u8]) -> Result<Record, NotifyError> {
        serde_json::from_slice(bytes)
            .map_err(|e| self.corrupt(format!("a record does not decode: {e}")))
    }

    fn cf(&self, name: &'static str) -> Result<&ColumnFamily, NotifyError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| self.corrupt(format!("column family {name:?} is missing")))
    }

    fn rocks(&self, source: rocksdb::Error) -> NotifyError {
        NotifyError::Rocks {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, detail: String) -> NotifyError {
        NotifyError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn prefix(dest: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(dest.len() + 1);
    k.extend_from_slice(dest.as_bytes());
    k.push(0);
    k
}

/// Due times before the epoch sort first (clamped to 0).
fn due_bytes(due_ms: i64) -> [u8; 8] {
    (due_ms.max(0) as u64).to_be_bytes()
}

fn pending_key(dest: &str, due_ms: i64, id: &str) -> Vec<u8> {
    let mut k = prefix(dest);
    k.extend_from_slice(&due_bytes(due_ms));
    k.extend_from_slice(id.as_bytes());
    k
}

fn id_key(dest: &str, id: &str) -> Vec<u8> {
    let mut k = prefix(dest);
    k.extend_from_slice(id.as_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(dest: &str, id: &str, due_ms: i64) -> Record {
        Record {
            id: id.into(),
            dest: dest.into(),
            host: "127.0.0.1:1".into(),
            kind: "signal".into(),
            body: "{}".into(),
            attempts: 0,
            created_ms: 0,
            due_ms,
            last_error: None,
        }
    }

    #[test]
    fn records_come_back_in_due_order_per_destination_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let o = Outbox::open(dir.path(), false).unwrap();
            let added = o
                .enqueue(&[
                    record("a", "x", 30),
                    record("a", "y", 10),
                    record("b", "z", 5),
                    record("b", "z", 6),
                ])
                .unwrap();
            assert_eq!(added, [true, true, true, false]);
            // Queued again (a re-emitted signal): still one record.
            assert_eq!(o.enqueue(&[record("a", "x", 1)]).unwrap(), [false]);
        }
        let o = Outbox::open(dir.path(), false).unwrap();
        assert_eq!(o.first("a").unwrap().unwrap().id, "y");
        assert_eq!(o.first("b").unwrap().unwrap().id, "z");
        assert_eq!(o.first("c").unwrap(), None);
        assert_eq!(
            (o.count_pending("a").unwrap(), o.count_pending("b").unwrap()),
            (2, 1)
        );
    }

    #[test]
    fn reschedule_deliver_and_bury_move_one_record() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(dir.path(), false).unwrap();
        o.enqueue(&[record("a", "x", 10), record("a", "y", 20)])
            .unwrap();
        let x = o.first("a").unwrap().unwrap();
        let later = Record {
            due_ms: 40,
            attempts: 1,
            last_error: Some("HTTP 500".into()),
            ..x.clone()
        };
        o.reschedule(&x, &later).unwrap();
        assert_eq!(o.first("a").unwrap().unwrap().id, "y");
        assert_eq!(o.count_pending("a").unwrap(), 2);
        let y = o.first("a").unwrap().unwrap();
        o.delivered(&y).unwrap();
        let x = o.first("a").unwrap().unwrap();
        assert_eq!((x.attempts, x.due_ms), (1, 40));
        o.bury(
            &x,
            &Record {
                attempts: 2,
                ..x.clone()
            },
        )
        .unwrap();
        assert_eq!(o.first("a").unwrap(), None);
        let dead = o.dead_letters().unwrap();
        assert_eq!((dead.len(), dead[0].attempts), (1, 2));
        // Queuing the same id again is allowed once it left the queue.
        assert_eq!(o.enqueue(&[record("a", "y", 50)]).unwrap(), [true]);
        assert_eq!(o.retry_dead(Some("b"), 60).unwrap(), 0);
        assert_eq!(o.retry_dead(None, 60).unwrap(), 1);
        assert_eq!(o.count_dead().unwrap(), 0);
        let back = o.pending().unwrap();
        assert_eq!(back.len(), 2);
        assert!(back
            .iter()
            .any(|r| r.id == "x" && r.attempts == 0 && r.due_ms == 60));
    }

    #[test]
    fn a_record_that_does_not_decode_goes_to_the_dead_letters_and_blocks_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(dir.path(), false).unwrap();
        o.enqueue(&[record("a", "y", 20)]).unwrap();
        let pending = o.cf(PENDING).unwrap();
        o.db.put_cf(pending, pending_key("a", 10, "x"), b"not json")
            .unwrap();
        assert_eq!(o.first("a").unwrap().unwrap().id, "y");
        let dead = o.dead_letters().unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (dead[0].kind.as_str(), dead[0].body.as_str()),
            ("corrupt", "not json")
        );
        assert!(dead[0].id.starts_with("corrupt-"));
    }

    #[test]
    fn a_read_only_open_sees_the_dead_letters_while_the_outbox_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(dir.path(), false).unwrap();
        o.enqueue(&[record("a", "x", 10)]).unwrap();
        let x = o.first("a").unwrap().unwrap();
        o.bury(&x, &x).unwrap();
        let ro = Outbox::open_read_only(dir.path()).unwrap();
        assert_eq!(ro.dead_letters().unwrap().len(), 1);
        assert!(Outbox::open(dir.path(), false).is_err());
    }
}

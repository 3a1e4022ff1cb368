//! Data digests remembered across runs, keyed by what `stat` says of the
//! file (device, inode, size, mtime, ctime), as git's index remembers which
//! files are clean: a rerun or a sweep over the same 40 MB of bars does not
//! hash them again (about 25 ms of CPU each time at 1M bars).
//!
//! Every write to a file sets its ctime to the current time, and no program
//! can set it back, so a file changed since its entry was made no longer
//! matches it. One case remains: a write in the same timestamp tick as the
//! hash (the kernel's clock for file times is coarse). So a file whose
//! ctime is within [`DigestCache::SETTLE`] of now is hashed and not
//! remembered, as git re-checks "racily clean" entries; nor is one whose
//! `stat` changed while it was hashed.
//!
//! An entry is a small text file named by a hash of the key, holding the
//! key again and the digest; an entry that does not hold its own key, or
//! not a digest, is ignored. Entries are written to a temporary file and
//! renamed, so a reader never sees half of one. The directory must be as
//! trusted as the data: whoever writes it decides the data digest a report
//! carries.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{sha256_file, sha256_hex};

/// Format tag of an entry; bump when its layout changes.
const TAG: &str = "candlewick-digest-v1";

/// A directory of remembered file digests.
#[derive(Debug, Clone)]
pub struct DigestCache {
    dir: PathBuf,
    settle: Duration,
    keep: usize,
}

impl DigestCache {
    /// How old a file's last change must be before its digest is
    /// remembered: well above the coarsest file-time tick of Linux file
    /// systems (a jiffy, at most 10 ms) and above FAT's 2 s.
    pub const SETTLE: Duration = Duration::from_secs(3);

    /// How many entries a directory keeps: the oldest beyond are removed.
    pub const KEEP: usize = 1024;

    /// A cache in `dir` (made when the first entry is stored).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DigestCache {
            dir: dir.into(),
            settle: Self::SETTLE,
            keep: Self::KEEP,
        }
    }

    /// The user's cache: `$CANDLEWICK_DIGEST_CACHE`, else
    /// `$XDG_CACHE_HOME/candlewick/digests`, else
    /// `$HOME/.cache/candlewick/digests`; `None` when none is set or
    /// `CANDLEWICK_DIGEST_CACHE` is empty (which turns it off).
    pub fn user() -> Option<Self> {
        candlewick_core::cache_dir::user_cache_dir("CANDLEWICK_DIGEST_CACHE", "digests")
            .map(Self::new)
    }

    /// Sets the settle window (tests use a short one).
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// Sets how many entries are kept.
    pub fn with_keep(mut self, keep: usize) -> Self {
        self.keep = keep.max(1);
        self
    }

    /// SHA-256 (hex) of the file at `path`: remembered when its entry
    /// matches, else hashed (and remembered when the file has settled).
    /// The cache's own failures only cost the hash again.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn sha256(&self, path: &Path) -> std::io::Result<String> {
        let before = Stamp::of(path)?;
        let key = before.key();
        let entry = self.dir.join(entry_name(&key));
        if let Some(sha) = read_entry(&entry, &key) {
            return Ok(sha);
        }
        let sha = sha256_file(path)?;
        if before.settled(self.settle) && Stamp::of(path)? == before {
            // Not remembering is always safe; the run goes on either way.
            let _ = self.store(&entry, &key, &sha);
        }
        Ok(sha)
    }

    fn store(&self, entry: &Path, key: &str, sha: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = entry.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, format!("{TAG}\n{key}\n{sha}\n"))?;
        std::fs::rename(&tmp, entry)?;
        self.prune();
        Ok(())
    }

    /// Removes the entries beyond the number kept ([`DigestCache::KEEP`] by
    /// default), oldest first.
    fn prune(&self) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(SystemTime, PathBuf)> = dir
            .filter_map(|e| {
                let e = e.ok()?;
                let path = e.path();
                (path.extension()? == "digest")
                    .then_some((e.metadata().ok()?.modified().ok()?, path))
            })
            .collect();
        if entries.len() <= self.keep {
            return;
        }
        entries.sort();
        for (_, path) in &entries[..entries.len() - self.keep] {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The file an entry for `key` lives in.
fn entry_name(key: &str) -> String {
    format!("{}.digest", &sha256_hex(key.as_bytes())[..32])
}

/// The digest in `entry` when the entry is whole and made for `key`.
fn read_entry(entry: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(entry).ok()?;
    let mut lines = text.lines();
    let (tag, stored_key, sha) = (lines.next()?, lines.next()?, lines.next()?);
    let is_digest = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
    (tag == TAG && stored_key == key && is_digest && lines.next().is_none())
        .then(|| sha.to_ascii_lowercase())
}

/// What `stat` says of a file, as far as its contents go.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    device: u64,
    inode: u64,
    size: u64,
    modified_ns: i128,
    changed_ns: i128,
}

impl Stamp {
    #[cfg(unix)]
    fn of(path: &Path) -> std::io::Result<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        Ok(Stamp {
            device: m.dev(),
            inode: m.ino(),
            size: m.size(),
            modified_ns: ns(m.mtime(), m.mtime_nsec()),
            changed_ns: ns(m.ctime(), m.ctime_nsec()),
        })
    }

    /// Without a ctime there is nothing that proves a file unchanged: a
    /// stamp that never settles, so nothing is remembered.
    #[cfg(not(unix))]
    fn of(path: &Path) -> std::io::Result<Stamp> {
        let m = std::fs::metadata(path)?;
        Ok(Stamp {
            device: 0,
            inode: 0,
            size: m.len(),
            modified_ns: 0,
            changed_ns: i128::MAX,
        })
    }

    fn key(&self) -> String {
        format!(
            "dev={} ino={} size={} mtime_ns={} ctime_ns={}",
            self.device, self.inode, self.size, self.modified_ns, self.changed_ns
        )
    }

    /// Whether the file's last change is at least `settle` in the past.
    fn settled(&self, settle: Duration) -> bool {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        now - self.changed_ns >= settle.as_nanos() as i128
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(dir: &Path) -> DigestCache {
        DigestCache::new(dir.join("digests")).with_settle(Duration::ZERO)
    }

    /// A directory holding one small data file, `bars.csv`.
    fn bars() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("bars.csv");
        std::fs::write(&data, "time,open\n1,2\n").unwrap();
        (dir, data)
    }

    fn entries(cache: &Path) -> usize {
        std::fs::read_dir(cache.join("digests")).map_or(0, |d| d.count())
    }

    #[test]
    fn a_settled_file_is_hashed_once_and_then_read_from_its_entry() {
        let (dir, data) = bars();
        let cache = cache(dir.path());
        let first = cache.sha256(&data).unwrap();
        assert_eq!(first, sha256_file(&data).unwrap());
        assert_eq!(entries(dir.path()), 1);
        // The entry is what answers the second time: doctor it and see.
        let entry = cache.dir.join(entry_name(&Stamp::of(&data).unwrap().key()));
        let doctored = std::fs::read_to_string(&entry)
            .unwrap()
            .replace(&first, &"ab".repeat(32));
        std::fs::write(&entry, doctored).unwrap();
        assert_eq!(cache.sha256(&data).unwrap(), "ab".repeat(32));
    }

    #[test]
    fn a_rewritten_file_is_hashed_again() {
        let (dir, data) = bars();
        let cache = cache(dir.path());
        let first = cache.sha256(&data).unwrap();
        // Same size, same name: only the contents (and so ctime) differ.
        // The sleep outlasts the file-time tick, as any real rewrite does.
        std::thread::sleep(Duration::from_millis(30));
        std::fs::write(&data, "time,open\n1,3\n").unwrap();
        let second = cache.sha256(&data).unwrap();
        assert_ne!(first, second);
        assert_eq!(second, sha256_file(&data).unwrap());
    }

    #[test]
    fn a_file_changed_within_the_settle_window_is_not_remembered() {
        let (dir, data) = bars();
        let cache = cache(dir.path()).with_settle(Duration::from_secs(3600));
        assert_eq!(cache.sha256(&data).unwrap(), sha256_file(&data).unwrap());
        assert_eq!(entries(dir.path()), 0);
    }

    #[test]
    fn a_damaged_or_foreign_entry_is_ignored() {
        let (dir, data) = bars();
        let cache = cache(dir.path());
        let truth = sha256_file(&data).unwrap();
        let stamp = Stamp::of(&data).unwrap();
        let entry = cache.dir.join(entry_name(&stamp.key()));
        std::fs::create_dir_all(&cache.dir).unwrap();
        for text in [
            String::from("garbage"),
            format!("{TAG}\n{}\n{}\n", "dev=0 ino=0", "ab".repeat(32)),
            format!("{TAG}\n{}\n{}\n", stamp.key(), "not hex"),
        ] {
            std::fs::write(&entry, text).unwrap();
            assert_eq!(cache.sha256(&data).unwrap(), truth);
        }
    }

    #[test]
    fn only_the_newest_entries_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = cache(dir.path()).with_keep(2);
        for i in 0..4 {
            let data = dir.path().join(format!("bars-{i}.csv"));
            std::fs::write(&data, format!("time,open\n1,{i}\n")).unwrap();
            cache.sha256(&data).unwrap();
        }
        assert_eq!(entries(dir.path()), 2);
    }
}

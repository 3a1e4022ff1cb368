//! [`ModuleWatcher`]: notices that a plugin file was replaced.
//!
//! Polling, not OS notifications: a worker asks at its batch boundaries
//! (where a swap is allowed anyway), and the usual answer costs one `stat`.
//! Only a change of content counts; touching the file does not reload it.
//! Replace plugin files atomically (write elsewhere, then rename): a watcher
//! may read a file that is half written, which then fails to load and is
//! refused, and the next complete write is picked up.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::error::LoadError;

/// Watches one plugin file for new content.
#[derive(Debug, Clone)]
pub struct ModuleWatcher {
    path: PathBuf,
    /// Modification time and length last seen.
    seen: Option<(SystemTime, u64)>,
    /// Hash of the content last handed out (or current at creation).
    hash: [u8; 32],
}

impl ModuleWatcher {
    /// Watches `path`, taking its current content as already loaded.
    ///
    /// # Errors
    /// [`LoadError::Io`] if the file cannot be read.
    pub fn new(path: &Path) -> Result<Self, LoadError> {
        let mut w = ModuleWatcher {
            path: path.to_path_buf(),
            seen: None,
            hash: [0; 32],
        };
        let bytes = w.read()?;
        w.hash = Sha256::digest(&bytes).into();
        w.seen = w.stat();
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> LoadError {
        LoadError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn read(&self) -> Result<Vec<u8>, LoadError> {
        std::fs::read(&self.path).map_err(|e| self.io(e))
    }

    fn stat(&self) -> Option<(SystemTime, u64)> {
        let m = std::fs::metadata(&self.path).ok()?;
        Some((m.modified().ok()?, m.len()))
    }

    /// The file's new content, if it changed since the last call.
    ///
    /// # Errors
    /// [`LoadError::Io`] if the file changed but cannot be read (e.g. it was
    /// removed); the next poll tries again.
    pub fn poll(&mut self) -> Result<Option<Vec<u8>>, LoadError> {
        let now = self.stat();
        if now.is_some() && now == self.seen {
            return Ok(None);
        }
        let bytes = self.read()?;
        self.seen = now;
        let hash: [u8; 32] = Sha256::digest(&bytes).into();
        if hash == self.hash {
            return Ok(None);
        }
        self.hash = hash;
        Ok(Some(bytes))
    }
}

//! [`Secret`]: a webhook signing key that never prints itself.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::NotifyError;

/// Shortest signing secret accepted: a guessable key signs nothing.
pub const MIN_SECRET_BYTES: usize = 16;

/// A signing secret. `Debug` and `Display` print `***`, so that a config,
/// an error or a log line that holds one cannot leak it; only
/// [`Secret::expose`] gives the bytes, to the HMAC.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    /// A secret from bytes already in hand (tests, tools).
    ///
    /// # Errors
    /// [`NotifyError::Secret`] when shorter than [`MIN_SECRET_BYTES`].
    pub fn new(bytes: impl Into<Vec<u8>>, origin: &str) -> Result<Secret, NotifyError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(NotifyError::Secret {
                origin: origin.to_owned(),
                reason: format!("shorter than {MIN_SECRET_BYTES} bytes"),
            });
        }
        Ok(Secret(bytes.into()))
    }

    /// The secret in environment variable `var`.
    ///
    /// # Errors
    /// [`NotifyError::Secret`] naming the variable (never its value) when it
    /// is unset, not UTF-8, or too short.
    pub fn from_env(var: &str) -> Result<Secret, NotifyError> {
        let origin = format!("environment variable {var}");
        match std::env::var(var) {
            Ok(v) => Secret::new(v.into_bytes(), &origin),
            Err(_) => Err(NotifyError::Secret {
                origin,
                reason: "not set (or not UTF-8)".to_owned(),
            }),
        }
    }

    /// The secret in file `path`, one trailing newline removed (what
    /// `echo KEY > FILE` writes).
    ///
    /// # Errors
    /// [`NotifyError::Secret`] naming the file (never its content) when it
    /// cannot be read or is too short.
    pub fn from_file(path: &Path) -> Result<Secret, NotifyError> {
        let origin = format!("file {}", path.display());
        let mut bytes = std::fs::read(path).map_err(|e| NotifyError::Secret {
            origin: origin.clone(),
            reason: e.kind().to_string(),
        })?;
        warn_if_shared(path);
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        Secret::new(bytes, &origin)
    }

    /// The key bytes, for signing.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

/// A secret file others may read is worth a warning, not a refusal (the
/// operator may have reasons, e.g. a group for the service).
fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    file = %path.display(),
                    "the secret file is readable by other users; chmod 600 it"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "correct-horse-battery-staple";

    #[test]
    fn never_prints_itself() {
        let s = Secret::new(KEY, "test").unwrap();
        assert_eq!(format!("{s}"), "***");
        assert!(!format!("{s:?}").contains(KEY));
        assert!(!format!("{:?}", Some(s.clone())).contains(KEY));
        assert_eq!(s.expose(), KEY.as_bytes());
    }

    #[test]
    fn short_or_missing_secrets_are_refused_without_showing_them() {
        let e = Secret::new("hunter2", "test").unwrap_err().to_string();
        assert!(
            e.contains("shorter than 16") && !e.contains("hunter2"),
            "{e}"
        );
        let e = Secret::from_env("CANDLEWICK_TEST_SURELY_UNSET_VAR").unwrap_err();
        assert!(e.to_string().contains("CANDLEWICK_TEST_SURELY_UNSET_VAR"));
    }

    #[test]
    fn a_file_loses_its_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, format!("{KEY}\n")).unwrap();
        assert_eq!(Secret::from_file(&path).unwrap().expose(), KEY.as_bytes());
        let e = Secret::from_file(&dir.path().join("none")).unwrap_err();
        assert!(e.to_string().contains("none"), "{e}");
    }
}

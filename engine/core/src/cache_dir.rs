//! Where the engine keeps what it can recompute but would rather not:
//! compiled plugins, file digests.

use std::path::PathBuf;

/// `$OVERRIDE` when it is set (an empty value turns the cache off: `None`),
/// else `$XDG_CACHE_HOME/candlewick/LEAF`, else
/// `$HOME/.cache/candlewick/LEAF`; `None` when none of them is set.
pub fn user_cache_dir(override_var: &str, leaf: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(override_var) {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    let base = env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("candlewick").join(leaf))
}

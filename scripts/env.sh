# Sourced by the scripts: one target directory that survives between runs
# (CI reuses it on the same machine; a cold build of RocksDB's C++ takes
# about 20 minutes on 2 cores). Override by exporting CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/candlewick/target}"

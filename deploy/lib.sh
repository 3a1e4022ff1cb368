# Shared by deploy/cluster and deploy/bench (sourced, not run): finding
# the binaries and the example plugins, starting a background process with
# its pid file and log, waiting for it with a bound, stopping it, writing
# the roles' configs, and a tiny NATS client in bash for JetStream API
# requests (lease owners, stream sizes) so that no `nats` CLI is needed.
#
# Everything listens on 127.0.0.1. Needs bash 4.3+, curl, and the usual
# coreutils; nothing here builds anything.
# shellcheck shell=bash

export LC_ALL=C

CW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CW_PROG="${CW_PROG:-$(basename "$0")}"

say() { printf '%s: %s\n' "$CW_PROG" "$*" >&2; }
die() {
    say "$*"
    exit 1
}

need_tools() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || die "needs '$t' on the PATH"
    done
}

# The path of a workspace binary: on the PATH (scripts/install links
# `candlewick` into ~/.cargo/bin), else in the release target directory
# scripts/run builds into.
find_bin() {
    local name=$1 path
    if path="$(command -v "$name" 2>/dev/null)" && [ -n "$path" ]; then
        printf '%s\n' "$path"
        return 0
    fi
    path="${CARGO_TARGET_DIR:-$HOME/.cache/candlewick/target}/release/$name"
    if [ -x "$path" ]; then
        printf '%s\n' "$path"
        return 0
    fi
    die "$name not found on the PATH nor at $path: run scripts/run once to build"
}

# The pinned nats-server (scripts/install-nats installs it idempotently
# and prints its path), or CANDLEWICK_NATS_SERVER.
find_nats() {
    if [ -n "${CANDLEWICK_NATS_SERVER:-}" ]; then
        [ -x "$CANDLEWICK_NATS_SERVER" ] || die "CANDLEWICK_NATS_SERVER=$CANDLEWICK_NATS_SERVER is not executable"
        printf '%s\n' "$CANDLEWICK_NATS_SERVER"
        return 0
    fi
    local path
    path="$("$CW_ROOT/scripts/install-nats")" || die "scripts/install-nats failed (see above)"
    [ -x "$path" ] || die "scripts/install-nats printed '$path', which is not executable"
    printf '%s\n' "$path"
}

# A strategy plugin built by scripts/build-plugins: $CANDLEWICK_PLUGIN_DIR,
# else $WASM_TARGET_DIR (default target/wasm of this checkout)
# /wasm32-unknown-unknown/release, as the engine itself looks up a bare
# plugin file name.
find_plugin() {
    local name=$1 dir
    for dir in "${CANDLEWICK_PLUGIN_DIR:-}" \
        "${WASM_TARGET_DIR:-$CW_ROOT/target/wasm}/wasm32-unknown-unknown/release"; do
        if [ -n "$dir" ] && [ -f "$dir/$name" ]; then
            printf '%s\n' "$dir/$name"
            return 0
        fi
    done
    return 1
}

# A fresh random secret (hex), for the feed's token.
new_token() {
    od -An -N24 -tx1 /dev/urandom | tr -d ' \n'
}

port_open() {
    (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Who listens on a port, for an error message (best effort).
port_owner() {
    if command -v ss >/dev/null 2>&1; then
        ss -Hltnp "sport = :$1" 2>/dev/null | sed 's/^/    /' | head -n 3 || true
    fi
}

# --- processes: RUN/NAME.pid holds "PID\nMATCH"; the process is ours while
# /proc/PID/cmdline contains MATCH (so a recycled pid is never signalled).

pid_of() {
    local pidfile="$RUN_DIR/$1.pid" pid match cmd
    [ -f "$pidfile" ] || return 1
    { read -r pid && read -r match; } <"$pidfile" || return 1
    if [ -z "$pid" ] || ! [ -r "/proc/$pid/cmdline" ]; then return 1; fi
    cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
    case "$cmd" in
        *"$match"*) printf '%s\n' "$pid" ;;
        *) return 1 ;;
    esac
}

alive() { pid_of "$1" >/dev/null; }

log_of() { printf '%s/%s.log\n' "$LOG_DIR" "$1"; }

# start_bg NAME MATCH CMD...: runs CMD in the background, in a session of
# its own (a closed terminal or a Ctrl-C in it does not reach it), stdin
# from /dev/null, stdout and stderr to LOG/NAME.log; writes RUN/NAME.pid.
# With CW_TOKEN_FILE=FILE in its environment, CMD gets the file's first
# line as CANDLEWICK_FEED_TOKEN (never on a command line, where `ps`
# shows it).
start_bg() {
    local name=$1 match=$2
    shift 2
    local log pidfile tmp i pid=""
    log="$(log_of "$name")"
    pidfile="$RUN_DIR/$name.pid"
    tmp="$pidfile.starting"
    rm -f "$tmp"
    : >"$log"
    local launcher=()
    if command -v setsid >/dev/null 2>&1; then launcher=(setsid); fi
    # shellcheck disable=SC2016 # $$, $@ and the variables are the inner shell's.
    "${launcher[@]}" bash -c '
        if [ -n "${CW_TOKEN_FILE:-}" ]; then
            read -r CANDLEWICK_FEED_TOKEN <"$CW_TOKEN_FILE"
            export CANDLEWICK_FEED_TOKEN
        fi
        unset CW_TOKEN_FILE
        echo "$$" >"$0"
        exec "$@"' "$tmp" "$@" </dev/null >>"$log" 2>&1 &
    for ((i = 0; i < 100; i++)); do
        if [ -s "$tmp" ]; then
            read -r pid <"$tmp"
            # Started (its command line is the program's), or already gone:
            # the caller's wait_ready says which.
            if ! [ -r "/proc/$pid/cmdline" ] || tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$match"; then
                break
            fi
        fi
        sleep 0.05
    done
    rm -f "$tmp"
    if [ -z "$pid" ]; then
        say "$name did not start; last lines of $log:"
        tail -n 20 "$log" | sed 's/^/    /' >&2
        return 1
    fi
    printf '%s\n%s\n' "$pid" "$match" >"$pidfile"
}

# wait_ready NAME SECONDS WHAT CHECK...: polls CHECK (a command) every
# 0.2 s until it succeeds; fails (naming the part, showing its log's tail)
# when NAME's process exits first (status 2) or SECONDS pass (status 1).
# WAIT_QUIET=1: fail without a word (the caller decides what to say).
wait_ready() {
    local name=$1 seconds=$2 what=$3
    shift 3
    local deadline=$((SECONDS + seconds)) log
    log="$(log_of "$name")"
    while ! "$@"; do
        if ! alive "$name"; then
            if [ "${WAIT_QUIET:-0}" != 1 ]; then
                say "$name exited before $what; last lines of $log:"
                tail -n 30 "$log" | sed 's/^/    /' >&2
            fi
            return 2
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            if [ "${WAIT_QUIET:-0}" != 1 ]; then
                say "$name: no $what within ${seconds}s; last lines of $log:"
                tail -n 30 "$log" | sed 's/^/    /' >&2
            fi
            return 1
        fi
        sleep 0.2
    done
}

log_has() { grep -qF -- "$2" "$(log_of "$1")" 2>/dev/null; }

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

# stop_group SECONDS NAME...: SIGTERM to each (all at once), then SIGKILL
# to what is left after SECONDS; removes the pid files.
stop_group() {
    local bound=$1
    shift
    local name pid left deadline
    for name in "$@"; do
        if pid="$(pid_of "$name")"; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    deadline=$((SECONDS + bound))
    while :; do
        left=()
        for name in "$@"; do
            if alive "$name"; then left+=("$name"); fi
        done
        [ "${#left[@]}" -eq 0 ] && break
        if [ "$SECONDS" -ge "$deadline" ]; then
            for name in "${left[@]}"; do
                if pid="$(pid_of "$name")"; then
                    say "$name (pid $pid) still running ${bound}s after SIGTERM: SIGKILL"
                    kill -KILL "$pid" 2>/dev/null || true
                fi
            done
            sleep 0.2
            break
        fi
        sleep 0.2
    done
    for name in "$@"; do rm -f "$RUN_DIR/$name.pid"; done
}

# --- configs

# "nats://127.0.0.1:A", "nats://127.0.0.1:B", ... for a TOML array.
nats_urls_toml() {
    local out="" p
    for p in "$@"; do out+="${out:+, }\"nats://127.0.0.1:$p\""; done
    printf '%s' "$out"
}

# symbols_toml N: the simulator's first N symbols, S0000USDT.., quoted.
symbols_toml() {
    local out="" i
    for ((i = 0; i < $1; i++)); do out+="${out:+, }\"$(printf 'S%04dUSDT' "$i")\""; done
    printf '%s' "$out"
}

# nats_conf NAME CLIENT_PORT ROUTE_PORT HTTP_PORT STORE_DIR [ROUTE_PORTS...]:
# one server of cluster "candlewick" with JetStream (no routes: a single
# server).
nats_conf() {
    local name=$1 client=$2 route=$3 http=$4 store=$5
    shift 5
    cat <<EOF
# Generated by deploy/ (server $name). Loopback only: see deploy/README.md
# for the settings across machines.
server_name: $name
listen: 127.0.0.1:$client
http: 127.0.0.1:$http
jetstream {
  store_dir: "$store"
  max_memory_store: 256MB
  max_file_store: 2GB
}
EOF
    if [ $# -gt 0 ]; then
        printf 'cluster {\n  name: candlewick\n  listen: 127.0.0.1:%s\n  routes: [\n' "$route"
        local p
        for p in "$@"; do printf '    nats-route://127.0.0.1:%s\n' "$p"; done
        printf '  ]\n}\n'
    fi
}

# The simulator's first candle: ingest and single engines backfill from it.
SIM_START_MS=1699999980000

# ingest_conf SIM_PORT SYMBOLS_TOML REPLICAS NATS_URLS_TOML
ingest_conf() {
    cat <<EOF
# Generated by deploy/: the ingest role on the exchange simulator.
[binance]
ws_url = "ws://127.0.0.1:$1"
rest_url = "http://127.0.0.1:$1"
allowed_hosts = []
allow_loopback = true
symbols = [$2]
intervals = ["1m"]
idle_timeout_s = 10.0
start_from_ms = $SIM_START_MS

[nats]
servers = [$4]
partition_count = 16
replicas = $3
duplicate_window_s = 600.0
EOF
}

# engine_common WORKERS SPIN_US INDICATORS PLUGIN_PATHS... : [engine],
# [indicators] and [[strategies]], the part every engine config shares.
# Each strategy gets deadline_ms = 50 (the default is 1 ms): on a small
# machine running a dozen processes a call now and then misses 1 ms, and
# the plugin would be quarantined for it.
engine_common() {
    local workers=$1 spin=$2 spec=$3
    shift 3
    cat <<EOF
[engine]
workers = $workers
queue_capacity = 4096
max_batch = 1024
tail_bars = 256
checkpoint_interval_ms = 1000
spin_us = $spin

[indicators]
spec = "$spec"
EOF
    local p
    for p in "$@"; do printf '\n[[strategies]]\nwasm = "%s"\ndeadline_ms = 50.0\n' "$p"; done
}

# engine_tail STATE_PATH FEED_PORT: [state] and [feed] (token from the
# environment variable CANDLEWICK_FEED_TOKEN).
engine_tail() {
    cat <<EOF

[state]
path = "$1"
sync = false

[feed]
listen = "127.0.0.1:$2"
tokens = ["env:CANDLEWICK_FEED_TOKEN"]
client_queue = 4096
candles = true
send_timeout_s = 30.0
EOF
}

# --- a NATS request in bash (no `nats` CLI needed)

# nats_request PORT SUBJECT PAYLOAD: prints the reply's body (one line),
# or fails after 3 s. For JetStream API subjects ($JS.API...), whose
# replies are one line of JSON.
nats_request() {
    local port=$1 subject=$2 payload=$3 fd line body inbox
    inbox="_INBOX.deploy.$$.$RANDOM"
    { exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
    if ! read -r -t 3 -u "$fd" line || [[ "$line" != INFO* ]]; then
        exec {fd}>&-
        return 1
    fi
    printf 'CONNECT {"verbose":false,"pedantic":false,"name":"candlewick-deploy","lang":"bash","version":"1"}\r\nSUB %s 1\r\nPUB %s %s %d\r\n%s\r\n' \
        "$inbox" "$subject" "$inbox" "${#payload}" "$payload" >&"$fd"
    local rc=1
    while read -r -t 3 -u "$fd" line; do
        line="${line%$'\r'}"
        case "$line" in
            PING) printf 'PONG\r\n' >&"$fd" ;;
            MSG\ *)
                if read -r -t 3 -u "$fd" body; then
                    printf '%s\n' "${body%$'\r'}"
                    rc=0
                fi
                break
                ;;
            -ERR*) break ;;
        esac
    done
    exec {fd}>&-
    return "$rc"
}

# kv_get PORT BUCKET KEY: the key's value, or nothing (no key, deleted,
# expired, or no answer).
kv_get() {
    local reply data hdrs
    reply="$(nats_request "$1" "\$JS.API.STREAM.MSG.GET.KV_$2" "{\"last_by_subj\":\"\$KV.$2.$3\"}")" || return 0
    data="$(sed -n 's/.*"data":"\([^"]*\)".*/\1/p' <<<"$reply")"
    hdrs="$(sed -n 's/.*"hdrs":"\([^"]*\)".*/\1/p' <<<"$reply")"
    if [ -n "$hdrs" ] && base64 -d <<<"$hdrs" 2>/dev/null | grep -q 'KV-Operation'; then
        return 0 # a delete or purge marker: released
    fi
    [ -n "$data" ] && base64 -d <<<"$data" 2>/dev/null
    return 0
}

# stream_info PORT STREAM: "MESSAGES LEADER" (leader "-" on one server),
# or nothing.
stream_info() {
    local reply msgs leader
    reply="$(nats_request "$1" "\$JS.API.STREAM.INFO.$2" "")" || return 0
    msgs="$(grep -o '"state":{"messages":[0-9]*' <<<"$reply" | grep -o '[0-9]*$' || true)"
    leader="$(grep -o '"leader":"[^"]*"' <<<"$reply" | head -n 1 | cut -d'"' -f4 || true)"
    [ -n "$msgs" ] && printf '%s %s\n' "$msgs" "${leader:--}"
    return 0
}

# --- an engine's /metrics

# metric PORT NAME: the value of the first sample named exactly NAME
# (labels included, e.g. 'x{quantile="0.5"}'), or nothing.
metric() {
    local page
    page="$(curl -fsS --max-time 2 "http://127.0.0.1:$1/metrics" 2>/dev/null)" || return 0
    awk -v n="$2" '$1 == n { print $2; exit }' <<<"$page"
}

# metrics_page PORT: the whole page (empty on failure).
metrics_page() {
    curl -fsS --max-time 2 "http://127.0.0.1:$1/metrics" 2>/dev/null || true
}

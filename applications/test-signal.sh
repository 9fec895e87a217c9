#!/usr/bin/env bash
# SIGTERM to a benchmark started with --spawn (docs/derecho.md,
# "Benchmarks"): the parent passes the signal to its members, each leaves
# the group through derecho_group_destroy, and everything exits 128 + 15
# within a bound, leaving no process behind.
# Usage: test-signal.sh NODES PROGRAM ARGS... [:: PROGRAM ARGS...]...
#   (one run per PROGRAM; NODES members each)
set -u
nodes=$1
shift
tmp=$(mktemp -d)
sid=
cleanup() {
    [[ -n "$sid" ]] && pkill -KILL -s "$sid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail=0

# Number of processes in session $1.
in_session() { ps -e -o sid= | awk -v s="$1" '$1 == s' | wc -l; }

run_one() {
    local name
    name=$(basename "$1")
    setsid "$@" >"$tmp/out" 2>"$tmp/err" &
    local pid=$!
    sid=$pid
    # setsid execs the program itself (a background job is no group leader).
    if [[ "$(ps -o sid= -p "$pid" | tr -d ' ')" != "$pid" ]]; then
        echo "FAIL $name: not in its own session"
        fail=1
        return
    fi
    # Wait (bounded) until the members are running, then give the group
    # time to form and start sending: the signal lands during traffic.
    for _ in $(seq 100); do
        [[ $(in_session "$sid") -ge $((nodes + 1)) ]] && break
        sleep 0.1
    done
    sleep 2
    kill -TERM "$pid"
    local rc=0 t0=$SECONDS
    for _ in $(seq 600); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "FAIL $name: still running 60 s after SIGTERM"
        fail=1
        return
    fi
    wait "$pid"
    rc=$?
    for _ in $(seq 50); do
        [[ $(in_session "$sid") -eq 0 ]] && break
        sleep 0.1
    done
    local left
    left=$(in_session "$sid")
    if [[ $rc -ne 143 || $left -ne 0 || -s "$tmp/err" ]]; then
        echo "FAIL $name: exit $rc (want 143), $left process(es) left, stderr:"
        cat "$tmp/err"
        fail=1
    else
        echo "ok $name: left in $((SECONDS - t0)) s"
    fi
    sid=
}

args=()
for a in "$@" ::; do
    if [[ "$a" == "::" ]]; then
        [[ ${#args[@]} -gt 0 ]] && run_one "${args[@]}"
        args=()
    else
        args+=("$a")
    fi
done
exit $fail

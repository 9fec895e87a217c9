#!/usr/bin/env bash
# SIGTERM to a benchmark started with --spawn (docs/derecho.md,
# "Benchmarks"): the parent passes the signal to its members, each leaves
# the group through derecho_group_destroy, and everything exits 128 + 15
# within 20 s, leaving no process behind.
# Usage: test-signal.sh NODES [@OPTION...] PROGRAM ARGS...
#                              [:: [@OPTION...] PROGRAM ARGS...]...
#   (one run per PROGRAM; NODES members each, plus the parent).  Options
#   of a run:
#   @after=start   signal as soon as the processes exist (set-up)
#   @after=TEXT    signal as soon as the program's stdout holds TEXT
#                  (default: 2 s after the processes exist, mid-traffic)
#   @file=SIZE     make a sparse file of SIZE (truncate -s) and pass its
#                  path wherever an argument is @FILE@
set -u
# Seconds a run may take to exit after SIGTERM: a member leaves within the
# group's leave timeout (5 s) plus a view change; one still joining ends
# at once (derecho-bench.h).
bound=20
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
    local after="" name
    local -a argv=()
    for a in "$@"; do
        case "$a" in
        @after=*) after=${a#@after=} ;;
        @file=*) truncate -s "${a#@file=}" "$tmp/file" ;;
        @FILE@) argv+=("$tmp/file") ;;
        *) argv+=("$a") ;;
        esac
    done
    set -- "${argv[@]}"
    name="$(basename "$1")${after:+ (signal after: $after)}"
    setsid "$@" >"$tmp/out" 2>"$tmp/err" &
    local pid=$!
    sid=$pid
    # setsid execs the program itself (a background job is no group
    # leader), once it has made the session: wait (bounded) for that.
    for _ in $(seq 100); do
        [[ "$(ps -o sid= -p "$pid" | tr -d ' ')" == "$pid" ]] && break
        sleep 0.05
    done
    if [[ "$(ps -o sid= -p "$pid" | tr -d ' ')" != "$pid" ]]; then
        echo "FAIL $name: not in its own session"
        fail=1
        kill -KILL "$pid"
        sid=
        return
    fi
    # Wait (bounded) until the members are running, then give the group
    # time to form and start sending: the signal lands during traffic.
    for _ in $(seq 100); do
        [[ $(in_session "$sid") -ge $((nodes + 1)) ]] && break
        sleep 0.1
    done
    if [[ -z "$after" ]]; then
        sleep 2
    elif [[ "$after" != start ]]; then
        for _ in $(seq 3000); do
            grep -qF -- "$after" "$tmp/out" && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.02
        done
        if ! grep -qF -- "$after" "$tmp/out"; then
            echo "FAIL $name: \"$after\" never came on stdout"
            fail=1
            pkill -KILL -s "$sid"
            sid=
            return
        fi
    fi
    kill -TERM "$pid"
    local rc=0 t0=$SECONDS
    while kill -0 "$pid" 2>/dev/null && ((SECONDS - t0 < bound)); do
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "FAIL $name: still running $bound s after SIGTERM"
        fail=1
        pkill -KILL -s "$sid"
        sid=
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
    rm -f "$tmp/file"
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

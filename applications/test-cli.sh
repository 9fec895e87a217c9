#!/usr/bin/env bash
# The command-line habit of every program under applications/ (docs/api.md):
#   PROG --help          usage on stdout, nothing on stderr, exit 0
#   PROG --no-such-opt   usage on stderr, nothing on stdout, exit 64
# Usage: test-cli.sh PROGRAM...
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for prog in "$@"; do
    name=$(basename "$prog")
    "$prog" --help >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [[ $rc -ne 0 ]] || ! grep -qi '^usage:' "$tmp/out" || [[ -s "$tmp/err" ]]; then
        echo "FAIL $name --help: exit $rc (want 0), stdout:"; cat "$tmp/out"
        echo "stderr:"; cat "$tmp/err"
        fail=1
    fi
    "$prog" --no-such-option >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [[ $rc -ne 64 ]] || ! grep -qi 'usage:' "$tmp/err" || [[ -s "$tmp/out" ]]; then
        echo "FAIL $name --no-such-option: exit $rc (want 64), stdout:"; cat "$tmp/out"
        echo "stderr:"; cat "$tmp/err"
        fail=1
    fi
    [[ $fail -eq 0 ]] && echo "ok $name"
done
exit $fail

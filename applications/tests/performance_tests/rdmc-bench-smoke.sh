#!/usr/bin/env bash
# Smoke run of rdmc_bandwidth (not a timing test: the figures are not
# judged).  Each mode must finish with exit 0 and print its RESULT line:
# per-message registration (registered=0) and registered buffers, -r
# (registered=1).  A merge once made -r print the usage and exit 64, and
# nothing noticed.
# Usage: rdmc-bench-smoke.sh RDMC_BANDWIDTH
set -u
prog=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for reg in 0 1; do
    args=(-n 3 -a binomial_send -s 65536 -c 40)
    [[ $reg -eq 1 ]] && args+=(-r)
    "$prog" "${args[@]}" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [[ $rc -ne 0 ]] ||
        ! grep -Eq "^RESULT bench=rdmc_bandwidth nodes=3 algorithm=binomial_send size=65536 gbytes_per_s=[0-9.]+ .* registered=$reg\$" "$tmp/out"; then
        echo "FAIL rdmc_bandwidth ${args[*]}: exit $rc, stdout:"
        cat "$tmp/out"
        echo "stderr:"
        cat "$tmp/err"
        fail=1
    else
        echo "ok rdmc_bandwidth ${args[*]}"
    fi
done
exit $fail

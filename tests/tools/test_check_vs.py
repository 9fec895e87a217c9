#!/usr/bin/env python3
"""Tests of check_vs: good logs pass; one bad log per property is caught,
and by that property alone.  Usage: test_check_vs.py PATH-TO-check_vs"""

import hashlib
import os
import subprocess
import sys
import tempfile


def h(*parts):
    """A stand-in payload hash (the checker only compares them)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def deliveries(view_id, count, senders):
    """count messages of subgroup 0 shard 0 in view_id, round robin."""
    lines = []
    for seq in range(count):
        sender = senders[seq % len(senders)]
        lines.append("deliver 0 0 %d %d %d %d %s" %
                     (view_id, sender, seq, 100 + seq, h(view_id, seq)))
    return lines


def good_logs():
    """Node 1 and 2 start (view 0), 3 joins (view 1), 2 is killed partway
    through view 1 (view 2 holds 1 and 3, who finish)."""
    v0 = deliveries(0, 5, [1, 2])
    v1 = deliveries(1, 6, [1, 2, 3])
    v2 = deliveries(2, 4, [1, 3])
    return {
        "n1.log": ["view 0 1,2"] + v0 + ["view 1 1,2,3"] + v1 +
                  ["view 2 1,3"] + v2,
        "n2.log": ["view 0 1,2"] + v0 + ["view 1 1,2,3"] + v1[:3],
        "n3.log": ["view 1 1,2,3"] + v1 + ["view 2 1,3"] + v2[:3],
    }


def mutate(logs, name, fn):
    out = {k: list(v) for k, v in logs.items()}
    out[name] = fn(out[name])
    return out


def move_line(lines, src, dst):
    line = lines.pop(src)
    lines.insert(dst, line)
    return lines


def cases():
    g = good_logs()
    n1 = g["n1.log"]
    view1_at = n1.index("view 1 1,2,3")
    yield "view-sequence", mutate(
        g, "n3.log", lambda l: [x.replace("view 1 1,2,3", "view 1 1,2,3,4")
                                for x in l])
    yield "view-sequence", mutate(
        g, "n1.log", lambda l: [x.replace("view 2 1,3", "view 3 1,3")
                                if x.startswith("view 2") else
                                x.replace("deliver 0 0 2 ", "deliver 0 0 3 ")
                                for x in l])
    # the last delivery of view 0 written after view 1 was installed
    yield "installed", mutate(g, "n1.log",
                              lambda l: move_line(l, view1_at - 1, view1_at))
    yield "duplicate", mutate(g, "n2.log", lambda l: l[:4] + [l[3]] + l[4:])
    yield "total-order", mutate(g, "n3.log", lambda l: move_line(l, 2, 4))
    yield "same-message", mutate(
        g, "n3.log", lambda l: [x.replace(h(1, 4), h(1, 99)) for x in l])
    # 1 and 3 moved from view 1 to view 2 together; 3 misses one message
    yield "same-set", mutate(g, "n3.log", lambda l: l[:3] + l[4:])


def unordered_logs():
    """vs_stress --unordered: 1, 2 and 3 send in view 0 and deliver on
    receipt (1 and 2 in different orders across senders); 3 is killed, and
    1's message 1, which only 1 itself delivered in view 0, is sent again
    first in view 1 (1, 2): 2 delivers it there, 1 skips it.  A sender's
    k-th message in a view has seq k * senders + its rank."""
    def d(view, sender, seq, index):
        return "deliver 0 0 %d %d %d %d %s" % (view, sender, seq, 50 + sender,
                                               h(sender, "payload", index))
    return {
        "n1.log": ["view 0 1,2,3", d(0, 1, 0, 0), d(0, 2, 1, 0),
                   d(0, 1, 3, 1), d(0, 3, 2, 0), d(0, 2, 4, 1),
                   "view 1 1,2", d(1, 2, 1, 2), d(1, 1, 2, 2),
                   d(1, 2, 3, 3)],
        "n2.log": ["view 0 1,2,3", d(0, 2, 1, 0), d(0, 3, 2, 0),
                   d(0, 1, 0, 0), d(0, 2, 4, 1),
                   "view 1 1,2", d(1, 2, 1, 2), d(1, 1, 0, 1),
                   d(1, 2, 3, 3), d(1, 1, 2, 2)],
        "n3.log": ["view 0 1,2,3", d(0, 3, 2, 0), d(0, 1, 0, 0)],
    }


def run(checker, logs, extra=()):
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for name, lines in logs.items():
            p = os.path.join(d, name)
            with open(p, "w") as f:
                f.write("".join(x + "\n" for x in lines))
            paths.append(p)
        r = subprocess.run([sys.executable, checker, "--quiet"] +
                           list(extra) + paths, capture_output=True,
                           text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr


def main():
    checker = sys.argv[1]
    failures = 0
    rc, out, err = run(checker, good_logs())
    if rc != 0:
        print("good logs: exit %d\n%s%s" % (rc, out, err))
        failures += 1
    for i, (prop, logs) in enumerate(cases()):
        rc, out, err = run(checker, logs)
        found = {line.split(": ")[1] for line in out.splitlines() if line}
        if rc != 1 or found != {prop}:
            print("case %d (%s): exit %d, properties %s\n%s%s" %
                  (i, prop, rc, sorted(found), out, err))
            failures += 1
    # --sharded: a process outside a shard delivers nothing there.
    g = good_logs()
    g["n4.log"] = ["view 0 1,2"] + [x.replace("deliver 0 0", "deliver 1 0")
                                    for x in g["n1.log"][1:6]] + \
        ["view 1 1,2,3"]
    rc, out, _ = run(checker, g)
    if rc != 1 or "same-set" not in out:
        print("unsharded: a member missing a shard's messages: exit %d" % rc)
        failures += 1
    rc, out, err = run(checker, g, ["--sharded"])
    if rc != 0:
        print("sharded: exit %d\n%s%s" % (rc, out, err))
        failures += 1
    # --unordered: delivery on receipt and a resent message delivered once
    # pass; the same logs break the ordered checks; a resent message
    # delivered a second time breaks "once" and nothing else.
    u = unordered_logs()
    rc, out, err = run(checker, u, ["--unordered"])
    if rc != 0:
        print("unordered: exit %d\n%s%s" % (rc, out, err))
        failures += 1
    rc, out, _ = run(checker, u)
    if rc != 1:
        print("unordered logs checked as ordered: exit %d" % rc)
        failures += 1
    twice = mutate(u, "n2.log", lambda l: l[:4] + [
        "deliver 0 0 0 1 3 51 %s" % h(1, "payload", 1)] + l[4:])
    rc, out, err = run(checker, twice, ["--unordered"])
    found = {line.split(": ")[1] for line in out.splitlines() if line}
    if rc != 1 or found != {"once"}:
        print("unordered, delivered twice: exit %d, properties %s\n%s%s" %
              (rc, sorted(found), out, err))
        failures += 1
    # Lines that are not in the format, and a missing file: exit 2.
    for bad_line in ("view x 1,2", "deliver 0 0 0 1 0 100", "hello",
                     "deliver 0 0 0 1 0 100 xyz", "view 0 1,1"):
        logs = {"n1.log": ["view 0 1,2", bad_line]}
        rc, out, err = run(checker, logs)
        if rc != 2 or "check_vs:" not in err:
            print("malformed %r: exit %d %s" % (bad_line, rc, err))
            failures += 1
    r = subprocess.run([sys.executable, checker, "/nonexistent/log"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 2:
        print("missing file: exit %d" % r.returncode)
        failures += 1
    print("check_vs tests: %s" % ("%d failed" % failures if failures
                                  else "all passed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

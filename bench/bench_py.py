#!/usr/bin/env python3
"""Workload (h) of issue 8: the same 1 KiB point reads from Python.

StreamDb's Database.get against py-lmdb's txn.get and the standard library's
sqlite3, per call, in one run.  A system whose module does not import is
reported as "skipped" (never faked).

    python3 bench/bench_py.py [--docs 10000] [--reads 200000] [--dir DIR]

Install what it uses into a virtual environment, e.g.
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install lmdb /path/to/streamdb
"""
import argparse
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time

DOC = 1024


def block_times(fn, keys, block):
    """Runs fn over keys in blocks; returns per-call ns of every block and the
    total calls per second."""
    per_call = []
    t_all = time.perf_counter_ns()
    for i in range(0, len(keys), block):
        chunk = keys[i:i + block]
        t0 = time.perf_counter_ns()
        fn(chunk)
        per_call.append((time.perf_counter_ns() - t0) / len(chunk))
    total = (time.perf_counter_ns() - t_all) / 1e9
    return per_call, len(keys) / total


def caller(get):
    """A loop of get over a block of keys (the bound method in a default
    argument: a fast local, as a user's loop would have it)."""
    def run(ks, get=get):
        for k in ks:
            get(k)
    return run


def pctl(v, p):
    s = sorted(v)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=10000)
    ap.add_argument("--reads", type=int, default=200000)
    ap.add_argument("--block", type=int, default=1000, help="calls per timed block")
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()

    base = args.dir or tempfile.mkdtemp(prefix="streamdb_bench_py.")
    os.makedirs(base, exist_ok=True)
    rnd = random.Random(42)
    paths = ["/game/level%03d/asset%06d" % (i // 1000, i) for i in range(args.docs)]
    data = [rnd.randbytes(DOC) for _ in range(args.docs)]
    order = [rnd.randrange(args.docs) for _ in range(args.reads)]
    keys_s = [paths[i] for i in order]
    keys_b = [k.encode() for k in keys_s]
    results = []   # (name, median ns, p99 ns, ops/s, note)

    print("streamdb_bench (h): Python %s, %d x %d B docs, %d random warm reads, blocks of %d"
          % (sys.version.split()[0], args.docs, DOC, args.reads, args.block))

    # ---- StreamDb ------------------------------------------------------
    try:
        import streamdb
    except Exception as e:  # not built or not installed
        print("  streamdb: skipped: %s" % e)
        streamdb = None
    if streamdb is not None:
        db = streamdb.open(os.path.join(base, "py.sdb"))
        with db.transaction():
            for p, d in zip(paths, data):
                db.write_document(p, d)
        get = db.get
        for i in rnd.sample(range(args.docs), min(100, args.docs)):
            assert get(paths[i]) == data[i], "streamdb returned wrong data"

        run_sdb = caller(get)
        run_sdb(keys_s)  # warm
        pc, ops = block_times(run_sdb, keys_s, args.block)
        results.append(("streamdb Database.get", statistics.median(pc), pctl(pc, 99), ops,
                        "streamdb %s, str paths, a consistent read per call" % streamdb.version()))
        with db.snapshot() as snap:
            sget = snap.get

            run_snap = caller(sget)
            run_snap(keys_s)
            pc, ops = block_times(run_snap, keys_s, args.block)
        results.append(("streamdb Snapshot.get", statistics.median(pc), pctl(pc, 99), ops,
                        "one snapshot for all calls, like one read txn"))
        db.close()

    # ---- py-lmdb ---------------------------------------------------------
    try:
        import lmdb
    except Exception as e:
        print("  lmdb: skipped: %s" % e)
        lmdb = None
    if lmdb is not None:
        env = lmdb.open(os.path.join(base, "py.lmdb"), map_size=1 << 32)
        with env.begin(write=True) as txn:
            for p, d in zip(paths, data):
                txn.put(p.encode(), d)
        with env.begin() as txn:
            for i in rnd.sample(range(args.docs), min(100, args.docs)):
                assert txn.get(paths[i].encode()) == data[i], "lmdb returned wrong data"
            get = txn.get

            run_lmdb = caller(get)
            run_lmdb(keys_b)
            pc, ops = block_times(run_lmdb, keys_b, args.block)
        ver = "py-lmdb %s (LMDB %s)" % (lmdb.__version__, ".".join(map(str, lmdb.version())))
        results.append(("py-lmdb txn.get", statistics.median(pc), pctl(pc, 99), ops,
                        ver + ", one read txn for all calls"))

        def run_lmdb_txn(ks, env=env):
            for k in ks:
                with env.begin() as t:
                    t.get(k)
        pc, ops = block_times(run_lmdb_txn, keys_b, args.block)
        results.append(("py-lmdb txn per get", statistics.median(pc), pctl(pc, 99), ops,
                        "a fresh read txn per call, like a standalone get"))
        env.close()

    # ---- sqlite3 -----------------------------------------------------------
    conn = sqlite3.connect(os.path.join(base, "py.sqlite"))
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE docs(k TEXT PRIMARY KEY NOT NULL, v BLOB NOT NULL)")
    with conn:
        conn.executemany("INSERT INTO docs VALUES(?, ?)", zip(paths, data))
    q = "SELECT v FROM docs WHERE k = ?"
    for i in rnd.sample(range(args.docs), min(100, args.docs)):
        assert conn.execute(q, (paths[i],)).fetchone()[0] == data[i]

    def run_sqlite(ks, ex=conn.execute):
        for k in ks:
            ex(q, (k,)).fetchone()
    run_sqlite(keys_s)
    pc, ops = block_times(run_sqlite, keys_s, args.block)
    results.append(("sqlite3 execute+fetchone", statistics.median(pc), pctl(pc, 99), ops,
                    "sqlite %s, WAL" % sqlite3.sqlite_version))
    conn.close()

    # ---- report --------------------------------------------------------------
    best = min(r[1] for r in results)
    print("\n%-28s %12s %12s %12s %8s  %s" % ("system", "median ns", "p99 ns", "ops/s", "vs best", "note"))
    for name, med, p99, ops, note in results:
        print("%-28s %12.0f %12.0f %12.0f %7.2fx  %s" % (name, med, p99, ops, med / best, note))
    print("(ns per call: the median and p99 over blocks of %d calls of each block's mean)" % args.block)
    by = {r[0]: r for r in results}
    lm = by.get("py-lmdb txn.get")
    pairs = [("Database.get", "streamdb Database.get", "py-lmdb txn.get"),
             ("Snapshot.get (same semantics: one read view)", "streamdb Snapshot.get",
              "py-lmdb txn.get"),
             ("Database.get against a txn per get (same semantics: a read each)",
              "streamdb Database.get", "py-lmdb txn per get")]
    if lm and "streamdb Database.get" in by:
        for label, ours, theirs in pairs:
            if ours in by and theirs in by:
                ratio = by[ours][1] / by[theirs][1]
                print("Target (h): Python %s within 1.25x of %s: %s (%.0f ns vs %.0f ns = %.2fx)"
                      % (label, theirs, "MET" if ratio <= 1.25 else "MISSED", by[ours][1],
                         by[theirs][1], ratio))
    else:
        print("\nTarget (h): n/a (streamdb or py-lmdb skipped)")
    if not args.dir:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

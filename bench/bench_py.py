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


def caller(get):
    """A loop of get over a block of keys (the bound method in a default
    argument: a fast local, as a user's loop would have it)."""
    def run(ks, get=get):
        for k in ks:
            get(k)
    return run


def interleaved(systems, nkeys, block):
    """Times the systems block by block, taking turns in a random order each
    round: whatever the machine does meanwhile (this VM's speed drifts by tens
    of percent within a minute) falls on all of them alike.  Returns, per system, the per-call ns of every block and the calls
    per second over all its blocks."""
    for s in systems:
        s["run"](s["keys"])   # warm: every page and object touched once
    per = {s["name"]: [] for s in systems}
    total = {s["name"]: 0 for s in systems}
    nb = (nkeys + block - 1) // block
    rnd = random.Random(7)
    for r in range(nb):
        # a fresh order each round: each system follows each other one as
        # often (a fixed rotation put Database.get after sqlite3, which had
        # just flushed the caches, in four rounds of five: 15% slower)
        for j in rnd.sample(range(len(systems)), len(systems)):
            s = systems[j]
            # in one round each system reads a different block of keys, so
            # that none finds the pages or key objects the previous one just
            # touched (Database.get and Snapshot.get share their pages);
            # over all rounds each reads every block once
            b = (r + j * nb // len(systems)) % nb
            chunk = s["keys"][b * block:(b + 1) * block]
            t0 = time.perf_counter_ns()
            s["run"](chunk)
            dt = time.perf_counter_ns() - t0
            per[s["name"]].append(dt / len(chunk))
            total[s["name"]] += dt
    return per, {name: nkeys / (t / 1e9) for name, t in total.items()}


def pctl(v, p):
    s = sorted(v)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=10000)
    ap.add_argument("--reads", type=int, default=200000)
    ap.add_argument("--block", type=int, default=1000, help="calls per timed block")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--path-cache", type=int, default=None,
                    help="StreamDb's path_cache_size (default: the library's, 0 = off)")
    args = ap.parse_args()

    base = args.dir or tempfile.mkdtemp(prefix="streamdb_bench_py.")
    os.makedirs(base, exist_ok=True)
    rnd = random.Random(42)
    paths = ["/game/level%03d/asset%06d" % (i // 1000, i) for i in range(args.docs)]
    data = [rnd.randbytes(DOC) for _ in range(args.docs)]
    order = [rnd.randrange(args.docs) for _ in range(args.reads)]
    # The keys every system reads with are laid out alike: one object per
    # path, taken in a random order, as a program looking up names from its
    # own table would.  (Encoding each of the 200,000 keys anew gave the bytes
    # keys a layout of their own, in memory in the order of the loop, which the
    # prefetcher streams, while the str keys were 10,000 objects hit at
    # random: a cache miss per call that only the str side paid.)
    paths_b = [p.encode() for p in paths]
    keys_s = [paths[i] for i in order]
    keys_b = [paths_b[i] for i in order]

    print("streamdb_bench (h): Python %s, %d x %d B docs, %d random warm reads, blocks of %d"
          % (sys.version.split()[0], args.docs, DOC, args.reads, args.block))

    systems = []      # dicts: name, run, keys, note
    closers = []

    # ---- StreamDb ------------------------------------------------------
    try:
        import streamdb
    except Exception as e:  # not built or not installed
        print("  streamdb: skipped: %s" % e)
        streamdb = None
    if streamdb is not None:
        opts = {} if args.path_cache is None else {"path_cache_size": args.path_cache}
        db = streamdb.open(os.path.join(base, "py.sdb"), **opts)
        with db.transaction():
            for p, d in zip(paths, data):
                db.write_document(p, d)
        get = db.get
        for i in rnd.sample(range(args.docs), min(100, args.docs)):
            assert get(paths[i]) == data[i], "streamdb returned wrong data"
        systems.append(dict(name="streamdb Database.get", run=caller(get), keys=keys_s,
                            note="streamdb %s, str paths, a consistent read per call"
                            % streamdb.version()))
        snap = db.snapshot()
        systems.append(dict(name="streamdb Snapshot.get", run=caller(snap.get), keys=keys_s,
                            note="one snapshot for all calls, like one read txn"))
        # the same documents in a database written, closed and opened again:
        # the close checkpointed the log, so every page comes from the map
        # (above, the pages written a moment ago are still in the log and go
        # through the page cache)
        db2 = streamdb.open(os.path.join(base, "py2.sdb"), **opts)
        with db2.transaction():
            for p, d in zip(paths, data):
                db2.write_document(p, d)
        db2.close()
        db2 = streamdb.open(os.path.join(base, "py2.sdb"), **opts)
        for i in rnd.sample(range(args.docs), min(100, args.docs)):
            assert db2.get(paths[i]) == data[i], "streamdb returned wrong data"
        systems.append(dict(name="streamdb get, reopened", run=caller(db2.get), keys=keys_s,
                            note="Database.get after close and open: pages from the map"))
        closers += [snap.close, db.close, db2.close]

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
        txn = env.begin()
        for i in rnd.sample(range(args.docs), min(100, args.docs)):
            assert txn.get(paths[i].encode()) == data[i], "lmdb returned wrong data"
        ver = "py-lmdb %s (LMDB %s)" % (lmdb.__version__, ".".join(map(str, lmdb.version())))
        systems.append(dict(name="py-lmdb txn.get", run=caller(txn.get), keys=keys_b,
                            note=ver + ", one read txn for all calls"))

        def run_lmdb_txn(ks, env=env):
            for k in ks:
                with env.begin() as t:
                    t.get(k)
        systems.append(dict(name="py-lmdb txn per get", run=run_lmdb_txn, keys=keys_b,
                            note="a fresh read txn per call, like a standalone get"))
        closers += [txn.abort, env.close]

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
    systems.append(dict(name="sqlite3 execute+fetchone", run=run_sqlite, keys=keys_s,
                        note="sqlite %s, WAL" % sqlite3.sqlite_version))
    closers.append(conn.close)

    per, ops = interleaved(systems, args.reads, args.block)
    results = [(s["name"], statistics.median(per[s["name"]]), pctl(per[s["name"]], 99),
                ops[s["name"]], s["note"]) for s in systems]
    for c in closers:
        c()

    # ---- report --------------------------------------------------------------
    best = min(r[1] for r in results)
    print("\n%-28s %12s %12s %12s %8s  %s" % ("system", "median ns", "p99 ns", "ops/s", "vs best", "note"))
    for name, med, p99, ops, note in results:
        print("%-28s %12.0f %12.0f %12.0f %7.2fx  %s" % (name, med, p99, ops, med / best, note))
    print("(ns per call: the median and p99 over blocks of %d calls of each block's mean; "
          "the systems take turns block by block)" % args.block)
    by = {r[0]: r for r in results}
    pairs = [("Database.get", "streamdb Database.get", "py-lmdb txn.get"),
             ("Snapshot.get (same semantics: one read view)", "streamdb Snapshot.get",
              "py-lmdb txn.get"),
             ("Database.get against a txn per get (same semantics: a read each)",
              "streamdb Database.get", "py-lmdb txn per get"),
             ("Database.get of a reopened database", "streamdb get, reopened",
              "py-lmdb txn.get")]
    if "py-lmdb txn.get" in by and "streamdb Database.get" in by:
        for label, ours, theirs in pairs:
            # the median of the ratios of blocks timed side by side
            paired = statistics.median(a / b for a, b in zip(per[ours], per[theirs]))
            print("Target (h): Python %s within 1.25x of %s: %s (%.0f ns vs %.0f ns; "
                  "median block ratio %.2fx)"
                  % (label, theirs, "MET" if paired <= 1.25 else "MISSED", by[ours][1],
                     by[theirs][1], paired))
    else:
        print("\nTarget (h): n/a (streamdb or py-lmdb skipped)")
    if not args.dir:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

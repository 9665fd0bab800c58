"""Close semantics, transactions, snapshots and fork."""
from __future__ import annotations

import gc
import os
import sys
import threading
import time
import weakref

import pytest

import streamdb
from conftest import MiB, blob


# ---- close -------------------------------------------------------------------
def test_close_is_idempotent(db_path):
    d = streamdb.open(db_path)
    d["/x"] = b"1"
    d.close()
    d.close()
    assert d.closed
    with d:  # entering a closed database is allowed; using it is not
        pass


def test_use_after_close(db_path):
    d = streamdb.open(db_path)
    doc = d.write_document("/x", b"1")
    d.close()
    calls = [
        lambda: d.get("/x"), lambda: d["/x"], lambda: d.write_document("/y", b"2"),
        lambda: d.__setitem__("/y", b"2"), lambda: d.__delitem__("/x"), lambda: len(d),
        lambda: list(d), lambda: d.search("/"), lambda: d.list("/"),
        lambda: next(d.iter_search("/")), lambda: d.open("/x"),
        lambda: next(d.get_stream("/x")), lambda: d.stat("/x"), lambda: d.versions("/x"),
        lambda: d.get_id_by_path("/x"), lambda: d.bind_to_path(doc, "/z"),
        lambda: d.unbind_path(doc, "/x"), lambda: d.list_paths(doc),
        lambda: d.delete("/x"), lambda: d.delete_by_id(doc), lambda: d.begin_transaction(),
        lambda: d.snapshot(), lambda: d.flush(), lambda: d.set_quick_mode(True),
        lambda: d.calculate_statistics(), lambda: d.cache_stats(), lambda: d.check(),
        lambda: d.compact(), lambda: d.write_document("/y", [b"chunk"]),
        lambda: d.read("/x", 0, 1), lambda: d.get_by_id(doc), lambda: d.page_size,
    ]
    for i, call in enumerate(calls):
        with pytest.raises(streamdb.ClosedError) as ei:
            call()
        assert ei.value.code == -10, i
    with pytest.raises(streamdb.ClosedError):
        "/x" in d  # noqa: B015 -- `in` reports absence, not a closed database


def test_close_invalidates_streams(db_path):
    d = streamdb.open(db_path)
    data = blob(2 * MiB, 1)
    d["/s"] = data
    f = d.open("/s")
    assert f.read(10) == data[:10]
    raw = d._h.stream("/s")
    d.close()  # must close the open streams first (streamdb_close would be BUSY)
    assert d.closed
    for call in (lambda: f.read(10), lambda: f.readinto(bytearray(5)), lambda: f.seek(0),
                 lambda: f.tell(), lambda: f.readall(), lambda: f.size):
        with pytest.raises(streamdb.ClosedError):
            call()
    assert raw.closed
    with pytest.raises(streamdb.ClosedError):
        raw.read(1)
    f.close()  # closing an invalidated stream is fine
    raw.close()


def test_close_during_iteration(db_path):
    d = streamdb.open(db_path)
    for i in range(100):
        d["/it/%03d" % i] = b"x"
    it = d.iter_search("/it/")
    assert next(it) == "/it/000"
    lst = d.iter_list("/")
    assert next(lst) == "/it/"
    d.close()
    with pytest.raises(streamdb.ClosedError):
        next(it)
    with pytest.raises(streamdb.ClosedError):
        next(lst)
    # a generator that raised is finished
    with pytest.raises(StopIteration):
        next(it)


def test_close_during_get_stream(db_path):
    d = streamdb.open(db_path)
    d["/g"] = blob(3 * MiB, 2)
    g = d.get_stream("/g", chunk_size=MiB)
    assert len(next(g)) == MiB
    d.close()
    with pytest.raises(streamdb.ClosedError):
        next(g)


def test_close_invalidates_snapshots_and_writers(db_path):
    d = streamdb.open(db_path)
    d["/a"] = b"a"
    snap = d.snapshot()
    snap_stream = snap.open("/a")
    w = d._h.writer("/w")
    w.write(b"partial")
    d.close()
    assert snap.closed
    with pytest.raises(streamdb.ClosedError):
        snap["/a"]
    with pytest.raises(streamdb.ClosedError):
        snap_stream.read()
    with pytest.raises(streamdb.ClosedError):
        w.write(b"more")
    with pytest.raises(streamdb.ClosedError):
        w.commit()
    snap.close()
    # the aborted writer left nothing behind
    with streamdb.open(db_path) as d2:
        assert "/w" not in d2
        assert d2["/a"] == b"a"


def test_close_from_another_thread_while_streaming(db_path):
    d = streamdb.open(db_path)
    data = blob(8 * MiB, 3)
    d["/big"] = data
    errors = []
    got = []
    started = threading.Event()

    def reader():
        try:
            with d.open("/big") as f:
                started.set()
                while True:
                    b = f.read(65536)
                    if not b:
                        break
                    got.append(b)
        except streamdb.ClosedError as e:
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    started.wait(10)
    d.close()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    # each reader either finished before the close or got ClosedError
    assert d.closed
    assert all(e.code == -10 for e in errors)
    assert all(isinstance(c, bytes) for c in got)


def test_close_waits_for_running_calls(db_path):
    d = streamdb.open(db_path)
    data = blob(32 * MiB, 4)
    d["/big"] = data
    results = []

    def getter():
        try:
            for _ in range(5):
                results.append(d.get("/big") == data)
        except streamdb.ClosedError:
            results.append("closed")

    t = threading.Thread(target=getter)
    t.start()
    time.sleep(0.05)
    d.close()
    t.join(60)
    assert not t.is_alive()
    assert results and all(r is True or r == "closed" for r in results)
    assert True in results or "closed" in results


def test_stream_outlives_database_object(db_path):
    d = streamdb.open(db_path)
    d["/x"] = b"hello"
    f = d.open("/x")
    ref = weakref.ref(d)
    del d
    gc.collect()
    # the stream keeps the handle alive
    assert f.read() == b"hello"
    f.close()
    del f
    gc.collect()
    assert ref() is None
    # the file was closed (lock released): it opens again
    with streamdb.open(db_path) as again:
        assert again["/x"] == b"hello"


def test_dropping_database_closes_it(db_path):
    d = streamdb.open(db_path)
    d["/x"] = b"1"
    del d
    gc.collect()
    with streamdb.open(db_path) as again:  # no LockedError from a leaked handle
        assert again["/x"] == b"1"


def test_open_children_tracking(db):
    db["/x"] = b"1"
    h = db._h
    assert h.open_children == 0
    f = db.open("/x")
    it = db.iter_search("/")
    next(it)
    snap = db.snapshot()
    assert h.open_children == 3
    f.close()
    it.close()
    snap.close()
    assert h.open_children == 0
    f2 = db.open("/x")
    del f2
    gc.collect()
    assert h.open_children == 0


def test_stream_used_from_two_threads_at_once_is_refused(db):
    db["/x"] = blob(64 * MiB, 5)
    raw = db._h.stream("/x")
    errors = []

    def reader():
        try:
            raw.readall()
        except RuntimeError as e:
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    raw.close()
    # no crash; any overlap was refused with RuntimeError (timing decides how many)
    assert all("another thread" in str(e) for e in errors)


# ---- transactions ------------------------------------------------------------
def test_transaction_commits(db):
    with db.transaction() as t:
        assert t is db
        assert db.in_transaction
        db["/t/1"] = b"one"
        db["/t/2"] = b"two"
    assert not db.in_transaction
    assert db["/t/1"] == b"one" and db["/t/2"] == b"two"


def test_transaction_rolls_back_on_exception(db):
    db["/t/keep"] = b"before"
    with pytest.raises(ZeroDivisionError):
        with db.transaction():
            db["/t/keep"] = b"changed"
            db["/t/new"] = b"new"
            db.write_document("/t/streamed", [b"a", b"b"])
            1 / 0
    assert not db.in_transaction
    assert db["/t/keep"] == b"before"
    assert "/t/new" not in db
    assert "/t/streamed" not in db
    # and the database is usable afterwards
    with db.transaction():
        db["/t/after"] = b"ok"
    assert db["/t/after"] == b"ok"


def test_explicit_transaction_api(db):
    db.begin_transaction()
    db["/e/1"] = b"1"
    db.delete("/e/1")
    db["/e/2"] = b"2"
    db.commit_transaction()
    assert "/e/1" not in db and db["/e/2"] == b"2"
    db.begin_transaction()
    db["/e/3"] = b"3"
    db.rollback_transaction()
    assert "/e/3" not in db


def test_transaction_is_atomic_for_other_readers(db):
    db["/acct/a"] = b"100"
    db["/acct/b"] = b"0"
    seen = []
    stop = threading.Event()

    def watcher():
        while not stop.is_set():
            with db.snapshot() as s:
                seen.append((s["/acct/a"], s["/acct/b"]))

    t = threading.Thread(target=watcher)
    t.start()
    try:
        for i in range(20):
            with db.transaction():
                db["/acct/a"] = b"%d" % (100 - i - 1)
                time.sleep(0.001)
                db["/acct/b"] = b"%d" % (i + 1)
    finally:
        stop.set()
        t.join()
    for a, b in seen:
        assert int(a) + int(b) == 100, (a, b)


def test_close_with_open_transaction_rolls_back(db_path):
    d = streamdb.open(db_path)
    d["/x"] = b"committed"
    d.begin_transaction()
    d["/x"] = b"uncommitted"
    d.close()
    with streamdb.open(db_path) as d2:
        assert d2["/x"] == b"committed"


# ---- snapshots -------------------------------------------------------------------
def test_snapshot_isolation(db):
    db["/s/a"] = b"old"
    db["/s/b"] = b"b"
    with db.snapshot() as snap:
        assert isinstance(snap, streamdb.Snapshot)
        db["/s/a"] = b"new"
        db["/s/c"] = b"c"
        del db["/s/b"]
        assert snap["/s/a"] == b"old"
        assert snap.get("/s/a") == b"old"
        assert "/s/c" not in snap
        assert "/s/b" in snap
        assert snap.search("/s/") == ["/s/a", "/s/b"]
        assert list(snap) == ["/s/a", "/s/b"]
        assert list(snap.iter_search("/s/")) == ["/s/a", "/s/b"]
        assert snap.list("/") == ["/s/"]
        assert len(snap) == 2
        with snap.open("/s/a") as f:
            assert f.read() == b"old"
        assert b"".join(snap.get_stream("/s/a")) == b"old"
        assert snap.stat("/s/a").size == 3
        assert snap.get_id_by_path("/s/a") == db.get_id_by_path("/s/a")
        assert snap.read("/s/a", 1, 5) == b"ld"
        assert db["/s/a"] == b"new"
    assert snap.closed
    with pytest.raises(streamdb.ClosedError):
        snap["/s/a"]
    assert not db.closed


def test_snapshot_close_closes_its_streams(db):
    db["/x"] = b"data"
    snap = db.snapshot()
    f = snap.open("/x")
    snap.close()
    with pytest.raises(streamdb.ClosedError):
        f.read()
    assert db["/x"] == b"data"


# ---- fork --------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_child_gets_closed_error(db_path):
    d = streamdb.open(db_path)
    d["/f"] = b"parent data"
    f = d.open("/f")
    it = d.iter_search("/")
    fut = d.get_future("/f")
    fut.wait()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.close(r)
            results = []
            for call in (lambda: d.get("/f"), lambda: d.write_document("/g", b"x"),
                         lambda: f.read(), lambda: next(it), lambda: d.snapshot(),
                         lambda: len(d), lambda: fut.result(), lambda: d.get_future("/f")):
                try:
                    call()
                    results.append("ok")
                except streamdb.ClosedError as e:
                    results.append("closed:%d" % e.code)
                except BaseException as e:  # noqa: BLE001
                    results.append("other:%r" % (e,))
            d.close()  # must not touch the parent's database
            results.append("closed-ok" if d.closed else "still-open")
            try:
                streamdb.open(db_path)
                results.append("reopened")
            except streamdb.LockedError:
                results.append("locked")
            os.write(w, ",".join(results).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    out = b""
    while True:
        b = os.read(r, 4096)
        if not b:
            break
        out += b
    os.close(r)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert out.decode().split(",") == ["closed:-10"] * 8 + ["closed-ok", "locked"]
    assert fut.result() == b"parent data"
    # the parent is unaffected
    assert f.read() == b"parent data"
    assert next(it) == "/f"
    d["/after"] = b"fine"
    assert d["/after"] == b"fine"
    f.close()
    d.close()
    with streamdb.open(db_path) as again:
        assert again["/after"] == b"fine"
        again.check()

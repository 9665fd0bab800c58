"""get_async: asyncio integration, loop never blocked, cancellation."""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import pytest

import streamdb
from conftest import MiB, blob


def run(coro):
    return asyncio.run(coro)


def test_get_async_returns_bytes(db):
    data = blob(2 * MiB + 5, 1)
    db["/a/doc"] = data
    db["/a/empty"] = b""
    db["/a/v"] = b"old"
    db["/a/v"] = b"new"

    async def main():
        got = await db.get_async("/a/doc")
        empty = await db.get_async("/a/empty")
        old = await db.get_async("/a/v", version=-1)
        many = await asyncio.gather(*(db.get_async("/a/doc") for _ in range(5)))
        return got, empty, old, many

    got, empty, old, many = run(main())
    assert isinstance(got, bytes) and got == data
    assert empty == b""
    assert old == b"old"
    assert all(m == data for m in many)


def test_get_async_errors(db):
    async def main():
        with pytest.raises(streamdb.NotFoundError):
            await db.get_async("/missing")
        with pytest.raises(streamdb.InvalidPathError):
            await db.get_async("bad path")

    run(main())


def test_get_async_on_snapshot(db):
    db["/s"] = b"before"

    async def main():
        with db.snapshot() as snap:
            db["/s"] = b"after"
            return await snap.get_async("/s")

    assert run(main()) == b"before"


def test_loop_is_not_blocked(db):
    data = blob(64 * MiB, 2)
    db["/a/big"] = data

    async def main():
        ticks = []
        stop = asyncio.Event()

        async def ticker():
            while not stop.is_set():
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.001)

        tick_task = asyncio.create_task(ticker())
        t0 = time.perf_counter()
        results = await asyncio.gather(*(db.get_async("/a/big") for _ in range(3)))
        elapsed = time.perf_counter() - t0
        stop.set()
        await tick_task
        return results, ticks, elapsed

    results, ticks, elapsed = run(main())
    assert all(r == data for r in results)
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    # the ticker kept running while 3 x 64 MiB were read
    assert len(ticks) > 10
    assert max(gaps) < max(0.25, elapsed / 2), (max(gaps), elapsed)


def test_cancellation_stops_the_read(db):
    db["/a/huge"] = blob(128 * MiB, 3)

    async def main():
        loop = asyncio.get_running_loop()
        # one worker thread, so we can see when it is free again
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        loop.set_default_executor(pool)
        t0 = time.perf_counter()
        await db.get_async("/a/huge")
        full = time.perf_counter() - t0

        task = asyncio.create_task(db.get_async("/a/huge"))
        await asyncio.sleep(full / 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
        t1 = time.perf_counter()
        # queued behind the cancelled read in the single worker
        await loop.run_in_executor(None, lambda: None)
        freed = time.perf_counter() - t1
        return full, freed

    full, freed = run(main())
    # the cancelled read stopped early instead of reading all 128 MiB
    assert freed < full * 0.6, (freed, full)
    assert db.calculate_statistics()["live_readers"] == 0
    assert len(db["/a/huge"]) == 128 * MiB


def test_cancel_token_in_the_extension(db):
    db["/c"] = blob(4 * MiB, 4)
    ev = threading.Event()
    with db._h.stream("/c") as s:
        assert len(s.readall(cancel=ev)) == 4 * MiB
    ev.set()
    with db._h.stream("/c") as s:
        with pytest.raises(streamdb.CancelledError) as ei:
            s.readall(cancel=ev)
        assert ei.value.code == -20


def test_get_async_after_close(db_path):
    d = streamdb.open(db_path)
    d["/x"] = b"1"
    d.close()

    async def main():
        with pytest.raises(streamdb.ClosedError):
            await d.get_async("/x")

    run(main())


def test_close_during_get_async(db_path):
    d = streamdb.open(db_path)
    d["/big"] = blob(64 * MiB, 5)

    async def main():
        task = asyncio.create_task(d.get_async("/big"))
        await asyncio.sleep(0.01)
        await asyncio.get_running_loop().run_in_executor(None, d.close)
        try:
            r = await task
            return "done" if len(r) == 64 * MiB else "short"
        except streamdb.ClosedError:
            return "closed"

    assert run(main()) in ("done", "closed")
    assert d.closed


# ---- the core's futures (streamdb_get_future) -----------------------------------
def test_future_result(db):
    data = blob(3 * MiB, 6)
    db["/f/a"] = data
    fut = db.get_future("/f/a")
    assert fut.wait(30) is True
    assert fut.ready()
    assert fut.result() == data
    assert fut.result() is fut.result()  # taken once, kept
    db["/f/a"] = b"newer"
    old = db.get_future("/f/a", version=-1)
    assert old.result(timeout=30) == data
    futs = [db.get_future("/f/a") for _ in range(10)]
    assert all(f.result() == b"newer" for f in futs)


def test_future_errors(db):
    with pytest.raises(streamdb.NotFoundError) as ei:
        db.get_future("/f/missing").result()
    assert ei.value.code == -2 and ei.value.message
    with pytest.raises(streamdb.InvalidPathError):
        db.get_future("no-slash")
    with pytest.raises(ValueError):
        db.get_future("/f/x").wait(-1)


def test_future_sees_the_database_as_of_submission(db):
    db["/f/s"] = b"before"
    with db.snapshot() as snap:
        db["/f/s"] = b"after"
        assert snap.get_future("/f/s").result() == b"before"


def test_future_cancel_and_timeout(tmp_path):
    with streamdb.open(str(tmp_path / "c.sdb"), async_workers=1) as d:
        data = blob(32 * MiB, 7)
        d["/big"] = data
        futs = [d.get_future("/big") for _ in range(8)]
        last = futs[-1]
        if not last.ready():
            assert last.wait(0) is False
            with pytest.raises(TimeoutError):
                last.result(timeout=0)
        cancelled = [f.cancel() for f in reversed(futs)]
        assert any(cancelled), "with one worker, queued requests can be cancelled"
        for f, was_cancelled in zip(reversed(futs), cancelled):
            if was_cancelled:
                assert f.ready()
                with pytest.raises(streamdb.CancelledError) as ei:
                    f.result()
                assert ei.value.code == -20
            else:
                assert f.result() == data
        assert d.get_stat("async_pending") == 0


def test_futures_survive_close(tmp_path):
    d = streamdb.open(str(tmp_path / "x.sdb"), async_workers=1)
    data = blob(16 * MiB, 8)
    d["/big"] = data
    futs = [d.get_future("/big") for _ in range(6)]
    d.close()  # waits for the running request, cancels the queued ones
    outcomes = []
    for f in futs:
        assert f.ready()
        try:
            outcomes.append(f.result() == data)
        except streamdb.CancelledError:
            outcomes.append("cancelled")
    assert all(o is True or o == "cancelled" for o in outcomes)
    with pytest.raises(streamdb.ClosedError):
        d.get_future("/big")


def test_future_waited_from_two_threads(db):
    db["/f/t"] = blob(8 * MiB, 9)
    for _ in range(20):
        fut = db.get_future("/f/t")
        results, errors = [], []

        def waiter():
            try:
                results.append(len(fut.result()))
            except RuntimeError as e:  # another thread is waiting on it
                errors.append(str(e))

        def poller():
            while not fut.ready():  # allowed while another thread waits
                time.sleep(0.0005)

        threads = [threading.Thread(target=waiter) for _ in range(3)]
        threads.append(threading.Thread(target=poller))
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results and all(n == 8 * MiB for n in results)
        assert all("another thread" in e for e in errors)
        assert fut.result() is not None

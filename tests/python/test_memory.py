"""Large documents stream with bounded memory (STREAMDB_BIG_MB, default 64).

Two measures.  With use_mmap=False every byte the process touches is its
own memory, so the peak RSS (VmHWM, reset through /proc/self/clear_refs) must
not grow by more than a few MiB.  With use_mmap=True (the core's default) the
file's pages that a read touches are mapped and count in RSS as RssFile
(page cache the kernel may drop); the process's own memory, RssAnon, is then
sampled at every chunk and must stay as flat.
"""
from __future__ import annotations

import gc
import hashlib
import io
import shutil
import tracemalloc

import pytest

import streamdb
from conftest import (MiB, anon_rss_bytes, chunked_blob, peak_rss_bytes, reset_peak_rss,
                      rss_bytes)

# Growth allowed while streaming a document of any size through a 1 MiB
# buffer: the buffer, the core's chunk buffer, page cache, allocator noise.
BUDGET = 12 * MiB
CACHE_PAGES = 256


class HashSink(io.RawIOBase):
    """A writable file that hashes what it is given and samples RssAnon."""

    def __init__(self):
        super().__init__()
        self.h = hashlib.sha256()
        self.n = 0
        self.anon_max = anon_rss_bytes()

    def writable(self):
        return True

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        self.anon_max = max(self.anon_max, anon_rss_bytes())
        return len(b)


@pytest.fixture(scope="module")
def big(tmp_path_factory, big_mb):
    """A database holding one big_mb MiB document, written from an iterator
    (so the writer sees it in 1 MiB chunks) while RssAnon is sampled."""
    path = str(tmp_path_factory.mktemp("big") / "big.sdb")
    total = big_mb * MiB
    chunks, h = chunked_blob(total, seed=77)
    samples = []

    def sampled():
        for c in chunks:
            samples.append(anon_rss_bytes())
            yield c

    with streamdb.open(path, page_cache_size=CACHE_PAGES, use_mmap=False) as d:
        gc.collect()
        base = anon_rss_bytes()
        d.write_document("/big", sampled())
        samples.append(anon_rss_bytes())
    return path, total, h.hexdigest(), max(samples) - base


def _peak(fn):
    """(fn(), growth of the peak RSS, peak of Python allocations)."""
    gc.collect()
    if not reset_peak_rss():
        pytest.skip("cannot reset the peak RSS (/proc/self/clear_refs)")
    base = rss_bytes()
    tracemalloc.start()
    try:
        result = fn()
        _, py_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak_rss_bytes() - base, py_peak


def test_streaming_write_has_bounded_memory(big):
    _, total, _, write_growth = big
    assert write_growth < BUDGET, "writing %d MiB grew RssAnon by %.1f MiB" % (
        total // MiB, write_growth / MiB)


@pytest.mark.parametrize("use_mmap", [False, True])
def test_open_copyfileobj_bounded(big, use_mmap):
    path, total, digest, _ = big
    with streamdb.open(path, page_cache_size=CACHE_PAGES, use_mmap=use_mmap) as d:
        gc.collect()
        anon_base = anon_rss_bytes()

        def run():
            sink = HashSink()
            with d.open("/big") as f:
                shutil.copyfileobj(f, sink, MiB)
            return sink

        sink, rss_growth, py_peak = _peak(run)
    assert sink.n == total
    assert sink.h.hexdigest() == digest
    assert sink.anon_max - anon_base < BUDGET, "RssAnon grew by %.1f MiB" % (
        (sink.anon_max - anon_base) / MiB)
    assert py_peak < 4 * MiB, "Python allocations peaked at %.1f MiB" % (py_peak / MiB)
    if not use_mmap:
        assert rss_growth < BUDGET, "RSS grew by %.1f MiB" % (rss_growth / MiB)


def test_open_buffered_readinto_bounded(big):
    path, total, digest, _ = big
    with streamdb.open(path, page_cache_size=CACHE_PAGES, use_mmap=False) as d:
        def run():
            h = hashlib.sha256()
            view = memoryview(bytearray(MiB))
            n = 0
            with io.BufferedReader(d.open("/big"), buffer_size=256 * 1024) as f:
                while True:
                    k = f.readinto(view)
                    if not k:
                        break
                    h.update(view[:k])
                    n += k
            return n, h.hexdigest()

        (n, got), rss_growth, _ = _peak(run)
    assert n == total and got == digest
    assert rss_growth < BUDGET, "RSS grew by %.1f MiB" % (rss_growth / MiB)


@pytest.mark.parametrize("use_mmap", [False, True])
def test_get_stream_bounded(big, use_mmap):
    path, total, digest, _ = big
    with streamdb.open(path, page_cache_size=CACHE_PAGES, use_mmap=use_mmap) as d:
        gc.collect()
        anon_base = anon_rss_bytes()

        def run():
            h = hashlib.sha256()
            n = 0
            anon_max = anon_base
            for chunk in d.get_stream("/big"):
                h.update(chunk)
                n += len(chunk)
                anon_max = max(anon_max, anon_rss_bytes())
            return n, h.hexdigest(), anon_max

        (n, got, anon_max), rss_growth, py_peak = _peak(run)
    assert n == total and got == digest
    assert anon_max - anon_base < BUDGET, "RssAnon grew by %.1f MiB" % (
        (anon_max - anon_base) / MiB)
    assert py_peak < 4 * MiB
    if not use_mmap:
        assert rss_growth < BUDGET, "RSS grew by %.1f MiB" % (rss_growth / MiB)


def test_whole_reads_allocate_once(big):
    path, total, digest, _ = big
    with streamdb.open(path, page_cache_size=CACHE_PAGES, use_mmap=False) as d:
        data, rss_growth, _ = _peak(lambda: d.get("/big"))
        assert hashlib.sha256(data).hexdigest() == digest
        # the result plus at most one transient library buffer
        assert rss_growth < 2 * total + BUDGET
        del data
        with d.open("/big") as f:
            data, rss_growth, _ = _peak(f.readall)
        assert hashlib.sha256(data).hexdigest() == digest
        # readall allocates the result once and reads into it
        assert rss_growth < total + BUDGET

"""Shared fixtures and helpers of the streamdb Python tests.

Run from the repository root after installing the package:

    python -m venv /tmp/venv && . /tmp/venv/bin/activate
    pip install './[test]'        # or: pip install ./ pytest cffi build
    pytest tests/python

Environment:
    STREAMDB_SKIP_INSTALL_TEST=1   skip the fresh-venv sdist install test
    STREAMDB_BIG_MB=256            size of the bounded-memory documents (default 64)
"""
from __future__ import annotations

import hashlib
import os
import random
import sys
from typing import Iterator, Tuple

import pytest

import streamdb

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MiB = 1 << 20


def blob(n: int, seed: int = 0) -> bytes:
    """n deterministic pseudo-random bytes."""
    return random.Random(seed).randbytes(n) if n else b""


def chunked_blob(total: int, seed: int, chunk: int = MiB) -> Tuple[Iterator[bytes], "hashlib._Hash"]:
    """An iterator of chunks making a total-byte document, and a sha256 object
    that is fed as the chunks are produced (so nothing is kept)."""
    h = hashlib.sha256()

    def gen() -> Iterator[bytes]:
        done = 0
        i = 0
        while done < total:
            n = min(chunk, total - done)
            c = random.Random(seed * 1000003 + i).randbytes(n)
            h.update(c)
            done += n
            i += 1
            yield c

    return gen(), h


# ---- CRC32C (Castagnoli), to check DocInfo.crc32c on small documents ----
def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ---- memory --------------------------------------------------------------
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def rss_bytes() -> int:
    return _status_kib("VmRSS") * 1024


def anon_rss_bytes() -> int:
    """Resident anonymous memory: what the process allocated, without the
    file pages it has mapped (which the kernel can drop at any time)."""
    return _status_kib("RssAnon") * 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM (peak RSS) to the current RSS; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    return _status_kib("VmHWM") * 1024


# ---- fixtures --------------------------------------------------------------
@pytest.fixture
def db_path(tmp_path) -> str:
    return str(tmp_path / "test.sdb")


@pytest.fixture
def db(db_path):
    d = streamdb.open(db_path)
    yield d
    d.close()


@pytest.fixture(scope="session")
def big_mb() -> int:
    return int(os.environ.get("STREAMDB_BIG_MB", "64"))


def pytest_report_header(config):
    return "streamdb %s (core %s) from %s; python %s" % (
        streamdb.__version__, streamdb.version(), os.path.dirname(streamdb.__file__),
        sys.version.split()[0])

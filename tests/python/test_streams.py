"""db.open() as a real io.RawIOBase, and get_stream()."""
from __future__ import annotations

import hashlib
import io
import shutil
import sys
import tarfile
import zipfile

import pytest

import streamdb
from conftest import MiB, blob


@pytest.fixture
def doc(db):
    data = blob(3 * MiB + 1234, 11)
    db["/docs/big.bin"] = data
    return data


def test_is_rawiobase(db, doc):
    with db.open("/docs/big.bin") as f:
        assert isinstance(f, io.RawIOBase)
        assert isinstance(f, io.IOBase)
        assert f.readable() and f.seekable() and not f.writable()
        assert f.name == "/docs/big.bin"
        assert f.mode == "rb"
        assert f.size == len(doc)
        assert not f.closed
    assert f.closed


def test_readinto_read_readall(db, doc):
    with db.open("/docs/big.bin") as f:
        buf = bytearray(1000)
        assert f.readinto(buf) == 1000
        assert bytes(buf) == doc[:1000]
        mv = memoryview(bytearray(5000))
        assert f.readinto(mv[10:20]) == 10
        assert bytes(mv[10:20]) == doc[1000:1010]
        assert f.tell() == 1010
        assert f.read(0) == b""
        assert f.read(90) == doc[1010:1100]
        rest = f.readall()
        assert rest == doc[1100:]
        assert f.read() == b""
        assert f.read(10) == b""
        assert f.readinto(bytearray(10)) == 0


def test_read_none_and_negative(db, doc):
    with db.open("/docs/big.bin") as f:
        f.seek(len(doc) - 10)
        assert f.read(None) == doc[-10:]
        f.seek(len(doc) - 5)
        assert f.read(-1) == doc[-5:]


def test_seek_tell(db, doc):
    n = len(doc)
    with db.open("/docs/big.bin") as f:
        assert f.seek(100) == 100
        assert f.tell() == 100
        assert f.read(4) == doc[100:104]
        assert f.seek(10, io.SEEK_CUR) == 114
        assert f.read(2) == doc[114:116]
        assert f.seek(-6, io.SEEK_END) == n - 6
        assert f.read() == doc[-6:]
        assert f.seek(0) == 0
        assert f.read(3) == doc[:3]
        assert f.seek(2 * MiB + 5) == 2 * MiB + 5  # across a 64 KiB chunk boundary
        assert f.read(70000) == doc[2 * MiB + 5:2 * MiB + 70005]
        with pytest.raises((ValueError, OSError)):
            f.seek(-1)
        with pytest.raises(ValueError):
            f.seek(0, 7)


def test_buffered_reader_and_lines(db):
    text = b"".join(b"line %d\n" % i for i in range(10000))
    db["/text"] = text
    with io.BufferedReader(db.open("/text"), buffer_size=4096) as b:
        lines = b.readlines()
    assert lines == text.splitlines(keepends=True)
    with io.TextIOWrapper(io.BufferedReader(db.open("/text")), encoding="ascii") as t:
        assert t.readline() == "line 0\n"
        t.seek(0)
        assert sum(1 for _ in t) == 10000
    for line_no, line in enumerate(db.open("/text")):
        pass
    assert line_no == 9999 and line == b"line 9999\n"


def test_copyfileobj(db, doc):
    out = io.BytesIO()
    with db.open("/docs/big.bin") as f:
        shutil.copyfileobj(f, out, 65536)
    assert out.getvalue() == doc


@pytest.mark.skipif(sys.version_info < (3, 11), reason="hashlib.file_digest is 3.11+")
def test_file_digest(db, doc):
    with db.open("/docs/big.bin") as f:
        d = hashlib.file_digest(f, "sha256")
    assert d.hexdigest() == hashlib.sha256(doc).hexdigest()


def test_zipfile_over_stream(db):
    members = {"a.txt": b"hello" * 1000, "dir/b.bin": blob(300000, 2), "empty": b""}
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    db["/archives/x.zip"] = raw.getvalue()
    with db.open("/archives/x.zip") as f:
        with zipfile.ZipFile(f) as z:
            assert sorted(z.namelist()) == sorted(members)
            for name, data in members.items():
                assert z.read(name) == data
            assert z.testzip() is None
    # through a BufferedReader too
    with zipfile.ZipFile(io.BufferedReader(db.open("/archives/x.zip"))) as z:
        assert z.read("dir/b.bin") == members["dir/b.bin"]


def test_tarfile_over_stream(db):
    members = {"one": b"1" * 5000, "two/three": blob(200000, 3)}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    db["/archives/x.tar.gz"] = raw.getvalue()
    with db.open("/archives/x.tar.gz") as f:
        with tarfile.open(fileobj=f, mode="r:gz") as t:
            got = {m.name: t.extractfile(m).read() for m in t.getmembers()}
    assert got == members
    # uncompressed, random access
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    db["/archives/x.tar"] = raw.getvalue()
    with db.open("/archives/x.tar") as f, tarfile.open(fileobj=f, mode="r:") as t:
        assert t.extractfile("two/three").read() == members["two/three"]


def test_stream_keeps_its_version(db):
    old = blob(500000, 1)
    new = blob(300000, 2)
    db["/v"] = old
    f = db.open("/v")
    assert f.read(10) == old[:10]
    db["/v"] = new
    db["/v"] = new[::-1]  # and once more
    assert db["/v"] == new[::-1]
    assert f.size == len(old)
    assert f.read() == old[10:]
    f.seek(0)
    assert f.readall() == old
    f.close()
    # deleting the path does not pull the document from under an open stream
    g = db.open("/v")
    del db["/v"]
    assert g.readall() == new[::-1]
    g.close()


def test_open_a_version(db):
    db["/ver"] = b"first"
    db["/ver"] = b"second"
    with db.open("/ver", version=-1) as f:
        assert f.read() == b"first"
    with db.open("/ver", version=db.stat("/ver").version) as f:
        assert f.read() == b"second"


def test_user_close_then_use(db, doc):
    f = db.open("/docs/big.bin")
    f.close()
    f.close()  # idempotent
    with pytest.raises(ValueError):
        f.read(1)
    with pytest.raises(ValueError):
        f.seek(0)
    with pytest.raises(ValueError):
        f.readinto(bytearray(1))


def test_get_stream(db, doc):
    chunks = list(db.get_stream("/docs/big.bin"))
    assert all(isinstance(c, bytes) for c in chunks)
    assert b"".join(chunks) == doc
    assert max(len(c) for c in chunks) == streamdb.DEFAULT_CHUNK_SIZE
    small = list(db.get_stream("/docs/big.bin", chunk_size=100000))
    assert all(len(c) == 100000 for c in small[:-1])
    assert b"".join(small) == doc
    db["/empty"] = b""
    assert list(db.get_stream("/empty")) == []
    with pytest.raises(ValueError):
        db.get_stream("/docs/big.bin", chunk_size=0)
    with pytest.raises(streamdb.NotFoundError):
        next(db.get_stream("/nope"))


def test_get_stream_closes_its_stream(db, doc):
    g = db.get_stream("/docs/big.bin", chunk_size=1000)
    next(g)
    assert db.calculate_statistics()["live_readers"] >= 1
    g.close()
    assert db.calculate_statistics()["live_readers"] == 0


def test_empty_document_stream(db):
    db["/e"] = b""
    with db.open("/e") as f:
        assert f.size == 0
        assert f.read() == b""
        assert f.readinto(bytearray(4)) == 0
        assert f.seek(0, io.SEEK_END) == 0

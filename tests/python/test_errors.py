"""One exception class per STREAMDB_ERR_* code, raised for the right inputs."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap

import pytest

import streamdb
from streamdb import _streamdb
from conftest import REPO_ROOT, blob


def test_error_table_covers_every_code():
    codes = {v for k, v in vars(_streamdb).items() if k.startswith("ERR_")}
    assert codes == set(range(-21, 0))
    assert set(streamdb.ERROR_CLASSES) == codes
    seen = set()
    for code, cls in streamdb.ERROR_CLASSES.items():
        assert issubclass(cls, streamdb.Error)
        assert cls not in seen, "one class per code"
        seen.add(cls)
        e = streamdb._errors._from_code(code, "msg %d" % code)
        assert type(e) is cls
        assert e.code == code
        assert e.message == "msg %d" % code
        assert str(e) == "msg %d" % code


def test_builtin_bases():
    assert issubclass(streamdb.NotFoundError, KeyError)
    assert issubclass(streamdb.InvalidInputError, ValueError)
    assert streamdb.InvalidPathError is streamdb.InvalidInputError
    assert issubclass(streamdb.DocumentTooLargeError, ValueError)
    assert streamdb.TooLargeError is streamdb.DocumentTooLargeError
    assert issubclass(streamdb.StreamDbIOError, OSError)
    assert streamdb.CorruptError is streamdb.CorruptionError
    for name in ("CorruptionError", "LockedError", "TransactionError", "ClosedError",
                 "ReadOnlyError", "NotADatabaseError", "UnsupportedError"):
        assert issubclass(getattr(streamdb, name), streamdb.Error)


def test_io_error_carries_errno():
    e = streamdb._errors._from_code(-1, "open /x/y.db: No such file or directory")
    assert isinstance(e, OSError)
    assert e.errno == errno.ENOENT
    e = streamdb._errors._from_code(-1, "pwrite failed (errno 28)")
    assert e.errno == 28
    e = streamdb._errors._from_code(-1, "fsync: EIO")
    assert e.errno == errno.EIO
    e = streamdb._errors._from_code(-1, "something odd")
    assert e.errno is None
    assert e.code == -1


@pytest.mark.parametrize("path", ["", "no-slash", "/a//b", "/a/", "/nul\x00inside", b"/x\x00"])
def test_invalid_paths(db, path):
    with pytest.raises(streamdb.InvalidPathError) as ei:
        db.write_document(path, b"data")
    assert ei.value.code == -3
    assert isinstance(ei.value, ValueError)
    assert ei.value.message
    with pytest.raises(streamdb.InvalidPathError):
        db.get(path)
    assert len(db) == 0


def test_path_too_long(db):
    limit = db.max_path_len
    with pytest.raises(streamdb.InvalidPathError):
        db["/" + "x" * (limit + 10)] = b"1"
    ok = "/" + "y" * (limit - 1)
    db[ok] = b"2"
    assert db[ok] == b"2"


def test_non_utf8_path_is_rejected(db):
    with pytest.raises(ValueError):
        db["/bad\udcff"] = b"x"  # a lone surrogate cannot be UTF-8


def test_path_type(db):
    with pytest.raises(TypeError):
        db.get(123)


def test_not_found(db):
    with pytest.raises(streamdb.NotFoundError) as ei:
        db.get("/missing")
    assert ei.value.code == -2
    assert isinstance(ei.value, KeyError)
    with pytest.raises(KeyError):
        db["/missing"]
    with pytest.raises(streamdb.NotFoundError):
        db.open("/missing")
    with pytest.raises(streamdb.NotFoundError):
        db.stat("/missing")
    with pytest.raises(streamdb.NotFoundError):
        db.delete("/missing")
    with pytest.raises(streamdb.NotFoundError):
        db.get_id_by_path("/missing")


def test_too_large(tmp_path):
    with streamdb.open(str(tmp_path / "t.sdb"), max_document_size=100000) as d:
        d["/ok"] = blob(100000)
        with pytest.raises(streamdb.DocumentTooLargeError) as ei:
            d["/big"] = blob(100001)
        assert ei.value.code == -8
        assert isinstance(ei.value, ValueError)
        # through the streaming writer too, in chunks
        with pytest.raises(streamdb.DocumentTooLargeError):
            d.write_document("/big2", [b"x" * 60000, b"y" * 60000])
        assert "/big" not in d and "/big2" not in d
        assert d["/ok"] == blob(100000)


def test_not_a_database(tmp_path):
    p = tmp_path / "junk.sdb"
    junk = blob(65536, 42)
    p.write_bytes(junk)
    with pytest.raises(streamdb.NotADatabaseError) as ei:
        streamdb.open(str(p))
    assert ei.value.code == -15
    assert ei.value.message
    assert p.read_bytes() == junk, "the file must be left untouched"
    t = tmp_path / "text.sdb"
    t.write_text("just a text file\n")
    with pytest.raises(streamdb.NotADatabaseError):
        streamdb.open(str(t))


def test_incompatible_page_size(tmp_path):
    p = str(tmp_path / "ps.sdb")
    with streamdb.open(p, page_size=8192) as d:
        d["/x"] = b"x"
    with pytest.raises(streamdb.IncompatibleError) as ei:
        streamdb.open(p, page_size=4096)
    assert ei.value.code == -14


def test_io_error_is_oserror(tmp_path):
    p = str(tmp_path / "no" / "such" / "dir" / "x.sdb")
    with pytest.raises(streamdb.Error) as ei:
        streamdb.open(p)
    e = ei.value
    assert e.code in (-1, -2)
    if e.code == -1:
        assert isinstance(e, OSError)
        assert e.errno == errno.ENOENT


def test_missing_file_without_create(tmp_path):
    p = str(tmp_path / "missing.sdb")
    with pytest.raises((streamdb.NotFoundError, streamdb.StreamDbIOError)):
        streamdb.open(p, create=False)
    assert not os.path.exists(p)


def test_read_only(db_path):
    with streamdb.open(db_path) as d:
        doc = d.write_document("/ro", b"data")
    with streamdb.open(db_path, read_only=True) as r:
        assert r["/ro"] == b"data"
        with pytest.raises(streamdb.ReadOnlyError) as ei:
            r["/new"] = b"x"
        assert ei.value.code == -13
        with pytest.raises(streamdb.ReadOnlyError):
            r.write_document("/new", [b"chunk"])
        with pytest.raises(streamdb.ReadOnlyError):
            del r["/ro"]
        with pytest.raises(streamdb.ReadOnlyError):
            r.delete_by_id(doc)
        with pytest.raises(streamdb.ReadOnlyError):
            r.bind_to_path(doc, "/alias")
        assert r["/ro"] == b"data"


def test_snapshot_handle_refuses_writes(db):
    db["/s"] = b"1"
    with db.snapshot() as snap:
        assert not hasattr(snap, "write_document")
        with pytest.raises(streamdb.ReadOnlyError):
            snap._h.write_document("/s", b"2")
        with pytest.raises(streamdb.ReadOnlyError):
            snap._h.delete("/s")
    assert db["/s"] == b"1"


def test_transaction_errors(db):
    with pytest.raises(streamdb.TransactionError) as ei:
        db.commit_transaction()
    assert ei.value.code == -5
    with pytest.raises(streamdb.TransactionError):
        db.rollback_transaction()
    db.begin_transaction()
    with pytest.raises(streamdb.TransactionError):
        db.begin_transaction()
    db.rollback_transaction()


def test_locked_by_another_process(db_path):
    with streamdb.open(db_path) as d:
        d["/x"] = b"x"
        script = textwrap.dedent("""
            import sys, streamdb
            try:
                streamdb.open(sys.argv[1])
            except streamdb.LockedError as e:
                print("LOCKED", e.code)
            else:
                print("OPENED")
        """)
        out = subprocess.run([sys.executable, "-c", script, db_path], capture_output=True,
                             text=True, timeout=60, cwd=REPO_ROOT + "/tests")
        assert out.stdout.strip() == "LOCKED -7", out.stderr
    # released on close
    out = subprocess.run([sys.executable, "-c", script, db_path], capture_output=True,
                         text=True, timeout=60, cwd=REPO_ROOT + "/tests")
    assert out.stdout.strip() == "OPENED", out.stderr


def test_error_message_comes_from_core(db):
    with pytest.raises(streamdb.NotFoundError) as ei:
        db.get("/very/specific/missing/path")
    assert ei.value.message, "errmsg should describe the failure"

"""Documents, paths, ids, search, mapping protocol, config, maintenance."""
from __future__ import annotations

import array
import io
import os
import uuid

import pytest

import streamdb
from conftest import MiB, blob, crc32c


def test_version_and_module():
    assert streamdb.version() == "0.1.0"
    assert streamdb.__version__ == "0.1.0"
    assert streamdb._streamdb.HEADER_VERSION == "0.1.0"
    assert streamdb._streamdb.ERR_NOT_FOUND == -2
    assert streamdb._streamdb.strerror(0)
    assert streamdb._streamdb.strerror(-2) != streamdb._streamdb.strerror(-3)


def test_open_returns_database_and_constructor_is_the_same(db_path):
    with streamdb.open(db_path) as a:
        assert isinstance(a, streamdb.Database)
        a["/x"] = b"1"
    with streamdb.Database(db_path) as b:
        assert b["/x"] == b"1"
        assert b.path == db_path
        assert "closed" not in repr(b)
    assert b.closed and "closed" in repr(b)


def test_pathlike_filename(tmp_path):
    import pathlib
    with streamdb.open(pathlib.Path(tmp_path) / "p.sdb") as d:
        d["/a"] = b"z"
        assert d["/a"] == b"z"
    assert (tmp_path / "p.sdb").exists()


def test_write_and_get_roundtrip(db):
    data = blob(1000, 1)
    doc_id = db.write_document("/levels/3/terrain.bin", data)
    assert isinstance(doc_id, uuid.UUID)
    assert db.get("/levels/3/terrain.bin") == data
    assert db.get_id_by_path("/levels/3/terrain.bin") == doc_id
    assert db.get_by_id(doc_id) == data
    assert db.get_by_id(doc_id.bytes) == data
    assert db.get_by_id(str(doc_id)) == data


@pytest.mark.parametrize("size", [0, 1, 100, 4095, 4096, 8191, 8192, 8193, 65535, 65536, 65537,
                                  3 * MiB + 17])
def test_sizes(db, size):
    data = blob(size, size)
    db.write_document("/s/%d" % size, data)
    got = db.get("/s/%d" % size)
    assert isinstance(got, bytes)
    assert got == data
    assert db.stat("/s/%d" % size).size == size


def test_get_versions_and_arguments(db):
    # both sides of get's 8 KiB stack buffer, by version
    db["/v"] = blob(8192, 1)
    db["/v"] = blob(8193, 2)
    assert db.get("/v") == blob(8193, 2)
    assert db.get("/v", -1) == blob(8192, 1)
    assert db.get("/v", 1) == blob(8192, 1)
    assert db._h.get("/v", None) == blob(8193, 2)
    with pytest.raises(TypeError):
        db._h.get()
    with pytest.raises(TypeError):
        db._h.get("/v", 0, 1)
    with pytest.raises(TypeError):
        db._h.get(5)
    with pytest.raises(streamdb.NotFoundError):
        db.get("/v", 9)


def test_bytes_like_inputs(db):
    ref = bytes(range(256)) * 10
    db.write_document("/b/bytearray", bytearray(ref))
    db.write_document("/b/memoryview", memoryview(ref))
    db.write_document("/b/slice", memoryview(b"xx" + ref + b"yy")[2:-2])
    db.write_document("/b/array", array.array("B", ref))
    arr = array.array("I", [1, 2, 3, 0xDEADBEEF])
    db.write_document("/b/array32", arr)
    for p in ("/b/bytearray", "/b/memoryview", "/b/slice", "/b/array"):
        assert db[p] == ref, p
    assert db["/b/array32"] == arr.tobytes()


def test_file_object_input_is_streamed(db, tmp_path):
    data = blob(5 * MiB + 123, 7)
    f = tmp_path / "in.bin"
    f.write_bytes(data)
    with open(f, "rb") as fh:
        db.write_document("/f/buffered", fh)
    with open(f, "rb", buffering=0) as fh:
        db.write_document("/f/raw", fh)
    db.write_document("/f/bytesio", io.BytesIO(data))

    class ReadOnly:  # has read() but no readinto()
        def __init__(self, b):
            self.b = io.BytesIO(b)
            self.calls = []

        def read(self, n=-1):
            self.calls.append(n)
            return self.b.read(n)

    r = ReadOnly(data)
    db.write_document("/f/readonly", r)
    assert all(n > 0 for n in r.calls), "read(-1) would load the whole file"
    assert len(r.calls) >= 5
    for p in ("/f/buffered", "/f/raw", "/f/bytesio", "/f/readonly"):
        assert db[p] == data, p


def test_iterable_input(db):
    chunks = [b"alpha", b"", bytearray(b"beta"), memoryview(b"gamma")]
    db.write_document("/it/list", chunks)
    assert db["/it/list"] == b"alphabetagamma"

    def gen():
        for i in range(100):
            yield bytes([i]) * 1000

    db.write_document("/it/gen", gen())
    assert db["/it/gen"] == b"".join(bytes([i]) * 1000 for i in range(100))
    db.write_document("/it/empty", iter([]))
    assert db["/it/empty"] == b""


def test_bad_data_types(db):
    with pytest.raises(TypeError):
        db.write_document("/t", "a string")
    with pytest.raises(TypeError):
        db.write_document("/t", 12345)
    with pytest.raises(TypeError):
        db.write_document("/t", [b"ok", "not bytes"])
    with pytest.raises(TypeError):
        db.write_document("/t", io.StringIO("text"))
    assert "/t" not in db, "a failed streaming write must leave no trace"


def test_failed_iterable_leaves_no_trace(db):
    db["/keep"] = b"old"

    def bad():
        yield b"new data"
        raise RuntimeError("source failed")

    with pytest.raises(RuntimeError):
        db.write_document("/keep", bad())
    assert db["/keep"] == b"old"
    # the write lock was released: a later write works
    db["/keep"] = b"newer"
    assert db["/keep"] == b"newer"


def test_versions_and_version_argument(db):
    db["/v"] = b"one"
    db["/v"] = b"two"
    db["/v"] = b"three"
    vs = db.versions("/v")
    assert vs == sorted(vs) and len(vs) >= 2
    assert vs[-1] == db.stat("/v").version
    assert db.get("/v") == b"three"
    assert db.get("/v", 0) == b"three"
    assert db.get("/v", None) == b"three"
    assert db.get("/v", -1) == b"two"
    assert db.get("/v", vs[-1]) == b"three"
    assert db.get("/v", vs[-2]) == b"two"
    assert db.stat("/v", -1).version == vs[-2]
    assert db.stat("/v", -1).size == 3
    with pytest.raises(streamdb.NotFoundError):
        db.get("/v", vs[-1] + 100)


def test_stat(db):
    data = blob(3000, 3)
    doc_id = db.write_document("/st/doc", data)
    info = db.stat("/st/doc")
    assert isinstance(info, streamdb.DocInfo)
    assert info.id == doc_id
    assert info.size == 3000
    assert info.version >= 1
    assert info.crc32c == crc32c(data)
    assert info.created_ns > 0 and info.modified_ns >= info.created_ns
    assert info.stored_size >= 0
    assert isinstance(info.inline, bool)
    big = blob(300000, 4)
    db["/st/big"] = big
    bi = db.stat("/st/big")
    assert bi.size == 300000 and not bi.inline
    assert bi.stored_size >= 300000


def test_read_range(db):
    data = blob(200000, 5)
    db["/r"] = data
    assert db.read("/r", 0, 10) == data[:10]
    assert db.read("/r", 65530, 20) == data[65530:65550]
    assert db.read("/r", 199990, 100) == data[199990:]
    assert db.read("/r", 200000, 10) == b""
    with pytest.raises(ValueError):
        db.read("/r", 0, -1)


def test_mapping_protocol(db):
    assert len(db) == 0
    assert list(db) == []
    db["/m/a"] = b"A"
    db["/m/b"] = b"B"
    db["/n"] = b"N"
    assert db["/m/a"] == b"A"
    assert "/m/a" in db
    assert "/m/zz" not in db
    assert "no-slash" not in db
    assert 42 not in db
    assert len(db) == 3
    assert list(db) == ["/m/a", "/m/b", "/n"]
    assert db.keys() == ["/m/a", "/m/b", "/n"]
    del db["/m/a"]
    assert "/m/a" not in db
    assert len(db) == 2
    with pytest.raises(KeyError):
        db["/m/a"]
    with pytest.raises(KeyError):
        del db["/m/a"]
    # bytes paths are accepted
    assert db[b"/n"] == b"N"


def test_search_iter_search_list(db):
    paths = ["/a/1", "/a/2", "/a/b/3", "/a/b/c/4", "/ab", "/b/5", "/a/\u00e9t\u00e9"]
    for i, p in enumerate(paths):
        db[p] = str(i).encode()
    expect_a = sorted((p for p in paths if p.startswith("/a/")), key=lambda s: s.encode())
    assert db.search("/a/") == expect_a
    assert db.search("/a") == sorted((p for p in paths if p.startswith("/a")),
                                     key=lambda s: s.encode())
    assert db.search("/zzz") == []
    assert db.search("/") == sorted(paths, key=lambda s: s.encode())
    it = db.iter_search("/a/")
    assert iter(it) is it and not isinstance(it, list)
    assert next(it) == expect_a[0]
    assert list(it) == expect_a[1:]
    assert db.list("/a/") == ["/a/1", "/a/2", "/a/b/", "/a/\u00e9t\u00e9"]
    assert list(db.iter_list("/a/")) == db.list("/a/")
    assert db.list("/") == ["/a/", "/ab", "/b/"]


def test_iter_search_is_lazy_and_sees_its_opening(db):
    for i in range(50):
        db["/lazy/%02d" % i] = b"x"
    it = db.iter_search("/lazy/")
    first = next(it)  # the cursor is open from here on
    db["/lazy/99"] = b"late"
    del db["/lazy/10"]
    rest = list(it)
    assert [first] + rest == ["/lazy/%02d" % i for i in range(50)]
    assert db.search("/lazy/")[-1] == "/lazy/99"


def test_ids_and_paths(db):
    doc = db.write_document("/p/one", b"shared")
    db.bind_to_path(doc, "/p/two")
    db.bind_to_path(doc, "/p/two")  # binding to its own document is a no-op
    assert sorted(db.list_paths(doc)) == ["/p/one", "/p/two"]
    assert db["/p/two"] == b"shared"
    assert db.get_id_by_path("/p/two") == doc
    assert len(db) == 1
    other = db.write_document("/p/other", b"x")
    with pytest.raises(streamdb.ExistsError) as ei:
        db.bind_to_path(other, "/p/one")
    assert ei.value.code == -19
    db.unbind_path(doc, "/p/one")
    assert db.list_paths(doc) == ["/p/two"]
    assert "/p/one" not in db
    db.delete("/p/two")  # last path: the document goes
    with pytest.raises(streamdb.NotFoundError):
        db.get_by_id(doc)
    db.bind_to_path(other, "/p/alias")
    db.delete_by_id(other)
    assert "/p/other" not in db and "/p/alias" not in db
    assert len(db) == 0
    with pytest.raises(streamdb.NotFoundError):
        db.delete_by_id(other)


def test_id_argument_validation(db):
    with pytest.raises(streamdb.InvalidInputError):
        db.get_by_id(b"short")
    with pytest.raises(streamdb.InvalidInputError):
        db.get_by_id("not-a-uuid")
    with pytest.raises(TypeError):
        db.get_by_id(12)


def test_overwrite_keeps_id(db):
    a = db.write_document("/o", b"1")
    b = db.write_document("/o", b"2")
    assert a == b
    assert db["/o"] == b"2"


def test_persistence_across_reopen(db_path):
    data = blob(500000, 9)
    with streamdb.open(db_path) as d:
        doc = d.write_document("/persist/big", data)
        d["/persist/small"] = b"small"
    with streamdb.open(db_path) as d:
        assert d["/persist/big"] == data
        assert d["/persist/small"] == b"small"
        assert d.get_id_by_path("/persist/big") == doc
        d.check()


def test_config_keywords(tmp_path):
    p = str(tmp_path / "cfg.sdb")
    with streamdb.open(p, page_size=4096, page_cache_size=64, max_db_size=1 << 30,
                       max_document_size=1 << 20, versions_to_keep=3, use_mmap=True,
                       quick_mode=False) as d:
        assert d.page_size == 4096
        assert d.max_path_len > 100
        assert d.calculate_statistics()["page_size"] == 4096
        assert d.cache_stats()["capacity_pages"] == 64
        for i in range(4):
            d["/k"] = bytes([i])
        assert len(d.versions("/k")) == 3
    with streamdb.open(p, page_size=4096, read_only=True) as d:
        assert d["/k"] == b"\x03"


def test_config_errors(tmp_path):
    p = str(tmp_path / "bad.sdb")
    with pytest.raises(TypeError):
        streamdb.open(p, no_such_option=1)
    with pytest.raises(streamdb.InvalidInputError) as ei:
        streamdb.open(p, page_size=5000)
    assert ei.value.code == -3
    assert isinstance(ei.value, ValueError)
    with pytest.raises(ValueError):
        streamdb.open(p, page_size=-1)
    with pytest.raises(TypeError):
        streamdb.open(p, page_size="big")
    assert not os.path.exists(p)


def test_features():
    f = streamdb.features()
    assert set(f) == {"compression", "encryption"}
    assert all(isinstance(v, bool) for v in f.values())


@pytest.mark.skipif(streamdb.features()["compression"], reason="built with compression")
def test_compression_unsupported(tmp_path):
    p = str(tmp_path / "u.sdb")
    with pytest.raises(streamdb.UnsupportedError) as ei:
        streamdb.open(p, use_compression=True)
    assert ei.value.code == -18
    assert isinstance(ei.value, NotImplementedError)
    with streamdb.open(p) as d:
        with pytest.raises(streamdb.UnsupportedError):
            d.write_document("/c", b"x" * 1000, compress=True)
        assert "/c" not in d


@pytest.mark.skipif(streamdb.features()["encryption"], reason="built with encryption")
def test_encryption_unsupported(tmp_path):
    with pytest.raises(streamdb.UnsupportedError) as ei:
        streamdb.open(str(tmp_path / "e.sdb"), encryption_key=b"k" * 32)
    assert ei.value.code == -18


@pytest.mark.skipif(not streamdb.features()["compression"], reason="built without compression")
def test_compression(tmp_path):
    p = str(tmp_path / "c.sdb")
    text = b"".join(b"line %d of a very compressible document\n" % (i % 50)
                    for i in range(40000))
    with streamdb.open(p, use_compression=True) as d:
        d["/text"] = text
        info = d.stat("/text")
        assert info.compressed and info.size == len(text)
        assert info.stored_size < len(text) // 4
        d.write_document("/raw", text, compress=False)
        assert not d.stat("/raw").compressed
        assert d.stat("/raw").stored_size >= len(text)
        assert d["/text"] == text and d["/raw"] == text
        with d.open("/text") as f:  # random access decodes only the chunks it needs
            f.seek(700001)
            assert f.read(5000) == text[700001:705001]
        assert d.verify("/") == 2
        assert d.get_stat("logical_bytes") == 2 * len(text)
        assert d.get_stat("stored_bytes") < d.get_stat("logical_bytes")
    with streamdb.open(p) as d:  # per document: readable without the option
        d.write_document("/streamed", iter([text[:100000], text[100000:]]), compress=True)
        assert d.stat("/streamed").compressed
        assert d["/streamed"] == text and d["/text"] == text


@pytest.mark.skipif(not streamdb.features()["encryption"], reason="built without encryption")
def test_encryption(tmp_path):
    p = str(tmp_path / "e.sdb")
    key = bytes(range(32))
    secret = b"top secret payload " * 10000
    with streamdb.open(p, encryption_key=key) as d:
        d["/s"] = secret
        d["/small"] = b"tiny secret"
    raw = open(p, "rb").read() + open(p + "-wal", "rb").read() if os.path.exists(p + "-wal") \
        else open(p, "rb").read()
    assert b"top secret" not in raw and b"tiny secret" not in raw
    with streamdb.open(p, encryption_key=bytearray(key)) as d:
        assert d["/s"] == secret and d["/small"] == b"tiny secret"
        assert d.verify() == 2
    with pytest.raises(streamdb.CryptoError) as ei:
        streamdb.open(p, encryption_key=bytes(32))
    assert ei.value.code == -17
    with pytest.raises(streamdb.CryptoError):
        streamdb.open(p)
    with pytest.raises(streamdb.InvalidInputError):
        streamdb.open(str(tmp_path / "k.sdb"), encryption_key=b"short")
    with pytest.raises(TypeError):
        streamdb.open(p, encryption_key="a str key")


def test_verify_and_get_stat(db):
    for i in range(5):
        db["/vf/%d" % i] = blob(70000 * i, i)
    db["/vf/0"] = b"again"  # a second version
    db["/other"] = b"x"
    assert db.verify("/vf/") == 6
    assert db.verify() == 7
    assert db.verify("/nothing/") == 0
    assert db.get_stat("document_count") == 6
    assert db.get_stat("page_size") == db.page_size
    assert db.get_stat("capacity_pages") == db.cache_stats()["capacity_pages"]
    assert db.get_stat("logical_bytes") == sum(70000 * i for i in range(5)) + 5 + 1
    with pytest.raises(streamdb.InvalidInputError):
        db.get_stat("no_such_statistic")


def test_maintenance(db):
    for i in range(20):
        db["/mt/%d" % i] = blob(100000, i)
    for i in range(15):
        del db["/mt/%d" % i]
    db.flush()
    stats = db.calculate_statistics()
    for key in ("page_size", "total_pages", "free_pages", "document_count", "path_count",
                "wal_bytes", "wal_frames", "live_readers", "oldest_reader_txn", "last_txn",
                "checkpoints", "file_bytes"):
        assert isinstance(stats[key], int), key
    assert stats["document_count"] == 5
    assert stats["path_count"] == 5
    assert stats["live_readers"] == 0
    before = stats["file_bytes"]
    db.compact()
    after = db.calculate_statistics()["file_bytes"]
    assert after <= before
    db.check()
    cs = db.cache_stats()
    assert set(cs) == {"hits", "misses", "prefetch_hits", "evictions", "cached_pages",
                       "capacity_pages"}
    db.get("/mt/19")
    assert db.cache_stats()["hits"] + db.cache_stats()["misses"] > 0
    db.set_quick_mode(True)
    assert db["/mt/19"] == blob(100000, 19)
    db.set_quick_mode(False)
    assert db["/mt/19"] == blob(100000, 19)


def test_live_readers_counts_open_streams(db):
    db["/lr"] = b"x" * 100
    f = db.open("/lr")
    assert db.calculate_statistics()["live_readers"] >= 1
    f.close()
    assert db.calculate_statistics()["live_readers"] == 0


def test_docstrings_everywhere():
    import inspect
    missing = []
    for obj in (streamdb, streamdb._Reader, streamdb.Database, streamdb.Snapshot,
                streamdb.DocumentStream,
                streamdb.DocInfo, streamdb._streamdb, streamdb._streamdb.Handle,
                streamdb._streamdb.Stream, streamdb._streamdb.Cursor,
                streamdb._streamdb.Writer, streamdb._streamdb.Future):
        if not (obj.__doc__ or "").strip():
            missing.append(repr(obj))
        for name, member in vars(obj).items() if inspect.isclass(obj) else []:
            if name.startswith("_") or not callable(member) and not isinstance(member, property):
                continue
            if not (getattr(member, "__doc__", None) or "").strip():
                missing.append("%s.%s" % (obj.__name__, name))
    for name in streamdb.__all__:
        member = getattr(streamdb, name)
        if callable(member) and not (member.__doc__ or "").strip():
            missing.append(name)
    assert not missing, missing


def test_type_stubs_are_installed():
    here = os.path.dirname(streamdb.__file__)
    assert os.path.exists(os.path.join(here, "py.typed"))
    assert os.path.exists(os.path.join(here, "_streamdb.pyi"))


def test_get_arguments_and_subclass(db, db_path):
    # get is bound straight to the extension on each instance: it takes the
    # same arguments as the documented method (path, version, by keyword too)
    db.write_document("/g", b"one")
    db.write_document("/g", b"two")
    assert db.get("/g") == b"two"
    assert db.get("/g", -1) == b"one"
    assert db.get(path="/g", version=1) == b"one"
    assert db.get("/g", version=None) == b"two"
    with pytest.raises(TypeError):
        db.get("/g", 1, version=1)
    with pytest.raises(TypeError):
        db.get("/g", revision=1)
    with pytest.raises(TypeError):
        db.get()
    with pytest.raises(streamdb.NotFoundError):
        db.get("/g", 7)
    with db.snapshot() as s:
        db.write_document("/g", b"three")
        assert s.get("/g") == b"two" and s.get("/g", version=-1) == b"one"
    db.close()

    class Logged(streamdb.Database):
        def get(self, path, version=None):
            self.calls = getattr(self, "calls", 0) + 1
            return super().get(path, version)

    with Logged(db_path) as d:
        assert d.get("/g") == b"three" and d.calls == 1
    with pytest.raises(streamdb.ClosedError):
        db.get("/g")

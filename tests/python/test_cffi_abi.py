"""The C ABI through cffi in ABI mode, declared from the public header.

This is the ABI that FFI users bind: the test builds libstreamdb.so from the
core sources (as CMake does: hidden visibility, only the API exported),
declares core/include/streamdb.h to cffi, and checks that a database written
by the Python extension reads back through the raw C API and vice versa.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess

import pytest

import streamdb
from conftest import REPO_ROOT, blob

cffi = pytest.importorskip("cffi")

HEADER = os.path.join(REPO_ROOT, "core", "include", "streamdb.h")


def header_cdef() -> str:
    """The header with what cffi's parser does not take removed: the include
    guard, #include/#if blocks, STREAMDB_API, and non-integer #defines."""
    out = []
    skip_depth = 0
    with open(HEADER) as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#if") and ("__cplusplus" in s or "STREAMDB_BUILDING" in s):
            skip_depth += 1
            continue
        if skip_depth:
            if s.startswith("#endif"):
                skip_depth -= 1
            continue
        m = re.match(r"#define\s+(STREAMDB_\w+)\s+(-?\d+)u?\s*$", s)
        if m:
            out.append("#define %s %s" % (m.group(1), m.group(2)))
            continue
        if s.startswith("#"):
            continue
        out.append(line.replace("STREAMDB_API", ""))
    return "\n".join(out)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build libstreamdb.so")
    sources = sorted(glob.glob(os.path.join(REPO_ROOT, "core", "src", "*", "*.c")))
    assert sources, "no core sources"
    out = str(tmp_path_factory.mktemp("lib") / "libstreamdb.so")
    cmd = [cc, "-shared", "-fPIC", "-O1", "-std=gnu11", "-fvisibility=hidden",
           "-DSTREAMDB_BUILDING", "-D_GNU_SOURCE",
           "-I" + os.path.join(REPO_ROOT, "core", "include"),
           "-I" + os.path.join(REPO_ROOT, "core", "src"), "-o", out] + sources + ["-lpthread"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    ffi = cffi.FFI()
    ffi.cdef(header_cdef())
    return ffi, ffi.dlopen(out), out


def test_exports_exactly_the_api(lib):
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("no nm")
    syms = subprocess.run([nm, "-D", "--defined-only", lib[2]], capture_output=True,
                          text=True, check=True).stdout.split()
    exported = {s for s in syms if re.match(r"^[A-Za-z_]\w*$", s) and len(s) > 1}
    api = set(re.findall(r"STREAMDB_API[^;(]*?\b(streamdb_\w+)\s*\(", open(HEADER).read()))
    assert len(api) > 60
    assert api <= exported, "declared but missing from the library: %s" % sorted(api - exported)
    leaked = {s for s in exported if s not in api}
    assert not leaked, "non-API symbols exported: %s" % sorted(leaked)


def check(lib_ffi, rc, db=None):
    ffi, L, _ = lib_ffi
    if rc < 0:
        raise AssertionError("rc %d (%s): %s" % (rc, ffi.string(L.streamdb_strerror(rc)).decode(),
                                                 ffi.string(L.streamdb_errmsg(db) or b"?")))
    return rc


def test_constants_match_the_extension(lib):
    ffi, L, _ = lib
    for name in dir(streamdb._streamdb):
        if name.startswith("ERR_") or name in ("OK", "DONE", "MAX_PATH", "ID_SIZE"):
            assert getattr(L, "STREAMDB_" + name) == getattr(streamdb._streamdb, name), name
    assert ffi.string(L.streamdb_version()).decode() == streamdb.version()
    for code in range(-21, 2):
        assert ffi.string(L.streamdb_strerror(code)).decode() == \
            streamdb._streamdb.strerror(code)


def test_struct_layouts(lib):
    ffi, L, _ = lib
    assert ffi.sizeof("streamdb_doc_info") == 16 + 7 * 8
    assert ffi.sizeof("streamdb_stats") == 12 * 8
    assert ffi.sizeof("streamdb_cache_stats") == 6 * 8
    cfg = ffi.new("streamdb_config *")
    L.streamdb_config_init(cfg)
    assert cfg.create == 1 and cfg.log_fn == ffi.NULL


def test_python_writes_c_reads(lib, tmp_path):
    ffi, L, _ = lib
    path = str(tmp_path / "x.sdb")
    data = blob(300000, 1)
    with streamdb.open(path) as d:
        doc = d.write_document("/from/python", data)
        d.bind_to_path(doc, "/alias")
    dbp = ffi.new("streamdb **")
    check(lib, L.streamdb_open(path.encode(), ffi.NULL, dbp))
    db = dbp[0]
    try:
        out = ffi.new("void **")
        n = ffi.new("size_t *")
        check(lib, L.streamdb_get(db, b"/from/python", 0, out, n), db)
        assert ffi.buffer(out[0], n[0])[:] == data
        L.streamdb_free(out[0])
        idb = ffi.new("uint8_t[16]")
        check(lib, L.streamdb_get_id_by_path(db, b"/alias", 6, idb), db)
        assert bytes(idb) == doc.bytes
        info = ffi.new("streamdb_doc_info *")
        check(lib, L.streamdb_stat(db, b"/from/python", 12, 0, info), db)
        assert info.size == len(data) and bytes(info.id) == doc.bytes
        # a stream through the ABI
        sp = ffi.new("streamdb_stream **")
        check(lib, L.streamdb_stream_open(db, b"/from/python", 12, 0, sp), db)
        buf = ffi.new("char[]", 1000)
        nr = ffi.new("size_t *")
        pos = ffi.new("uint64_t *")
        check(lib, L.streamdb_stream_seek(sp[0], 250000, 0, pos), db)
        assert pos[0] == 250000
        check(lib, L.streamdb_stream_read(sp[0], buf, 1000, nr), db)
        assert ffi.buffer(buf, nr[0])[:] == data[250000:251000]
        L.streamdb_stream_close(sp[0])
        # a search cursor
        cp = ffi.new("streamdb_cursor **")
        check(lib, L.streamdb_search_open(db, b"/", 1, cp), db)
        p = ffi.new("char **")
        pl = ffi.new("size_t *")
        got = []
        while True:
            rc = check(lib, L.streamdb_cursor_next(cp[0], ffi.cast("const char **", p), pl), db)
            if rc == L.STREAMDB_DONE:
                break
            got.append(ffi.unpack(p[0], pl[0]).decode())
        L.streamdb_cursor_close(cp[0])
        assert got == ["/alias", "/from/python"]
        # errors through the ABI
        assert L.streamdb_get(db, b"/missing", 0, out, n) == L.STREAMDB_ERR_NOT_FOUND
        assert ffi.string(L.streamdb_errmsg(db))
        assert L.streamdb_get(db, b"no-slash", 0, out, n) == L.STREAMDB_ERR_INVALID
    finally:
        assert L.streamdb_close(db) == 0


def test_c_writes_python_reads(lib, tmp_path):
    ffi, L, _ = lib
    path = str(tmp_path / "y.sdb")
    cfg = L.streamdb_config_new()
    check(lib, L.streamdb_config_set(cfg, b"page_size", 16384))
    assert L.streamdb_config_set(cfg, b"no_such_field", 1) == L.STREAMDB_ERR_INVALID
    dbp = ffi.new("streamdb **")
    check(lib, L.streamdb_open(path.encode(), cfg, dbp))
    L.streamdb_config_free(cfg)
    db = dbp[0]
    payload = blob(200000, 2)
    idb = ffi.new("uint8_t[16]")
    check(lib, L.streamdb_write_document(db, b"/c/whole", payload, len(payload), idb), db)
    wp = ffi.new("streamdb_writer **")
    check(lib, L.streamdb_writer_begin(db, b"/c/streamed", 11, wp), db)
    for i in range(0, len(payload), 70000):
        part = payload[i:i + 70000]
        check(lib, L.streamdb_writer_write(wp[0], part, len(part)), db)
    check(lib, L.streamdb_writer_commit(wp[0], ffi.NULL), db)
    check(lib, L.streamdb_close(db))
    with streamdb.open(path) as d:
        assert d.page_size == 16384
        assert d["/c/whole"] == payload
        assert d["/c/streamed"] == payload
        assert d.get_id_by_path("/c/whole").bytes == bytes(idb)
        d.check()


def test_busy_close_through_the_abi(lib, tmp_path):
    """streamdb_close refuses with BUSY while a stream is open: the reason the
    Python Database.close() closes its children first."""
    ffi, L, _ = lib
    path = str(tmp_path / "z.sdb")
    dbp = ffi.new("streamdb **")
    check(lib, L.streamdb_open(path.encode(), ffi.NULL, dbp))
    db = dbp[0]
    check(lib, L.streamdb_write_document(db, b"/a", b"abc", 3, ffi.NULL), db)
    sp = ffi.new("streamdb_stream **")
    check(lib, L.streamdb_stream_open(db, b"/a", 2, 0, sp), db)
    assert L.streamdb_close(db) == L.STREAMDB_ERR_BUSY
    L.streamdb_stream_close(sp[0])
    assert L.streamdb_close(db) == 0

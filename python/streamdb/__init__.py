"""StreamDb: an embedded store for binary documents kept under string paths.

>>> import streamdb
>>> with streamdb.open("game.sdb") as db:
...     db["/levels/3/terrain.bin"] = b"..."
...     with db.open("/levels/3/terrain.bin") as f:   # a real io.RawIOBase
...         header = f.read(16)

The binding is the C extension ``streamdb._streamdb``, compiled together with
the core library.  Every call into the core releases the GIL.  Closing a
:class:`Database` closes the streams, iterators, writers and snapshots that
came from it; they raise :class:`ClosedError` afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import threading
import uuid
from typing import (Any, AsyncIterator, BinaryIO, Dict, Iterable, Iterator, List, NamedTuple,
                    Optional, Union)

from . import _streamdb
from ._errors import (ERROR_CLASSES, BusyError, CancelledError, ClosedError, CorruptError,
                      CorruptionError, CryptoError, DocumentTooLargeError, Error, ExistsError,
                      FatalError, FullError, IncompatibleError, InternalError, InvalidInputError,
                      InvalidPathError, LockedError, NotADatabaseError, NotFoundError,
                      OutOfMemoryError, ReadOnlyError, StreamDbIOError, TooLargeError,
                      TransactionError, UnsupportedError, WouldBlockError)

__all__ = [
    "open", "Database", "Snapshot", "DocumentStream", "DocInfo", "version",
    "Error", "StreamDbIOError", "NotFoundError", "InvalidInputError", "InvalidPathError",
    "InternalError", "TransactionError", "CorruptionError", "CorruptError", "LockedError",
    "DocumentTooLargeError", "TooLargeError", "FullError", "ClosedError", "OutOfMemoryError",
    "BusyError", "ReadOnlyError", "IncompatibleError", "NotADatabaseError", "FatalError",
    "CryptoError", "UnsupportedError", "ExistsError", "CancelledError", "WouldBlockError",
    "ERROR_CLASSES",
    "CONFIG_OPTIONS", "DEFAULT_CHUNK_SIZE", "DOC_INLINE", "DOC_COMPRESSED", "features",
]

__version__ = "0.1.0"

#: Keyword arguments accepted by :func:`open` (names of ``streamdb_config``).
CONFIG_OPTIONS = (
    "page_size", "max_db_size", "max_document_size", "page_cache_size", "versions_to_keep",
    "use_mmap", "use_compression", "encryption_key", "quick_mode", "read_only",
    # also in the C struct:
    "create", "file_mode", "wal_autocheckpoint", "sync_commits", "async_workers",
    "readahead_chunks", "path_cache_size",
)

#: Chunk size of :meth:`Database.get_stream` and of the streaming writer.
DEFAULT_CHUNK_SIZE = 1 << 20

#: ``DocInfo.flags`` bit: the content is stored inside its record.
DOC_INLINE = _streamdb.DOC_INLINE
#: ``DocInfo.flags`` bit: at least one chunk is stored compressed.
DOC_COMPRESSED = _streamdb.DOC_COMPRESSED

PathLike = Union[str, bytes]
IdLike = Union[uuid.UUID, bytes, str]


def version() -> str:
    """The version of the core library (``streamdb_version``)."""
    return _streamdb.version()


def features() -> Dict[str, bool]:
    """What this build of the core supports: ``{"compression": bool,
    "encryption": bool}`` (``streamdb_features``)."""
    bits = _streamdb.features()
    return {"compression": bool(bits & _streamdb.FEATURE_COMPRESSION),
            "encryption": bool(bits & _streamdb.FEATURE_ENCRYPTION)}


def _id_bytes(doc_id: IdLike) -> bytes:
    if isinstance(doc_id, uuid.UUID):
        return doc_id.bytes
    if isinstance(doc_id, (bytes, bytearray, memoryview)):
        b = bytes(doc_id)
        if len(b) != 16:
            raise InvalidInputError("a document id has 16 bytes, not %d" % len(b), -3)
        return b
    if isinstance(doc_id, str):
        try:
            return uuid.UUID(doc_id).bytes
        except ValueError:
            raise InvalidInputError("not a document id: %r" % (doc_id,), -3) from None
    raise TypeError("a document id is a uuid.UUID or 16 bytes, not %s" % type(doc_id).__name__)


class DocInfo(NamedTuple):
    """Metadata of one version of a document (``streamdb_doc_info``)."""

    id: uuid.UUID
    version: int
    size: int
    stored_size: int
    crc32c: int
    created_ns: int
    modified_ns: int
    flags: int

    @property
    def inline(self) -> bool:
        """True when the content is stored inside its record."""
        return bool(self.flags & DOC_INLINE)

    @property
    def compressed(self) -> bool:
        """True when at least one chunk is stored compressed."""
        return bool(self.flags & DOC_COMPRESSED)


class DocumentStream(io.RawIOBase):
    """One version of one document opened for reading: a real
    :class:`io.RawIOBase`, so :class:`io.BufferedReader`,
    :func:`shutil.copyfileobj`, :func:`hashlib.file_digest`,
    :class:`zipfile.ZipFile` and :mod:`tarfile` work on it.

    The stream keeps reading the version it opened even if the path is
    overwritten.  Closing the database closes the stream: later reads raise
    :class:`ClosedError`.  Reads after :meth:`close` raise ValueError, as for
    any closed file.
    """

    mode = "rb"

    def __init__(self, raw: _streamdb.Stream, name: str) -> None:
        super().__init__()
        self._s = raw
        self.name = name

    @property
    def closed(self) -> bool:
        """True after :meth:`close`, and once the database or snapshot that
        opened the stream is closed."""
        return super().closed or self._s.closed

    def _check(self) -> None:
        # closed by close(): ValueError, as for any file; closed with its
        # database: the raw call below raises ClosedError
        if io.RawIOBase.closed.__get__(self):
            raise ValueError("I/O operation on closed file.")

    # io.IOBase's own __enter__ and __iter__ raise ValueError once closed is
    # True; a stream closed with its database raises ClosedError instead, at
    # its first read, as documented above.
    def __enter__(self) -> "DocumentStream":
        self._check()
        return self

    def __iter__(self) -> "DocumentStream":
        self._check()
        return self

    def readable(self) -> bool:
        """Always True for an open stream."""
        self._check()
        return True

    def seekable(self) -> bool:
        """Always True for an open stream."""
        self._check()
        return True

    def writable(self) -> bool:
        """Always False: documents are written with Database.write_document."""
        self._check()
        return False

    def readinto(self, buffer: Any) -> int:
        """Read into a writable buffer; return the number of bytes read
        (0 at the end of the document)."""
        self._check()
        return self._s.readinto(buffer)

    def read(self, size: Optional[int] = -1) -> bytes:
        """Read up to size bytes (everything left when size is None or < 0)."""
        self._check()
        if size is None or size < 0:
            return self._s.readall()
        return self._s.read(size)

    def readall(self) -> bytes:
        """Read everything from the position to the end, in one allocation."""
        self._check()
        return self._s.readall()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the position (whence: SEEK_SET, SEEK_CUR or SEEK_END)."""
        self._check()
        return self._s.seek(offset, whence)

    def tell(self) -> int:
        """The current position."""
        self._check()
        return self._s.tell()

    @property
    def size(self) -> int:
        """The size of the document version being read."""
        self._check()
        return self._s.size()

    def close(self) -> None:
        """Close the stream (idempotent)."""
        if not io.RawIOBase.closed.__get__(self):
            try:
                self._s.close()
            finally:
                super().close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return "<streamdb.DocumentStream %r %s>" % (self.name, state)


def _bind_fast_get(reader: "_Reader") -> None:
    # get is the hottest call: bind the extension's method on the instance,
    # so that db.get(path) runs no Python frame (the same arguments, the same
    # errors, the docstring below).  A subclass that overrides get keeps its own.
    if type(reader).get is _Reader.get:
        reader.get = reader._h.get  # type: ignore[method-assign]


class _Reader:
    """The read methods shared by :class:`Database` and :class:`Snapshot`."""

    _h: _streamdb.Handle

    # ---- whole documents ------------------------------------------------
    def get(self, path: PathLike, version: Optional[int] = None) -> bytes:
        """Return the document at path as bytes.

        version: None or 0 for the current version, a negative number counts
        back (-1 is the previous version), a positive number names a version.
        Raises NotFoundError (a KeyError) when there is no such document.
        """
        return self._h.get(path, version)

    def get_by_id(self, doc_id: IdLike, version: Optional[int] = None) -> bytes:
        """Return the document with this id (a uuid.UUID or 16 bytes)."""
        return self._h.get_by_id(_id_bytes(doc_id), version)

    def read(self, path: PathLike, offset: int, length: int,
             version: Optional[int] = None) -> bytes:
        """Return up to length bytes of the document from offset (fewer only
        at the end)."""
        return self._h.read(path, offset, length, version)

    def open(self, path: PathLike, version: Optional[int] = None) -> DocumentStream:
        """Open the document for reading; return a :class:`DocumentStream`."""
        raw = self._h.stream(path, version)
        return DocumentStream(raw, path if isinstance(path, str) else os.fsdecode(path))

    def get_stream(self, path: PathLike, chunk_size: Optional[int] = None,
                   version: Optional[int] = None) -> Iterator[bytes]:
        """Yield the document in chunks of chunk_size bytes (default 1 MiB).

        The document is opened at the first ``next()``; the stream is closed
        when the generator finishes or is closed.
        """
        size = DEFAULT_CHUNK_SIZE if chunk_size is None else int(chunk_size)
        if size <= 0:
            raise ValueError("chunk_size must be positive")
        return self._chunks(path, size, version)

    def _chunks(self, path: PathLike, size: int, version: Optional[int]) -> Iterator[bytes]:
        s = self._h.stream(path, version)
        try:
            while True:
                chunk = s.read(size)
                if not chunk:
                    return
                yield chunk
        finally:
            s.close()

    async def get_async(self, path: PathLike, version: Optional[int] = None) -> bytes:
        """Return the document as bytes without blocking the event loop.

        The read runs in the loop's default executor (a thread that calls
        into the core with the GIL released), 1 MiB at a time.  Cancelling
        the awaiting task stops the read at the next chunk.
        """
        loop = asyncio.get_running_loop()
        cancel = threading.Event()
        handle = self._h

        def work() -> bytes:
            if cancel.is_set():
                raise CancelledError("the read was cancelled", -20)
            s = handle.stream(path, version)
            try:
                return s.readall(cancel=cancel)
            finally:
                s.close()

        future = loop.run_in_executor(None, work)
        try:
            return await future
        except asyncio.CancelledError:
            cancel.set()
            raise

    def get_future(self, path: PathLike, version: Optional[int] = None) -> "_streamdb.Future":
        """Submit a whole-document read to the core's worker threads
        (``streamdb_get_future``) and return at once.  The returned future
        has ``ready()``, ``wait(timeout=None)``, ``result(timeout=None)`` and
        ``cancel()`` (which only stops a request that has not started); it
        suits loops that poll, e.g. a game's frame loop.  The request sees
        the database as of this call."""
        return self._h.get_future(path, version)

    # ---- metadata -------------------------------------------------------
    def stat(self, path: PathLike, version: Optional[int] = None) -> DocInfo:
        """Return the :class:`DocInfo` of a version of the document at path."""
        t = self._h.stat(path, version)
        return DocInfo(uuid.UUID(bytes=t[0]), *t[1:])

    def versions(self, path: PathLike) -> List[int]:
        """The readable version numbers of the document at path, oldest first."""
        return self._h.versions(path)

    def get_id_by_path(self, path: PathLike) -> uuid.UUID:
        """The id of the document bound to path."""
        return uuid.UUID(bytes=self._h.get_id_by_path(path))

    def list_paths(self, doc_id: IdLike) -> List[str]:
        """Every path bound to the document id."""
        return self._h.list_paths(_id_bytes(doc_id))

    # ---- search ---------------------------------------------------------
    def search(self, prefix: PathLike = "/") -> List[str]:
        """Every path that starts with prefix, in byte order."""
        return self._h.search(prefix)

    def iter_search(self, prefix: PathLike = "/") -> Iterator[str]:
        """Lazily yield every path that starts with prefix, in byte order,
        from a cursor that sees the database as of the first ``next()``."""
        return self._iter_cursor(prefix, False)

    def iter_list(self, prefix: PathLike = "/") -> Iterator[str]:
        """Lazily yield one directory level under prefix (see :meth:`list`)."""
        return self._iter_cursor(prefix, True)

    def _iter_cursor(self, prefix: PathLike, listing: bool) -> Iterator[str]:
        c = self._h.list_cursor(prefix) if listing else self._h.search_cursor(prefix)
        try:
            while True:
                p = c.next()
                if p is None:
                    return
                yield p
        finally:
            c.close()

    def list(self, prefix: PathLike = "/") -> List[str]:
        """One directory level under prefix: documents as their path, and
        each sub-directory once, with a trailing '/'."""
        return self._h.list(prefix)

    # ---- mapping protocol -------------------------------------------------
    def __getitem__(self, path: PathLike) -> bytes:
        return self._h.get(path, None)

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, (str, bytes)):
            return False
        try:
            self._h.get_id_by_path(path)
        except (NotFoundError, InvalidInputError):
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return self.iter_search("/")

    def __len__(self) -> int:
        """The number of documents (distinct ids; ``streamdb_count``)."""
        return self._h.count()

    def keys(self) -> List[str]:
        """Every path, in byte order."""
        return self._h.search("/")

    def count(self) -> int:
        """The number of documents (distinct ids)."""
        return self._h.count()

    # ---- maintenance ----------------------------------------------------
    def calculate_statistics(self) -> Dict[str, int]:
        """``streamdb_calculate_statistics`` as a dict."""
        return self._h.statistics()

    def cache_stats(self) -> Dict[str, int]:
        """``streamdb_get_cache_stats`` as a dict."""
        return self._h.cache_stats()

    def check(self) -> None:
        """Full integrity walk; raises CorruptionError on the first problem."""
        self._h.check()

    def verify(self, prefix: PathLike = "/") -> int:
        """Re-read every version of every document under prefix and check
        each chunk and the whole content against their CRC32C (quick mode or
        not); return the number of versions checked.  Raises CorruptionError
        naming the first damaged document."""
        return self._h.verify(prefix)

    def get_stat(self, name: str) -> int:
        """One named statistic (``streamdb_get_stat``): "logical_bytes",
        "stored_bytes", "prefetch_hits", "async_pending", or any key of
        :meth:`calculate_statistics` and :meth:`cache_stats`."""
        return self._h.get_stat(name)

    @property
    def page_size(self) -> int:
        """The database's page size in bytes."""
        return self._h.page_size()

    @property
    def max_path_len(self) -> int:
        """The longest path (in UTF-8 bytes) this database accepts."""
        return self._h.max_path_len()

    # ---- lifetime -------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once closed (a snapshot is also closed with its database)."""
        return self._h.closed

    def close(self) -> None:
        """Close, after closing every stream and iterator opened from here.
        Waits for calls running in other threads.  Idempotent."""
        self._h.close()

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Snapshot(_Reader):
    """A read-only view of a database as it was when :meth:`Database.snapshot`
    was called, whatever is committed later.  It has the read methods of
    :class:`Database`; it is a context manager, and is closed with its
    database."""

    def __init__(self, handle: _streamdb.Handle, database: "Database") -> None:
        self._h = handle
        self.database = database
        _bind_fast_get(self)

    def __repr__(self) -> str:
        return "<streamdb.Snapshot of %r%s>" % (self.database.path,
                                                 " closed" if self.closed else "")


class Database(_Reader):
    """An open StreamDb database.

    ``Database(path, **config)`` opens (creating if needed) the file at path.
    Config keywords: page_size, max_db_size, max_document_size,
    page_cache_size, versions_to_keep, use_mmap, use_compression,
    encryption_key, quick_mode, read_only (and create, file_mode,
    wal_autocheckpoint, sync_commits).  use_compression and encryption_key
    raise UnsupportedError while the core does not implement them.

    One Database may be used from many threads.  It is a context manager;
    :meth:`close` is idempotent.  It also behaves like a mapping from path
    to bytes: ``db[path]``, ``db[path] = data``, ``del db[path]``,
    ``path in db``, ``len(db)`` (the number of documents) and iteration over
    the paths.
    """

    def __init__(self, path: Union[str, bytes, "os.PathLike[str]"], **config: Any) -> None:
        for name in config:
            if name not in CONFIG_OPTIONS:
                raise TypeError("unknown config option %r (expected one of %s)"
                                % (name, ", ".join(CONFIG_OPTIONS)))
        key = config.get("encryption_key")
        if key is not None and not isinstance(key, (bytes, bytearray, memoryview)):
            raise TypeError("encryption_key must be bytes")
        self.path = os.fspath(path)
        self._h = _streamdb.open(self.path, config)
        _bind_fast_get(self)

    def __repr__(self) -> str:
        return "<streamdb.Database %r%s>" % (self.path, " closed" if self.closed else "")

    # ---- writing --------------------------------------------------------
    def write_document(self, path: PathLike,
                       data: Union[bytes, bytearray, memoryview, BinaryIO, Iterable[bytes]],
                       *, compress: Optional[bool] = None) -> uuid.UUID:
        """Write data as a new version of the document at path; return the
        document's id.

        data is a bytes-like object, a binary file object (read in 1 MiB
        chunks through the streaming writer, never loaded whole), or an
        iterable of bytes-like chunks.  Nothing is visible until the whole
        document is written; on any error nothing is written.

        compress: None follows the database's use_compression; True or False
        overrides it for this document (UnsupportedError when the core was
        built without compression).
        """
        if isinstance(data, str):
            raise TypeError("a document is bytes, not str (encode it first)")
        try:
            view = memoryview(data)  # type: ignore[arg-type,unused-ignore]
        except TypeError:
            view = None
        if view is not None:
            with view:
                if compress is None:
                    return uuid.UUID(bytes=self._h.write_document(path, view))
                return self._write_chunks(path, iter((view,)), compress)
        if hasattr(data, "readinto") or hasattr(data, "read"):
            return self._write_chunks(path, _file_chunks(data), compress)
        try:
            chunks = iter(data)  # type: ignore[call-overload,unused-ignore]
        except TypeError:
            raise TypeError("data must be bytes-like, a binary file or an iterable of bytes, "
                            "not %s" % type(data).__name__) from None
        return self._write_chunks(path, chunks, compress)

    def _write_chunks(self, path: PathLike, chunks: Iterator[Any],
                      compress: Optional[bool] = None) -> uuid.UUID:
        w = self._h.writer(path)
        try:
            if compress is not None:
                w.set_compression(bool(compress))
            for chunk in chunks:
                if isinstance(chunk, str):
                    raise TypeError("document chunks must be bytes, not str")
                if len(memoryview(chunk)):
                    w.write(chunk)
            return uuid.UUID(bytes=w.commit())
        finally:
            w.close()  # aborts unless committed

    def __setitem__(self, path: PathLike, data: Any) -> None:
        self.write_document(path, data)

    def __delitem__(self, path: PathLike) -> None:
        self._h.delete(path)

    def delete(self, path: PathLike) -> None:
        """Unbind path; the document is removed when no path is left."""
        self._h.delete(path)

    def delete_by_id(self, doc_id: IdLike) -> None:
        """Remove the document and all its paths."""
        self._h.delete_by_id(_id_bytes(doc_id))

    def bind_to_path(self, doc_id: IdLike, path: PathLike) -> None:
        """Bind another path to the document (ExistsError if path is bound to
        another document)."""
        self._h.bind_to_path(_id_bytes(doc_id), path)

    def unbind_path(self, doc_id: IdLike, path: PathLike) -> None:
        """Unbind path from the document; the document is removed when no
        path is left."""
        self._h.unbind_path(_id_bytes(doc_id), path)

    # ---- transactions ---------------------------------------------------
    def begin_transaction(self) -> None:
        """Start a transaction owned by the calling thread (nested begin
        raises TransactionError)."""
        self._h.begin_transaction()

    def commit_transaction(self) -> None:
        """Commit the transaction: every write in it becomes visible and
        durable at once."""
        self._h.commit_transaction()

    def rollback_transaction(self) -> None:
        """Drop every write of the transaction."""
        self._h.rollback_transaction()

    @property
    def in_transaction(self) -> bool:
        """True between begin_transaction and commit/rollback."""
        return self._h.in_transaction

    @contextlib.contextmanager
    def transaction(self) -> Iterator["Database"]:
        """``with db.transaction():`` commits on success and rolls back when
        the block raises."""
        h = self._h
        h.begin_transaction()
        try:
            yield self
        except BaseException:
            if h.in_transaction:
                try:
                    h.rollback_transaction()
                except ClosedError:
                    pass  # closing the database rolled it back
            raise
        try:
            h.commit_transaction()
        except ClosedError:
            # the database is being closed by another thread: end the
            # transaction so that the close can finish, then report it
            if h.in_transaction:
                try:
                    h.rollback_transaction()
                except ClosedError:
                    pass
            raise

    # ---- snapshots and maintenance --------------------------------------
    def snapshot(self) -> Snapshot:
        """A read-only :class:`Snapshot` of the database as it is now."""
        return Snapshot(self._h.snapshot(), self)

    def flush(self) -> None:
        """Make everything committed durable and checkpoint the log."""
        self._h.flush()

    def set_quick_mode(self, on: bool = True) -> None:
        """Skip (on=True) or do (on=False) CRC checks on reads."""
        self._h.set_quick_mode(bool(on))

    def compact(self) -> None:
        """Checkpoint, then give free pages at the end of the file back."""
        self._h.compact()


def _file_chunks(f: Any, size: int = DEFAULT_CHUNK_SIZE) -> Iterator[Union[bytes, memoryview]]:
    """Chunks of a binary file object, reusing one buffer when the file has
    readinto()."""
    readinto = getattr(f, "readinto", None)
    if readinto is not None:
        buf = bytearray(size)
        view = memoryview(buf)
        while True:
            n = readinto(view)
            if n is None:  # non-blocking file with no data yet
                continue
            if n == 0:
                return
            yield view[:n]
    else:
        while True:
            chunk = f.read(size)
            if chunk is None:
                continue
            if not chunk:
                return
            if isinstance(chunk, str):
                raise TypeError("the file must be opened in binary mode")
            yield chunk


def open(path: Union[str, bytes, "os.PathLike[str]"], **config: Any) -> Database:  # noqa: A001
    """Open (or create) the database at path; same as ``Database(path, **config)``."""
    return Database(path, **config)

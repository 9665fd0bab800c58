"""The exceptions of the streamdb package, one class per STREAMDB_ERR_* code.

Every exception raised for a failure of the core is an instance of
:class:`Error` (or a subclass) and carries the core's return code in
``.code`` and the core's message (``streamdb_errmsg``) in ``.message``.

Some classes also derive from a built-in exception so that ordinary Python
code catches them naturally: :class:`NotFoundError` is a :class:`KeyError`,
:class:`InvalidInputError` and :class:`DocumentTooLargeError` are
:class:`ValueError`, :class:`StreamDbIOError` is an :class:`OSError` (with
``.errno`` when the core's message names one).

This module must not import the C extension: the extension imports it.
"""

from __future__ import annotations

import errno as _errno
import os as _os
import re as _re
from typing import Dict, Optional, Type

__all__ = [
    "Error",
    "StreamDbIOError",
    "NotFoundError",
    "InvalidInputError",
    "InvalidPathError",
    "InternalError",
    "TransactionError",
    "CorruptionError",
    "CorruptError",
    "LockedError",
    "DocumentTooLargeError",
    "TooLargeError",
    "FullError",
    "ClosedError",
    "OutOfMemoryError",
    "BusyError",
    "ReadOnlyError",
    "IncompatibleError",
    "NotADatabaseError",
    "FatalError",
    "CryptoError",
    "UnsupportedError",
    "ExistsError",
    "CancelledError",
    "WouldBlockError",
    "ERROR_CLASSES",
]


class Error(Exception):
    """Base class of every StreamDb failure.

    Attributes:
        code: the negative ``STREAMDB_ERR_*`` return code of the core.
        message: the core's description of the failure (``streamdb_errmsg``).
    """

    code: int = 0
    default_code: int = 0

    def __init__(self, message: str = "", code: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = self.default_code if code is None else code

    def __str__(self) -> str:
        return self.message


class StreamDbIOError(Error, OSError):
    """A system call failed (``STREAMDB_ERR_IO``).  Also an :class:`OSError`;
    ``errno`` is set when the core's message names the system error."""

    default_code = -1

    def __init__(self, message: str = "", code: Optional[int] = None,
                 errno: Optional[int] = None) -> None:
        if errno is not None:
            OSError.__init__(self, errno, message)
        else:
            OSError.__init__(self, message)
        self.message = message
        self.code = self.default_code if code is None else code

    def __str__(self) -> str:
        return self.message


class NotFoundError(Error, KeyError):
    """No such path, id or version (``STREAMDB_ERR_NOT_FOUND``).  Also a
    :class:`KeyError`, so ``db[path]`` behaves like a mapping."""

    default_code = -2

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class InvalidInputError(Error, ValueError):
    """A bad argument: a malformed path, size or configuration value
    (``STREAMDB_ERR_INVALID``).  Also a :class:`ValueError`."""

    default_code = -3


#: The name issue 4 uses: a malformed path is the most common invalid input.
InvalidPathError = InvalidInputError


class InternalError(Error):
    """A bug in StreamDb (``STREAMDB_ERR_INTERNAL``)."""

    default_code = -4


class TransactionError(Error):
    """No transaction, not its owner, or already finished
    (``STREAMDB_ERR_TRANSACTION``)."""

    default_code = -5


class CorruptionError(Error):
    """A checksum or structure check failed (``STREAMDB_ERR_CORRUPT``)."""

    default_code = -6


CorruptError = CorruptionError


class LockedError(Error):
    """Another process has the database open for writing
    (``STREAMDB_ERR_LOCKED``)."""

    default_code = -7


class DocumentTooLargeError(Error, ValueError):
    """The document is larger than ``max_document_size``
    (``STREAMDB_ERR_TOO_LARGE``).  Also a :class:`ValueError`."""

    default_code = -8


TooLargeError = DocumentTooLargeError


class FullError(Error):
    """``max_db_size`` reached, or the disk is full (``STREAMDB_ERR_FULL``)."""

    default_code = -9


class ClosedError(Error):
    """The database (or the stream, cursor, writer or snapshot) is closed, or
    the handle was opened by another process before a ``fork()``
    (``STREAMDB_ERR_CLOSED``)."""

    default_code = -10


class OutOfMemoryError(Error, MemoryError):
    """An allocation failed in the core (``STREAMDB_ERR_NOMEM``)."""

    default_code = -11


class BusyError(Error):
    """Close refused while streams, cursors or snapshots are open
    (``STREAMDB_ERR_BUSY``)."""

    default_code = -12


class ReadOnlyError(Error):
    """A write on a read-only database or a snapshot
    (``STREAMDB_ERR_READONLY``)."""

    default_code = -13


class IncompatibleError(Error):
    """The file was made with another page size or format version
    (``STREAMDB_ERR_INCOMPATIBLE``)."""

    default_code = -14


class NotADatabaseError(Error):
    """The file is not a StreamDb database (``STREAMDB_ERR_NOT_A_DB``)."""

    default_code = -15


class FatalError(Error):
    """An earlier write or sync failed: close and reopen the database
    (``STREAMDB_ERR_FATAL``)."""

    default_code = -16


class CryptoError(Error):
    """Wrong encryption key or failed authentication
    (``STREAMDB_ERR_CRYPTO``)."""

    default_code = -17


class UnsupportedError(Error, NotImplementedError):
    """The feature is not built into this library, e.g. compression or
    encryption for now (``STREAMDB_ERR_UNSUPPORTED``)."""

    default_code = -18


class ExistsError(Error):
    """The path is already bound to another document
    (``STREAMDB_ERR_EXISTS``)."""

    default_code = -19


class CancelledError(Error):
    """An asynchronous request was cancelled (``STREAMDB_ERR_CANCELLED``)."""

    default_code = -20


class WouldBlockError(Error):
    """A read asked to be served from memory only needs the disk
    (``STREAMDB_ERR_WOULDBLOCK``).  The binding retries such reads itself, so
    it reaches Python only from code that calls the C API directly."""

    default_code = -21


#: The one table from return code to exception class.
ERROR_CLASSES: Dict[int, Type[Error]] = {
    -1: StreamDbIOError,
    -2: NotFoundError,
    -3: InvalidInputError,
    -4: InternalError,
    -5: TransactionError,
    -6: CorruptionError,
    -7: LockedError,
    -8: DocumentTooLargeError,
    -9: FullError,
    -10: ClosedError,
    -11: OutOfMemoryError,
    -12: BusyError,
    -13: ReadOnlyError,
    -14: IncompatibleError,
    -15: NotADatabaseError,
    -16: FatalError,
    -17: CryptoError,
    -18: UnsupportedError,
    -19: ExistsError,
    -20: CancelledError,
    -21: WouldBlockError,
}

_ERRNO_NUMBER = _re.compile(r"errno[ =:]*(\d+)", _re.IGNORECASE)
_ERRNO_NAME = _re.compile(r"\b(E[A-Z0-9]{2,})\b")


def _find_errno(message: str) -> Optional[int]:
    """The errno named in a core message ("errno 13", "EACCES" or the text of
    strerror), or None."""
    m = _ERRNO_NUMBER.search(message)
    if m:
        return int(m.group(1))
    for name in _ERRNO_NAME.findall(message):
        value = getattr(_errno, name, None)
        if isinstance(value, int):
            return value
    best: Optional[int] = None
    best_len = 0
    for code in sorted(_errno.errorcode):
        text = _os.strerror(code)
        if text and len(text) > best_len and text in message:
            best, best_len = code, len(text)
    return best


def _from_code(code: int, message: str) -> Error:
    """Build the exception for a core return code (called by the C module)."""
    cls = ERROR_CLASSES.get(code, Error)
    if cls is StreamDbIOError:
        return StreamDbIOError(message, code, _find_errno(message))
    return cls(message, code)

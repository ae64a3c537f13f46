"""diskcache, trusting nothing it reads: the encodings of the step cache's two stores.

A cache folder restored by actions/cache or shared between projects may have been written by
anyone (SPEC, Cache). So no value or key is unpickled; a file a row names is opened or removed
only when it is one diskcache itself would have made inside the store, and never through a
symlink; no setting is taken from a store's own Settings table; no symlink in a store's folder is
followed. A row that breaks these rules is refused (`RefusedRowError`), never loaded.
"""

# str paths and os calls on purpose: diskcache names its files as str paths, checked here as such.
# ruff: noqa: PTH107, PTH118, PTH120

from __future__ import annotations

import errno
import json
import os
import re
import stat
import zlib
from contextlib import suppress
from functools import partial
from typing import IO, TYPE_CHECKING, Any

import diskcache
from diskcache.core import DEFAULT_SETTINGS, ENOVAL, METADATA, MODE_BINARY, MODE_PICKLE, MODE_RAW, MODE_TEXT

from ci_orchestrator.output.untrusted import MAX_FILE_BYTES, NotJson, parse_json

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

Store = diskcache.Cache

# The names `diskcache.Disk.filename` gives value files: two folder levels and 28 hex digits.
_VALUE_FILE = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{28}\.val")
_CHUNK = 4 * 1024 * 1024
# The files of a store that SQLite opens for writing: a symlink among them would make it write elsewhere.
_DATABASE_FILES = ("cache.db", "cache.db-wal", "cache.db-shm")


class RefusedRowError(ValueError):
    """A row of a store that breaks the rules (a pickle, a file outside the store): never loaded."""


class _CheckedDisk(diskcache.Disk):  # type: ignore[misc]  # diskcache has no type hints
    """diskcache's Disk, trusting nothing a row says.

    A value is raw (in the row) or a file; a file is opened or removed only when its name is one
    `filename` makes and no symlink leads it out of the store; a pickle is refused, never
    loaded. Keys are encoded by the subclasses; one they cannot decode comes back as None.
    """

    def __init__(self, directory: str, min_file_size: int = 0, **_ignored: Any) -> None:
        # `_ignored`: every `disk_*` row of the store's Settings table is passed here by diskcache.
        super().__init__(directory, min_file_size=min_file_size)
        self._real = os.path.realpath(directory)

    def store(self, value: Any, read: bool, key: Any = diskcache.UNKNOWN) -> Any:
        if read:
            # diskcache's own copy leaves a partial file behind when reading fails (a store
            # cancelled by an interrupt): never part of a row, but never removed either.
            filename, full_path = self.filename(key, value)
            try:
                size = self._write(full_path, iter(partial(value.read, _CHUNK), b""), "xb")
            except BaseException:
                with suppress(OSError):
                    os.remove(full_path)
                raise
            return size, MODE_BINARY, filename, None
        if not isinstance(value, str | bytes):
            raise TypeError(f"cache values are text or bytes, not {type(value).__name__}")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == MODE_RAW and not read:
            return bytes(value) if isinstance(value, memoryview) else value
        if mode not in (MODE_BINARY, MODE_TEXT):
            kind = "a pickled value" if mode == MODE_PICKLE else f"a value of unknown kind {mode!r}"
            raise RefusedRowError(kind)
        handle = self._open(filename)
        if read:
            return handle
        with handle:
            content = handle.read(MAX_FILE_BYTES + 1)
        if len(content) > MAX_FILE_BYTES:  # what the tool stores so is far smaller: the memo, an entry
            raise RefusedRowError(f"a value of more than {MAX_FILE_BYTES >> 20} MiB")
        try:
            return content.decode("utf-8") if mode == MODE_TEXT else content
        except UnicodeDecodeError:
            raise RefusedRowError("a text value that is not UTF-8") from None

    def remove(self, file_path: Any) -> None:
        # A name it would refuse to open is not the store's to remove: the row alone goes.
        with suppress(RefusedRowError):
            self._checked(file_path)
            super().remove(file_path)

    def _checked(self, filename: Any) -> str:
        """The full path of a value file named by a row, or RefusedRowError."""
        if not isinstance(filename, str) or not _VALUE_FILE.fullmatch(filename.replace(os.sep, "/")):
            raise RefusedRowError(f"a value file named {filename!r}, not one of the cache's own")
        folder = os.path.dirname(filename)
        if os.path.realpath(os.path.join(self._directory, folder)) != os.path.join(self._real, folder):
            raise RefusedRowError(f"the value file {filename!r} leads out of the cache through a symlink")
        return os.path.join(self._directory, filename)

    def _open(self, filename: Any) -> IO[bytes]:
        full_path = self._checked(filename)
        try:
            # Not following a symlink, and not waiting on a FIFO planted in its place.
            descriptor = os.open(full_path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise RefusedRowError(f"the value file {filename!r} is a symlink") from None
            raise  # gone meanwhile: diskcache reads it as a miss
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise RefusedRowError(f"the value file {filename!r} is not a regular file")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")


class JSONTextDisk(_CheckedDisk):
    """The index's encoding: keys are text and values JSON text, stored as they are.

    diskcache's JSONDisk zlib-compresses every key, and each compression allocates and faults in
    about 256 KiB of fresh memory: some 50 µs per lookup in a short-lived process, more than the
    lookup itself. The index's keys and values are small, so nothing is compressed.
    """

    def put(self, key: Any) -> tuple[Any, bool]:
        if not isinstance(key, str):
            raise TypeError(f"index keys are text, not {type(key).__name__}")
        return super().put(key)  # type: ignore[no-any-return]

    def get(self, key: Any, raw: bool) -> Any:
        return key if raw and isinstance(key, str) else None

    def store(self, value: Any, read: bool, key: Any = diskcache.UNKNOWN) -> Any:
        return super().store(json.dumps(value), read, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        text = super().fetch(mode, filename, value, read)
        if not isinstance(text, str):
            raise RefusedRowError("a value that is not JSON text")
        try:
            # Bytes that are not UTF-8 (a log, a file name) are kept as `to_json` wrote them.
            return parse_json(text, escaped_bytes=True)
        except NotJson as error:
            raise RefusedRowError(f"a value that is not JSON ({error.message})") from None


class ArchiveDisk(_CheckedDisk):
    """The archive store's encoding: keys as diskcache's JSONDisk writes them (zlib-compressed
    JSON), so results stored by earlier versions are still found; values are files, read as such."""

    def put(self, key: Any) -> tuple[Any, bool]:
        return super().put(zlib.compress(json.dumps(key).encode(), 1))  # type: ignore[no-any-return]

    def get(self, key: Any, raw: bool) -> Any:
        if not raw or not isinstance(key, bytes):
            return None
        try:
            name = parse_json(zlib.decompress(key).decode("utf-8"), escaped_bytes=True)
        except (ValueError, zlib.error):  # NotJson and UnicodeDecodeError are ValueErrors
            return None
        return name if isinstance(name, str) else None

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode != MODE_BINARY:
            kind = "a pickled archive" if mode == MODE_PICKLE else "an archive that is not a file"
            raise RefusedRowError(kind)
        return super().fetch(mode, filename, value, read)


# Every setting diskcache knows, given at each opening: none is then taken from the store's table.
_SETTINGS = {name: value for name, value in DEFAULT_SETTINGS.items() if name != "disk_pickle_protocol"}
_OWN_SETTINGS = frozenset(DEFAULT_SETTINGS) | frozenset(METADATA)


class _Store(diskcache.Cache):  # type: ignore[misc]  # diskcache has no type hints
    """A diskcache Cache that applies no setting planted in its database's Settings table.

    diskcache applies every row of that table at opening: a `sqlite_*` row runs a PRAGMA, any
    other sets an attribute (`_directory` would point it at another database).
    """

    def reset(self, key: str, value: Any = ENOVAL, update: bool = True) -> Any:
        if key not in _OWN_SETTINGS:
            return value
        return super().reset(key, value, update)


def open_store(folder: Path, disk: type[_CheckedDisk], **settings: Any) -> diskcache.Cache:
    """The diskcache store in `folder` (made when missing); OSError when a symlink is in the way."""
    for path in (folder, *(folder / name for name in _DATABASE_FILES)):
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode):
            raise OSError(errno.ELOOP, "a symlink, not followed", str(path))
    return _Store(str(folder), disk=disk, **{**_SETTINGS, **settings})


def names(store: diskcache.Cache) -> Iterator[str]:
    """The keys of a store; those its Disk could not decode (None: a pickle, junk) are left out."""
    return (name for name in store.iterkeys() if isinstance(name, str))

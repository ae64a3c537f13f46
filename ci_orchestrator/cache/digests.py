"""Content digests of workspace files: glob expansion and streaming hashes, memoised by file signature.

A file is read only when its signature (size, mtime_ns, ctime_ns, inode) is new: digests are kept
for the run in memory and across runs in a `MemoStore` the caller provides. The change time is in
the signature because the others can be put back (`cp -p`, `touch -r` of a same-size file into the
same inode); the change time cannot be set. Glob results are kept for the
run too, and trusted again only while none of the directories walked has changed.
"""

# str paths and os calls on purpose: this runs once per input file, where pathlib costs more than the work.
# ruff: noqa: PTH116, PTH118, PTH123

from __future__ import annotations

import os
import posixpath
import re
import stat
import time

# hashlib's blake2b is this one; importing hashlib would also load OpenSSL's hashes (~3 ms of start-up).
from _blake2 import blake2b
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence
    from pathlib import Path

# Filesystems stamp times coarsely (ext4: a clock tick, FAT: 2 s): a file changed within this window
# after it was hashed may keep its times, so such digests are not kept across runs.
RACY_WINDOW_NS = 2_000_000_000

# Never walked into by a wildcard: version control internals and the tool's own logs and cache,
# which change on every run and would make every key new. A literal input path still reaches them.
SKIPPED_NAMES = frozenset({".git", ".ci-orchestrator"})

_MAGIC = re.compile(r"[*?\[]")


class MemoStore(Protocol):
    """Where digests outlive the run: absolute path -> (size, mtime_ns, ctime_ns, inode, digest)."""

    def load(self, path: str) -> tuple[int, int, int, int, str] | None: ...

    def save(self, records: Mapping[str, tuple[int, int, int, int, str]]) -> None: ...


_CHUNK = 64 * 1024  # below malloc's mmap threshold: no fresh pages to fault in for every file


def new_hash() -> blake2b:
    return blake2b(digest_size=32)


def digest_bytes(data: bytes) -> str:
    digest = new_hash()
    digest.update(data)
    return digest.hexdigest()


def digest_file(path: str | Path) -> str:
    """The blake2b digest of a file's content, read in chunks."""
    with open(path, "rb") as handle:
        digest = new_hash()
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        while size := handle.readinto(buffer):
            digest.update(view[:size])
        return digest.hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Scope:
    """What an `outputs` glob may name (`FileDigests.covers`): `exact`, a literal path; every file
    under `prefix` (root-relative, `start` on disk) that `matcher` matches, or all when None."""

    exact: str | None
    prefix: str
    start: str  # empty: the glob leads out of the root and covers nothing
    matcher: re.Pattern[str] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Walk:
    """One glob's matches and the directories listed to find them (path -> mtime_ns)."""

    files: tuple[str, ...]
    directories: Mapping[str, int]


class FileDigests:
    """Expands input globs under a root and digests the files they match."""

    def __init__(self, root: Path, *, memo: MemoStore | None = None, skip: Iterable[Path] = ()) -> None:
        self.root = os.path.realpath(root)
        self._memo = memo
        self._skip = frozenset(os.path.realpath(path) for path in skip)
        # A folder to skip that a walk could reach: inside the root, not already under a skipped name.
        self._skip_inside = any(
            (inside := _inside(path, self.root)) is not None and SKIPPED_NAMES.isdisjoint(inside.split("/"))
            for path in self._skip
        )
        self._known: dict[str, tuple[tuple[int, int, int, int], str]] = {}
        self._walks: dict[str, _Walk] = {}
        self._pending: dict[str, tuple[int, int, int, int, str]] = {}
        self._scopes: dict[str, _Scope] = {}  # outputs glob -> what it may name, for `covers`

    def expand(self, pattern: str) -> tuple[str, ...]:
        """The files a glob matches, as sorted root-relative POSIX paths, normalised.

        `**` matches any number of directories (or, last, every file below). A directory matched,
        by a literal path or a wildcard, stands for every file below it (GitHub's `hashFiles`).
        The pattern is normalised first (see `relative`): a path leading out of the root comes
        back as `../...`, or absolute.
        """
        pattern = self.relative(pattern)
        if not _MAGIC.search(pattern):
            return self._literal(pattern)
        walk = self._walks.get(pattern)
        if walk is None or not _unchanged(walk.directories):
            walk = self._walk(pattern)
            self._walks[pattern] = walk
        return walk.files

    def covers(self, pattern: str, name: str) -> bool:
        """Whether `expand(pattern)` may find `name` (a normal root-relative POSIX path), judged
        from the names alone: what a stored result may hold, whatever a cache says it holds.

        As `expand` walks: a wildcard or a directory never reaches into `.git`, the tool's own
        folders, or the folders `skip` names; only a literal path names a file in them.
        """
        scope = self._scopes.get(pattern)
        if scope is None:
            scope = self._scopes[pattern] = self._scope(pattern)
        if name == scope.exact:
            return True
        if not scope.start or not name.startswith(scope.prefix):
            return False
        below = name[len(scope.prefix) :]
        if "/" in below:
            folders = below.split("/")[:-1]  # walked through, below the start
            if not SKIPPED_NAMES.isdisjoint(folders):
                return False
            start, depths = scope.start, range(1, len(folders) + 1)
            if self._skip_inside and any(os.path.join(start, *folders[:d]) in self._skip for d in depths):
                return False
        if scope.matcher is None or scope.matcher.fullmatch(below):
            return True  # under a literal directory (every file below it), or matched itself
        # A matched folder above it stands for every file below.
        parts = below.split("/")
        return any(scope.matcher.fullmatch("/".join(parts[:depth])) for depth in range(1, len(parts)))

    def _scope(self, pattern: str) -> _Scope:
        pattern = self.relative(pattern)
        if pattern == ".." or pattern.startswith(("../", "/")):
            return _Scope(exact=None, prefix="", start="", matcher=None)  # leads out: covers nothing
        if not _MAGIC.search(pattern):
            base, matcher, exact = pattern, None, pattern
        else:
            base, rest = _split(pattern)
            matcher, exact = _compile(rest), None
        if base in ("", "."):
            return _Scope(exact=exact, prefix="", start=self.root, matcher=matcher)
        return _Scope(exact=exact, prefix=base + "/", start=os.path.join(self.root, base), matcher=matcher)

    def digests(self, paths: Iterable[str]) -> dict[str, str]:
        """root-relative path -> content digest; a file that vanished meanwhile is left out."""
        found: dict[str, str] = {}
        for relative in paths:
            digest = self.digest(relative)
            if digest is not None:
                found[relative] = digest
        return found

    def digests_of(self, pattern: str) -> dict[str, str]:
        """The files a glob matches (as `expand` finds them) -> their content digests."""
        normal = self.relative(pattern)
        if not _MAGIC.search(normal):
            path = os.path.join(self.root, normal)
            info = _stat(path)
            if info is not None and stat.S_ISREG(info.st_mode):  # one stat, where expand and digest take two
                return {normal: self._digest(path, info)}
        return self.digests(self.expand(normal))

    def relative(self, pattern: str) -> str:
        """The pattern as a root-relative POSIX path, normalised lexically (`sub/../a` is `a`, `./a`
        is `a`); an absolute one that names a place under the root (or under a symlink to it)
        made relative. One that leads out stays `../...` or absolute.
        """
        if os.sep == "\\":
            pattern = pattern.replace("\\", "/")
        normal = posixpath.normpath(pattern) if pattern else "."
        if not normal.startswith("/"):
            return normal
        inside = _inside(normal, self.root)
        if inside is None:
            # Written through a symlinked path: its folders' real place decides.
            segments = normal.split("/")
            literal = next((i for i, part in enumerate(segments) if _MAGIC.search(part)), len(segments) - 1)
            folder = os.path.realpath("/".join(segments[:literal]) or "/")
            inside = _inside(posixpath.join(folder, *segments[literal:]), self.root)
        return normal if inside is None else inside

    def digest(self, relative: str) -> str | None:
        path = os.path.join(self.root, relative)
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return None
        return self._digest(path, info)

    def state(self, relative: str) -> tuple[str, int] | None:
        """(content digest, permission bits) of a regular file, from one stat; None when there is none."""
        path = os.path.join(self.root, relative)
        info = _stat(path)
        if info is None or not stat.S_ISREG(info.st_mode):
            return None
        return self._digest(path, info), info.st_mode & 0o777

    def _digest(self, path: str, info: os.stat_result) -> str:
        signature = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
        known = self._known.get(path)
        if known is not None and known[0] == signature:
            return known[1]
        stored = self._memo.load(path) if self._memo is not None else None
        if stored is not None and stored[:4] == signature:
            self._known[path] = (signature, stored[4])
            return stored[4]
        before = time.time_ns()
        digest = digest_file(path)
        self._keep(path, info, digest, before)
        return digest

    def learn(self, relative: str, info: os.stat_result, digest: str, *, hashed_at: int) -> None:
        """The digest of a file read elsewhere (archived as an output), as `digest` would have
        found it: `info` is its status when opened, `hashed_at` when its reading began."""
        self._keep(os.path.join(self.root, relative), info, digest, hashed_at)

    def _keep(self, path: str, info: os.stat_result, digest: str, before: int) -> None:
        signature = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
        # The change time is never before the modification time, and cannot be set back.
        if before - info.st_ctime_ns > RACY_WINDOW_NS:
            self._pending[path] = (*signature, digest)
        self._known[path] = (signature, digest)

    def flush(self) -> None:
        """Keep the digests computed since the last flush for later runs."""
        if self._pending and self._memo is not None:
            pending, self._pending = self._pending, {}
            self._memo.save(pending)

    def forget(self) -> None:
        self._known.clear()
        self._walks.clear()
        self._pending.clear()

    # --- walking ---------------------------------------------------------------------
    def _literal(self, pattern: str) -> tuple[str, ...]:
        # The root itself as it is spelt in `skip`: `root/.` would let the walk into a skipped folder.
        path = self.root if pattern == "." else os.path.join(self.root, pattern)
        info = _stat(path)
        if info is not None and stat.S_ISREG(info.st_mode):
            return (pattern,)
        if info is not None and stat.S_ISDIR(info.st_mode):
            found = [
                posixpath.join(pattern, below) if pattern != "." else below
                for below in self._files_below(path, None, {})
            ]
            return tuple(sorted(found))
        return ()

    def _walk(self, pattern: str) -> _Walk:
        base, rest = _split(pattern)
        depth = None if "**" in rest else len(rest)
        matcher = _compile(rest)
        directories: dict[str, int] = {}
        start = os.path.join(self.root, base) if base else self.root
        found = [
            posixpath.join(base, below) if base else below
            for below in self._files_below(start, depth, directories, matcher=matcher)
        ]
        return _Walk(files=tuple(sorted(found)), directories=directories)

    def _files_below(
        self,
        start: str,
        depth: int | None,
        directories: dict[str, int],
        *,
        matcher: re.Pattern[str] | None = None,
    ) -> Iterator[str]:
        """Relative POSIX paths of the files under `start`, down to `depth` levels (None: all).

        With a `matcher`, only the files it matches and every file below a directory it matches.
        """
        # (directory, its relative prefix, its level, whether everything below it is wanted)
        stack: list[tuple[str, str, int, bool]] = [(start, "", 1, matcher is None)]
        while stack:
            directory, prefix, level, whole = stack.pop()
            try:
                directories[directory] = os.stat(directory).st_mtime_ns
                entries = list(os.scandir(directory))
            except (FileNotFoundError, NotADirectoryError):
                # Looked at again next time: a folder missing now may be made by a step (an
                # output found missing after one instance may be there after the next).
                directories[directory] = -1
                continue
            for entry in entries:
                relative = prefix + entry.name
                folder = entry.is_dir(follow_symlinks=False)
                if folder and self._skipped(entry):
                    continue
                wanted = whole or (matcher is not None and matcher.fullmatch(relative) is not None)
                if folder:
                    if wanted or depth is None or level < depth:
                        stack.append((entry.path, relative + "/", level + 1, wanted))
                elif wanted and entry.is_file():  # follows a symlink to a file
                    yield relative

    def _skipped(self, entry: os.DirEntry[str]) -> bool:
        return entry.name in SKIPPED_NAMES or (bool(self._skip) and entry.path in self._skip)


def is_glob(pattern: str) -> bool:
    """Whether a pattern has a wildcard (`*`, `?`, `[`) rather than naming one path."""
    return _MAGIC.search(pattern) is not None


def literal_base(pattern: str) -> str:
    """The folders a normal glob starts with before its first wildcard (empty when none); a
    pattern without one is its own base."""
    return _split(pattern)[0] if is_glob(pattern) else pattern


def _inside(path: str, root: str) -> str | None:
    """`path` relative to `root` when it is `root` or under it (both absolute and normal), else None."""
    if path == root:
        return "."
    prefix = root.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else None


def _stat(path: str) -> os.stat_result | None:
    """The file's status, following symlinks; None where os.path.isfile would say False."""
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def _unchanged(directories: Mapping[str, int]) -> bool:
    for directory, mtime_ns in directories.items():
        try:
            if os.stat(directory).st_mtime_ns != mtime_ns:
                return False
        except OSError:
            return False
    return True


def _split(pattern: str) -> tuple[str, list[str]]:
    """A glob's leading literal folders (joined; empty when none) and its segments from the first
    wildcard on."""
    segments = pattern.split("/")
    literal = 0
    while literal < len(segments) - 1 and not _MAGIC.search(segments[literal]):
        literal += 1
    return "/".join(segments[:literal]), segments[literal:]


def _compile(segments: Sequence[str]) -> re.Pattern[str]:
    """A regex over relative POSIX paths for glob segments: `*`, `?`, `[...]`, `**`."""
    parts: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            parts.append(".+" if last else "(?:[^/]+/)*")
            continue
        parts.append(_translate(segment) + ("" if last else "/"))
    return re.compile("".join(parts))


def _translate(segment: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(segment):
        char = segment[index]
        index += 1
        if char == "*":
            while index < len(segment) and segment[index] == "*":
                index += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (close := segment.find("]", index + 1)) != -1:
            body = segment[index:close]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            out.append(("[^/" if negate else "[") + body.replace("\\", "\\\\") + "]")
            index = close + 1
        else:
            out.append(re.escape(char))
    return "".join(out)

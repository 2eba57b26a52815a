"""Input files of a `files` source, read safely: inside the source's root, regular files only, size-capped.

A source folder is untrusted input like the bytes in it. Whatever a folder holds (a
symbolic link to `/etc/passwd`, a link loop, a FIFO as a sidecar, a name that is not
UTF-8, a path past PATH_MAX, a modification time in year 2400), each entry ends as an
input or as an `InputProblem` with a stable reason code, and nothing outside the
source's root is ever opened.

Links inside the root are followed; the check is made twice: when the folder is
listed (`check_entry`, so the run's plan already says what is wrong), and when a file
is opened (`read_confined`, which checks what the open descriptor *is*: a regular
file, located inside the root), so a file swapped for a link or a FIFO in between is
refused too.
"""

from __future__ import annotations

import errno
import os
import stat
import urllib.parse

from normalizers.errors import RejectReason

__all__ = [
    "InputProblem",
    "check_regular",
    "file_uri",
    "inside",
    "read_confined",
    "real_root",
    "resolve_link",
    "safe_name",
    "size_text",
    "valid_mtime_ns",
]

# SQLite stores integers in 64 bits, and no real file was modified before 1678 or
# after 2262 (the range of a signed 64-bit count of nanoseconds).
_MTIME_NS_RANGE = range(-(2**63), 2**63)


class InputProblem(Exception):
    """An input that cannot be read as a document; `reason` is a quarantine reason code."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __reduce__(self) -> tuple[type[InputProblem], tuple[RejectReason, str]]:
        return (InputProblem, (self.reason, self.message))


def real_root(path: str | os.PathLike[str]) -> str:
    """The source root with every symbolic link resolved: what "inside the root" is measured against."""
    return os.path.realpath(path)


def inside(real: str, root: str) -> bool:
    """True when the resolved path `real` is `root` itself or lies below it."""
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def safe_name(path: str) -> str:
    """`path` as valid UTF-8 text: bytes that are not UTF-8 (kept by Python as surrogates) become backslash escapes."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    return path


def file_uri(path: str) -> str:
    """`file://` URI of an absolute path, percent-encoding its bytes (so a name that is not UTF-8 still has one)."""
    return "file://" + urllib.parse.quote(os.fsencode(path))


def valid_mtime_ns(mtime_ns: int) -> bool:
    """True when a modification time fits the state's 64-bit integers."""
    return mtime_ns in _MTIME_NS_RANGE


def size_text(size: int) -> str:
    """A byte count for people: `8.9 MB`, `512 bytes`."""
    if size < 1000:
        return f"{size} bytes"
    value = float(size)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000:
            return f"{value:.1f} {unit}"
    return f"{value / 1000:.1f} TB"


def resolve_link(path: str, root: str, what: str) -> str:
    """Where the symbolic link `path` finally points, if inside `root`; else raise `InputProblem`."""
    try:
        real = os.path.realpath(path, strict=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputProblem(RejectReason.BROKEN_LINK, f"{what} is a symbolic link loop") from None
        if exc.errno == errno.ENOENT:
            target = _readlink(path)
            raise InputProblem(RejectReason.BROKEN_LINK, f"{what} links to {target}, which does not exist") from None
        raise InputProblem(RejectReason.READ_ERROR, f"{what}: {exc.strerror}") from None
    if not inside(real, root):
        raise InputProblem(RejectReason.OUTSIDE_ROOT, f"{what} links to {safe_name(real)}, outside the source folder")
    return real


def _readlink(path: str) -> str:
    try:
        return safe_name(os.readlink(path))
    except OSError:
        return "a missing file"


def check_regular(st: os.stat_result, what: str) -> None:
    """Raise `InputProblem` unless `st` is a regular file (FIFOs, sockets and devices are never opened)."""
    if not stat.S_ISREG(st.st_mode):
        raise InputProblem(RejectReason.NOT_REGULAR_FILE, f"{what} is a {_kind(st.st_mode)}, not a regular file")


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISDIR, "directory"),
    ):
        if test(mode):
            return name
    return "special file"


# O_NONBLOCK: opening a FIFO that slipped past the checks returns at once instead of
# waiting for a writer (the descriptor is then refused as not a regular file);
# O_NOCTTY: a terminal device never becomes the process's controlling terminal.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
_PROC_FD = "/proc/self/fd"


def read_confined(path: str, root: str, expected: int, cap: int, what: str = "file") -> bytes:
    """A regular file's bytes, at most `cap`, if the file really lies inside `root`; else `InputProblem`.

    `expected` (its listed size) sizes the first read: asking for the expected size
    rather than the cap matters, since `read(5_000_001)` on a 5 KB file allocates and
    shrinks a 5 MB buffer (~70 us per file against ~7 us). A file larger than `cap`
    bytes is refused with its real size without being read.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputProblem(RejectReason.BROKEN_LINK, f"{what} is a symbolic link loop") from None
        if exc.errno == errno.ENAMETOOLONG:
            raise InputProblem(RejectReason.PATH_TOO_LONG, f"{what}: path is too long to open") from None
        raise
    try:
        st = os.fstat(fd)
        check_regular(st, what)
        where = _opened_path(fd, path)
        if not inside(where, root):
            where = safe_name(where)
            raise InputProblem(RejectReason.OUTSIDE_ROOT, f"{what} resolves to {where}, outside the source folder")
        if st.st_size >= cap:
            raise InputProblem(
                RejectReason.TOO_LARGE,
                f"{what} is {size_text(st.st_size)} ({st.st_size} bytes), over the source's limit of {cap - 1} bytes",
            )
        return _read_fd(fd, max(expected, st.st_size), cap)
    finally:
        os.close(fd)


def _opened_path(fd: int, path: str) -> str:
    """Where the open descriptor `fd` really is: the kernel's answer on Linux, else the path resolved now."""
    try:
        return os.readlink(f"{_PROC_FD}/{fd}")
    except OSError:
        return os.path.realpath(path)


def _read_fd(fd: int, expected: int, cap: int) -> bytes:
    first = min(expected + 1, cap)
    chunks = [os.read(fd, first)]
    total = len(chunks[0])
    if total < first:
        # A regular file reads short only at its end: skip the read that would
        # return b"" to say so (one syscall of ~8 per article).
        return chunks[0]
    while chunks[-1] and total < cap:
        chunks.append(os.read(fd, min(1 << 20, cap - total)))
        total += len(chunks[-1])
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)

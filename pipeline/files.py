"""Input files of a `files` source, read safely: inside the source's root, regular files only, size-capped.

A source folder is untrusted input like the bytes in it. Whatever a folder holds (a
symbolic link to `/etc/passwd`, a link loop, a FIFO as a sidecar, a name that is not
UTF-8, a path past PATH_MAX, a modification time in year 2400), each entry ends as an
input or as an `InputProblem` with a stable reason code, and nothing outside the
source's root is ever opened.

Links inside the root are followed; the check is made twice: when the folder is
listed (`resolve_link`, so the run's plan already says what is wrong), and when a file
is opened (`read_confined`, which checks what the open descriptor *is*: a regular
file, located inside the root), so a file swapped for a link or a FIFO in between is
refused too.

Whoever writes the folder reads the quarantine reasons, so no reason may depend on what
exists outside the root: a link is resolved within the root one step at a time, and a
link that leads outside is `outside_root` whether or not its target exists; nothing
outside the root is looked at, and no message names where outside it leads. Messages
show names as `printable` text: a file name is untrusted input too.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import urllib.parse
from typing import BinaryIO

from normalizers.common import UNSHOWABLE
from normalizers.errors import RejectReason

__all__ = [
    "InputProblem",
    "check_regular",
    "file_uri",
    "inside",
    "printable",
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


def printable(text: str) -> str:
    r"""`text` safe to put in a message: bytes that are not UTF-8 and control and bidi characters as backslash escapes.

    A terminal runs the escape sequences a file name can hold (`\x1b]0;title\x07` sets the
    window title, `\x1b[2J` clears the screen) when a quarantine message is printed or
    queried, and bidi controls reorder what is shown; escaped, each shows as what it is.
    Escaping twice changes nothing, so a message may pass through here again.
    """
    text = safe_name(text)
    if UNSHOWABLE.search(text) is None:
        return text
    return UNSHOWABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


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


# Links followed in one resolution: the kernel's own limit (Linux MAXSYMLINKS), so a chain
# the system would open is followed, and a loop ends.
_MAX_LINKS = 40


def resolve_link(path: str, root: str, what: str) -> str:
    """Where the symbolic link `path` finally points, if inside `root`; else raise `InputProblem`.

    Containment is decided before existence: the link is resolved one component at a time
    against `root`, looking only at paths inside it (`lstat`, `readlink`), so a link that
    leads outside is `outside_root` whatever exists there, and never tells which paths
    outside the root exist. A step up out of the root, or an absolute target not under
    it, is outside, even on a way back in. A target missing inside the root is
    `broken_link`, as is a loop.
    """
    folder = os.path.realpath(os.path.dirname(path))  # the folder holding the link: listed from the root
    if not inside(folder, root):
        raise _outside(what)
    base = root.rstrip(os.sep) or os.sep
    parts = [p for p in folder[len(base) :].split(os.sep) if p]  # the components below the root
    todo = [os.path.basename(path)]  # components still to resolve, the next one last
    links, missing = 0, False
    while todo:
        name = todo.pop()
        if name in ("", "."):
            continue
        if name == "..":
            if not parts:
                raise _outside(what)
            parts.pop()
            continue
        parts.append(name)
        if missing:
            continue  # below a missing component nothing exists: only where the rest leads still counts
        current = os.path.join(base, *parts)
        try:
            st = os.lstat(current)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                missing = True
                continue
            if exc.errno == errno.ENAMETOOLONG:
                raise InputProblem(RejectReason.PATH_TOO_LONG, f"{what}: the path it links to is too long") from None
            raise InputProblem(RejectReason.READ_ERROR, f"{what}: {exc.strerror}") from None
        if not stat.S_ISLNK(st.st_mode):
            continue
        links += 1
        if links > _MAX_LINKS:
            raise InputProblem(RejectReason.BROKEN_LINK, f"{what} is a symbolic link loop")
        try:
            target = os.readlink(current)
        except OSError as exc:
            raise InputProblem(RejectReason.READ_ERROR, f"{what}: {exc.strerror}") from None
        parts.pop()  # the link's own name: its target takes its place, read from the link's folder
        if os.path.isabs(target):
            if not inside(target, base):  # by its text: where an outside path leads is never looked up
                raise _outside(what)
            parts, target = [], target[len(base) :]
        todo.extend(reversed(target.split(os.sep)))
    if missing:
        raise InputProblem(RejectReason.BROKEN_LINK, f"{what} links to {_readlink(path)}, which does not exist")
    return os.path.join(base, *parts)


def _outside(what: str) -> InputProblem:
    """The one problem of a path leading outside the root: no word of where, nor of whether that exists."""
    return InputProblem(RejectReason.OUTSIDE_ROOT, f"{what} leads outside the source folder")


def _readlink(path: str) -> str:
    try:
        return printable(os.readlink(path))
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
        # Changed since it was listed into a link, or below a folder changed into one: where
        # it leads is told before whether its target exists (see the module docstring).
        if os.path.islink(path) or not inside(os.path.realpath(os.path.dirname(path)), root):
            resolve_link(path, root, what)
        if exc.errno == errno.ELOOP:
            raise InputProblem(RejectReason.BROKEN_LINK, f"{what} is a symbolic link loop") from None
        if exc.errno == errno.ENAMETOOLONG:
            raise InputProblem(RejectReason.PATH_TOO_LONG, f"{what}: path is too long to open") from None
        raise
    try:
        st = os.fstat(fd)
        check_regular(st, what)
        if not inside(_opened_path(fd, path), root):
            raise _outside(what)
        if st.st_size >= cap:
            raise InputProblem(
                RejectReason.TOO_LARGE,
                f"{what} is {size_text(st.st_size)} ({st.st_size} bytes), over the source's limit of {cap - 1} bytes",
            )
        return _read_fd(fd, max(expected, st.st_size), cap)
    finally:
        os.close(fd)


def open_confined(path: str, root: str, what: str = "file") -> BinaryIO:
    """A regular file inside `root`, opened for reading (checked on the open descriptor); else `InputProblem`."""
    fd = os.open(path, _OPEN_FLAGS & ~getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
    try:
        check_regular(os.fstat(fd), what)
        if not inside(_opened_path(fd, path), root):
            raise _outside(what)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


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

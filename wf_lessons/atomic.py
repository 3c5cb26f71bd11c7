"""Writing files atomically: a reader (or a crash, or Ctrl-C) sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

__all__ = ["atomic_path", "torch_save", "writable_folder", "ClaimedError", "CLAIM_SUFFIX", "CLAIM_MAGIC",
    "claim_path", "claim"]


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on success it is flushed to disk and renamed over ``path``.

    On any error (or interruption) the temporary file is removed and ``path`` keeps its previous contents. A write
    that fails (a full disk) raises an ``OSError`` of the same kind that names ``path`` and says so.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        tmp.chmod(0o644)  # mkstemp makes owner-only files
        os.replace(tmp, path)
    except OSError as error:
        message = f"could not write {path}: {error.strerror or error}; {_kept(path)}"
        raise (OSError(error.errno, message) if error.errno is not None else OSError(message)) from error
    finally:
        tmp.unlink(missing_ok=True)


def _kept(path: Path) -> str:
    return "it keeps its previous contents" if path.exists() else "nothing was written"


def torch_save(obj: object, path: Path | str) -> None:
    """``torch.save(obj, path)``, atomically (see :func:`atomic_path`).

    torch's file writer reports a failed write (a full disk) as a ``RuntimeError`` with an internal message; it is
    raised here as an ``OSError`` that names ``path`` and the free space left.
    """
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            torch.save(obj, tmp)
    except RuntimeError as error:
        try:
            free = f"{shutil.disk_usage(path.parent).free / 1e6:,.0f} MB free there"
        except OSError:
            free = "its free space is unknown"
        raise OSError(f"could not write {path}: torch.save failed ({error}); the disk may be full ({free}); "
                      f"{_kept(path)}") from error


def writable_folder(folder: Path | str) -> str | None:
    """Create ``folder`` if needed and try a temporary file in it: ``None`` when it is writable, else the reason."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None


class ClaimedError(FileExistsError):
    """Another live process holds the claim on this name."""


#: The suffix of a claim file: ``<name>.wf-claim``, a name no other tool uses, so that a claim never meets a file
#: of the user's (a ``uv.lock``, a ``poetry.lock``) for a run named ``uv`` or ``poetry``.
CLAIM_SUFFIX = ".wf-claim"
#: The first line of every claim file: how a claim left behind by a dead process is told from a file of the user's.
CLAIM_MAGIC = "wf-lessons run-name claim"


def claim_path(written: Path | str) -> Path:
    """The claim file that guards ``written`` (a run log, a checkpoint): ``<folder>/<stem>.wf-claim``."""
    written = Path(written)
    return written.with_name(written.stem + CLAIM_SUFFIX)


def _read_claim(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode("utf-8", "replace")
    except OSError:
        return ""


def _owner(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("pid "):
            return line[4:].strip()
    return "unknown"


def _claim_text() -> bytes:
    return f"{CLAIM_MAGIC}\npid {os.getpid()}\n".encode()


def _new_claim_file(path: Path) -> int:
    """Create ``path`` exclusively, locked and holding our PID; its open descriptor.

    The claim is written and ``flock``-ed in a temporary file, then hard-linked to ``path``: the link fails when
    anything (a file, a symbolic link, even a dangling one) has that name, follows no link, and never shows a
    half-written claim. Where hard links are not supported, ``path`` is created with ``O_CREAT | O_EXCL |
    O_NOFOLLOW`` and locked before anything is written to it. Raises ``FileExistsError`` when the name is taken.
    """
    import fcntl

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody else knows this file yet
        os.write(fd, _claim_text())
        os.fchmod(fd, 0o644)
        try:
            os.link(tmp, path, follow_symlinks=False)
            return fd
        except FileExistsError:
            raise
        except OSError:  # no hard links on this file system
            pass
        os.close(fd)
        fd = -1
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        # an empty claim file is never taken over (see _take_over_or_refuse), so a blocking lock only waits for a
        # reader that looked at it and let go
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, _claim_text())
        return fd
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
    finally:
        os.unlink(tmp)


def _same_file(fd: int, path: Path) -> bool:
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)


def _take_over_or_refuse(path: Path, what: str) -> int | None:
    """``path`` exists: refuse when it is held or is not a claim file; when it is the claim of a dead process,
    replace it with our own (its descriptor). ``None``: it vanished meanwhile, try again."""
    import fcntl
    import stat

    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
        raise FileExistsError(f"{path} ({what}'s claim file) is {kind}, not a claim of wf_lessons: it was left "
                              "alone; move it away or choose another name")
    try:
        old = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise FileExistsError(f"{path} ({what}'s claim file) cannot be read ({error.strerror}): it was left "
                              "alone; move it away or choose another name") from None
    try:
        text = _read_claim(old)
        try:
            fcntl.flock(old, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ClaimedError(f"{what} is in use by another process (PID {_owner(text)}, claim file {path}); "
                               "wait for it to finish or choose another name") from None
        if not _same_file(old, path):  # its holder removed or replaced it meanwhile
            return None
        text = _read_claim(old)
        if not text.startswith(CLAIM_MAGIC + "\n"):
            raise FileExistsError(f"{path} exists and is not a claim of wf_lessons: it was left alone; move it away "
                                  "or choose another name")
        # the claim of a process that died (kill -9, a crash): replace it with ours while we hold its lock, so that
        # nobody else can take it over meanwhile
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, _claim_text())
            os.fchmod(fd, 0o644)
            os.replace(tmp, path)  # replaces the name, never follows a link
        except BaseException:
            os.close(fd)
            Path(tmp).unlink(missing_ok=True)
            raise
        return fd
    finally:
        os.close(old)


@contextmanager
def claim(lock: Path | str, what: str) -> Iterator[None]:
    """Hold the claim file ``lock`` (see :func:`claim_path`) for the duration of the block.

    The file is created exclusively (it never replaces, truncates or follows anything that has its name) and holds
    an exclusive ``flock`` and our PID. A second claim of the same file, from another process or from this one,
    gets :class:`ClaimedError` at once, naming ``what``. The kernel drops the lock when its process dies (even by
    ``kill -9``): a claim file left behind is recognised by its first line and its free lock, and replaced. Any
    other file of that name (a user's file, a symbolic link) is left alone and refused with ``FileExistsError``.
    On exit the file is removed, only when it is still the one this claim created.
    """
    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            fd = _new_claim_file(lock)
            break
        except FileExistsError:
            pass
        fd = _take_over_or_refuse(lock, what)
        if fd is not None:
            break
    try:
        yield
    finally:
        try:
            if _same_file(fd, lock):
                lock.unlink()  # before unlocking, so that a waiter never locks a removed file
        finally:
            os.close(fd)

"""Writing files atomically: a reader (or a crash, or Ctrl-C) sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on success it is flushed to disk and renamed over ``path``.

    On any error (or interruption) the temporary file is removed and ``path`` keeps its previous contents.
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
    finally:
        tmp.unlink(missing_ok=True)


def torch_save(obj: object, path: Path | str) -> None:
    """``torch.save(obj, path)``, atomically."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


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


def _owner(lock: Path) -> str:
    try:
        return lock.read_text().split()[0]
    except (OSError, IndexError):
        return "unknown"


@contextmanager
def claim(lock: Path | str, what: str) -> Iterator[None]:
    """Hold ``lock`` for the duration of the block: an exclusive ``flock`` on a file that holds our PID.

    A second claim of the same file, from another process or from this one, gets :class:`ClaimedError` at once,
    naming ``what``. The kernel drops the lock when its process dies (even by ``kill -9``), so a file left behind
    is no obstacle. The file is removed on exit.
    """
    import fcntl

    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ClaimedError(f"{what} is in use by another process (PID {_owner(lock)}, lock file {lock}); "
                               "wait for it to finish or choose another name") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:  # its holder removed it between our open and our lock: try again
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        lock.unlink(missing_ok=True)  # before unlocking, so that a waiter never locks a removed file
        os.close(fd)

"""Run logs: one JSON file per run of a course command, under ``data/runs/`` (committed).

Every number that prose or README quotes comes from one of these files. A log records what produced it (the
command, git commit, device, versions) beside what it measured.
"""

from __future__ import annotations

import json
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from wf_lessons import __version__, atomic, config

__all__ = ["git_commit", "git_dirty", "portable", "resolve", "device_name", "environment", "write", "read"]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=config.REPO_ROOT, capture_output=True, text=True, check=True).stdout


def git_commit() -> str:
    """The checkout's commit (40 hex digits), or ``"unknown"`` outside git. See :func:`git_dirty` for changes."""
    try:
        return _git("rev-parse", "HEAD").strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def git_dirty() -> list[str]:
    """Tracked files of the course's code (not run logs or notebooks) that differ from the commit.

    Empty when the code that ran is exactly the recorded commit.
    """
    try:
        out = _git("status", "--porcelain", "--untracked-files=no", "--", "wf_lessons", "pyproject.toml")
    except (OSError, subprocess.CalledProcessError):
        return []
    return sorted(line[3:] for line in out.splitlines() if line.strip())


def portable(path: Path | str) -> str:
    """``path`` as it reads on any machine: relative to the repository (or ``$WF_DATA_DIR/...``) when it lies there,
    which is where the course's commands write; a place the user chose elsewhere stays as given."""
    path = Path(path).resolve()
    for root, prefix in ((config.REPO_ROOT, ""), (config.data_dir(), "$WF_DATA_DIR/")):
        if path.is_relative_to(root):
            return prefix + path.relative_to(root).as_posix()
    return str(path)


def resolve(path: Path | str) -> Path:
    """The inverse of :func:`portable` for paths a run log records (other paths are returned unchanged)."""
    text = str(path)
    if text.startswith("$WF_DATA_DIR/"):
        return config.data_dir() / text.removeprefix("$WF_DATA_DIR/")
    path = Path(text)
    return path if path.is_absolute() or path.exists() else config.REPO_ROOT / path


def device_name(device: torch.device) -> str:
    """A readable name of the device: the GPU model, or the CPU with its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def environment(device: torch.device) -> dict[str, Any]:
    """What produced a run: command line, the course's version (``wf_lessons``) and git commit, device, versions,
    quick mode, start time.

    The commit is the checkout's (``git_dirty``: its changed code files); an installed package has none of its own
    (``"unknown"``, ``[]``): its version says what ran, and git is not asked, so that a student's project that
    holds the environment is never mistaken for the course.
    """
    checkout = config.in_checkout()
    return {
        "command": "python -m " + " ".join(shlex.quote(a) for a in [_module_name(), *sys.argv[1:]]),
        "wf_lessons": __version__,
        "git_commit": git_commit() if checkout else "unknown",
        "git_dirty": git_dirty() if checkout else [],
        "device": device_name(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "quick": config.quick(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _module_name() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return spec.name if spec is not None else Path(sys.argv[0]).name


def write(log: dict[str, Any], name: str, folder: Path | None = None) -> Path:
    """Write ``log`` as ``<folder>/<name>.json`` atomically (default folder: ``data/runs/``); returns the path."""
    folder = Path(folder) if folder is not None else config.runs_dir()
    path = folder / f"{name}.json"
    with atomic.atomic_path(path) as tmp:
        tmp.write_text(json.dumps(log, indent=1) + "\n")
    return path


def read(path: Path | str) -> dict[str, Any]:
    """A run log by path, or by name under ``data/runs/`` (``"bench-scaling-cpu"``).

    A file that is not a JSON object (cut short, edited) raises ``ValueError`` naming it.
    """
    path = Path(path)
    if path.suffix != ".json" and path.parent == Path("."):  # a run name (it may hold dots: "...-lr0.003-seed0")
        path = config.runs_dir() / f"{path}.json"
    if not path.exists():
        raise FileNotFoundError(f"run log {path} does not exist; the chapter prints the command that makes it")
    try:
        log = json.loads(path.read_text())
    except ValueError as error:  # invalid JSON or UTF-8
        raise ValueError(f"run log {path} is not valid JSON ({error}): it was cut short or changed by hand; restore "
                         "it (a committed log: git checkout -- <path>) or make it again") from None
    if not isinstance(log, dict):
        raise ValueError(f"run log {path} holds a {type(log).__name__}, not a run log (a JSON object)")
    return log

"""One place for the course's switches: quick mode, the data folder, the device and seeding.

Quick mode (``WF_QUICK=1``) shrinks data, steps and models so that every chapter runs on two CPU cores in a
minute or two. Every chapter and command reads it through :func:`quick`, nowhere else.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import torch

from wf_lessons.checks import check_int, check_plain_name

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}

#: The repository root (the folder holding ``wf_lessons/``), used to find ``data/`` when running from a checkout.
REPO_ROOT = Path(__file__).resolve().parent.parent


def quick() -> bool:
    """True when ``WF_QUICK`` asks for quick mode (``1``, ``true``, ``yes`` or ``on``).

    Raises ``ValueError`` for a value that is neither on nor off, so a typo never silently runs the full thing.
    """
    return _env_flag("WF_QUICK", "use 1 (quick mode) or 0 (full run)")


def data_dir() -> Path:
    """The course's data folder: ``$WF_DATA_DIR`` if set, else ``data/`` in the repository (not created here)."""
    env = os.environ.get("WF_DATA_DIR")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "data"


def downloads_allowed() -> bool:
    """False when ``WF_NO_DOWNLOAD`` is on (``1``, ``true``, ...): then nothing is fetched from the network.

    ``make test`` sets it for the tests (no test touches the network) after fetching the data once.
    """
    return not _env_flag("WF_NO_DOWNLOAD", "use 1 (never download) or 0")


def _env_flag(name: str, usage: str) -> bool:
    """An on/off environment variable (unset: off); a value that is neither raises ``ValueError`` with ``usage``."""
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={value!r} is not understood: {usage}")


def runs_dir() -> Path:
    """Where run logs (JSON) are written and read: ``data/runs/`` in the repository (committed)."""
    return REPO_ROOT / "data" / "runs"


def new_run_log_path(name: str, overwrite: bool = False) -> Path:
    """The path ``data/runs/<name>.json`` for a command's new run log, checked before the command runs.

    ``name`` must be a plain file name (it cannot lead out of ``data/runs/``); an existing log is never replaced
    unless ``overwrite``: ``FileExistsError`` then says how to keep it or replace it.
    """
    check_plain_name("the run log name", name)
    if name.endswith(".json"):
        raise ValueError(f"give the run log name without '.json' (it is added), got {name!r}")
    path = runs_dir() / f"{name}.json"
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"the run log {path} already exists; pass --overwrite to replace it, or --name to write another"
        )
    return path


def device(prefer: str | None = None) -> torch.device:
    """The device to compute on: ``prefer`` or ``$WF_DEVICE`` if given, else CUDA when available, else CPU.

    Raises ``ValueError`` for an unknown device or for CUDA on a machine without it.
    """
    name = prefer or os.environ.get("WF_DEVICE")
    if name:
        try:
            dev = torch.device(name)
        except (RuntimeError, TypeError):
            raise ValueError(f"unknown device {name!r}: expected 'cpu', 'cuda' or 'cuda:<index>'") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {name!r} was asked for, but CUDA is not available on this machine; use 'cpu'")
        if dev.type not in ("cpu", "cuda"):
            raise ValueError(f"device {name!r} is not supported by the course: expected 'cpu' or 'cuda'")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, torch (CPU and CUDA) and, if installed, NumPy; return a CPU generator seeded the same way.

    Prefer the returned local generator for seeded examples: it does not disturb global random state.
    """
    check_int("seed", seed, low=0)
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # NumPy is optional
        pass
    return torch.Generator().manual_seed(seed)

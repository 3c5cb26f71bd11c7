"""One place for the course's switches: quick mode, where files go, the device and seeding.

Quick mode (``WF_QUICK=1``) shrinks data, steps and models so that every chapter runs on two CPU cores in a
minute or two. Every chapter and command reads it through :func:`quick`, nowhere else.

Where files go depends on how the package is used, and is decided here only (:func:`data_dir`, :func:`runs_dir`,
:func:`checkpoints_dir`; every location at once: :func:`locations`, printed by ``python -m wf_lessons.envcheck
where``):

- **in the course's checkout** (:func:`in_checkout`: ``chapters/``, ``data/`` and ``pyproject.toml`` beside the
  package), data, caches and checkpoints go to ``data/`` and run logs to ``data/runs/`` in the repository;
- **installed** (from a wheel, into site-packages), data and caches go to the user's data folder
  (``platformdirs.user_data_dir("wf-lessons")``, e.g. ``~/.local/share/wf-lessons`` on Linux), run logs and
  checkpoints to ``./wf-runs/`` under the current working directory: a student's runs belong to the student's
  project. Nothing is ever written into the installed package.

``WF_DATA_DIR`` and ``WF_RUNS_DIR`` override either.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import torch

from wf_lessons.checks import check_int, check_plain_name

__all__ = [
    "APP_NAME",
    "REPO_ROOT",
    "RUNS_FOLDER",
    "checkpoints_dir",
    "course_runs_dir",
    "data_dir",
    "device",
    "downloads_allowed",
    "in_checkout",
    "locations",
    "new_run_log_path",
    "quick",
    "runs_dir",
    "seed_everything",
    "user_data_dir",
]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}

#: The folder holding ``wf_lessons/``: the repository root in a checkout (where ``data/`` and ``chapters/`` are),
#: site-packages when the package is installed (see :func:`in_checkout`).
REPO_ROOT = Path(__file__).resolve().parent.parent

#: The name of the user data folder of an installed package (``platformdirs.user_data_dir(APP_NAME)``).
APP_NAME = "wf-lessons"

#: The folder, under the current working directory, that holds run logs when the package is installed.
RUNS_FOLDER = "wf-runs"


def quick() -> bool:
    """True when ``WF_QUICK`` asks for quick mode (``1``, ``true``, ``yes`` or ``on``).

    Raises ``ValueError`` for a value that is neither on nor off, so a typo never silently runs the full thing.
    """
    return _env_flag("WF_QUICK", "use 1 (quick mode) or 0 (full run)")


def in_checkout() -> bool:
    """True when the package is imported from the course's repository: ``chapters/``, ``data/`` and
    ``pyproject.toml`` lie beside ``wf_lessons/`` (a git checkout, or the repository unpacked from an archive;
    ``pip install -e .`` counts too). False when it is installed from a wheel (site-packages)."""
    root = REPO_ROOT
    return (root / "chapters").is_dir() and (root / "data").is_dir() and (root / "pyproject.toml").is_file()


def _env_dir(name: str) -> Path | None:
    """The folder an environment variable names (``~`` expanded, made absolute), or None when unset or empty.

    Raises ``ValueError`` when it names something that exists and is not a folder (a file): nothing could be read
    from or written under it.
    """
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name}={value!r} names a file, not a folder: set {name} to a folder (it is created when "
                         "missing), or unset it")
    return path


def user_data_dir() -> Path:
    """The user's data folder for the course, by the platform's convention (``platformdirs``):
    ``~/.local/share/wf-lessons`` on Linux (``$XDG_DATA_HOME/wf-lessons`` when set),
    ``~/Library/Application Support/wf-lessons`` on macOS, ``%LOCALAPPDATA%\\wf-lessons`` on Windows."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """The course's data folder (CIFAR-10, its decoded cache, checkpoints); not created here.

    ``$WF_DATA_DIR`` if set; else ``data/`` in the repository when running from a checkout (:func:`in_checkout`);
    else, installed, the user's data folder (:func:`user_data_dir`), never the installed package.
    """
    env = _env_dir("WF_DATA_DIR")
    if env is not None:
        return env
    return REPO_ROOT / "data" if in_checkout() else user_data_dir()


def checkpoints_dir() -> Path:
    """The default folder of training checkpoints: ``<data folder>/checkpoints`` (:func:`data_dir`) in a checkout or
    when ``$WF_DATA_DIR`` is set; installed, ``./wf-runs/checkpoints/`` beside the student's run logs (a student's
    runs belong to the student's project).

    This is where :class:`wf_lessons.train.TrainConfig` writes and :func:`wf_lessons.erf.find_checkpoints` looks
    when no folder is given (``checkpoint_dir=`` / ``--checkpoint-dir`` chooses another for one run).
    """
    if in_checkout() or _env_dir("WF_DATA_DIR") is not None:
        return data_dir() / "checkpoints"
    return Path.cwd() / RUNS_FOLDER / "checkpoints"


def runs_dir() -> Path:
    """Where run logs (JSON) are written, and read by name (:func:`wf_lessons.runlog.read`); not created here.

    ``$WF_RUNS_DIR`` if set; else ``data/runs/`` in the repository when running from a checkout (the course's
    committed logs); else, installed, ``./wf-runs/`` under the current working directory. Tests replace this
    function (``monkeypatch.setattr("wf_lessons.config.runs_dir", ...)``): every caller looks it up here.
    """
    env = _env_dir("WF_RUNS_DIR")
    if env is not None:
        return env
    return REPO_ROOT / "data" / "runs" if in_checkout() else Path.cwd() / RUNS_FOLDER


def course_runs_dir() -> Path | None:
    """The course's committed run logs (which chapters 07 and 08 and ``exercises.ch08`` read): ``data/runs/`` of
    the repository in a checkout; None when the package is installed, because those logs are not part of the
    package: they live in the course's repository (``WF_RUNS_DIR=<checkout>/data/runs`` reads them from a clone).
    """
    return REPO_ROOT / "data" / "runs" if in_checkout() else None


def locations() -> dict[str, tuple[str, str]]:
    """Every folder the package reads or writes, as ``{what: (path, what decided it)}`` (strings, ready to print;
    ``python -m wf_lessons.envcheck where`` prints them). Paths are absolute; nothing is created."""
    checkout = in_checkout()
    data_why = ("WF_DATA_DIR" if _env_dir("WF_DATA_DIR") is not None
                else "checkout: the repository's data/" if checkout else "installed: the user's data folder")
    runs_why = ("WF_RUNS_DIR" if _env_dir("WF_RUNS_DIR") is not None
                else "checkout: the repository's data/runs/" if checkout
                else f"installed: ./{RUNS_FOLDER}/ under the current directory")
    course, package = course_runs_dir(), Path(__file__).resolve().parent
    return {
        "package": (str(package), "checkout" if checkout else "installed: nothing is written here"),
        "data folder": (str(data_dir()), data_why),
        "decoded-data cache": (str(data_dir() / "cache"), "<data folder>/cache"),
        "checkpoints": (str(checkpoints_dir()),
                        ("<data folder>/checkpoints" if checkout or _env_dir("WF_DATA_DIR") is not None
                         else f"installed: ./{RUNS_FOLDER}/checkpoints/ beside the run logs")
                        + "; per run: --checkpoint-dir"),
        "run logs": (str(runs_dir()), runs_why),
        "course run logs": (str(course), "committed in the repository") if course is not None else (
            "not in the installed package", "in the course repository's data/runs/; WF_RUNS_DIR=<clone>/data/runs"),
        "shipped models": (str(package / "pretrained"), "package data, read only"),
    }


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


def new_run_log_path(name: str, overwrite: bool = False) -> Path:
    """The path ``<runs folder>/<name>.json`` (:func:`runs_dir`) for a command's new run log, checked before the
    command runs.

    ``name`` must be a plain file name (it cannot lead out of the runs folder); an existing log is never replaced
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

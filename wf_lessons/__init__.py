"""wf-lessons: the helper package of the WeightFormer course.

Modules (each introduced by a chapter, each reusable in coursework):

- ``config``          quick mode, data folder, device, seeding
- ``envcheck``        is this machine ready for the course?
- ``exercises``       every chapter's exercise checkers (``exercises.ch01`` ...) and the helpers they share
- ``data``            CIFAR-10 as uint8 tensors, device-resident batch iterator
- ``attention``       softmax attention read as an MLP with predicted weights
- ``complexity``      counted FLOPs and timing helpers
- ``dynamic_linear``  dynamic linear layers (every weight predictor)
- ``dynamic_dwconv``  dynamic depthwise convolutions (every kernel predictor)
- ``models``          WeightFormer, the ViT/DeiT baseline, named configurations
- ``erf``             effective receptive fields
- ``augment``         batched augmentations on the device (RandAugment, erasing, mixup, CutMix)
- ``train``           training: recipe and presets, loop, checkpoints, command line (``--dry-run``)
- ``headline``        the headline GPU run in one command (fits the epochs to a time budget)
- ``ablate``          the predictor study (chapter 08): grid, resumable command, summary, ``compare``
- ``pretrained``      trained course models shipped with the package, and their check
- ``bench``           benchmark commands
- ``diagrams``        schematic figures (attention as an MLP, dynamic layers, the blocks)
- ``interactive``     widgets whose figure is also stored as a static picture (``figure_controls``)
- ``checks``          argument checks shared by the package
- ``atomic``          atomic writes and exclusive run-name claims
- ``runlog``          run logs (what produced every quoted number), under ``config.runs_dir()``
- ``notebooks``       rendering chapters, checking them against their source, student copies

``wf_lessons.__version__`` is the installed distribution's version (``importlib.metadata``); where the package is
imported from a checkout that was never installed, the version in the checkout's ``pyproject.toml``. Every run log
records it (``runlog.environment``); ``CHANGELOG.md`` says what changed between versions.
"""

from __future__ import annotations

import re as _re
from importlib import metadata as _metadata
from pathlib import Path as _Path

__all__ = ["__version__"]

#: The distribution name on the package index and in ``importlib.metadata``.
_DISTRIBUTION = "wf-lessons"


def _version() -> str:
    """The version of this package: from its installed metadata, else from the ``[project]`` table of the
    checkout's ``pyproject.toml`` beside it, else ``"0+unknown"`` (a valid PEP 440 version that sorts first)."""
    try:
        return _metadata.version(_DISTRIBUTION)
    except _metadata.PackageNotFoundError:
        pass
    pyproject = _Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return "0+unknown"
    project = _re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, _re.MULTILINE | _re.DOTALL)
    if project is None or not _re.search(rf'^name\s*=\s*"{_DISTRIBUTION}"', project.group(1), _re.MULTILINE):
        return "0+unknown"
    found = _re.search(r'^version\s*=\s*"([^"]+)"', project.group(1), _re.MULTILINE)
    return found.group(1) if found else "0+unknown"


__version__ = _version()

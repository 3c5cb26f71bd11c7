"""Is this machine ready for the course? Versions, device, quick mode and data, in one report (chapter 00)."""

from __future__ import annotations

import platform
from importlib import metadata

import torch

from wf_lessons import config, data

PACKAGES = ("torch", "torchvision", "matplotlib", "ipywidgets", "tqdm", "jupytext", "nbval")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def report() -> dict[str, str]:
    """What the course depends on, as ``{item: value}`` (strings, ready to print)."""
    items = {"python": platform.python_version(), **{p: _version(p) for p in PACKAGES}}
    dev = config.device()
    cpu = f"cpu ({torch.get_num_threads()} threads)"
    items["device"] = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu
    items["quick mode"] = "on (WF_QUICK=1)" if config.quick() else "off (full runs)"
    items["data folder"] = str(config.data_dir())
    try:
        items["CIFAR-10"] = f"found ({data.find_source()})"
    except data.DataNotFoundError:
        items["CIFAR-10"] = "missing: run `make data` (see data/README.md)"
    return items


def print_report() -> None:
    """Print :func:`report` as an aligned table, with a warning for anything missing."""
    items = report()
    width = max(map(len, items))
    for key, value in items.items():
        print(f"{key:>{width}} : {value}")
    missing = [k for k, v in items.items() if v == "not installed" or v.startswith("missing")]
    if missing:
        print(f"\nNot ready: {', '.join(missing)}. `make lab` installs every package; `make data` gets CIFAR-10.")


def tokens(image_size: int, patch_size: int) -> int:
    """Number of tokens a square image gives with square non-overlapping patches: ``(image_size // patch)**2``."""
    if image_size % patch_size:
        raise ValueError(f"image size {image_size} is not a multiple of the patch size {patch_size}")
    return (image_size // patch_size) ** 2

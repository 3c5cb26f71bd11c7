"""Is this machine ready for the course? Versions, device, quick mode, data and where files go, in one report
(chapter 00). Command line::

    python -m wf_lessons.envcheck           # the whole report, every location included
    python -m wf_lessons.envcheck where     # only where the package reads and writes files (config.locations)
"""

from __future__ import annotations

import argparse
import platform
import sys
from importlib import metadata

import torch

import wf_lessons
from wf_lessons import config, data

__all__ = ["PACKAGES", "main", "print_locations", "print_report", "report", "tokens"]

#: The packages whose versions the report lists.
PACKAGES = ("torch", "torchvision", "matplotlib", "ipywidgets", "tqdm", "jupytext", "nbval")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def report() -> dict[str, str]:
    """What the course depends on, as ``{item: value}`` (strings, ready to print)."""
    items = {"wf_lessons": f"{wf_lessons.__version__} ({'checkout' if config.in_checkout() else 'installed'})",
             "python": platform.python_version(), **{p: _version(p) for p in PACKAGES}}
    dev = config.device()
    cpu = f"cpu ({torch.get_num_threads()} threads)"
    items["device"] = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu
    items["quick mode"] = "on (WF_QUICK=1)" if config.quick() else "off (full runs)"
    items["data folder"] = str(config.data_dir())
    try:
        items["CIFAR-10"] = f"found ({data.find_source()})"
    except data.DataNotFoundError:
        items["CIFAR-10"] = ("missing: run `make data` (see data/README.md)" if config.in_checkout() else
                             "missing: `python -m wf_lessons.data prepare` downloads it (or --archive PATH)")
    return items


def print_report() -> None:
    """Print :func:`report` as an aligned table, then where files go (:func:`print_locations`), with a warning for
    anything missing."""
    items = report()
    width = max(map(len, items))
    for key, value in items.items():
        print(f"{key:>{width}} : {value}")
    print("\nWhere files go:")
    print_locations()
    missing = [k for k, v in items.items() if v == "not installed" or v.startswith("missing")]
    if missing:
        how = ("`make lab` installs every package; `make data` gets CIFAR-10" if config.in_checkout() else
               "`pip install wf-lessons` installs every package; `python -m wf_lessons.data prepare` gets CIFAR-10")
        print(f"\nNot ready: {', '.join(missing)}. {how}.")


def print_locations() -> None:
    """Print every location of :func:`wf_lessons.config.locations`: what, where, and what decided it."""
    rows = config.locations()
    width = max(map(len, rows))
    path_width = max(len(path) for path, _ in rows.values())
    for what, (path, why) in rows.items():
        print(f"{what:>{width}} : {path:<{path_width}}  ({why})")


def tokens(image_size: int, patch_size: int) -> int:
    """Number of tokens a square image gives with square non-overlapping patches: ``(image_size // patch)**2``."""
    if image_size % patch_size:
        raise ValueError(f"image size {image_size} is not a multiple of the patch size {patch_size}")
    return (image_size // patch_size) ** 2


def main(argv: list[str] | None = None) -> int:
    """``python -m wf_lessons.envcheck [where]``: the report, or only the locations."""
    parser = argparse.ArgumentParser(prog="python -m wf_lessons.envcheck", description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=["report", "where"], default="report",
                        help="report (default): versions, device, data and locations; where: only the locations")
    args = parser.parse_args(argv)
    if args.what == "where":
        print_locations()
    else:
        print_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())

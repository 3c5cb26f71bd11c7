"""Chapters as paired files: render each ``.py`` (the source of truth) into its ``.ipynb``, and check pairs.

``python -m wf_lessons.notebooks render [chapters/NN_slug.py ...]`` executes each chapter in a fresh kernel and
writes the notebook with its outputs, storing the SHA-256 of the ``.py`` it was rendered from in the notebook
metadata. ``python -m wf_lessons.notebooks check`` reports every pair whose cells differ or whose outputs are
stale. The tests call :func:`pair_problems`, so a stale notebook fails CI.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import jupytext
import nbformat

from wf_lessons import atomic, config, runlog

CHAPTERS_DIR = config.REPO_ROOT / "chapters"
METADATA_KEY = "wf_lessons"


def chapter_sources(folder: Path = CHAPTERS_DIR) -> list[Path]:
    """The chapter sources ``NN_slug.py`` in order."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.py"))


def source_hash(py_path: Path) -> str:
    """SHA-256 of a chapter source, as stored in its rendered notebook."""
    return hashlib.sha256(Path(py_path).read_bytes()).hexdigest()


def cell_signature(nb: nbformat.NotebookNode) -> list[tuple[str, str, tuple[str, ...]]]:
    """What must agree between a pair: each cell's type, source and tags (outputs and ids are ignored)."""
    return [
        (c.cell_type, c.source.strip(), tuple(c.get("metadata", {}).get("tags", ()))) for c in nb.cells
    ]


def pair_problems(py_path: Path) -> list[str]:
    """Everything wrong with one chapter pair (an empty list when the pair is consistent and fresh)."""
    py_path = Path(py_path)
    nb_path = py_path.with_suffix(".ipynb")
    if not nb_path.exists():
        return [f"{nb_path.name} is missing: run `make chapters`"]
    notebook = nbformat.read(nb_path, as_version=4)
    problems = []
    expected, found = cell_signature(jupytext.read(py_path)), cell_signature(notebook)
    if expected != found:
        first = next((i for i, (a, b) in enumerate(zip(expected, found)) if a != b), min(len(expected), len(found)))
        problems.append(
            f"{nb_path.name}: cells differ from {py_path.name} (first difference at cell {first}; "
            f"{len(expected)} cells in the source, {len(found)} in the notebook)"
        )
    stored = notebook.metadata.get(METADATA_KEY, {}).get("source_sha256")
    if stored != source_hash(py_path):
        problems.append(f"{nb_path.name}: outputs were not rendered from the current {py_path.name}")
    if any(c.cell_type == "code" and c.get("execution_count") is None for c in notebook.cells):
        problems.append(f"{nb_path.name}: has unexecuted code cells")
    return problems


def render(py_path: Path, timeout: int = 900, kernel_name: str = "python3") -> Path:
    """Execute a chapter source in a fresh kernel and write its notebook (atomically), outputs included."""
    from nbclient import NotebookClient

    py_path = Path(py_path).resolve()
    notebook = jupytext.read(py_path)
    notebook.metadata = nbformat.from_dict(
        {"kernelspec": {"name": kernel_name, "display_name": "Python 3 (ipykernel)", "language": "python"}}
    )
    start = time.perf_counter()
    resources = {"metadata": {"path": str(py_path.parent)}}  # run with chapters/ as the working directory
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name=kernel_name, record_timing=False, resources=resources
    )
    client.execute()
    notebook.metadata[METADATA_KEY] = {
        "source_sha256": source_hash(py_path),
        "quick": config.quick(),
        "render_seconds": round(time.perf_counter() - start, 1),  # the README's runtime column
        "rendered_on": runlog.device_name(config.device()),
    }
    nb_path = py_path.with_suffix(".ipynb")
    with atomic.atomic_path(nb_path) as tmp:
        nbformat.write(notebook, str(tmp))
    print(f"rendered {nb_path.name} in {time.perf_counter() - start:.1f} s (quick={config.quick()})")
    return nb_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wf_lessons.notebooks", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="execute chapters and store their outputs")
    r.add_argument("paths", nargs="*", type=Path, help="chapter sources (default: all of chapters/)")
    r.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    sub.add_parser("check", help="report pairs that differ or are stale")
    args = parser.parse_args(argv)
    if args.command == "render":
        for path in args.paths or chapter_sources():
            if path.suffix != ".py" or not path.exists():
                parser.error(f"{path} is not a chapter source (expected chapters/NN_slug.py)")
            render(path, timeout=args.timeout)
        return 0
    problems = [p for path in chapter_sources() for p in pair_problems(path)]
    print("\n".join(problems) or "all chapter pairs are consistent")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

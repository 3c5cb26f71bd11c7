"""Chapters as paired files: render each ``.py`` (the source of truth) into its ``.ipynb``, and check pairs.

``python -m wf_lessons.notebooks render [chapters/NN_slug.py ...]`` executes each chapter in a fresh kernel and
writes the notebook with its outputs, storing the SHA-256 of the ``.py`` it was rendered from in the notebook
metadata. It accepts only the course's own chapters: any other ``.py`` or ``.ipynb`` is refused before anything
runs, so no notebook that is not a chapter's is ever replaced. ``python -m wf_lessons.notebooks check`` reports
every pair whose cells differ or whose outputs are stale, and every student copy that is missing or out of date.
The tests call :func:`pair_problems` and :func:`student_problems`, so a stale notebook fails CI.

Student copies (``python -m wf_lessons.notebooks student [chapters/NN_slug.py ...]``, ``make student``) are made
from each chapter's rendered notebook and written to ``chapters/student/NN_slug.ipynb``. A *solution cell* is a code
cell tagged ``solution`` whose first line is ``# hint: <text>``; in the student copy it becomes a stub::

    # hint: <text>
    raise NotImplementedError("<text>")

Everything else (prose, the checker cells that call ``wf_lessons.exercises``) stays as it is; outputs are kept up to
the first solution cell and cleared from there on, so no solution's output shows. Every chapter gets a student
copy, also one without solution cells (then it equals the instructor's edition). The copy records the SHA-256 of
the ``.py`` its notebook was rendered from, like the instructor's edition.

Every chapter opens in Colab: its title cell carries an "Open in Colab" link and its first code cell (tagged
``setup``, :func:`colab_setup_source`) clones and installs the course, fetches CIFAR-10 and picks quick mode where
the package is missing, and does nothing in the course's own environment. Both are made from ``[project.urls]
Repository`` in ``pyproject.toml`` (:func:`repository_url`); after changing it, ``python -m wf_lessons.notebooks
colab`` rewrites them in every chapter source (then ``make chapters``, ``make student``). :func:`colab_problems`
reports a chapter whose link or setup cell does not match.
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import inspect
import json
import re
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import jupytext
import nbformat

from wf_lessons import atomic, config, runlog

__all__ = ["CHAPTERS_DIR", "STUDENT_DIR", "METADATA_KEY", "SOLUTION_TAG", "HINT_LINE", "chapter_sources",
    "read_source", "source_hash", "cell_signature", "pair_problems", "is_chapter", "render", "execute", "solution_hint",
    "solution_stub", "student_notebook", "student_path", "write_student", "student_problems", "SETUP_TAG",
    "repository_url", "colab_url", "colab_link", "colab_setup_source", "colab_problems", "write_colab",
    "MAX_SOURCE_LINES", "source_lines", "show_source", "main"]

CHAPTERS_DIR = config.REPO_ROOT / "chapters"

#: The most lines a chapter prints of one piece of package code (:func:`show_source`): the few lines that matter.
MAX_SOURCE_LINES = 20
STUDENT_DIR = CHAPTERS_DIR / "student"
METADATA_KEY = "wf_lessons"
SOLUTION_TAG = "solution"
HINT_LINE = re.compile(r"#\s*hint:\s*(?P<hint>\S.*?)\s*$")
SETUP_TAG = "setup"
COLAB_LINK = re.compile(r"^\[Open in Colab\]\([^)]*\).*$", re.M)


def chapter_sources(folder: Path = CHAPTERS_DIR) -> list[Path]:
    """The chapter sources ``NN_slug.py`` in order."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.py"))


def read_source(py_path: Path) -> nbformat.NotebookNode:
    """A chapter source as a notebook, read as JupyterLab reads it through the pairing (``py:percent``): magics
    that jupytext comments out in the ``.py`` (``# %pip ...``) are commands again."""
    return jupytext.read(py_path, fmt="py:percent")


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
    expected, found = cell_signature(read_source(py_path)), cell_signature(notebook)
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


# --- Colab: the title cell's link and the first code cell ---------------------------------------------------------


def repository_url() -> str:
    """The repository's public address, ``[project.urls] Repository`` in the checkout's ``pyproject.toml`` (the one
    place that names it; a placeholder until the course is published). Raises ``ValueError`` when it is missing or
    not ``https://github.com/OWNER/NAME``."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((config.REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    url = (project.get("urls", {}).get("Repository") or "").rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError('pyproject.toml needs [project.urls] Repository = "https://github.com/OWNER/NAME" (the '
                         f"chapters' Colab links and setup cells are made from it); found {url!r}")
    return url


def colab_url(path: str, repository: str | None = None) -> str:
    """Where Colab opens the repository file ``path`` (e.g. ``chapters/01_....ipynb``) from GitHub's main branch."""
    repository = repository or repository_url()
    return f"https://colab.research.google.com/github/{repository.removeprefix('https://github.com/')}/blob/main/{path}"


def colab_link(py_path: Path, repository: str | None = None) -> str:
    """The line under a chapter's title: ``[Open in Colab](...)`` for its notebook, and what the first cell does."""
    name = Path(py_path).with_suffix(".ipynb").name
    return (f"[Open in Colab]({colab_url(f'chapters/{name}', repository)}) (its first code cell installs the course "
            "there)")


def colab_setup_source(repository: str | None = None) -> str:
    """The first code cell of every chapter: on Colab, or in any Python without ``wf_lessons``, it clones
    ``repository`` (for the committed run logs that chapters 05, 07 and 08 read: ``WF_RUNS_DIR`` points at the
    clone's ``data/runs``), installs the course from the clone with one ``%pip`` line, fetches CIFAR-10 and sets
    ``WF_QUICK=1`` unless a CUDA GPU is there (an explicit ``WF_QUICK`` or ``WF_RUNS_DIR`` wins); in the course's own
    environment it does nothing and prints nothing."""
    repository = repository or repository_url()
    return f"""\
# Colab, or a Python without the course: clone the course (its committed run logs come with it), install it, fetch
# CIFAR-10 and use quick mode unless there is a CUDA GPU. In the course's own environment this cell does nothing.
import importlib.util
import os
import sys

if importlib.util.find_spec("wf_lessons") is None:
    !git clone --quiet --depth 1 {repository} wf-lessons
    %pip install --quiet ./wf-lessons
    !{{sys.executable}} -m wf_lessons.data prepare
    os.environ.setdefault("WF_RUNS_DIR", os.path.abspath("wf-lessons/data/runs"))
    import torch

    os.environ.setdefault("WF_QUICK", "0" if torch.cuda.is_available() else "1")"""


def colab_problems(py_path: Path, repository: str | None = None) -> list[str]:
    """What is wrong with a chapter's Colab link and setup cell (an empty list when both match ``repository``)."""
    py_path = Path(py_path)
    repository = repository or repository_url()
    notebook = read_source(py_path)
    fix = ("set [project.urls] Repository in pyproject.toml to the public repository, then run `python -m "
           "wf_lessons.notebooks colab`, `make chapters` and `make student`")
    problems = []
    title = notebook.cells[0].source if notebook.cells else ""
    if colab_link(py_path, repository) not in title.splitlines():
        problems.append(f"{py_path.name}: the title cell lacks the line {colab_link(py_path, repository)!r} ({fix})")
    code = [c for c in notebook.cells if c.cell_type == "code"]
    if not code or code[0].source.strip() != colab_setup_source(repository).strip():
        problems.append(f"{py_path.name}: the first code cell is not the Colab setup cell for {repository} ({fix})")
    elif SETUP_TAG not in code[0].get("metadata", {}).get("tags", ()):
        problems.append(f"{py_path.name}: the Colab setup cell is not tagged {SETUP_TAG!r}")
    return problems


def write_colab(py_path: Path, repository: str | None = None) -> bool:
    """Put the Colab link under a chapter's title and the setup cell first among its code cells (replacing older
    ones, made from another address); returns whether the source changed. Outputs are then stale: render it."""
    py_path = Path(py_path)
    repository = repository or repository_url()
    notebook = read_source(py_path)
    title = notebook.cells[0]
    if title.cell_type != "markdown" or not title.source.startswith("# "):
        raise ValueError(f"{py_path.name}: the first cell must be Markdown starting with the '# ' title")
    heading, _, rest = COLAB_LINK.sub("", title.source).partition("\n")
    title.source = f"{heading}\n\n{colab_link(py_path, repository)}\n\n{rest.strip()}"
    setup = nbformat.v4.new_code_cell(colab_setup_source(repository), metadata={"tags": [SETUP_TAG]})
    notebook.cells = [c for c in notebook.cells if SETUP_TAG not in c.get("metadata", {}).get("tags", ())]
    notebook.cells.insert(1, setup)
    text = jupytext.writes(notebook, "py:percent")
    if text == py_path.read_text(encoding="utf-8"):
        return False
    py_path.write_text(text, encoding="utf-8")
    return True


def _client_class():
    """``nbclient.NotebookClient`` that waits for the kernel's replies in one-second slices.

    nbclient sometimes misses a reply after a widget's messages (jupyter/nbclient#312): one long wait then sits
    until the cell's whole timeout although the reply has arrived. Short waits, repeated, pick it up at once.
    """
    from queue import Empty

    from nbclient import NotebookClient

    class SlicedWaitClient(NotebookClient):
        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            channel, get_msg = kc.shell_channel, kc.shell_channel.get_msg

            async def sliced_get_msg(timeout: float | None = None):
                deadline = None if timeout is None else time.monotonic() + timeout
                while True:
                    left = 1.0 if deadline is None else min(1.0, max(0.0, deadline - time.monotonic()))
                    try:
                        return await get_msg(timeout=left)
                    except Empty:
                        if deadline is not None and time.monotonic() >= deadline:
                            raise

            channel.get_msg = sliced_get_msg
            return kc

    return SlicedWaitClient


def is_chapter(py_path: Path) -> bool:
    """Whether ``py_path`` is one of the course's chapter sources (``chapters/NN_slug.py``, see
    :func:`chapter_sources`)."""
    return Path(py_path).resolve() in {p.resolve() for p in chapter_sources()}


def render(py_path: Path, timeout: int = 900, kernel_name: str = "python3") -> Path:
    """Execute a chapter source in a fresh kernel and write its notebook (atomically), outputs included.

    Only the course's chapters are accepted (:func:`is_chapter`): rendering runs the ``.py`` and replaces the
    ``.ipynb`` beside it, so a file elsewhere raises ``ValueError`` before anything is executed or written.
    """
    if not is_chapter(py_path):
        raise ValueError(f"{py_path} is not one of the course's chapters ({CHAPTERS_DIR}/NN_slug.py): render runs "
                         "a chapter and replaces its notebook, and does nothing else")
    start = time.perf_counter()
    notebook = execute(py_path, timeout=timeout, kernel_name=kernel_name)
    nb_path = Path(py_path).resolve().with_suffix(".ipynb")
    with atomic.atomic_path(nb_path) as tmp:
        nbformat.write(notebook, str(tmp))
    print(f"rendered {nb_path.name} in {time.perf_counter() - start:.1f} s (quick={config.quick()})")
    return nb_path


def execute(py_path: Path, timeout: int = 900, kernel_name: str = "python3") -> nbformat.NotebookNode:
    """A chapter source executed in a fresh kernel (working directory: its folder), as :func:`render` stores it:
    outputs, and the source's SHA-256, quick mode, seconds taken and device in the ``wf_lessons`` metadata.
    Nothing is written (the website edition, ``make book EXECUTE=1``, runs the chapters this way)."""
    NotebookClient = _client_class()

    py_path = Path(py_path).resolve()
    notebook = read_source(py_path)
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
    return notebook


def _is_solution(cell: nbformat.NotebookNode) -> bool:
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", ())


def solution_hint(cell: nbformat.NotebookNode, where: str = "notebook", index: int | None = None) -> str:
    """The hint of a solution cell (the text after ``# hint:`` on its first line).

    Raises ``ValueError`` naming ``where`` (the chapter) and the cell ``index`` when the cell is not a code cell or
    its first line is not ``# hint: <text>``.
    """
    label = f"{where}, cell {index}" if index is not None else where
    if cell.cell_type != "code":
        raise ValueError(f"{label}: only code cells can be tagged {SOLUTION_TAG!r} (this is a {cell.cell_type} cell)")
    first = cell.source.lstrip("\n").split("\n", 1)[0]
    match = HINT_LINE.fullmatch(first.strip())
    if match is None:
        raise ValueError(
            f"{label}: a cell tagged {SOLUTION_TAG!r} must start with a line '# hint: <text>' "
            f"(the student copy keeps it as the stub's hint); its first line is {first!r}"
        )
    return match["hint"]


def solution_stub(cell: nbformat.NotebookNode, where: str = "notebook", index: int | None = None) -> str:
    """The source that replaces a solution cell: its hint line, then ``raise NotImplementedError("<hint>")``."""
    hint = solution_hint(cell, where, index)
    first = cell.source.lstrip("\n").split("\n", 1)[0].rstrip()
    return f"{first}\nraise NotImplementedError({json.dumps(hint, ensure_ascii=False)})"


def student_notebook(notebook: nbformat.NotebookNode, where: str = "notebook") -> nbformat.NotebookNode:
    """The student copy of a rendered notebook (a new notebook; the argument is not changed).

    Solution cells become stubs (see :func:`solution_stub`) with no outputs and no execution count; every other
    cell keeps its source and tags, and its outputs only when it comes before the first solution cell.
    ``where`` names the chapter in error messages.
    """
    student = copy.deepcopy(notebook)
    seen_solution = False
    for index, cell in enumerate(student.cells):
        if _is_solution(cell):
            cell.source = solution_stub(cell, where, index)
            seen_solution = True
        if cell.cell_type == "code" and seen_solution:
            cell.outputs = []
            cell.execution_count = None
    stored = notebook.metadata.get(METADATA_KEY, {})
    student.metadata[METADATA_KEY] = {
        "edition": "student",
        "source_sha256": stored.get("source_sha256"),
        "solution_cells": sum(_is_solution(c) for c in notebook.cells),
    }
    return student


def student_path(py_path: Path, folder: Path | None = None) -> Path:
    """Where the student copy of a chapter goes: ``<chapters>/student/NN_slug.ipynb`` (or ``folder/NN_slug.ipynb``)."""
    py_path = Path(py_path)
    return (folder or py_path.parent / "student") / py_path.with_suffix(".ipynb").name


def _student_text(py_path: Path) -> str:
    py_path = Path(py_path)
    notebook = nbformat.read(py_path.with_suffix(".ipynb"), as_version=4)
    text = nbformat.writes(student_notebook(notebook, where=py_path.with_suffix(".ipynb").name))
    return text if text.endswith("\n") else text + "\n"  # as nbformat.write ends a file


def write_student(py_path: Path, folder: Path | None = None) -> Path:
    """Write the student copy of one chapter from its rendered notebook (atomically); returns its path.

    Raises ``ValueError`` when the chapter's pair is inconsistent or stale (render it first: ``make chapters``) or
    when a solution cell has no hint line.
    """
    py_path = Path(py_path)
    problems = pair_problems(py_path)
    if problems:
        raise ValueError("; ".join(problems) + " (render the chapter first: `make chapters`)")
    text = _student_text(py_path)
    out = student_path(py_path, folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(out) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return out


def student_problems(py_path: Path, folder: Path | None = None) -> list[str]:
    """Everything wrong with one chapter's student copy (an empty list when it is current)."""
    py_path = Path(py_path)
    out = student_path(py_path, folder)
    if not out.exists():
        return [f"student/{out.name} is missing: run `make student`"]
    problems = []
    try:
        expected = _student_text(py_path)
    except (ValueError, FileNotFoundError) as error:
        return [f"student/{out.name} cannot be made: {error}"]
    if out.read_text(encoding="utf-8") != expected:
        source = py_path.with_suffix(".ipynb").name
        problems.append(f"student/{out.name} differs from what `make student` makes from {source}: run it")
    stored = nbformat.read(out, as_version=4).metadata.get(METADATA_KEY, {}).get("source_sha256")
    if stored != source_hash(py_path):
        problems.append(
            f"student/{out.name} was not made from the current {py_path.name}: `make chapters`, then `make student`"
        )
    return problems


def _chapter_paths(parser: argparse.ArgumentParser, paths: list[Path], course_only: bool = False) -> list[Path]:
    """The chapter sources named on the command line (a notebook names its ``.py``); ``course_only``: only the
    course's own chapters (``render``, which executes them and replaces their notebooks)."""
    chosen = [p.with_suffix(".py") if p.suffix == ".ipynb" else p for p in paths] or chapter_sources()
    for path in chosen:
        if path.suffix != ".py" or not path.exists():
            parser.error(f"{path} is not a chapter source (expected chapters/NN_slug.py)")
        if course_only and not is_chapter(path):
            parser.error(f"{path} is not one of the course's chapters ({CHAPTERS_DIR}/NN_slug.py): render runs "
                         "a chapter and replaces its notebook, and nothing else; nothing was run or written")
    return chosen



def source_lines(obj: Any, body_only: bool = False) -> list[str]:
    """The source lines of a function, method or class, dedented, without docstrings (its own and those of what it
    defines: the chapter's prose says what they say). ``body_only``: without the ``def`` line(s) either, the body
    dedented (for a function whose signature is longer than what it does)."""
    source = textwrap.dedent(inspect.getsource(obj))
    tree = ast.parse(source)
    lines = source.splitlines()
    drop: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body \
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            drop.update(range(body[0].lineno - 1, body[0].end_lineno))
    if body_only:
        top = tree.body[0]
        if not isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)):
            raise TypeError(f"body_only needs a function, got {type(obj).__name__} {getattr(obj, '__name__', obj)!r}")
        drop.update(range(top.lineno - 1, top.body[0].lineno - 1))  # the decorators, the def and its signature
        drop.update(i for i, line in enumerate(lines) if i < top.lineno - 1)
    kept = textwrap.dedent("\n".join(line for i, line in enumerate(lines) if i not in drop)).splitlines()
    while kept and not kept[0].strip():  # the blank line a dropped docstring leaves
        kept.pop(0)
    return kept


def show_source(obj: Any, body_only: bool = False, max_lines: int = MAX_SOURCE_LINES) -> None:
    """Print the code of ``obj`` as a chapter shows it (:func:`source_lines`: no docstrings; ``body_only``: no
    signature). Raises ``ValueError`` when that is longer than ``max_lines``: show a smaller piece instead."""
    lines = source_lines(obj, body_only)
    if len(lines) > max_lines:
        name = getattr(obj, "__qualname__", repr(obj))
        raise ValueError(f"{name}: {len(lines)} lines of code without docstrings, more than {max_lines}: show the few "
                         "lines that matter (a smaller function, or body_only=True)")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """The command line, ``python -m wf_lessons.notebooks render|student|check [paths]``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m wf_lessons.notebooks", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="execute chapters and store their outputs")
    r.add_argument("paths", nargs="*", type=Path, help="chapter sources (default: all of chapters/)")
    r.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    s = sub.add_parser("student", help="write chapters/student/NN_slug.ipynb: solution cells replaced by stubs")
    s.add_argument("paths", nargs="*", type=Path, help="chapter sources (default: all of chapters/)")
    sub.add_parser("check", help="report pairs that differ or are stale, and stale student copies")
    c = sub.add_parser("colab", help="write each chapter's Colab link and setup cell from pyproject's Repository")
    c.add_argument("paths", nargs="*", type=Path, help="chapter sources (default: all of chapters/)")
    args = parser.parse_args(argv)
    if args.command == "colab":
        for path in _chapter_paths(parser, args.paths, course_only=True):
            if write_colab(path):
                print(f"wrote the Colab link and setup cell of {path.name}: render it (`make chapters`)")
        return 0
    if args.command == "render":
        for path in _chapter_paths(parser, args.paths, course_only=True):
            render(path, timeout=args.timeout)
        return 0
    if args.command == "student":
        failed = 0
        for path in _chapter_paths(parser, args.paths):
            try:
                out = write_student(path)
            except ValueError as error:
                print(f"error: {error}", file=sys.stderr)
                failed += 1
                continue
            stubs = nbformat.read(out, as_version=4).metadata[METADATA_KEY]["solution_cells"]
            print(f"wrote {out} ({stubs} solution cells replaced by stubs)")
        return 1 if failed else 0
    problems = [p for path in chapter_sources() for p in pair_problems(path) + student_problems(path)]
    print("\n".join(problems) or "all chapter pairs and student copies are consistent")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

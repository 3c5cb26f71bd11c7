"""What JupyterLab's Jupytext contents manager does with the chapters, without a browser (tests/browser does the rest).

`make lab` serves the repository root, so jupytext finds `[tool.jupytext]` in pyproject.toml and pairs every
chapter's `.py` with its `.ipynb`: opening the `.py` as a notebook shows the stored outputs, also when the `.ipynb`
is the newer file (as `make chapters` leaves it), and saving writes both files.
"""

import os
import shutil

import nbformat
import pytest
from jupyter_server.services.contents.largefilemanager import LargeFileManager
from jupytext.sync_contentsmanager import build_sync_jupytext_contents_manager_class

from wf_lessons.config import REPO_ROOT

SOURCES = sorted((REPO_ROOT / "chapters").glob("[0-9][0-9]_*.py"))
ContentsManager = build_sync_jupytext_contents_manager_class(LargeFileManager)


def _summary(notebook) -> list[tuple[int | None, int]]:
    """(execution count, number of outputs) of each code cell."""
    return [(c.get("execution_count"), len(c.get("outputs", []))) for c in notebook.cells if c.cell_type == "code"]


def _by_source(notebook) -> dict[str, tuple[int | None, int]]:
    """Code cell source -> (execution count, number of outputs); a pair being edited still matches cell by cell."""
    return {c.source: (c.get("execution_count"), len(c.get("outputs", []))) for c in notebook.cells
            if c.cell_type == "code"}


def test_make_lab_serves_the_repository_root():
    """jupytext looks for its configuration no higher than the server's root."""
    makefile = (REPO_ROOT / "Makefile").read_text()
    lab_recipe = makefile.split("\nlab:", 1)[1].split("\n\n", 1)[0]
    assert "--ServerApp.root_dir=." in lab_recipe and "--notebook-dir" not in lab_recipe


@pytest.fixture(scope="module")
def served_copy(tmp_path_factory):
    """pyproject.toml and the chapters in a fresh folder, each .ipynb an hour newer than its .py."""
    root = tmp_path_factory.mktemp("served")
    shutil.copy2(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "chapters").mkdir()
    for source in SOURCES:
        for path in (source, source.with_suffix(".ipynb")):
            shutil.copy2(path, root / "chapters" / path.name)
        stat = source.stat()
        os.utime(root / "chapters" / f"{source.stem}.ipynb", (stat.st_atime, stat.st_mtime + 3600))
    return root


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_py_opens_with_the_outputs_of_its_ipynb(served_copy, source):
    manager = ContentsManager(root_dir=str(served_copy))
    shown = manager.get(f"chapters/{source.name}", content=True, type="notebook")["content"]
    stored = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert sum(n for _, n in _summary(shown)) > 0, f"{source.name} opens without outputs: not paired"
    shown_cells, stored_cells = _by_source(shown), _by_source(stored)
    common = shown_cells.keys() & stored_cells.keys()  # all of them unless the .py changed since `make chapters`
    assert common, f"{source.name} and its .ipynb share no code cell"
    assert {s: shown_cells[s] for s in common} == {s: stored_cells[s] for s in common}


def test_saving_the_py_writes_both_files(served_copy):
    manager = ContentsManager(root_dir=str(served_copy))
    source = SOURCES[0]
    path = f"chapters/{source.name}"
    model = manager.get(path, content=True, type="notebook")
    first_markdown = next(c for c in model["content"].cells if c.cell_type == "markdown")
    first_markdown.source += "\n\nA line added in JupyterLab."
    manager.save({"type": "notebook", "format": "json", "content": model["content"]}, path)

    text = (served_copy / path).read_text()
    saved = nbformat.read(served_copy / f"chapters/{source.stem}.ipynb", as_version=4)
    assert "# A line added in JupyterLab." in text
    assert any("A line added in JupyterLab." in c.source for c in saved.cells)
    assert _summary(saved) == _summary(nbformat.read(source.with_suffix(".ipynb"), as_version=4))  # outputs kept
    assert not text.startswith("# ---"), "saving added a jupytext header to the .py (metadata filter not applied)"

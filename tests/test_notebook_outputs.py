"""What a reader of the committed notebooks sees: figures that fit the page, a static picture for every widget, no
progress bar stored as a widget, and the notation table one link away.

- **Figures**: every stored PNG is at most ``MAX_WIDTH`` pixels wide, so that it shows at its size in JupyterLab's
  notebook column and on GitHub instead of being scaled down until its labels are unreadable.
- **Widgets**: GitHub and most static renderings do not show widgets, so every cell that displays one must also
  store an ordinary PNG output before it (``wf_lessons.interactive.figure_controls`` draws the first state there).
- **Progress bars**: ``tqdm.auto`` in a kernel draws a progress-bar *widget*, and ignores ``TQDM_DISABLE`` there (its
  notebook class passes ``disable=False`` explicitly); no stored output or widget state may hold one.
- **Notation**: every chapter links the notation table of the paper notes (``paper_notes.md#notation``).
- **Source dumps**: a chapter prints package code only through ``notebooks.show_source`` (no docstrings, at most
  ``notebooks.MAX_SOURCE_LINES`` lines a call, or it raises), never with ``inspect.getsource`` itself.
"""

from __future__ import annotations

import base64
import struct

import jupytext
import nbformat
import pytest

from wf_lessons import notebooks

MAX_WIDTH = 1400  # pixels, as rendered by the inline backend
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
NOTEBOOKS = [path.with_suffix(".ipynb") for path in notebooks.chapter_sources()]
NOTATION_LINK = "](paper_notes.md#notation)"


def _png_width(data: str) -> int:
    raw = base64.b64decode(data)
    return struct.unpack(">I", raw[16:20])[0]  # the IHDR chunk: width, then height


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_figures_fit_the_notebook_width(path):
    notebook = nbformat.read(path, as_version=4)
    wide = [(index, _png_width(output["data"]["image/png"]))
            for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"
            for output in cell.outputs if "image/png" in output.get("data", {})]
    wide = [(index, width) for index, width in wide if width > MAX_WIDTH]
    assert not wide, f"{path.name}: figures wider than {MAX_WIDTH} px (cell, width): {wide}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_widget_leaves_a_static_picture(path):
    notebook = nbformat.read(path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        kinds = ["png" if "image/png" in o.get("data", {}) else "widget" if WIDGET_VIEW in o.get("data", {}) else ""
                 for o in cell.outputs]
        if "widget" in kinds:
            assert "png" in kinds[: kinds.index("widget")], (
                f"{path.name}, cell {index}: a widget without a static picture before it in the cell's outputs "
                "(draw the first state as an ordinary output: wf_lessons.interactive.figure_controls)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_progress_bar_is_stored(path):
    notebook = nbformat.read(path, as_version=4)
    state = notebook.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    models = {key: model["model_name"] for key, model in state.get("state", {}).items()}
    progress = sorted(key for key, name in models.items() if "Progress" in name)
    assert not progress, f"{path.name}: progress-bar widget models stored in the notebook: {progress}"
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            text = output.get("text", "") + output.get("data", {}).get("text/plain", "")
            assert "%|" not in text, f"{path.name}, cell {index}: a tqdm bar in the stored outputs: {text[:80]!r}"


SOURCES = notebooks.chapter_sources()


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_chapter_links_the_notation_table(source):
    markdown = "\n".join(c.source for c in jupytext.read(source).cells if c.cell_type == "markdown")
    assert NOTATION_LINK in markdown, f"{source.name}: no link to the notation table ([…]{NOTATION_LINK[1:]})"


def test_the_notation_table_is_there():
    text = (notebooks.CHAPTERS_DIR / "paper_notes.md").read_text(encoding="utf-8")
    assert "\n## Notation\n" in text
    table = text.split("\n## Notation\n", 1)[1].split("\n## ", 1)[0]
    for symbol in ("N", "C", "D", "H, W", "r", "k", "W0", "Ŵ", "W̃", "K0", "K̂", "K̃"):
        assert f"\n| {symbol} |" in table, f"the notation table has no row for {symbol}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_source_dumps_go_through_show_source(path):
    source = path.with_suffix(".py").read_text(encoding="utf-8")
    assert "getsource(" not in source, f"{path.name}: print package code with notebooks.show_source (the few lines)"
    notebook = nbformat.read(path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and "show_source(" in cell.source and "for " not in cell.source:
            printed = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
            calls = cell.source.count("show_source(")
            assert len(printed.splitlines()) <= notebooks.MAX_SOURCE_LINES * calls, f"{path.name}, cell {index}"


def test_show_source_drops_docstrings_and_refuses_a_long_dump(capsys):
    def short(x):
        """A docstring the chapter's prose replaces."""

        def inner():
            """Nested docstrings go too."""
            return 1

        return x + inner()

    notebooks.show_source(short)
    assert capsys.readouterr().out.splitlines() == [
        "def short(x):", "", "    def inner():", "        return 1", "", "    return x + inner()"]
    notebooks.show_source(short, body_only=True)
    assert capsys.readouterr().out.splitlines() == ["def inner():", "    return 1", "", "return x + inner()"]

    def long(x):
        return (x
                + 1
                + 2)

    with pytest.raises(ValueError, match="4 lines of code without docstrings, more than 3: show the few lines"):
        notebooks.show_source(long, max_lines=3)
    with pytest.raises(TypeError, match="body_only needs a function"):
        notebooks.source_lines(nbformat.NotebookNode, body_only=True)

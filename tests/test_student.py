"""Student copies (``make student``): current with the chapters, no solution code in them, stubs that raise with
their hint; and the generator itself on small synthetic notebooks."""

import re

import jupytext
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from wf_lessons import notebooks

SOURCES = notebooks.chapter_sources()
COPIES = sorted(notebooks.STUDENT_DIR.glob("[0-9][0-9]_*.ipynb"))


def solution_cells(notebook):
    return [c for c in notebook.cells if notebooks.SOLUTION_TAG in c.get("metadata", {}).get("tags", ())]


def code_lines(cells):
    return {line.strip() for c in cells if c.cell_type == "code" for line in c.source.splitlines()}


# ---------------------------------------------------------------------------------------------------------------
# the committed copies


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_student_copy_is_current(source):
    """Regenerating from the chapter's rendered notebook gives the committed copy, made from the current .py."""
    assert notebooks.student_problems(source) == []


def test_every_student_copy_has_a_chapter():
    orphans = [p.name for p in COPIES if not (notebooks.CHAPTERS_DIR / p.with_suffix(".py").name).exists()]
    assert orphans == []


@pytest.mark.parametrize("copy", COPIES, ids=[p.stem for p in COPIES])
def test_no_solution_code_or_output_in_student_copy(copy):
    instructor = nbformat.read(notebooks.CHAPTERS_DIR / copy.name, as_version=4)
    student = nbformat.read(copy, as_version=4)
    visible = code_lines(c for c in instructor.cells if c not in solution_cells(instructor))
    secret = {
        line
        for cell in solution_cells(instructor)
        for line in code_lines([cell])
        if line and not line.startswith("#") and len(line) > 12 and line not in visible
    }
    leaked = secret & code_lines(student.cells)
    assert leaked == set(), f"solution lines in the student copy: {sorted(leaked)}"
    stubs = solution_cells(student)
    assert len(stubs) == len(solution_cells(instructor))
    if stubs:
        first = student.cells.index(stubs[0])
        with_outputs = [i for i, c in enumerate(student.cells[first:], start=first) if c.get("outputs")]
        assert with_outputs == [], f"cells {with_outputs} keep outputs after the first exercise stub"


STUBS = [
    pytest.param(cell.source, id=f"{copy.stem}-cell{index}")
    for copy in COPIES
    for index, cell in enumerate(nbformat.read(copy, as_version=4).cells)
    if notebooks.SOLUTION_TAG in cell.get("metadata", {}).get("tags", ())
]


@pytest.mark.parametrize("stub", STUBS)
def test_each_stub_raises_with_its_hint(stub):
    hint = notebooks.HINT_LINE.fullmatch(stub.splitlines()[0].strip())["hint"]
    with pytest.raises(NotImplementedError, match=re.escape(hint)):
        exec(stub, {})


# ---------------------------------------------------------------------------------------------------------------
# the generator on synthetic notebooks

TRICKY_HINT = 'a function: "quoted", a back\\slash and x²'


def synthetic_notebook():
    out = lambda text: [new_output("stream", name="stdout", text=text)]  # noqa: E731
    cells = [
        new_markdown_cell("# A chapter\n\nSome prose."),
        new_code_cell("x = 1\nprint(x)", execution_count=1, outputs=out("1\n")),
        new_code_cell("# hint: add one to x\nanswer_1 = x + 1\nprint(answer_1)", execution_count=2, outputs=out("2\n")),
        new_code_cell("check(1, answer_1)", execution_count=3, outputs=out("right\n")),
        new_markdown_cell("More prose."),
        new_code_cell(f"# hint: {TRICKY_HINT}\ndef answer_2():\n    return 42", execution_count=4),
        new_code_cell("print('after the exercises')", execution_count=5, outputs=out("after the exercises\n")),
    ]
    cells[2].metadata["tags"] = ["solution"]
    cells[3].metadata["tags"] = ["nbval-check-output"]
    cells[5].metadata["tags"] = ["solution"]
    notebook = new_notebook(cells=cells)
    notebook.metadata[notebooks.METADATA_KEY] = {"source_sha256": "abc"}
    return notebook


def test_solution_cells_become_stubs_and_later_outputs_are_cleared():
    notebook = synthetic_notebook()
    before = nbformat.writes(notebook)
    student = notebooks.student_notebook(notebook, where="99_synthetic.ipynb")
    assert nbformat.writes(notebook) == before, "the instructor notebook must not change"
    cells = student.cells
    assert [c.source for c in cells[:2]] == [c.source for c in notebook.cells[:2]]
    assert cells[1].outputs == notebook.cells[1].outputs and cells[1].execution_count == 1
    assert cells[2].source == '# hint: add one to x\nraise NotImplementedError("add one to x")'
    assert cells[2].metadata["tags"] == ["solution"] and cells[2].outputs == [] and cells[2].execution_count is None
    assert cells[3].source == "check(1, answer_1)" and cells[3].metadata["tags"] == ["nbval-check-output"]
    assert all(c.outputs == [] and c.execution_count is None for c in cells[2:] if c.cell_type == "code")
    assert [c.source for c in cells if c.cell_type == "markdown"] == ["# A chapter\n\nSome prose.", "More prose."]
    assert student.metadata[notebooks.METADATA_KEY] == {
        "edition": "student",
        "source_sha256": "abc",
        "solution_cells": 2,
    }
    nbformat.validate(student)


def test_stub_raises_with_a_hint_that_needs_escaping():
    stub = notebooks.student_notebook(synthetic_notebook()).cells[5].source
    assert stub.splitlines()[0] == f"# hint: {TRICKY_HINT}"
    with pytest.raises(NotImplementedError) as error:
        exec(stub, {})
    assert str(error.value) == TRICKY_HINT


def test_a_solution_cell_without_a_hint_line_is_a_clear_error():
    notebook = synthetic_notebook()
    notebook.cells[5].source = "def answer_2():\n    return 42"
    with pytest.raises(ValueError, match=r"99_synthetic\.ipynb, cell 5: .*'# hint: <text>'.*def answer_2"):
        notebooks.student_notebook(notebook, where="99_synthetic.ipynb")
    notebook.cells[5].source = "# hint:\nanswer_2 = 42"  # an empty hint is no hint
    with pytest.raises(ValueError, match="cell 5"):
        notebooks.student_notebook(notebook, where="99_synthetic.ipynb")


def test_only_code_cells_can_be_solutions():
    notebook = synthetic_notebook()
    notebook.cells[4].metadata["tags"] = ["solution"]
    with pytest.raises(ValueError, match="cell 4: only code cells"):
        notebooks.student_notebook(notebook, where="99_synthetic.ipynb")


def test_a_notebook_without_solutions_is_copied_unchanged():
    notebook = synthetic_notebook()
    for cell in notebook.cells:
        cell.metadata.pop("tags", None)
    student = notebooks.student_notebook(notebook)
    assert student.cells == notebook.cells
    assert student.metadata[notebooks.METADATA_KEY]["solution_cells"] == 0


def make_pair(folder, notebook, name="99_synthetic"):
    """A consistent, 'rendered' chapter pair in ``folder``: the .py and its notebook carrying the .py's hash."""
    py = folder / f"{name}.py"
    jupytext.write(notebook, py, fmt="py:percent")
    notebook.metadata[notebooks.METADATA_KEY] = {"source_sha256": notebooks.source_hash(py)}
    nbformat.write(notebook, py.with_suffix(".ipynb"))
    assert notebooks.pair_problems(py) == []
    return py


def test_write_student_and_detect_stale_copies(tmp_path):
    py = make_pair(tmp_path, synthetic_notebook())
    out = notebooks.write_student(py)
    assert out == tmp_path / "student" / "99_synthetic.ipynb"
    assert notebooks.student_problems(py) == []
    written = nbformat.read(out, as_version=4)
    assert written.metadata[notebooks.METADATA_KEY]["source_sha256"] == notebooks.source_hash(py)
    assert written.cells[2].source.endswith('raise NotImplementedError("add one to x")')

    out.write_text(out.read_text().replace("add one to x", "add two"))  # a hand-edited copy
    assert any("differs" in p for p in notebooks.student_problems(py))

    notebooks.write_student(py)
    assert notebooks.student_problems(py) == []
    py.write_text(py.read_text() + "\n# %%\nprint('new cell')\n")  # the chapter changed, not re-rendered
    assert notebooks.student_problems(py) == [
        "student/99_synthetic.ipynb was not made from the current 99_synthetic.py: `make chapters`, then `make student`"
    ]
    with pytest.raises(ValueError, match="render the chapter first"):
        notebooks.write_student(py)


def test_student_copy_missing(tmp_path):
    py = make_pair(tmp_path, synthetic_notebook())
    assert notebooks.student_problems(py) == ["student/99_synthetic.ipynb is missing: run `make student`"]


def test_cli_student_command(tmp_path, capsys):
    good = make_pair(tmp_path, synthetic_notebook(), "98_good")
    bad_notebook = synthetic_notebook()
    bad_notebook.cells[2].source = "answer_1 = x + 1"  # no hint line
    bad = make_pair(tmp_path, bad_notebook, "99_bad")
    assert notebooks.main(["student", str(good), str(bad)]) == 1
    captured = capsys.readouterr()
    assert "98_good.ipynb (2 solution cells replaced by stubs)" in captured.out
    assert "99_bad.ipynb, cell 2" in captured.err
    assert (tmp_path / "student" / "98_good.ipynb").exists()
    assert not (tmp_path / "student" / "99_bad.ipynb").exists()
    assert notebooks.main(["student", str(good.with_suffix(".ipynb"))]) == 0  # a notebook path names its chapter


def test_student_copies_are_not_collected_by_nbval():
    """``pytest tests chapters --nbval-lax`` must not run the student copies (they stop at the first stub)."""
    conftest = notebooks.STUDENT_DIR / "conftest.py"
    namespace = {}
    exec(conftest.read_text(), namespace)
    assert "*.ipynb" in namespace["collect_ignore_glob"]

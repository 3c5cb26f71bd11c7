"""Exercises that teach: every chapter from 01 on has a *build* exercise and a *predict-first* exercise.

The markers are documented in ``wf_lessons/exercises/__init__.py``:

- **build**: a code cell tagged ``solution`` and ``build`` defines a function (``def name``) and binds it to the
  answer (``answer_N = name``); a later code cell calls ``check_exercise(N, answer_N)``.
- **predict-first**: a code cell tagged ``predict`` assigns ``prediction_N`` and names, in a line
  ``# answered in: <heading>``, the ``##``/``###`` heading of the section that answers it; that heading comes after
  the cell, and after the heading a code cell calls ``check_prediction(N, prediction_N)``. The measured answer
  is checked by a cell calling ``check_exercise(N, answer_N)`` after the heading as well.

The checks read the chapter sources (``chapters/NN_slug.py``, the source of truth) with jupytext. The second half
of the file runs them on small synthetic notebooks, so that a chapter lacking either property is seen to fail.
"""

from __future__ import annotations

import ast
import re

import jupytext
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from wf_lessons import notebooks

BUILD_TAG, PREDICT_TAG = "build", "predict"
ANSWERED_IN = re.compile(r"^#\s*answered in:\s*(?P<heading>\S.*?)\s*$", re.MULTILINE)
HEADING = re.compile(r"^#{2,3}\s+(?P<text>\S.*?)\s*$", re.MULTILINE)

def _tags(cell) -> tuple[str, ...]:
    return tuple(cell.get("metadata", {}).get("tags", ()))


def _calls(cell, function: str, number: int, argument: str) -> bool:
    """Whether a code cell calls ``<anything>.function(number, argument)`` (or the bare function)."""
    pattern = rf"(?:\b\w+\.)?\b{function}\(\s*{number}\s*,\s*{argument}\s*[,)]"
    return cell.cell_type == "code" and re.search(pattern, cell.source) is not None


def build_exercises(notebook) -> dict[int, str]:
    """{exercise number: function name} of the chapter's build exercises (see the module docstring)."""
    found = {}
    for index, cell in enumerate(notebook.cells):
        tags = _tags(cell)
        if cell.cell_type != "code" or BUILD_TAG not in tags or notebooks.SOLUTION_TAG not in tags:
            continue
        tree = ast.parse(cell.source)
        functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        for node in tree.body:
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id in functions
                    and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
                match = re.fullmatch(r"answer_(\d+)", node.targets[0].id)
                if match is None:
                    continue
                number = int(match[1])
                if any(_calls(later, "check_exercise", number, f"answer_{number}")
                       for later in notebook.cells[index + 1 :]):
                    found[number] = node.value.id
    return found


def predict_exercises(notebook) -> dict[int, str]:
    """{exercise number: heading of the section that answers it} of the chapter's predict-first exercises."""
    found = {}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or PREDICT_TAG not in _tags(cell):
            continue
        names = re.findall(r"^prediction_(\d+)\s*=", cell.source, re.MULTILINE)
        answered = ANSWERED_IN.search(cell.source)
        if len(names) != 1 or answered is None:
            continue
        number, wanted = int(names[0]), answered["heading"]
        heading = next((i for i, c in enumerate(notebook.cells[index + 1 :], start=index + 1)
                        if c.cell_type == "markdown"
                        and any(h["text"] == wanted for h in HEADING.finditer(c.source))), None)
        if heading is None:
            continue
        after = notebook.cells[heading + 1 :]
        if (any(_calls(c, "check_prediction", number, f"prediction_{number}") for c in after)
                and any(_calls(c, "check_exercise", number, f"answer_{number}") for c in after)):
            found[number] = wanted
    return found


CHAPTERS = [path for path in notebooks.chapter_sources() if path.name[:2] != "00"]


@pytest.mark.parametrize("source", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_has_a_build_exercise(source):
    found = build_exercises(jupytext.read(source))
    assert found, (f"{source.name}: no build exercise (a code cell tagged 'solution' and 'build' that defines a "
                   "function, binds it to answer_N and is checked by check_exercise(N, answer_N) later)")


@pytest.mark.parametrize("source", CHAPTERS)
def test_chapter_has_a_predict_first_exercise(source):
    found = predict_exercises(jupytext.read(source))
    assert found, (f"{source.name}: no predict-first exercise (a code cell tagged 'predict' that assigns "
                   "prediction_N and names '# answered in: <heading>', a later section with that heading, and "
                   "after it check_prediction(N, prediction_N) and check_exercise(N, answer_N))")


def test_predict_cells_are_not_solutions_and_hold_no_answer():
    """A prediction is the learner's: the cell is never stubbed (so it is not a solution cell) and ships empty."""
    for source in notebooks.chapter_sources():
        for cell in jupytext.read(source).cells:
            if PREDICT_TAG in _tags(cell):
                assert notebooks.SOLUTION_TAG not in _tags(cell), f"{source.name}: a predict cell is a solution cell"
                assert re.search(r"^prediction_\d+\s*=\s*None\b", cell.source, re.MULTILINE), (
                    f"{source.name}: a predict cell should assign prediction_N = None (the learner's guess)")


# ------------------------------------------------------------------------------------------------ the checks
def _notebook(*cells):
    made = []
    for kind, source, tags in cells:
        cell = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
        if tags:
            cell.metadata["tags"] = list(tags)
        made.append(cell)
    return new_notebook(cells=made)


PREDICT = ("code", "# answered in: 2. The answer\nprediction_3 = None  # your guess", ("predict",))
ANSWER_SECTION = ("markdown", "## 2. The answer\n\nIt is 16.", ())
MEASURE = ("code", "# hint: measure it\nanswer_3 = 16", ("solution",))
CHECK = ("code", "ch01.check_exercise(3, answer_3)\nch01.check_prediction(3, prediction_3)", ())
BUILD = ("code", "# hint: write it\ndef double(x):\n    return 2 * x\n\n\nanswer_4 = double", ("solution", "build"))
CHECK_BUILD = ("code", "ch01.check_exercise(4, answer_4)", ())


def test_the_checks_recognise_both_kinds():
    notebook = _notebook(("markdown", "## 1. Start", ()), PREDICT, ANSWER_SECTION, MEASURE, CHECK, BUILD, CHECK_BUILD)
    assert build_exercises(notebook) == {4: "double"}
    assert predict_exercises(notebook) == {3: "2. The answer"}


@pytest.mark.parametrize(
    "cells",
    [
        pytest.param([ANSWER_SECTION, PREDICT, MEASURE, CHECK], id="prediction-after-the-section"),
        pytest.param([PREDICT, MEASURE, CHECK, ANSWER_SECTION], id="checked-before-the-section"),
        pytest.param([("code", PREDICT[1], ()), ANSWER_SECTION, MEASURE, CHECK], id="untagged"),
        pytest.param([("code", "prediction_3 = None", ("predict",)), ANSWER_SECTION, MEASURE, CHECK],
                     id="no-answered-in-line"),
        pytest.param([PREDICT, ("markdown", "## 3. Another section", ()), MEASURE, CHECK], id="section-missing"),
        pytest.param([PREDICT, ANSWER_SECTION, MEASURE, ("code", "ch01.check_exercise(3, answer_3)", ())],
                     id="prediction-never-checked"),
    ],
)
def test_a_misplaced_or_incomplete_prediction_is_not_counted(cells):
    assert predict_exercises(_notebook(*cells)) == {}


@pytest.mark.parametrize(
    "cells",
    [
        pytest.param([("code", BUILD[1], ("solution",)), CHECK_BUILD], id="not-tagged-build"),
        pytest.param([("code", "# hint: compute it\nanswer_4 = 2 * 21", ("solution", "build")), CHECK_BUILD],
                     id="no-function"),
        pytest.param([BUILD], id="never-checked"),
        pytest.param([CHECK_BUILD, BUILD], id="checked-before-it-is-written"),
    ],
)
def test_a_build_exercise_needs_a_function_and_a_check(cells):
    assert build_exercises(_notebook(*cells)) == {}

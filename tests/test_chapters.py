"""Each chapter is a .py source plus its rendered .ipynb: same cells, outputs rendered from the current source."""

import pytest

from wf_lessons import notebooks

SOURCES = notebooks.chapter_sources()


def test_chapters_exist():
    assert SOURCES and SOURCES[0].name == "00_introduction.py"


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_pair_is_consistent_and_fresh(source):
    assert notebooks.pair_problems(source) == []


def test_every_notebook_has_a_source():
    orphans = [p.name for p in notebooks.CHAPTERS_DIR.glob("*.ipynb") if not p.with_suffix(".py").exists()]
    assert orphans == []


def test_pair_problems_detects_an_edited_source(tmp_path):
    source = tmp_path / SOURCES[0].name
    source.write_text(SOURCES[0].read_text() + "\n# %%\nprint('new cell')\n")
    (tmp_path / SOURCES[0].with_suffix(".ipynb").name).write_bytes(SOURCES[0].with_suffix(".ipynb").read_bytes())
    problems = notebooks.pair_problems(source)
    assert any("cells differ" in p for p in problems) and any("not rendered" in p for p in problems)

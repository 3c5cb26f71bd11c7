"""Every chapter opens in Colab: an "Open in Colab" link under its title and, as its first code cell, the setup cell
of ``wf_lessons.notebooks.colab_setup_source`` made from ``[project.urls] Repository`` in pyproject.toml.

In the course's own environment the setup cell does nothing (nbval and ``make chapters`` run it there); where
``wf_lessons`` cannot be found (Colab) it clones the repository (the committed run logs come with it: ``WF_RUNS_DIR``),
runs one ``%pip install`` of the clone, fetches CIFAR-10 with ``python -m wf_lessons.data prepare`` and sets
``WF_QUICK=1`` when there is no CUDA GPU. The tests run it in an
IPython shell, with the magics recorded instead of run.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import nbformat
import pytest
import torch

from wf_lessons import notebooks

SOURCES = notebooks.chapter_sources()
IPython = pytest.importorskip("IPython")


def test_the_repository_url_is_a_github_address():
    url = notebooks.repository_url()
    assert url.startswith("https://github.com/") and not url.endswith("/")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_chapter_has_the_colab_link_and_setup_cell(source):
    problems = notebooks.colab_problems(source)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_notebook_holds_the_magics_and_the_setup_cell_printed_nothing(source):
    """The stored notebook (what Colab opens) has the magics as commands, not as jupytext's comments, and the cell
    printed nothing when the chapter was rendered in the course's environment."""
    notebook = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    setup = next(c for c in notebook.cells if c.cell_type == "code")
    assert setup.source.strip() == notebooks.colab_setup_source().strip()
    assert "\n    %pip install" in setup.source and "\n    !git clone" in setup.source
    assert setup.outputs == [], f"{source.name}: the setup cell printed {setup.outputs}"
    link = notebooks.colab_url(f"chapters/{source.with_suffix('.ipynb').name}")
    assert f"]({link})" in notebook.cells[0].source


def test_colab_problems_name_what_to_change(tmp_path):
    other = "https://github.com/someone/elsewhere"
    problems = notebooks.colab_problems(SOURCES[0], repository=other)
    assert len(problems) == 2 and all("[project.urls] Repository" in p for p in problems), problems
    copy = tmp_path / SOURCES[0].name
    copy.write_text(SOURCES[0].read_text(encoding="utf-8"), encoding="utf-8")
    assert notebooks.write_colab(copy, repository=other)
    assert notebooks.colab_problems(copy, repository=other) == []
    assert not notebooks.write_colab(copy, repository=other), "a second write changes nothing"
    text = copy.read_text(encoding="utf-8")
    assert text.count("[Open in Colab](") == 1 and text.count('tags=["setup"]') == 1
    assert "git clone --quiet --depth 1 https://github.com/someone/elsewhere wf-lessons" in text


def _unset(monkeypatch, *names):
    """Unset environment variables, restored afterwards also when they were unset before (``delenv`` alone records
    nothing then, and a value the setup cell sets would leak into later tests)."""
    for name in names:
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    calls = []
    shell.run_line_magic = lambda name, line, *a, **k: calls.append(("%" + name, line))
    shell.system = lambda cmd: calls.append(("!", cmd))
    shell.calls = calls
    yield shell
    del shell.run_line_magic, shell.system
    InteractiveShell.clear_instance()


@pytest.mark.parametrize("preset", [None, "0", "1"])
def test_setup_cell_does_nothing_in_the_course_environment(shell, monkeypatch, capsys, preset):
    _unset(monkeypatch, "WF_RUNS_DIR")
    if preset is None:
        _unset(monkeypatch, "WF_QUICK")
    else:
        monkeypatch.setenv("WF_QUICK", preset)
    result = shell.run_cell(notebooks.colab_setup_source())
    assert result.success, result.error_in_exec
    assert shell.calls == []
    assert capsys.readouterr().out == ""

    assert os.environ.get("WF_QUICK") == preset and "WF_RUNS_DIR" not in os.environ


@pytest.mark.parametrize("cuda, expected", [(False, "1"), (True, "0")])
def test_setup_cell_installs_the_course_where_it_is_missing(shell, monkeypatch, cuda, expected):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wf_lessons" else real(name, *a))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    _unset(monkeypatch, "WF_QUICK", "WF_RUNS_DIR")
    result = shell.run_cell(notebooks.colab_setup_source())
    assert result.success, result.error_in_exec
    url = notebooks.repository_url()
    assert [(kind, shell.var_expand(cmd)) for kind, cmd in shell.calls] == [
        ("!", f"git clone --quiet --depth 1 {url} wf-lessons"),
        ("%pip", "install --quiet ./wf-lessons"),
        ("!", f"{sys.executable} -m wf_lessons.data prepare"),
    ]
    assert os.environ["WF_RUNS_DIR"] == os.path.abspath("wf-lessons/data/runs")

    assert os.environ["WF_QUICK"] == expected


def test_an_explicit_quick_mode_and_runs_folder_win_on_colab(shell, monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wf_lessons" else real(name, *a))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("WF_QUICK", "1")
    monkeypatch.setenv("WF_RUNS_DIR", str(tmp_path))
    assert shell.run_cell(notebooks.colab_setup_source()).success
    assert os.environ["WF_QUICK"] == "1" and os.environ["WF_RUNS_DIR"] == str(tmp_path)

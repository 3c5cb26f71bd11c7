"""wf_lessons.__version__ (package metadata, pyproject.toml as the fallback), CHANGELOG.md, and the version in every
run log."""

import re
from importlib import metadata

import pytest
import torch

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import wf_lessons
from wf_lessons import config, runlog

PYPROJECT_VERSION = tomllib.loads((config.REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_version_is_the_projects():
    assert wf_lessons.__version__ == PYPROJECT_VERSION
    assert wf_lessons.__version__ == metadata.version("wf-lessons")  # installed (editable) by make setup


def test_version_falls_back_to_pyproject_in_an_uninstalled_checkout(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(wf_lessons._metadata, "version", not_installed)
    assert wf_lessons._version() == PYPROJECT_VERSION


def test_version_without_metadata_or_checkout_is_unknown(monkeypatch, tmp_path):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(wf_lessons._metadata, "version", not_installed)
    package = tmp_path / "wf_lessons"
    package.mkdir()
    monkeypatch.setattr(wf_lessons, "__file__", str(package / "__init__.py"))
    assert wf_lessons._version() == "0+unknown"
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\nversion = "9.9"\n')
    assert wf_lessons._version() == "0+unknown"  # another project's pyproject.toml is not ours
    (tmp_path / "pyproject.toml").write_text('[tool.x]\nversion = "1"\n[project]\nname = "wf-lessons"\n'
                                             'version = "2.3.4"\n[tool.y]\nversion = "5"\n')
    assert wf_lessons._version() == "2.3.4"


def test_changelog_starts_with_the_current_version():
    text = (config.REPO_ROOT / "CHANGELOG.md").read_text()
    entries = re.findall(r"^## (\S+)", text, re.MULTILINE)
    assert entries, "CHANGELOG.md has no '## <version>' entry"
    assert entries[0] == PYPROJECT_VERSION, f"CHANGELOG top entry {entries[0]}, pyproject {PYPROJECT_VERSION}"


def test_every_run_log_records_the_version_and_commit():
    env = runlog.environment(torch.device("cpu"))
    assert env["wf_lessons"] == wf_lessons.__version__
    assert env["git_commit"] == runlog.git_commit() and isinstance(env["git_dirty"], list)


def test_an_installed_package_records_its_version_and_never_asks_git(monkeypatch, tmp_path):
    """Installed inside a student's git project, the course must not record the student's commit as its own."""
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path)  # nothing of the course beside the package

    def no_git(*args):
        pytest.fail(f"git was asked: {args}")

    monkeypatch.setattr(runlog, "_git", no_git)
    env = runlog.environment(torch.device("cpu"))
    assert env["wf_lessons"] == wf_lessons.__version__
    assert env["git_commit"] == "unknown" and env["git_dirty"] == []

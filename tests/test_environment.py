"""environment.yml and pyproject.toml must list the same packages with the same version ranges (the package's
dependencies and its `dev` and `book` extras)."""

import re

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from wf_lessons.config import REPO_ROOT


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return set(project["dependencies"]) | set(extras["dev"]) | set(extras["book"])


def _conda_pip_requirements() -> set[str]:
    lines = (REPO_ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:")
    reqs = {m.group(1) for line in lines[start + 1 :] if (m := re.match(r"\s+- (\S.*)$", line))}
    return {r for r in reqs if not r.startswith("-e ")}


def test_environment_yml_matches_pyproject():
    pyproject, conda = _pyproject_requirements(), _conda_pip_requirements()
    assert pyproject == conda, f"only in pyproject: {pyproject - conda}; only in environment.yml: {conda - pyproject}"


def test_environment_installs_the_package_itself():
    assert "      - -e .[dev,book]" in (REPO_ROOT / "environment.yml").read_text().splitlines()

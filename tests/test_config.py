import json
import sys
from pathlib import Path

import pytest
import torch

from wf_lessons import config, envcheck, runlog
from wf_lessons.train import TrainConfig


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_quick_reads_wf_quick(monkeypatch, value, expected):
    monkeypatch.setenv("WF_QUICK", value)
    assert config.quick() is expected


def test_quick_rejects_typos(monkeypatch):
    monkeypatch.setenv("WF_QUICK", "yes please")
    with pytest.raises(ValueError, match="WF_QUICK"):
        config.quick()


def test_data_dir_default_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("WF_DATA_DIR", raising=False)
    assert config.data_dir() == config.REPO_ROOT / "data"
    monkeypatch.setenv("WF_DATA_DIR", str(tmp_path))
    assert config.data_dir() == tmp_path.resolve()


@pytest.fixture
def installed(monkeypatch, tmp_path):
    """The package as if installed from a wheel: nothing of the course beside it, no location variable set, and the
    current directory a student's empty project folder."""
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.setattr(config, "REPO_ROOT", site)
    for name in ("WF_DATA_DIR", "WF_RUNS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # Linux; other platforms ignore it
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    return project


def test_a_checkout_keeps_everything_in_the_repository(monkeypatch):
    for name in ("WF_DATA_DIR", "WF_RUNS_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert config.in_checkout()
    assert config.data_dir() == config.REPO_ROOT / "data"
    assert config.runs_dir() == config.REPO_ROOT / "data" / "runs"
    assert config.checkpoints_dir() == config.REPO_ROOT / "data" / "checkpoints"
    assert config.course_runs_dir() == config.REPO_ROOT / "data" / "runs"


def test_installed_data_goes_to_the_user_data_folder_and_runs_to_the_current_directory(installed):
    assert not config.in_checkout()
    assert config.data_dir() == config.user_data_dir()
    assert config.user_data_dir().name == config.APP_NAME
    assert not config.data_dir().is_relative_to(config.REPO_ROOT)
    assert config.runs_dir() == installed / config.RUNS_FOLDER
    assert config.checkpoints_dir() == installed / config.RUNS_FOLDER / "checkpoints"  # beside the student's logs
    assert config.course_runs_dir() is None
    for folder in (config.data_dir(), config.runs_dir()):
        assert not folder.exists()  # deciding creates nothing


def test_user_data_folder_follows_the_platform_convention(installed, tmp_path):
    import platformdirs

    assert config.user_data_dir() == Path(platformdirs.user_data_dir("wf-lessons", appauthor=False))
    if sys.platform.startswith("linux"):
        assert config.user_data_dir() == tmp_path / "xdg" / "wf-lessons"


@pytest.mark.parametrize("mode", ["checkout", "installed"])
def test_every_location_is_overridable(request, monkeypatch, tmp_path, mode):
    if mode == "installed":
        request.getfixturevalue("installed")
    monkeypatch.setenv("WF_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("WF_RUNS_DIR", str(tmp_path / "r"))
    assert config.data_dir() == (tmp_path / "d").resolve()
    assert config.checkpoints_dir() == (tmp_path / "d" / "checkpoints").resolve()
    assert config.runs_dir() == (tmp_path / "r").resolve()
    monkeypatch.setenv("WF_RUNS_DIR", "")  # empty: unset
    monkeypatch.setenv("WF_DATA_DIR", "  ")
    assert config.runs_dir() == (config.REPO_ROOT / "data" / "runs" if mode == "checkout"
                                 else Path.cwd() / config.RUNS_FOLDER)
    assert config.data_dir() == (config.REPO_ROOT / "data" if mode == "checkout" else config.user_data_dir())


def test_runs_dir_is_the_one_place_for_run_logs(monkeypatch, tmp_path):
    """Callers look runs_dir up in config at each call, so replacing it (as tests do) moves every run log."""
    monkeypatch.setattr("wf_lessons.config.runs_dir", lambda: tmp_path)
    assert config.new_run_log_path("x") == tmp_path / "x.json"
    assert TrainConfig(model="wf-cifar-tiny", run_name="r").log_path() == tmp_path / "r.json"
    runlog.write({"a": 1}, "y")
    assert runlog.read("y") == {"a": 1} and json.loads((tmp_path / "y.json").read_text()) == {"a": 1}


def test_checkpoints_dir_is_where_training_writes(installed, monkeypatch, tmp_path):
    """config.checkpoints_dir() states the folder TrainConfig uses by default (in either mode)."""
    assert TrainConfig(model="wf-cifar-tiny", run_name="r").checkpoint_path() == config.checkpoints_dir() / "r.pt"
    monkeypatch.setenv("WF_DATA_DIR", str(tmp_path / "d"))
    assert TrainConfig(model="wf-cifar-tiny", run_name="r").checkpoint_path() == config.checkpoints_dir() / "r.pt"


@pytest.mark.parametrize("mode", ["checkout", "installed"])
def test_envcheck_prints_every_location(request, capsys, mode):
    if mode == "installed":
        request.getfixturevalue("installed")
    assert envcheck.main(["where"]) == 0
    out = capsys.readouterr().out
    rows = config.locations()
    assert set(rows) == {"package", "data folder", "decoded-data cache", "checkpoints", "run logs",
                         "course run logs", "shipped models"}
    for what, (path, _why) in rows.items():
        assert f"{what} : {path}" in out
    expected = "committed in the repository" if mode == "checkout" else "in the course repository's data/runs/"
    assert expected in out
    if mode == "installed":
        assert str(Path.cwd() / "wf-runs") in out and "installed: nothing is written here" in out


def test_envcheck_report_includes_the_locations(capsys, monkeypatch):
    monkeypatch.setenv("WF_QUICK", "1")
    assert envcheck.main([]) == 0
    out = capsys.readouterr().out
    assert "wf_lessons : " in out and "Where files go:" in out and f"run logs : {config.runs_dir()}" in out


def test_device_is_cpu_without_cuda(monkeypatch):
    monkeypatch.delenv("WF_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert config.device().type == expected


def test_device_refuses_missing_cuda(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        config.device("cuda")


def test_seed_everything_is_reproducible():
    g = config.seed_everything(3)
    a, ga = torch.rand(4), torch.rand(4, generator=g)
    g = config.seed_everything(3)
    assert torch.equal(a, torch.rand(4)) and torch.equal(ga, torch.rand(4, generator=g))
    with pytest.raises(ValueError):
        config.seed_everything(-1)

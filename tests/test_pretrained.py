"""The shipped trained models: loading, integrity, export from a run, and the check command."""

import json
import os
import shutil

import pytest
import torch
from test_train import TINY, _config, _data

from wf_lessons import config, pretrained, train
from wf_lessons.data import DataNotFoundError, cifar10


def test_every_shipped_model_loads_in_eval_mode_and_matches_its_manifest():
    for name in pretrained.NAMES:
        meta = pretrained.manifest(name)
        model = pretrained.load(name)
        assert not model.training
        assert sum(p.numel() for p in model.parameters()) == meta["parameters"]
        assert (pretrained.FOLDER / f"{name}.pt").stat().st_size <= 2_000_000
        assert meta["run_log"].startswith("data/runs/") and (config.REPO_ROOT / meta["run_log"]).is_file()
        log = json.loads((config.REPO_ROOT / meta["run_log"]).read_text())
        assert log["complete"] and log["test_acc"] == meta["test_acc"] and log["test_images"] == 10_000
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_unknown_missing_and_corrupted_files_give_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown pretrained model 'nope'; valid names: wf-cifar-cpu"):
        pretrained.load("nope")
    name = pretrained.NAMES[0]
    shutil.copytree(pretrained.FOLDER, tmp_path / "pre", ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path / "pre")
    weights = tmp_path / "pre" / f"{name}.pt"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupted or was replaced"):
        pretrained.load(name)
    weights.unlink()
    with pytest.raises(FileNotFoundError, match=f"the weights {name}.pt of pretrained model"):
        pretrained.load(name)
    (tmp_path / "pre" / f"{name}.json").unlink()
    with pytest.raises(FileNotFoundError, match="manifest"):
        pretrained.load(name)


def test_export_then_check_round_trip(tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    monkeypatch.setattr("wf_lessons.config.runs_dir", lambda: runs)
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path / "pre")
    monkeypatch.setattr(pretrained, "NAMES", ("toy",))
    data = _data()
    train.train(_config(tmp_path, run_name="toy-run", epochs=2, write_log=True), data)
    monkeypatch.setattr("wf_lessons.data.cifar10", lambda split: data[1])
    moved = tmp_path / "moved.pt"
    (tmp_path / "ckpt" / "toy-run.pt").rename(moved)
    assert pretrained.main(["export", "--run", "toy-run", "--name", "toy"]) == 2  # not where the log says
    assert "does not exist" in capsys.readouterr().err
    assert pretrained.main(["export", "--run", "toy-run", "--name", "toy", "--checkpoint", str(moved)]) == 0
    shipped = (tmp_path / "pre" / "toy.pt").read_bytes()
    assert pretrained.main(["export", "--run", "toy-run", "--name", "toy", "--checkpoint", str(moved)]) == 2
    assert "pretrained model 'toy' exists (toy.pt); pass overwrite=True (--overwrite)" in capsys.readouterr().err
    assert (tmp_path / "pre" / "toy.pt").read_bytes() == shipped
    train.train(_config(tmp_path, run_name="other-run", epochs=1, write_log=True, model_overrides=TINY | {"depth": 1}),
                data)
    assert pretrained.main(["export", "--run", "other-run", "--name", "toy", "--overwrite"]) == 2
    assert "but 'toy' is 'wf-cifar-quick' with overrides" in capsys.readouterr().err
    assert pretrained.main(["export", "--run", "toy-run", "--name", "toy", "--checkpoint", str(moved),
                            "--overwrite"]) == 0
    meta = pretrained.manifest("toy")
    assert meta["model"] == "wf-cifar-quick" and meta["model_overrides"] == TINY and meta["run_log"].endswith(
        "toy-run.json")
    assert pretrained.main(["check"]) == 0
    assert "toy" in capsys.readouterr().out
    meta["test_acc"] += 0.2  # a manifest that promises more than the model gives
    (tmp_path / "pre" / "toy.json").write_text(json.dumps(meta))
    assert pretrained.main(["check"]) == 1
    assert "MISMATCH" in capsys.readouterr().out
    assert pretrained.main(["check", "nope"]) == 2


@pytest.mark.slow
def test_check_command_on_the_real_test_set(capsys):
    try:
        cifar10("test")
    except DataNotFoundError:
        pytest.skip("CIFAR-10 is not here (make data)")
    assert pretrained.main(["check"]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("interrupted_at", ["weights", "manifest"])
def test_an_interrupted_export_leaves_a_model_that_loads(tmp_path, monkeypatch, capsys, interrupted_at):
    """Killed between writing the weights and the manifest, the shipped model still loads: the old pair, or the
    new one (its manifest waiting beside its weights), which the next export puts in place."""
    runs = tmp_path / "runs"
    monkeypatch.setattr("wf_lessons.config.runs_dir", lambda: runs)
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path / "pre")
    monkeypatch.setattr(pretrained, "NAMES", ("toy",))
    data = _data()
    monkeypatch.setattr("wf_lessons.data.cifar10", lambda split: data[1])
    train.train(_config(tmp_path, run_name="old-run", epochs=1, write_log=True), data)
    train.train(_config(tmp_path, run_name="new-run", epochs=2, write_log=True), data)
    old = pretrained.export("old-run", "toy")
    weights, meta = tmp_path / "pre" / "toy.pt", tmp_path / "pre" / "toy.json"
    replace = os.replace

    def killed(src, dst):  # the process dies as this file is about to be put in place
        if dst == (weights if interrupted_at == "weights" else meta):
            raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        pretrained.export("new-run", "toy", overwrite=True)
    monkeypatch.setattr(os, "replace", replace)
    pretrained.load("toy")  # verified against the manifest's SHA-256
    shipped = pretrained.manifest("toy")
    assert shipped["run_log"].endswith("old-run.json" if interrupted_at == "weights" else "new-run.json")
    assert shipped == old or interrupted_at == "manifest"
    assert pretrained.main(["check"]) == 0, capsys.readouterr()
    new = pretrained.export("new-run", "toy", overwrite=True)
    assert pretrained.manifest("toy") == new == json.loads(meta.read_text())
    assert sorted(p.name for p in (tmp_path / "pre").iterdir()) == ["toy.json", "toy.pt"]
    pretrained.load("toy")

"""The predictor study's grid: one family varied at a time, skip, resume, subsets, and the summary."""

import json

import pytest
from test_train import _data

from wf_lessons import ablate, atomic, models, train
from wf_lessons.train import recipe


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A study preset on 16×16 toy data with width-16 models, logs and checkpoints in tmp_path."""
    runs = tmp_path / "runs"
    monkeypatch.setattr("wf_lessons.config.runs_dir", lambda: runs)
    toy_cfg = {"img_size": 16, "patch_size": 4, "num_classes": 10, "embed_dim": 16, "depth": 2}
    configs = models.CONFIGS | {"wf-toy": (models.WeightFormer, toy_cfg | {"dynamic_blocks": (1,)}),
                                "deit-toy": (models.ViT, toy_cfg | {"num_heads": 2})}
    monkeypatch.setattr(models, "CONFIGS", configs)
    monkeypatch.setattr(recipe, "CONFIGS", configs)
    monkeypatch.setattr(recipe, "MODEL_NAMES", tuple(configs))
    preset = {"model": "wf-toy", "epochs": 2, "batch_size": 16, "lr": 3e-3, "bf16": False, "threads": 1}
    monkeypatch.setattr(recipe, "PRESETS", recipe.PRESETS | {"study-toy": preset})
    monkeypatch.setattr(ablate, "PRESETS", recipe.PRESETS)
    monkeypatch.setattr(ablate, "STUDY_PRESETS", ("study-toy",))
    monkeypatch.setattr(ablate, "SAME_SIZE_DEIT", {"wf-toy": "deit-toy"})
    return {"runs": runs, "settings": {"checkpoint_dir": tmp_path / "ckpt", "device": "cpu"}, "data": _data()}


def test_the_grid_varies_one_family_at_a_time():
    grid = ablate.variants("study-cpu")
    assert len(grid) == 12 and grid["all-static"] == ("wf-cifar-study", {"dynamic_blocks": ()})
    assert grid["released"] == ("wf-cifar-study", {}) and grid["deit"] == ("deit-cifar-tiny", {})
    for name, (model, overrides) in grid.items():
        if name.startswith(("linear-", "dwc-", "predict-")):
            assert model == "wf-cifar-study" and len(overrides) == 1  # one thing differs from the released model
    assert {n for n in grid if n.startswith("linear-")} == {"linear-gap", "linear-linear", "linear-nonlinear",
                                                          "linear-deep"}
    assert {n for n in grid if n.startswith("dwc-")} == {"dwc-gap", "dwc-amp_dir", "dwc-conv"}
    # a name says what is predicted; the old names stay on disk
    assert grid["predict-dwc-only"][1] == {"linear_predictor": "static"}
    assert grid["predict-linear-only"][1] == {"dwc_predictor": "static"}
    assert ablate.run_name("study-cpu", "predict-dwc-only", 0) == "ablation-study-cpu-linear-static-seed0"
    assert models.build_model("wf-cifar-study").dynamic_blocks == (1, 3)  # half the blocks dynamic


def test_bad_selections_are_refused_with_the_valid_names(capsys):
    with pytest.raises(ValueError, match="unknown variant\\(s\\) nope; valid: all-static, predict-dwc-only"):
        ablate.run(names=["nope"])
    with pytest.raises(ValueError, match="unknown study preset 'gpu'"):
        ablate.variants("gpu")
    assert ablate.main(["--seeds", "-1"]) == 2
    assert "seeds must be ints in [0, 2**32)" in capsys.readouterr().err
    assert ablate.main(["--seeds", "0", str(2**32)]) == 2  # refused before the seed-0 runs train
    assert "seeds must be ints in [0, 2**32), got [0, 4294967296]" in capsys.readouterr().err


def test_subset_run_skip_and_summary(toy, monkeypatch):
    summary = ablate.run("study-toy", ["all-static", "released"], [0, 1], progress=False, data=toy["data"],
                         **toy["settings"])
    table = summary["variants"]
    assert set(table) == {"all-static", "released"} and table["released"]["seeds"] == [0, 1]
    assert len(table["released"]["test_acc"]) == 2 and table["released"]["std"] >= 0
    assert table["all-static"]["parameters"] < table["released"]["parameters"]
    written = json.loads((toy["runs"] / "ablation-toy.json").read_text())
    assert written["variants"] == json.loads(json.dumps(table))
    assert "git_dirty" in written
    calls, before = [], (toy["runs"] / "ablation-toy.json").read_text()
    monkeypatch.setattr(ablate, "train", lambda cfg, data=None: calls.append(cfg))
    monkeypatch.setattr(ablate.runlog, "git_commit", lambda: "another commit")
    ablate.run("study-toy", ["all-static", "released"], [0, 1], progress=False, data=toy["data"], **toy["settings"])
    assert calls == []  # every run is done: nothing retrained
    assert (toy["runs"] / "ablation-toy.json").read_text() == before  # nor the summary's provenance rewritten


def test_an_interrupted_run_resumes_and_a_claimed_one_is_left_alone(toy):
    cfg = ablate.config("study-toy", "dwc-gap", 0, time_limit_s=1e-9, progress=False, **toy["settings"])
    train.train(cfg, toy["data"])  # stops after epoch 1: a partial run
    assert ablate.status(cfg) == "partial"
    with atomic.claim(atomic.claim_path(ablate.config("study-toy", "deit", 0, **toy["settings"]).log_path()), "x"):
        summary = ablate.run("study-toy", ["dwc-gap", "deit"], [0], progress=False, data=toy["data"],
                             **toy["settings"])
    assert set(summary["variants"]) == {"dwc-gap"}  # deit was held by "another process": skipped
    log = json.loads((toy["runs"] / "ablation-study-toy-dwc-gap-seed0.json").read_text())
    assert log["resumed_from_epoch"] == 1 and log["complete"]

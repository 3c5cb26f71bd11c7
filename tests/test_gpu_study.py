"""Chapter 08's GPU study (``ablate --preset study-gpu``): its size, its refusal on a CPU, and its dry run at toy
size on the CPU (stop after epoch 1, resume, summary with a paired comparison)."""

import shutil

import pytest
import torch

from wf_lessons import ablate, config, gpu_study
from wf_lessons.train import PRESETS, TrainConfig


def _toy_cifar(split):
    """A learnable 10-class set of 32×32 uint8 images (each class its own colour, plus noise)."""
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    n = 300 if split == "train" else 40
    labels = torch.arange(n) % 10
    colours = torch.randint(30, 226, (10, 3), generator=torch.Generator().manual_seed(7))
    noise = torch.randint(-30, 31, (n, 3, 32, 32), generator=g)
    return (colours[labels][:, :, None, None] + noise).clamp(0, 255).to(torch.uint8), labels


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """A run-log folder holding a copy of the committed controls-cpu sweep (the study's learning rates)."""
    folder = tmp_path / "runs"
    folder.mkdir()
    for path in config.course_runs_dir().glob("ablation-controls-cpu-*-lr*-seed0.json"):
        shutil.copy(path, folder)
    monkeypatch.setattr("wf_lessons.config.runs_dir", lambda: folder)
    return folder


def test_study_gpu_is_a_controls_study_of_the_long_schedule_at_the_sweeps_rates(runs):
    cfg = TrainConfig(preset="study-gpu")
    assert ablate.is_controls("study-gpu") and cfg.epochs == 2 * PRESETS["controls-cpu"]["epochs"]
    assert cfg.precision is None and cfg.model == PRESETS["controls-long-cpu"]["model"]  # the GPU chooses
    selection = ablate._select("study-gpu", None, None)
    assert sorted({v for v, _, _ in selection}) == sorted(gpu_study.GPU_VARIANTS)
    assert len(selection) == len(gpu_study.GPU_VARIANTS) * 3  # seeds 0 1 2
    assert {lr for v, _, lr in selection if v == "released"} == {ablate.chosen_lr("controls-cpu", "released")}


def test_the_design_estimate_fits_about_30_minutes_on_an_h100():
    estimate = gpu_study.design_estimate()
    assert 20 <= estimate["total_min"] <= 40, estimate["total_min"]
    assert all(row["launch_bound"] and row["ops_per_step"] > 100 for row in estimate["variants"].values())
    rates = estimate["rates"]
    slower = gpu_study.design_estimate(("all-static",), rates={**rates, "eager_op_us": 2 * rates["eager_op_us"]})
    assert slower["variants"]["all-static"]["run_min"] == pytest.approx(
        2 * estimate["variants"]["all-static"]["run_min"])  # a GPU half as fast takes twice as long


def test_study_gpu_refuses_a_cpu_and_points_at_the_dry_run(runs, capsys):
    assert ablate.main(["--preset", "study-gpu", "--device", "cpu"]) == 2
    assert "study-gpu needs a CUDA GPU and there is none here" in capsys.readouterr().err
    assert ablate.main(["--preset", "controls-cpu", "--dry-run"]) == 2
    assert gpu_study.summary() is None and gpu_study.COMMAND == "python -m wf_lessons.ablate --preset study-gpu"


@pytest.mark.slow
def test_study_gpu_dry_run_on_cpu(runs, monkeypatch, capsys):
    monkeypatch.setattr("wf_lessons.train.loop.cifar10", _toy_cifar)
    before = sorted(p.name for p in runs.iterdir())
    assert ablate.main(["--preset", "study-gpu", "--dry-run", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "stop after epoch 1, resume, summary with paired comparisons: ok" in out, out
    assert sorted(p.name for p in runs.iterdir()) == before  # nothing written where the real study writes


def test_study_gpu_dry_run_without_sweep_logs_trains_at_the_presets_rate(tmp_path, monkeypatch):
    monkeypatch.setattr("wf_lessons.config.runs_dir", lambda: tmp_path / "empty")
    monkeypatch.setattr("wf_lessons.train.loop.cifar10", _toy_cifar)
    result = gpu_study.dry_run(device="cpu", variants=("released",), seeds=(0,), progress=False)
    assert result == {"variants": {}, "comparisons": []}

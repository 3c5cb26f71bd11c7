"""Coursework smoke test of the installed wheel, as a student would use it: run from an empty folder by
``tests/wheel/run.py`` with the fresh environment's Python (never from the checkout: it is not a pytest module).

It builds every predictor and model by name, evaluates the shipped models on real test images, trains ``quick-cpu``
for a few steps, stops, resumes, and checks that every file landed where the README's locations table says. The
driver passes what it expects in ``WF_SMOKE_DATA_DIR`` (the user data folder) and ``WF_SMOKE_VERSION``; it checks
itself that nothing was written into the environment. Prints one ``ok`` line per check; exits 1 on the first
failure.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import time
from importlib import metadata
from pathlib import Path

START = time.perf_counter()
WORK = Path.cwd().resolve()


def ok(what: str) -> None:
    print(f"ok  {time.perf_counter() - START:6.1f} s  {what}", flush=True)


def fail(what: str) -> None:
    print(f"FAIL  {what}", flush=True)
    sys.exit(1)


def expect(condition: object, what: str) -> None:
    if not condition:
        fail(what)


def files_under(folder: Path) -> list[str]:
    """Every file and symbolic link under ``folder`` (links not followed), relative, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            found.append((Path(dirpath) / name).relative_to(folder).as_posix())
    return sorted(found)


def main() -> None:
    expect(not any(WORK.iterdir()), f"the smoke test starts in an empty folder, {WORK} is not empty")
    expect(not any(k in os.environ for k in ("WF_DATA_DIR", "WF_RUNS_DIR")), "no location variable is set")

    # ------------------------------------------------------------------ the installed package, where files go
    import torch

    import wf_lessons
    from wf_lessons import config

    package = Path(wf_lessons.__file__).resolve().parent
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    expect(package.parent == site, f"wf_lessons is imported from {package}, not from this environment's {site}")
    expect(wf_lessons.__version__ == metadata.version("wf-lessons") == os.environ["WF_SMOKE_VERSION"],
           f"__version__ {wf_lessons.__version__!r} is the wheel's {os.environ['WF_SMOKE_VERSION']!r}")
    ok(f"wf_lessons {wf_lessons.__version__} installed in {site}")

    data_home = Path(os.environ["WF_SMOKE_DATA_DIR"])
    runs = WORK / "wf-runs"
    expect(not config.in_checkout(), "the installed package does not take site-packages for a checkout")
    expect(config.data_dir() == data_home, f"data folder {config.data_dir()} is the user data folder {data_home}")
    expect(config.runs_dir() == runs, f"run logs go to {config.runs_dir()}, expected {runs}")
    expect(config.checkpoints_dir() == runs / "checkpoints", f"checkpoints go to {config.checkpoints_dir()}")
    expect(config.course_runs_dir() is None, "the course's committed run logs are not claimed to be installed")
    ok(f"locations: data {data_home}, run logs ./wf-runs, checkpoints ./wf-runs/checkpoints")

    # ------------------------------------------------------------------ every predictor and model, by name
    from wf_lessons.dynamic_dwconv import DWC_PREDICTORS, build_dynamic_dwconv
    from wf_lessons.dynamic_linear import LINEAR_PREDICTORS, build_dynamic_linear
    from wf_lessons.models import CONFIGS, MODEL_NAMES, build_model, count_parameters

    torch.manual_seed(0)
    tokens, grid = torch.randn(2, 16, 32), (4, 4)
    for name in LINEAR_PREDICTORS:
        out = build_dynamic_linear(32, 64, predictor=name)(tokens, grid)
        expect(out.shape == (2, 16, 64) and torch.isfinite(out).all(), f"linear predictor {name}: {out.shape}")
    maps = torch.randn(2, 32, 8, 8)
    for name in DWC_PREDICTORS:
        out = build_dynamic_dwconv(32, predictor=name)(maps)
        expect(out.shape == maps.shape and torch.isfinite(out).all(), f"dwc predictor {name}: {out.shape}")
    ok(f"predictors by name: linear {', '.join(LINEAR_PREDICTORS)}; dwc {', '.join(DWC_PREDICTORS)}")

    images = torch.randn(2, 3, 32, 32)
    for name in MODEL_NAMES:
        with torch.device("meta"):  # every configuration, ImageNet sizes included, without allocating it
            expect(count_parameters(build_model(name)) > 0, f"model {name} has parameters")
        if CONFIGS[name][1].get("img_size") == 32:  # the CIFAR models: a real forward
            logits = build_model(name).eval()(images)
            expect(logits.shape == (2, 10) and torch.isfinite(logits).all(), f"model {name}: {logits.shape}")
    pairs = [(linear, "adaptive") for linear in LINEAR_PREDICTORS] + [("bilateral", dwc) for dwc in DWC_PREDICTORS]
    for linear, dwc in pairs:  # each predictor inside the model, beside the released one of the other family
        logits = build_model("wf-cifar-tiny", linear_predictor=linear, dwc_predictor=dwc).eval()(images)
        expect(logits.shape == (2, 10), f"wf-cifar-tiny with {linear}/{dwc}")
    ok(f"models by name: {len(MODEL_NAMES)} configurations; wf-cifar-tiny with each predictor")

    # ------------------------------------------------------------------ shipped models on real test images
    from wf_lessons import data, pretrained
    from wf_lessons.train import evaluate

    test_x, test_y = data.cifar10("test")  # decoded into the user data folder's cache on first use
    expect(test_x.shape == (10_000, 3, 32, 32) and test_x.dtype == torch.uint8, f"test split {tuple(test_x.shape)}")
    n = 500
    loader = data.DeviceLoader(test_x[:n], test_y[:n], 250, train=False, device=torch.device("cpu"))
    for name in pretrained.NAMES:
        acc, shipped = evaluate(pretrained.load(name), loader)["accuracy"], pretrained.manifest(name)["test_acc"]
        # 500 images: a standard error of about 2 points; 10 points below the manifest would be a broken model
        expect(acc >= shipped - 0.10, f"{name}: {acc:.1%} on {n} test images, manifest {shipped:.1%}")
        ok(f"shipped model {name}: {acc:.1%} on the first {n} test images (manifest: {shipped:.2%} on 10,000)")

    # ------------------------------------------------------------------ train quick-cpu, stop, resume
    from wf_lessons import runlog
    from wf_lessons.train import TrainConfig, load_model, train

    tiny = {"preset": "quick-cpu", "epochs": 2, "steps_per_epoch": 3, "train_per_class": 40, "eval_per_class": 5,
            "progress": False}
    first = train(TrainConfig(**tiny, time_limit_s=1e-3))  # the time limit stops it after epoch 1
    expect(first["epochs_done"] == 1 and not first["complete"] and first["stopped"], f"stopped: {first['stopped']}")
    run = first["run_name"]
    log_path, ckpt_path = runs / f"{run}.json", runs / "checkpoints" / f"{run}.pt"
    expect(log_path.is_file() and ckpt_path.is_file(), f"{log_path} and {ckpt_path} exist after the first part")
    ok(f"quick-cpu trained 1 epoch of {first['data']['steps_per_epoch']} steps, stopped ({first['stopped']})")

    second = train(TrainConfig(**tiny, resume=True))
    expect(second["resumed_from_epoch"] == 1 and second["complete"] and second["epochs_done"] == 2,
           f"resumed from {second['resumed_from_epoch']}, complete {second['complete']}")
    saved = runlog.read(run)  # by name, from ./wf-runs
    expect(saved["complete"] and saved["test_images"] == 10_000, "the run log on disk is the finished run's")
    expect(saved["wf_lessons"] == wf_lessons.__version__ and saved["git_commit"] == "unknown",
           f"the run log records version {saved.get('wf_lessons')!r}, commit {saved.get('git_commit')!r}")
    expect(runlog.resolve(saved["checkpoint"]) == ckpt_path, f"the log's checkpoint {saved['checkpoint']}")
    model = load_model(ckpt_path)
    expect(model(images).shape == (2, 10), "the resumed run's checkpoint loads as a model")
    ok(f"resumed to epoch 2: test accuracy {saved['test_acc']:.1%}; log ./wf-runs/{run}.json records "
       f"wf_lessons {saved['wf_lessons']}")

    try:
        runlog.read("ablation-study-cpu")
    except FileNotFoundError:
        ok("the course's committed run logs are not in the package (read from a clone, WF_RUNS_DIR)")
    else:
        fail("a committed course run log was found in a student's folder")

    # ------------------------------------------------------------------ everything where the table says
    written = files_under(WORK)
    expect(written == [f"wf-runs/checkpoints/{run}.pt", f"wf-runs/{run}.json"],
           f"the project folder holds the run log and its checkpoint: {written}")
    in_data = files_under(data_home)
    expected = {"cache/cifar10-test-image-folder.pt", "cache/cifar10-test-torchvision.pt"}
    prepared = set(os.environ.get("WF_SMOKE_PREPARED", "").split(":")) - {""}
    unexpected = set(in_data) - expected - prepared
    expect(not unexpected, f"unexpected files in the data folder: {sorted(unexpected)}")
    expect(any(f.startswith("cache/cifar10-test-") for f in in_data),
           f"the decoded test split is in the data folder: {in_data}")
    ok(f"files: ./{', ./'.join(written)}; data folder: {', '.join(sorted(set(in_data) - prepared))}")


if __name__ == "__main__":
    main()
    print(f"smoke test passed in {time.perf_counter() - START:.1f} s")

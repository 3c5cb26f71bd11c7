"""Chapter 08's GPU study in one command: ``python -m wf_lessons.ablate --preset study-gpu``.

The controlled study's long-schedule comparison (:mod:`wf_lessons.ablate`): the ``cpu`` preset's network
(``wf-cifar-cpu``) trained for 30 epochs instead of 15 (``controls-long-cpu``'s schedule), each family at the learning
rate its sweep chose on the validation split (``controls-cpu``'s sweep, so that the rate is not a second difference),
on one GPU in the precision the GPU chooses (bf16 on Ampere and newer, fp16 with a gradient scaler before). The
default selection (:data:`GPU_VARIANTS`, seeds 0, 1 and 2) is the released network, the all-static control and the
controls that decompose the gap between them, plus the zero start: 15 runs (the plan chapter 08 states: three seeds
at twice the schedule).

**Its size** was chosen without a GPU (none was available to the people who wrote it), from an estimate
(:func:`design_estimate`): at batch 128 this network is far too small to keep a GPU busy, so a step costs what
PyTorch spends launching its operators, one after the other, in eager mode. The estimate counts the operators of one
training step (forward, backward, optimizer: ``TorchDispatchMode``) and charges each
``GPU_ASSUMED_RATES["eager_op_us"]`` microseconds, or the step's FLOPs and memory traffic at the assumed H100 rates
when that is longer. The 15 runs come to about 30 minutes on one H100 by that estimate; a slower GPU takes
proportionally longer. Because it is an estimate, the command **measures before it starts**
(:func:`measure_selection`: a few training steps of each variant on the GPU) and says how long the runs still to do
will take. Like every study it is resumable: finished runs are skipped, a partial one resumes.

``python -m wf_lessons.ablate --preset study-gpu --dry-run`` (:func:`dry_run`) runs the study's whole code path at toy
size on any device, in temporary folders: two variants, two seeds, a stop after the first epoch (as an interruption)
and a resume, the summary with its paired comparison. Chapter 08 reads the summary through :func:`summary` (None
while the study has not run; :data:`COMMAND` is what makes it).
"""

from __future__ import annotations

import dataclasses
import glob
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from wf_lessons import ablate, runlog
from wf_lessons import config as wf_config
from wf_lessons.complexity import count_flops
from wf_lessons.models import build_model
from wf_lessons.train import PRESETS, build_optimizer, machine, train_step
from wf_lessons.train.gpu import GPU_ASSUMED_RATES

__all__ = [
    "COMMAND",
    "GPU_VARIANTS",
    "PRESET",
    "TRAIN_OVERHEAD",
    "count_step_ops",
    "design_estimate",
    "dry_run",
    "measure_selection",
    "summary",
]

PRESET = "study-gpu"
COMMAND = f"python -m wf_lessons.ablate --preset {PRESET}"
#: The default selection of the GPU study (the controls of :data:`wf_lessons.ablate.DECOMPOSITION`, and zero-init).
GPU_VARIANTS = ablate.GPU_VARIANTS
#: Time a run spends beyond its training steps (per-epoch evaluation on 5,000 images, checkpoints, start-up), as a
#: fraction of the training time, assumed for the estimates.
TRAIN_OVERHEAD = 0.15
_TRAIN_IMAGES = 50_000


def summary() -> dict[str, Any] | None:
    """The GPU study's summary (``data/runs/ablation-gpu.json``, written by :data:`COMMAND`), or None while it does not
    exist. Chapter 08 shows it when present and says "pending" with :data:`COMMAND` when not."""
    path = wf_config.runs_dir() / f"{ablate.summary_name(PRESET)}.json"
    return runlog.read(path) if path.is_file() else None


# ----------------------------------------------------------------------------------------------- estimate
class _OpCounter(TorchDispatchMode):
    """Counts the ATen operators dispatched (about one GPU kernel launch each)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.count += 1
        return func(*args, **(kwargs or {}))


def count_step_ops(model_name: str, overrides: dict[str, Any], batch: int = 8) -> int:
    """ATen operators of one training step (forward, backward, AdamW, clipping) of a fresh ``model_name``, run on the
    CPU with images ``(batch, 3, img_size, img_size)``; the global random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        model = build_model(model_name, **overrides)
        optimizer = build_optimizer(model, 1e-3, 0.05, fused=False)
        images = torch.randn(batch, 3, model.img_size, model.img_size)
        labels = torch.randint(0, model.num_classes, (batch,))
        train_step(model, optimizer, images, labels, grad_clip=5.0)  # AdamW's state exists from here on
        with _OpCounter() as counter:
            train_step(model, optimizer, images, labels, label_smoothing=0.1, grad_clip=5.0)
    return counter.count


def design_estimate(variants: tuple[str, ...] = GPU_VARIANTS, seeds: int = len(ablate.DEFAULT_SEEDS),
                    rates: dict[str, float] | None = None) -> dict[str, Any]:
    """The estimate the study was sized from: per variant the operators of a training step, the step's seconds on one
    H100 (launch-bound: ``ops × eager_op_us``, unless FLOPs at the matmul rate take longer) and a run's minutes; and
    the total minutes of ``seeds`` seeds of ``variants`` (with :data:`TRAIN_OVERHEAD`)."""
    rates = rates or GPU_ASSUMED_RATES
    recipe, grid = PRESETS[PRESET], ablate.variants(PRESET)
    steps = (_TRAIN_IMAGES - recipe["val_images"]) // recipe["batch_size"] * recipe["epochs"]
    rows = {}
    for name in variants:
        model_name, overrides = grid[name]
        ops = count_step_ops(model_name, overrides)
        net = build_model(model_name, **overrides).eval()
        flops = count_flops(net, torch.zeros(1, 3, net.img_size, net.img_size))
        launch_s = ops * rates["eager_op_us"] * 1e-6
        compute_s = 3 * flops * recipe["batch_size"] / (rates["matmul_tflop_per_s"] * 1e12)
        step_s = max(launch_s, compute_s)
        rows[name] = {"ops_per_step": ops, "step_s": step_s, "launch_bound": launch_s >= compute_s,
                      "run_min": steps * step_s * (1 + TRAIN_OVERHEAD) / 60}
    return {"variants": rows, "seeds": seeds, "steps_per_run": steps,
            "total_min": seeds * sum(r["run_min"] for r in rows.values()), "rates": rates}


def measure_selection(selection: list[tuple[str, int, float | None]], device: torch.device, steps: int = 10,
                      warmup: int = 3) -> dict[str, Any]:
    """Seconds per training step of each variant in ``selection`` ((variant, seed, lr) as
    :func:`wf_lessons.ablate.run` trains them) on ``device``, in the precision the runs will use, on random images;
    and the estimated minutes of the whole selection (:data:`TRAIN_OVERHEAD` included)."""
    recipe, grid = PRESETS[PRESET], ablate.variants(PRESET)
    precision = machine.choose_precision(device, recipe.get("precision"))["precision"]
    per_run_steps = (_TRAIN_IMAGES - recipe["val_images"]) // recipe["batch_size"] * recipe["epochs"]
    step_s: dict[str, float] = {}
    for name in dict.fromkeys(v for v, _, _ in selection):
        model_name, overrides = grid[name]
        with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
            model = build_model(model_name, **overrides).to(device)
            optimizer = build_optimizer(model, 1e-3, 0.05)
            scaler = machine.make_scaler(device, precision)
            images = torch.randn(recipe["batch_size"], 3, model.img_size, model.img_size, device=device)
            labels = torch.randint(0, model.num_classes, (recipe["batch_size"],), device=device)
            for i in range(warmup + steps):
                if i == warmup:
                    _sync(device)
                    start = time.perf_counter()
                train_step(model, optimizer, images, labels, label_smoothing=0.1, grad_clip=5.0, precision=precision,
                           scaler=scaler)
            _sync(device)
            step_s[name] = (time.perf_counter() - start) / steps
    total_s = sum(step_s[v] for v, _, _ in selection) * per_run_steps * (1 + TRAIN_OVERHEAD)
    return {"precision": precision, "step_s": step_s, "runs": len(selection), "total_min": total_s / 60}


def announce(selection: list[tuple[str, int, float | None]], device: torch.device) -> dict[str, Any]:
    """Measure (:func:`measure_selection`) and print how long the runs still to do will take, before they start."""
    if not selection:
        print("study-gpu: every run of the selection is done")
        return {"runs": 0, "total_min": 0.0}
    measured = measure_selection(selection, device)
    name = machine.cuda_name(device) if device.type == "cuda" else str(device)
    steps = ", ".join(f"{v} {s * 1e3:.1f} ms" for v, s in measured["step_s"].items())
    design = design_estimate(tuple(measured["step_s"]), seeds=1)
    print(f"study-gpu on {name} ({measured['precision']}): measured per training step {steps}; "
          f"{measured['runs']} runs to do, about {measured['total_min']:.0f} minutes "
          f"(the design's estimate for one H100: {design['total_min'] * measured['runs'] / len(design['variants']):.0f}"
          " minutes)", flush=True)
    return measured


# ------------------------------------------------------------------------------------------------- dry run
#: The dry run's toy recipe, over the preset's: a few steps per epoch on a small part of the training split.
DRY_RUN_RECIPE = {"epochs": 2, "steps_per_epoch": 3, "batch_size": 16, "train_per_class": 10, "val_images": 50,
                  "warmup_epochs": 0.5}


def dry_run(device: str | None = None, variants: tuple[str, ...] = ("released", "all-static"),
            seeds: tuple[int, ...] = (0, 1), precision: str | None = None, progress: bool = True) -> dict[str, Any]:
    """The study's whole code path at toy size (:data:`DRY_RUN_RECIPE`), in temporary folders: every run of
    ``variants`` × ``seeds`` stopped after its first epoch (as a time limit would), the study run again to resume
    them, then the summary with its paired comparison. Returns that summary (not kept).

    The learning rates come from ``controls-cpu``'s sweep logs, copied from the run-log folder; where they are not
    there (an installed package), each family trains at the preset's rate, run by run, and the summary is skipped.
    """
    say = print if progress else (lambda *_: None)
    source = wf_config.runs_dir()
    sweep = ablate.LR_FROM[PRESET]
    start = time.perf_counter()
    settings = {"device": device} | ({"precision": precision} if precision else {})
    with tempfile.TemporaryDirectory(prefix="wf-dry-run-study-gpu-") as folder:
        runs, checkpoints = Path(folder) / "runs", Path(folder) / "checkpoints"
        runs.mkdir()
        for path in glob.glob(str(source / f"ablation-{sweep}-*-lr*-seed0.json")):
            shutil.copy(path, runs)
        with mock.patch.object(wf_config, "runs_dir", lambda: runs), mock.patch.dict(PRESETS[PRESET], DRY_RUN_RECIPE):
            swept = all(_has_sweep(v) for v in variants)
            rates = {v: ablate.chosen_lr(PRESET, v) if swept else PRESETS[PRESET]["lr"] for v in variants}
            configs = [ablate.config(PRESET, v, s, rates[v], checkpoint_dir=checkpoints, **settings)
                       for s in seeds for v in variants]
            if swept:  # the study's own command path: selection, status, resume of partial runs, summary
                ablate.run(PRESET, list(variants), list(seeds), progress=False, checkpoint_dir=checkpoints,
                           time_limit_s=1e-9, **settings)
                if any(ablate.status(cfg) != "partial" for cfg in configs):
                    raise RuntimeError("dry run: expected every run to stop after epoch 1, resumable")
                result = ablate.run(PRESET, list(variants), list(seeds), progress=False, checkpoint_dir=checkpoints,
                                    **settings)
                if not result["comparisons"]:
                    raise RuntimeError("dry run: the summary has no paired comparison")
            else:
                from wf_lessons.train import train

                for cfg in configs:
                    train(dataclasses.replace(cfg, progress=False, time_limit_s=1e-9))
                    train(dataclasses.replace(cfg, progress=False, resume=True))
                result = {"variants": {}, "comparisons": []}
            last = [runlog.read(cfg.log_path()) for cfg in configs]
            if any(not log["complete"] or len(log["segments"]) != 2 for log in last):
                raise RuntimeError("dry run: a run did not complete in two segments (stop, resume)")
    say(f"dry run of {COMMAND} ({len(variants)} variants x {len(seeds)} seeds at toy size on {last[0]['device']}, "
        f"{last[0]['precision']}): stop after epoch 1, resume, " + ("summary with paired comparisons" if swept else
                                                                   "no sweep logs here: summary skipped")
        + f": ok in {time.perf_counter() - start:.0f} s")
    return result


def _has_sweep(variant: str) -> bool:
    try:
        ablate.chosen_lr(PRESET, variant)
    except ablate.SweepNotDone:
        return False
    return True


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)

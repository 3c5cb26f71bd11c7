"""The predictor studies of chapter 08: which weight predictor matters, and why the static control wins.

**The predictor study** (preset ``study-cpu``, 2 epochs): one network, one recipe, one data order; only the weight
predictors change, one family at a time:

- ``all-static``: every block static (``dynamic_blocks=()``): 3×3 depthwise convolutions and MLPs only;
- ``linear-<p>``: the dynamic blocks' linear layers use predictor ``p`` (chapter 02), the DWC stays ``adaptive``;
  ``predict-dwc-only`` is the one with the ``static`` linear layer (its old name, in run logs: ``linear-static``);
- ``dwc-<p>``: the dynamic blocks' depthwise convolutions use predictor ``p`` (chapter 03), the linear stays
  ``bilateral``; ``predict-linear-only`` has the ``static`` DWC (old name ``dwc-static``);
- ``released``: ``bilateral`` + ``adaptive``, the pair of the reference code (the meeting point of both families);
- ``deit``: the same-size DeiT (softmax attention), the same recipe.

**The controlled study** (presets ``controls-cpu``, 15 epochs, and ``controls-short-cpu``, 2 epochs, both on the
``cpu`` preset's ``wf-cifar-cpu``): controls that each differ from the released network in one thing
(:data:`CONTROLS`), a held-out validation split for every choice, each family at the learning rate its sweep chose
on that split (:func:`chosen_lr`), the test set once per run, and paired comparisons (:data:`COMPARISONS`) with
95% confidence intervals and Holm-corrected p-values (:func:`compare_paired`). Its two regimes (:data:`REGIMES`:
``controls-long-cpu``, 30 epochs, and ``controls-grid16-cpu``, a 16×16 token grid) train ``released``,
``zero-init`` and the control that did best on the validation split (:func:`best_control`), seeds 0 1 2.

Each (variant, seed) is an ordinary training run (:mod:`wf_lessons.train`) named
``ablation-<preset>-<variant>-seed<seed>``, with its own run log in ``data/runs/`` and checkpoint. The command is
resumable: finished runs are skipped, an interrupted one resumes from its checkpoint, and a run that another
process is training is left to it (two commands can share the grid, one per core). At the end the summary
``data/runs/ablation-<preset without "study-">.json`` gathers every finished run.

The controlled study's run names carry the learning rate (``ablation-controls-cpu-released-lr0.003-seed0``), so
that a sweep run at the chosen rate is also seed 0 of the study.

Command line::

    python -m wf_lessons.ablate --list                 # the controlled study: what is done, partial, to do
    python -m wf_lessons.ablate --sweep                # its learning-rate sweep (seed 0), first
    python -m wf_lessons.ablate                        # every control at its family's rate, seeds 0-4
    python -m wf_lessons.ablate --variants released zero-init --seeds 0 1
    python -m wf_lessons.ablate --preset controls-grid16-cpu   # a regime: released, zero-init, best control
    python -m wf_lessons.ablate --preset study-cpu     # the 2-epoch predictor study, seeds 0 1 2
    python -m wf_lessons.ablate --preset study-gpu     # the 30-epoch study on one GPU (wf_lessons.gpu_study)
    python -m wf_lessons.ablate --preset study-gpu --dry-run   # its whole code path at toy size, any device
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Sequence
from typing import Any

from wf_lessons import atomic, runlog
from wf_lessons import config as wf_config
from wf_lessons.data import DataNotFoundError
from wf_lessons.dynamic_dwconv import DWC_PREDICTORS
from wf_lessons.dynamic_linear import LINEAR_PREDICTORS
from wf_lessons.train import PRESETS, TrainConfig, TrainingDiverged, train
from wf_lessons.train.loop import Data
from wf_lessons.train.recipe import SEED_LIMIT

__all__ = [
    "STUDY_PRESETS", "GPU_VARIANTS", "SAME_SIZE_DEIT", "DEFAULT_SEEDS", "CONTROLS_SEEDS", "LEGACY_NAMES", "CONTROLS",
    "PRECISION_CHECKS", "SWEEP_VARIANTS", "LR_SWEEP", "MAX_LR_EXTENSIONS", "LR_FROM", "COMPARISONS",
    "DECOMPOSITION", "REGIMES", "REGIME_SEEDS", "BEST_CONTROL_FROM", "SweepNotDone", "ControlNotChosen",
    "is_controls", "control_scores", "best_control", "regime_comparisons", "variants", "run_name", "summary_name",
    "sweep_runs", "chosen_lr", "config", "status", "run", "finished_logs", "summarize", "sweep_table",
    "write_summary", "compare_paired", "schedule_change", "plot_comparisons", "compare", "beyond_spread",
    "print_status", "print_summary", "main",
]

#: The presets the studies run with (presets of :data:`wf_lessons.train.PRESETS` whose model is a WeightFormer).
STUDY_PRESETS = ("study-cpu", "controls-cpu", "controls-short-cpu", "controls-long-cpu", "controls-grid16-cpu",
                 "study-gpu")
#: The GPU study's default variants (a controls study: :mod:`wf_lessons.gpu_study`; seeds 0 1 2): the decomposition
#: and zero-init.
GPU_VARIANTS = ("released", "all-static", "slot-static", "zero-prediction", "zero-init")
#: The softmax-attention baseline of the same size as each study model.
SAME_SIZE_DEIT = {"wf-cifar-study": "deit-cifar-tiny", "wf-cifar": "deit-cifar"}
DEFAULT_SEEDS = (0, 1, 2)
CONTROLS_SEEDS = (0, 1, 2, 3, 4)  # the controlled study pairs five seeds
#: The predictor study's variants whose names changed (new -> old), so that the old run logs are still read.
LEGACY_NAMES = {"predict-dwc-only": "linear-static", "predict-linear-only": "dwc-static"}

#: The controlled study's variants: name -> (learning-rate family, ``build_model`` overrides of the preset's model,
#: what it is). Each differs from the released network, or from another control, in one thing.
CONTROLS: dict[str, tuple[str, dict[str, Any], str]] = {
    "released": ("weightformer", {}, "the released network: bilateral dynamic linear + adaptive dynamic DWC in "
                 "the dynamic blocks"),
    "all-static": ("static", {"dynamic_blocks": ()}, "every block static (no norm1 overwrite, PyTorch's conv init, "
                   "23% fewer parameters)"),
    "slot-static": ("weightformer", {"linear_predictor": "static", "dwc_predictor": "static"},
                    "the dynamic blocks kept (norm1 included) with static layers in both slots"),
    "zero-prediction": ("weightformer", {"predict": "none"}, "the released network with every prediction forced to "
                        "zero in the forward pass (same structure, initialisation, parameters)"),
    "zero-init": ("weightformer", {"prediction_init": "zero"}, "the released network with every prediction exactly "
                  "zero at step 0, learned from there (the course's own experiment)"),
    "predict-dwc-only": ("weightformer", {"predict": "dwc"}, "the released network, linear prediction forced to zero"),
    "predict-linear-only": ("weightformer", {"predict": "linear"}, "the released network, DWC prediction forced to "
                            "zero"),
    "static-param-matched": ("static", {"dynamic_blocks": (), "depth": 8}, "all-static, 8 blocks: the released "
                             "network's parameter count (+2%)"),
    "static-time-matched": ("static", {"dynamic_blocks": (), "depth": 11}, "all-static, 11 blocks: about the "
                            "released network's training time per step (one thread, bf16; the run logs hold the "
                            "measured speeds)"),
}
#: Precision checks: a control trained in float32 instead of bf16 autocast (named, not in the default selection;
#: one seed is enough to see whether the precision moves the verdict). name -> (control, training settings).
PRECISION_CHECKS: dict[str, tuple[str, dict[str, Any]]] = {
    "released-fp32": ("released", {"bf16": False}),
    "all-static-fp32": ("all-static", {"bf16": False}),
}
#: The variant whose learning-rate sweep sets each family's rate, and the rates swept first (the CPU recipe's 3e-3
#: and a factor 2 either side; the grid grows past an edge that wins, see :func:`chosen_lr`).
SWEEP_VARIANTS = {"weightformer": "released", "static": "all-static"}
LR_SWEEP = (1.5e-3, 3e-3, 6e-3)
MAX_LR_EXTENSIONS = 2
#: Controls presets whose learning rates come from another preset's sweep (one change from it: the schedule, or
#: the token grid), so that the rate is not a second difference.
LR_FROM = {"controls-short-cpu": "controls-cpu", "controls-long-cpu": "controls-cpu",
           "controls-grid16-cpu": "controls-cpu", "study-gpu": "controls-cpu"}
#: The controlled study's paired comparisons: (treatment, control, the one thing that differs).
COMPARISONS: tuple[tuple[str, str, str], ...] = (
    ("released", "all-static", "everything: structure, initialisation, prediction, parameters, speed"),
    ("slot-static", "all-static", "block structure (the norm1 overwrite of the residual stream)"),
    ("zero-prediction", "slot-static", "initialisation of the static weights (released layers' against static "
     "layers')"),
    ("released", "zero-prediction", "the prediction, from the released initialisation"),
    ("zero-init", "zero-prediction", "the prediction, from a zero start"),
    ("zero-init", "released", "the prediction's start: zero against the released initialisation"),
    ("predict-dwc-only", "zero-prediction", "predicting the DWC kernels alone"),
    ("predict-linear-only", "zero-prediction", "predicting the linear layer alone"),
    ("released", "static-param-matched", "predicted weights against an all-static network of equal size"),
    ("released", "static-time-matched", "predicted weights against an all-static network of equal training time"),
)
#: The decomposition of the released network's gap to the all-static control: three comparisons that add up to it.
DECOMPOSITION = (("slot-static", "all-static"), ("zero-prediction", "slot-static"), ("released", "zero-prediction"))
#: The regimes where global modelling should matter more, each one change from ``controls-cpu``, whose learning
#: rates they reuse (:data:`LR_FROM`): preset -> that change. Each trains ``released``, ``zero-init`` and the best
#: control (:func:`best_control`) with seeds :data:`REGIME_SEEDS`, compared among themselves
#: (:func:`regime_comparisons`).
REGIMES = {"controls-long-cpu": "30 epochs, twice the schedule",
           "controls-grid16-cpu": "patch 2, a 16×16 token grid"}
REGIME_SEEDS = (0, 1, 2)
#: The controls the regimes' best control is chosen from: the decomposition's (each over :data:`CONTROLS_SEEDS`).
BEST_CONTROL_FROM = ("all-static", "slot-static", "zero-prediction")
#: What differs in the regimes' comparisons that :data:`COMPARISONS` does not list.
_REGIME_DIFFERS = {
    ("released", "slot-static"): "the prediction and the released layers' initialisation (same block structure)",
    ("zero-init", "slot-static"): "the prediction, from a zero start, and the released layers' initialisation "
                                  "(same block structure)",
    ("zero-init", "all-static"): "structure, initialisation, prediction from a zero start, parameters, speed",
}


def is_controls(preset: str) -> bool:
    """Whether ``preset`` is one of the controlled study's (learning rate per family, validation split)."""
    return preset.startswith("controls-") or preset == "study-gpu"


class SweepNotDone(ValueError):
    """A controls preset's learning rate is asked for before its family's sweep has finished."""


class ControlNotChosen(ValueError):
    """The regimes' control is asked for before every candidate has its seeds finished."""


def control_scores(preset: str = "controls-cpu") -> dict[str, float]:
    """Each control of :data:`BEST_CONTROL_FROM`: its mean final *validation* accuracy in ``preset`` over
    :data:`CONTROLS_SEEDS`, read from the run logs. Raises :class:`ControlNotChosen` while one of them has fewer
    seeds finished (saying which, and the command that runs them)."""
    table = summarize(preset)
    lacking = [n for n in BEST_CONTROL_FROM
               if not set(CONTROLS_SEEDS) <= set(table.get(n, {}).get("seeds", ()))]
    if lacking:
        raise ControlNotChosen(
            f"the regimes' control is the best of {', '.join(BEST_CONTROL_FROM)} on the validation split of "
            f"{preset}, over seeds {' '.join(map(str, CONTROLS_SEEDS))}; not finished yet: {', '.join(lacking)}; run "
            f"`python -m wf_lessons.ablate --preset {preset} --variants {' '.join(lacking)}` first")
    return {n: statistics.mean(a for s, a in zip(table[n]["seeds"], table[n]["val_acc"]) if s in CONTROLS_SEEDS)
            for n in BEST_CONTROL_FROM}


def best_control(preset: str = "controls-cpu") -> str:
    """The regimes' control: the one of :data:`BEST_CONTROL_FROM` with the best :func:`control_scores` (validation
    accuracy, never the test set; ties: the first in that order). Raises :class:`ControlNotChosen` as they do."""
    scores = control_scores(preset)
    return max(scores, key=scores.__getitem__)


def regime_comparisons(control: str | None) -> list[tuple[str, str, str]]:
    """A regime's comparisons: ``released`` and ``zero-init`` against its ``control`` (:func:`best_control`), and
    ``zero-init`` against ``released``; the last alone while the control is not chosen (None). The Holm correction
    runs over these alone; a regime's run of any other control is in its table, not in its comparisons."""
    differs = {(t, c): d for t, c, d in COMPARISONS} | _REGIME_DIFFERS
    pairs = [("released", control), ("zero-init", control)] if control else []
    return [(t, c, differs[(t, c)]) for t, c in [*pairs, ("zero-init", "released")]]


def _regime_control(preset: str) -> str | None:
    try:
        return best_control(LR_FROM[preset])
    except ControlNotChosen:
        return None


def variants(preset: str = "study-cpu") -> dict[str, tuple[str, dict[str, Any]]]:
    """The grid's variants for ``preset``: name -> (model name, ``build_model`` overrides)."""
    _check_preset(preset)
    model = PRESETS[preset]["model"]
    if is_controls(preset):
        grid = {name: (model, dict(overrides)) for name, (_, overrides, _) in CONTROLS.items()}
        return grid | {name: grid[control] for name, (control, _) in PRECISION_CHECKS.items()}
    grid: dict[str, tuple[str, dict[str, Any]]] = {"all-static": (model, {"dynamic_blocks": ()})}
    for p in LINEAR_PREDICTORS:
        if p != "bilateral":
            grid["predict-dwc-only" if p == "static" else f"linear-{p}"] = (model, {"linear_predictor": p})
    grid["released"] = (model, {})
    for p in DWC_PREDICTORS:
        if p != "adaptive":
            grid["predict-linear-only" if p == "static" else f"dwc-{p}"] = (model, {"dwc_predictor": p})
    grid["deit"] = (SAME_SIZE_DEIT[model], {})
    return grid


def _check_preset(preset: str) -> None:
    if preset not in STUDY_PRESETS:
        raise ValueError(f"unknown study preset {preset!r}; valid: {', '.join(STUDY_PRESETS)}")


def run_name(preset: str, variant: str, seed: int | str, lr: float | None = None) -> str:
    """The run's name: ``ablation-<preset>-<variant>[-lr<lr>]-seed<seed>`` (the learning rate in the controlled
    study's names; the predictor study keeps its variants' old names on disk, :data:`LEGACY_NAMES`)."""
    if is_controls(preset):
        if lr is None:
            raise ValueError(f"the {preset} runs are named with their learning rate: pass lr")
        return f"ablation-{preset}-{variant}-lr{lr:g}-seed{seed}"
    return f"ablation-{preset}-{LEGACY_NAMES.get(variant, variant)}-seed{seed}"


def summary_name(preset: str) -> str:
    """The summary's run-log name: ``ablation-<preset without "study-">`` (``ablation-controls-cpu``)."""
    return "ablation-" + preset.removeprefix("study-")


def _sweep_results(preset: str, variant: str) -> tuple[list[float], dict[float, float]]:
    """The rates ``variant``'s sweep needs so far, and the final validation accuracy of each finished one.

    The sweep starts with :data:`LR_SWEEP`; when every rate of it is finished and the best lies at an edge, the
    grid grows by a factor 2 beyond that edge (at most :data:`MAX_LR_EXTENSIONS` times), so that the chosen rate is
    bracketed by worse ones rather than the edge of an arbitrary grid."""
    rates, results = sorted(LR_SWEEP), {}
    while True:
        for lr in rates:
            path = wf_config.runs_dir() / f"{run_name(preset, variant, 0, lr)}.json"
            log = runlog.read(path) if path.exists() else {}
            if log.get("complete") and log.get("val_acc") is not None:
                results[lr] = log["val_acc"]
            elif log.get("diverged"):  # a rate too high to train: a result, the worst one
                results[lr] = -math.inf
        if len(results) < len(rates) or len(rates) >= len(LR_SWEEP) + MAX_LR_EXTENSIONS:
            return rates, results
        best = max(results, key=lambda lr: (results[lr], -lr))
        if best == rates[-1]:
            rates.append(rates[-1] * 2)
        elif best == rates[0]:
            rates.insert(0, rates[0] / 2)
        else:
            return rates, results


def sweep_runs(preset: str) -> list[tuple[str, float]]:
    """The learning-rate sweep of a controls preset as it stands: (variant, lr) pairs, trained with seed 0."""
    _check_preset(preset)
    if not is_controls(preset) or preset in LR_FROM:
        raise ValueError(f"{preset} has no learning-rate sweep of its own; the sweep runs with preset controls-cpu")
    return [(variant, lr) for variant in SWEEP_VARIANTS.values() for lr in _sweep_results(preset, variant)[0]]


def chosen_lr(preset: str, variant: str) -> float:
    """The learning rate of ``variant``'s family: the sweep's rate with the best final validation accuracy.

    Raises ``ValueError`` while the family's sweep is not finished (saying which command finishes it).
    """
    sweep_preset = LR_FROM.get(preset, preset)
    family = CONTROLS[PRECISION_CHECKS[variant][0] if variant in PRECISION_CHECKS else variant][0]
    rates, results = _sweep_results(sweep_preset, SWEEP_VARIANTS[family])
    if len(results) < len(rates):
        raise SweepNotDone(
            f"the learning rate of the {family} family ({variant}) is chosen by its sweep on the validation split, "
            f"which has {len(results)} of {len(rates)} runs done; run "
            f"`python -m wf_lessons.ablate --preset {sweep_preset} --sweep` first")
    return max(results, key=lambda lr: (results[lr], -lr))  # ties: the smaller rate


def config(preset: str, variant: str, seed: int, lr: float | None = None, **settings: Any) -> TrainConfig:
    """The training configuration of one run of the grid (``settings``: e.g. ``progress=False``; a ``run_name``
    given there replaces the grid's, for runs outside the study). In a controls preset the learning rate is ``lr``,
    else the family's chosen one (:func:`chosen_lr`)."""
    grid = variants(preset)
    if variant not in grid:
        raise ValueError(f"unknown variant {variant!r} of {preset}; valid: {', '.join(grid)}")
    model, overrides = grid[variant]
    if is_controls(preset):
        lr = chosen_lr(preset, variant) if lr is None else lr
        settings = {"lr": lr} | PRECISION_CHECKS.get(variant, ("", {}))[1] | settings
    settings = {"run_name": run_name(preset, variant, seed, lr)} | settings
    return TrainConfig(model=model, preset=preset, seed=seed, model_overrides=dict(overrides), **settings)


def status(cfg: TrainConfig) -> str:
    """``"done"`` (complete run log), ``"diverged"`` (its log says so: not retried), ``"partial"`` (a checkpoint to
    resume) or ``"todo"``."""
    log = runlog.read(cfg.log_path()) if cfg.log_path().exists() else {}
    if log.get("complete"):
        return "done"
    if log.get("diverged"):
        return "diverged"
    return "partial" if cfg.checkpoint_path().exists() else "todo"


def _check_seeds(seeds: list[int]) -> list[int]:
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < SEED_LIMIT for s in seeds):
        raise ValueError(f"seeds must be ints in [0, 2**32), got {seeds!r}")
    return seeds


def _select(preset: str, names: list[str] | None, seeds: list[int] | None, sweep: bool = False
            ) -> list[tuple[str, int, float | None]]:
    """The runs to train, as (variant, seed, learning rate or None: the preset's), seed-major."""
    if sweep:
        if names or seeds:
            raise ValueError("the sweep is its own selection (seed 0 of each family's reference variant at each "
                             "rate): do not pass variants or seeds with it")
        return [(variant, 0, lr) for variant, lr in sweep_runs(preset)]
    grid = variants(preset)
    if not names and preset in REGIMES:
        names = ["released", "zero-init", best_control(LR_FROM[preset])]
    elif not names:  # precision checks only by name; the GPU study's default is its own selection
        names = [n for n in grid if n not in PRECISION_CHECKS and (preset != "study-gpu" or n in GPU_VARIANTS)]
    unknown = [n for n in names if n not in grid]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(unknown)}; valid: {', '.join(grid)}")
    if preset in REGIMES:
        default = REGIME_SEEDS
    elif is_controls(preset) and preset != "study-gpu":
        default = CONTROLS_SEEDS
    else:
        default = DEFAULT_SEEDS
    seeds = _check_seeds(list(default) if seeds is None else seeds)
    rates = {n: chosen_lr(preset, n) if is_controls(preset) else None for n in names}  # refused before any run
    return [(n, s, rates[n]) for s in seeds for n in names]  # seed-major: a partial grid still has whole seeds


def run(preset: str = "study-cpu", names: list[str] | None = None, seeds: list[int] | None = None,
        progress: bool = True, data: Data | None = None, sweep: bool = False, **settings: Any) -> dict[str, Any]:
    """Train every (variant, seed) of the selection that is not done yet (``sweep``: the learning-rate sweep of a
    controls preset instead), then write and return the summary.

    ``data`` and ``settings`` (e.g. ``checkpoint_dir``) go to every run, as in :func:`wf_lessons.train.train`.
    """
    from tqdm.auto import tqdm

    todo = _select(preset, names, seeds, sweep)
    say = tqdm.write if progress else (lambda *_: None)
    seen = set(todo)
    while todo:
        _train_each(preset, todo, progress, say, data, settings)
        # a sweep whose best rate lies at an edge grows (chosen_lr): train the rates it adds, once each
        todo = [t for t in _select(preset, None, None, sweep=True) if t not in seen] if sweep else []
        seen.update(todo)
    return write_summary(preset)


def _train_each(preset: str, todo: list[tuple[str, int, float | None]], progress: bool, say: Any,
                data: Data | None, settings: dict[str, Any]) -> None:
    """Train each (variant, seed, lr) of ``todo`` that is neither done, diverged nor claimed by another process."""
    from tqdm.auto import tqdm

    bar_args = {} if progress else {"disable": True}  # otherwise tqdm reads TQDM_DISABLE itself (notebook tqdm too)
    with tqdm(todo, desc="study", unit="run", **bar_args) as bar:
        for variant, seed, lr in bar:
            cfg = config(preset, variant, seed, lr, progress=False, **settings)
            state = status(cfg)
            bar.set_postfix_str(f"{variant} seed {seed}" + (f" lr {lr:g}" if lr else ""))
            if state in ("done", "diverged"):
                continue
            cfg.resume = state == "partial"
            try:
                log = train(cfg, data)
            except atomic.ClaimedError:
                say(f"{cfg.run_name}: being trained by another process, skipped")
                continue
            except TrainingDiverged as error:
                say(f"{error}: not retried")
                continue
            say(f"{cfg.run_name}: test accuracy {log['test_acc']:.4f} ({log['wall_s']:.0f} s)")


def finished_logs(preset: str, variant: str, lr: float | None = None) -> list[dict[str, Any]]:
    """The complete run logs of ``variant`` (at learning rate ``lr`` in a controls preset), by seed. Only files named
    exactly as the grid names a run, whose log agrees on its name, count (a copied ``...-seed0-backup.json`` does
    not)."""
    logs = []
    for path in sorted(wf_config.runs_dir().glob(f"{run_name(preset, variant, '*', lr)}.json")):
        log = runlog.read(path)
        seed = log.get("seed")
        if (isinstance(seed, int) and path.stem == log.get("run_name") == run_name(preset, variant, seed, lr)
                and log.get("complete")):
            logs.append(log)
    return sorted(logs, key=lambda g: g["seed"])


#: Per-run results a controlled-study log adds to the summary (besides ``test_acc``).
_EXTRA_RESULTS = ("val_acc", "val_acc_predictions_off", "train_eval_acc")


def summarize(preset: str = "study-cpu") -> dict[str, Any]:
    """Every finished run of the grid, per variant: seeds, test accuracies, mean, std, size, cost, speed (and, in a
    controls preset, the learning rate and the validation and diagnostic accuracies)."""
    out: dict[str, Any] = {}
    for variant in variants(preset):
        try:
            lr = chosen_lr(preset, variant) if is_controls(preset) else None
        except SweepNotDone:  # the family's sweep is not finished: no rate, no runs yet
            continue
        logs = finished_logs(preset, variant, lr)
        if not logs:
            continue
        accs = [g["test_acc"] for g in logs]
        speeds = [statistics.mean(e["images_per_s"] for e in g["epochs"]) for g in logs]
        out[variant] = {
            "seeds": [g["seed"] for g in logs],
            "test_acc": accs,
            "mean": statistics.mean(accs),
            "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "parameters": logs[0]["parameters"],
            "flops_per_image": logs[0]["flops_per_image"],
            "images_per_s": statistics.mean(speeds),
            "model": logs[0]["model"],
            "model_overrides": logs[0]["model_overrides"],
            "runs": [g["run_name"] for g in logs],
        }
        if lr is not None:
            out[variant]["lr"] = lr
            for key in _EXTRA_RESULTS:
                if all(key in g for g in logs):
                    out[variant][key] = [g[key] for g in logs]
    return out


def sweep_table(preset: str) -> dict[str, dict[str, float | None]]:
    """The learning-rate sweep's finished runs: reference variant -> {lr as text: final validation accuracy, or
    None for a run that diverged}, by increasing rate."""
    table: dict[str, dict[str, float | None]] = {}
    for variant in SWEEP_VARIANTS.values():
        rates, results = _sweep_results(preset, variant)
        table[variant] = {f"{lr:g}": (None if results[lr] == -math.inf else results[lr])
                          for lr in rates if lr in results}
    return table


def write_summary(preset: str = "study-cpu") -> dict[str, Any]:
    """Write ``data/runs/ablation-<...>.json`` from the finished runs and return it.

    A summary whose table is unchanged is left as it is (with the commit that wrote it), so that re-running a
    finished study does not rewrite its provenance.
    """
    table = summarize(preset)
    content: dict[str, Any] = {"variants": table}
    if is_controls(preset):
        if preset not in LR_FROM:
            content["lr_sweep"] = sweep_table(preset)
        content["comparisons"] = compare_paired(table, regime_comparisons(_regime_control(preset))
                                                if preset in REGIMES else COMPARISONS)
    try:
        existing = runlog.read(summary_name(preset))
    except (FileNotFoundError, ValueError):
        existing = None
    if existing is not None and all(existing.get(k) == json.loads(json.dumps(v)) for k, v in content.items()):
        return existing
    note = ("test accuracy on all 10,000 test images, no TTA; std over seeds (sample std); images_per_s is the "
            "training throughput averaged over epochs (runs shared the machine two at a time)")
    if is_controls(preset):
        note += ("; every choice on the validation split (5,000 training images held out), the test set once per "
                 "run; comparisons: paired by seed, test accuracy in points, 95% t-interval, two-sided paired "
                 "t-test, Holm-corrected over the comparisons listed")
    summary = {
        "kind": "ablation",
        "preset": preset,
        "recipe": PRESETS[preset],
        "note": note,
        "git_commit": runlog.git_commit(),
        "git_dirty": runlog.git_dirty(),
        **content,
    }
    runlog.write(summary, summary_name(preset))
    return summary


def compare_paired(table: dict[str, Any], comparisons: Sequence[tuple[str, str, str]] = COMPARISONS,
                   metric: str = "test_acc") -> list[dict[str, Any]]:
    """Each comparison (treatment, control, what differs) whose two variants share at least two seeds: the paired
    differences of ``metric`` in points (same seed: same data order), their mean, the 95% t-interval of the mean
    (``scipy.stats``), the two-sided paired t-test's p-value, and that p-value Holm-corrected over every comparison
    reported (``statsmodels``)."""
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    rows = []
    for treatment, control, differs in comparisons:
        if treatment not in table or control not in table:
            continue
        a = dict(zip(table[treatment]["seeds"], table[treatment][metric]))
        b = dict(zip(table[control]["seeds"], table[control][metric]))
        seeds = sorted(set(a) & set(b))
        if len(seeds) < 2:
            continue
        diffs = [100 * (a[s] - b[s]) for s in seeds]
        test = stats.ttest_1samp(diffs, 0.0)
        interval = test.confidence_interval(0.95)
        rows.append({"treatment": treatment, "control": control, "differs": differs, "metric": metric,
                     "seeds": seeds, "diff_points": diffs, "mean": statistics.mean(diffs),
                     "ci95": [float(interval.low), float(interval.high)], "p": float(test.pvalue)})
    valid = [r for r in rows if r["p"] == r["p"]]  # NaN: identical differences in every seed
    if valid:
        for row, p_holm in zip(valid, multipletests([r["p"] for r in valid], method="holm")[1]):
            row["p_holm"] = float(p_holm)
    return rows


def schedule_change(early: dict[str, Any], late: dict[str, Any],
                    comparisons: Sequence[tuple[str, str, str]] = COMPARISONS) -> list[dict[str, Any]]:
    """How each comparison changes from a short schedule to a long one on the same network: given two summaries'
    ``variants`` tables (e.g. ``controls-short-cpu``'s and ``controls-cpu``'s), per seed the treatment's
    ``late − early`` test accuracy minus the control's, i.e. the late paired difference minus the early one, with its
    95% interval and Holm p over ``comparisons`` (:func:`compare_paired`, metric ``"late_minus_early"``)."""
    change = {}
    for name in early.keys() & late.keys():
        a, b = (dict(zip(t[name]["seeds"], t[name]["test_acc"])) for t in (late, early))
        seeds = sorted(a.keys() & b.keys())
        change[name] = {"seeds": seeds, "late_minus_early": [a[s] - b[s] for s in seeds]}
    return compare_paired(change, comparisons, metric="late_minus_early")


def plot_comparisons(rows: Sequence[dict[str, Any]], title: str, ax: Any = None) -> Any:
    """A forest plot of paired comparisons (rows of :func:`compare_paired`): per row the mean difference (diamond),
    its 95% interval (bar, not corrected) and every seed's difference (small dots), a zero line, and the
    Holm-corrected p-value at the right. A row is coloured when it holds after the correction (Holm p < 0.05): blue
    when the treatment is better, red when worse; grey otherwise. One row per comparison, top to bottom in the given
    order. Returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("no comparisons to plot (each needs two variants with at least two common seeds)")
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.55 * len(rows) + 1.2))
    for y, row in enumerate(reversed(rows)):
        low, high = row["ci95"]
        holds = row.get("p_holm", 1.0) < 0.05
        colour = "tab:blue" if holds and row["mean"] > 0 else "tab:red" if holds else "0.35"
        ax.plot([low, high], [y, y], "-", color=colour, lw=2.5, solid_capstyle="butt")
        ax.plot(row["diff_points"], [y] * len(row["diff_points"]), "o", color=colour, ms=3, alpha=0.5)
        ax.plot(row["mean"], y, "D", color=colour, ms=6)
        holm = f"Holm p = {row['p_holm']:.3f}" if "p_holm" in row else "p n/a"
        ax.annotate(f"{holm}, n = {len(row['seeds'])}", (1.01, y), xycoords=("axes fraction", "data"), va="center",
                    fontsize=8)
    ax.axvline(0, color="0.2", lw=0.8)
    ax.set_yticks(range(len(rows)), [f"{r['treatment']} − {r['control']}" for r in reversed(rows)], fontsize=9)
    ax.set_xlabel(f"difference in {rows[0]['metric'].replace('_acc', ' accuracy')} (points): mean, 95% interval; "
                  "colour: Holm p < 0.05")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return ax


def compare(summary: dict[str, Any], variant: str, baseline: str = "all-static") -> dict[str, Any]:
    """``variant`` against ``baseline`` in a summary: the difference of the means in accuracy points, the
    per-seed differences (same seed, same data order), and ``real``: whether the difference exceeds the spread
    over seeds, i.e. every seed of one variant beats every seed of the other (their ranges do not overlap)."""
    table = summary["variants"]
    for name in (variant, baseline):
        if name not in table:
            raise ValueError(f"variant {name!r} has no finished runs in this summary; it has: {', '.join(table)}")
    a, b = table[variant], table[baseline]
    seeds_b = dict(zip(b["seeds"], b["test_acc"]))
    paired = [100 * (acc - seeds_b[seed]) for seed, acc in zip(a["seeds"], a["test_acc"]) if seed in seeds_b]
    return {"diff_points": 100 * (a["mean"] - b["mean"]), "paired_points": paired,
            "real": beyond_spread(a["test_acc"], b["test_acc"])}


def beyond_spread(a: Sequence[float], b: Sequence[float]) -> bool:
    """The course's rule for a real difference between two sets of seeds' results: every value of one beats every
    value of the other (their ranges do not overlap)."""
    return min(a) > max(b) or max(a) < min(b)


def print_status(preset: str, names: list[str] | None, seeds: list[int] | None, sweep: bool = False) -> None:
    """Print each run of the selection with its state (:func:`status`); what waits for the sweep or for the
    regimes' control is said first."""
    try:
        selection = _select(preset, names, seeds, sweep)
    except ControlNotChosen as waiting:  # a regime: what can run meanwhile
        print(f"the control waits: {waiting}")
        return print_status(preset, ["released", "zero-init"], seeds)
    except SweepNotDone as waiting:  # a controls preset whose sweep is not finished: show the sweep instead
        if sweep:
            raise
        print(f"the study waits for the learning-rate sweep ({waiting})")
        selection = _select(LR_FROM.get(preset, preset), None, None, sweep=True)
        preset = LR_FROM.get(preset, preset)
    for variant, seed, lr in selection:
        cfg = config(preset, variant, seed, lr)
        print(f"{status(cfg):8s} {cfg.run_name}")


def print_summary(summary: dict[str, Any]) -> None:
    """Print a summary (:func:`write_summary`): one row per variant, the sweep, and each paired comparison."""
    print(f"{'variant':21s} {'seeds':>5s} {'mean':>7s} {'std':>6s} {'params':>9s} {'MFLOPs':>7s} {'img/s':>6s}")
    for name, v in summary["variants"].items():
        print(f"{name:21s} {len(v['seeds']):5d} {v['mean']:7.4f} {v['std']:6.4f} {v['parameters']:9,d} "
              f"{v['flops_per_image'] / 1e6:7.1f} {v['images_per_s']:6.0f}")
    for variant, rates in summary.get("lr_sweep", {}).items():
        print(f"lr sweep, {variant}: " + ", ".join(f"{lr}: " + ("diverged" if acc is None else f"val {acc:.4f}")
                                                   for lr, acc in rates.items()))
    for c in summary.get("comparisons", []):
        holm = f"{c['p_holm']:.3f}" if "p_holm" in c else "n/a"
        print(f"{c['treatment']} - {c['control']}: {c['mean']:+.2f} points, 95% CI [{c['ci95'][0]:+.2f}, "
              f"{c['ci95'][1]:+.2f}], n={len(c['seeds'])}, p={c['p']:.3f}, Holm p={holm}  ({c['differs']})")


def main(argv: list[str] | None = None) -> int:
    """The command line (``python -m wf_lessons.ablate --help``); returns the exit status (2: bad input)."""
    parser = argparse.ArgumentParser(prog="python -m wf_lessons.ablate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="controls-cpu",
                        help=f"study preset: {', '.join(STUDY_PRESETS)} (default: controls-cpu)")
    parser.add_argument("--variants", nargs="+", metavar="NAME",
                        help="variants to run (default: every one; a regime: released, zero-init, best control)")
    parser.add_argument("--seeds", nargs="+", type=int,
                        help="seeds (default: 0 1 2 3 4 for a controls preset, 0 1 2 for study-cpu, study-gpu and "
                             "the regimes)")
    parser.add_argument("--sweep", action="store_true",
                        help="the learning-rate sweep of a controls preset (seed 0 of each family's reference)")
    parser.add_argument("--checkpoint-dir", help="folder of the runs' checkpoints (default: data/checkpoints)")
    parser.add_argument("--list", action="store_true", help="print each run's state and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--dry-run", action="store_true",
                        help="study-gpu: its whole code path at toy size (stop, resume, summary) in temporary folders")
    parser.add_argument("--device", help="study-gpu: cpu or cuda (default: cuda when available)")
    args = parser.parse_args(argv)
    try:
        if args.dry_run or args.preset == "study-gpu":
            from wf_lessons import gpu_study

            if args.dry_run:
                if args.preset != "study-gpu" or args.list or args.sweep:
                    raise ValueError("--dry-run is for --preset study-gpu alone (the CPU studies run as they are)")
                gpu_study.dry_run(device=args.device, progress=not args.no_progress)
                return 0
            device = wf_config.device(args.device)
            if device.type != "cuda" and not args.list:
                raise ValueError("study-gpu needs a CUDA GPU and there is none here (or --device says cpu): on a CPU, "
                                 "run its code path at toy size with --dry-run, or the CPU version, --preset "
                                 "controls-long-cpu")
            if not args.list:
                gpu_study.announce([t for t in _select(args.preset, args.variants, args.seeds)
                                    if status(config(args.preset, t[0], t[1], t[2])) != "done"], device)
        if args.list:
            print_status(args.preset, args.variants, args.seeds, args.sweep)
            return 0
        settings = {"checkpoint_dir": args.checkpoint_dir} if args.checkpoint_dir else {}
        settings |= {"device": args.device} if args.device else {}
        summary = run(args.preset, args.variants, args.seeds, progress=not args.no_progress, sweep=args.sweep,
                      **settings)
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError, DataNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print_summary(summary)
    print(f"summary: {runlog.portable(wf_config.runs_dir() / (summary_name(args.preset) + '.json'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

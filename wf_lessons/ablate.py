"""The predictor study: which weight predictor matters? (chapter 07)

One network, one recipe, one data order; only the weight predictors change, one family at a time:

- ``all-static``: the control, every block static (``dynamic_blocks=()``): 3×3 depthwise convolutions and MLPs only;
- ``linear-<p>``: the dynamic blocks' linear layers use predictor ``p`` (chapter 02), the DWC stays ``adaptive``;
- ``dwc-<p>``: the dynamic blocks' depthwise convolutions use predictor ``p`` (chapter 03), the linear stays
  ``bilateral``;
- ``released``: ``bilateral`` + ``adaptive``, the pair of the reference code (the meeting point of both families);
- ``deit``: the same-size DeiT (softmax attention), the same recipe.

Each (variant, seed) is an ordinary training run (:mod:`wf_lessons.train`) named
``ablation-<preset>-<variant>-seed<seed>``, with its own run log in ``data/runs/`` and checkpoint. The command is
resumable: finished runs are skipped, an interrupted one resumes from its checkpoint, and a run that another
process is training is left to it (two commands can share the grid, one per core). At the end the summary
``data/runs/ablation-<preset without "study-">.json`` gathers every finished run.

Command line::

    python -m wf_lessons.ablate                        # the whole grid, seeds 0 1 2, preset study-cpu
    python -m wf_lessons.ablate --variants all-static released --seeds 0
    python -m wf_lessons.ablate --list                 # what is done, partial, to do
"""

from __future__ import annotations

import argparse
import json
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

#: The presets the study runs with (a preset of :data:`wf_lessons.train.PRESETS` whose model is a WeightFormer).
STUDY_PRESETS = ("study-cpu",)
#: The softmax-attention baseline of the same size as each study model.
SAME_SIZE_DEIT = {"wf-cifar-study": "deit-cifar-tiny", "wf-cifar": "deit-cifar"}
DEFAULT_SEEDS = (0, 1, 2)


def variants(preset: str = "study-cpu") -> dict[str, tuple[str, dict[str, Any]]]:
    """The grid's variants for ``preset``: name -> (model name, ``build_model`` overrides)."""
    _check_preset(preset)
    model = PRESETS[preset]["model"]
    grid: dict[str, tuple[str, dict[str, Any]]] = {"all-static": (model, {"dynamic_blocks": ()})}
    for p in LINEAR_PREDICTORS:
        if p != "bilateral":
            grid[f"linear-{p}"] = (model, {"linear_predictor": p})
    grid["released"] = (model, {})
    for p in DWC_PREDICTORS:
        if p != "adaptive":
            grid[f"dwc-{p}"] = (model, {"dwc_predictor": p})
    grid["deit"] = (SAME_SIZE_DEIT[model], {})
    return grid


def _check_preset(preset: str) -> None:
    if preset not in STUDY_PRESETS:
        raise ValueError(f"unknown study preset {preset!r}; valid: {', '.join(STUDY_PRESETS)}")


def run_name(preset: str, variant: str, seed: int) -> str:
    return f"ablation-{preset}-{variant}-seed{seed}"


def summary_name(preset: str) -> str:
    return "ablation-" + preset.removeprefix("study-")


def config(preset: str, variant: str, seed: int, **settings: Any) -> TrainConfig:
    """The training configuration of one run of the grid (``settings``: e.g. ``progress=False``; a ``run_name``
    given there replaces the grid's, for runs outside the study)."""
    model, overrides = variants(preset)[variant]
    settings = {"run_name": run_name(preset, variant, seed)} | settings
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


def _select(preset: str, names: list[str] | None, seeds: list[int] | None) -> list[tuple[str, int]]:
    grid = variants(preset)
    names = list(grid) if not names else names
    unknown = [n for n in names if n not in grid]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(unknown)}; valid: {', '.join(grid)}")
    seeds = list(DEFAULT_SEEDS) if seeds is None else seeds
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < SEED_LIMIT for s in seeds):
        raise ValueError(f"seeds must be ints in [0, 2**32), got {seeds!r}")
    return [(n, s) for s in seeds for n in names]  # seed-major: a partial grid still has whole seeds


def run(preset: str = "study-cpu", names: list[str] | None = None, seeds: list[int] | None = None,
        progress: bool = True, data: Data | None = None, **settings: Any) -> dict[str, Any]:
    """Train every (variant, seed) of the selection that is not done yet, then write and return the summary.

    ``data`` and ``settings`` (e.g. ``checkpoint_dir``) go to every run, as in :func:`wf_lessons.train.train`.
    """
    from tqdm.auto import tqdm

    todo = _select(preset, names, seeds)
    say = tqdm.write if progress else (lambda *_: None)
    with tqdm(todo, desc="study", unit="run", disable=None if progress else True) as bar:
        for variant, seed in bar:
            cfg = config(preset, variant, seed, progress=False, **settings)
            state = status(cfg)
            bar.set_postfix_str(f"{variant} seed {seed}")
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
    return write_summary(preset)


def summarize(preset: str = "study-cpu") -> dict[str, Any]:
    """Every finished run of the grid, per variant: seeds, test accuracies, mean, std, size, cost, speed."""
    out: dict[str, Any] = {}
    for variant in variants(preset):
        logs = [runlog.read(p) for p in sorted(wf_config.runs_dir().glob(f"{run_name(preset, variant, '*')}.json"))]
        logs = sorted((g for g in logs if g.get("complete")), key=lambda g: g["seed"])
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
    return out


def write_summary(preset: str = "study-cpu") -> dict[str, Any]:
    """Write ``data/runs/ablation-<...>.json`` from the finished runs and return it.

    A summary whose table is unchanged is left as it is (with the commit that wrote it), so that re-running a
    finished study does not rewrite its provenance.
    """
    table = summarize(preset)
    try:
        existing = runlog.read(summary_name(preset))
    except (FileNotFoundError, ValueError):
        existing = None
    if existing is not None and existing.get("variants") == json.loads(json.dumps(table)):
        return existing
    summary = {
        "kind": "ablation",
        "preset": preset,
        "recipe": PRESETS[preset],
        "note": "test accuracy on all 10,000 test images, no TTA; std over seeds (sample std); images_per_s is "
                "the training throughput averaged over epochs (runs shared the machine two at a time)",
        "git_commit": runlog.git_commit(),
        "git_dirty": runlog.git_dirty(),
        "variants": table,
    }
    runlog.write(summary, summary_name(preset))
    return summary


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


def print_status(preset: str, names: list[str] | None, seeds: list[int] | None) -> None:
    for variant, seed in _select(preset, names, seeds):
        cfg = config(preset, variant, seed)
        print(f"{status(cfg):8s} {cfg.run_name}")


def print_summary(summary: dict[str, Any]) -> None:
    print(f"{'variant':18s} {'seeds':>5s} {'mean':>7s} {'std':>6s} {'params':>9s} {'MFLOPs':>7s} {'img/s':>6s}")
    for name, v in summary["variants"].items():
        print(f"{name:18s} {len(v['seeds']):5d} {v['mean']:7.4f} {v['std']:6.4f} {v['parameters']:9,d} "
              f"{v['flops_per_image'] / 1e6:7.1f} {v['images_per_s']:6.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wf_lessons.ablate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="study-cpu", help=f"study preset: {', '.join(STUDY_PRESETS)}")
    parser.add_argument("--variants", nargs="+", metavar="NAME", help="variants to run (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds (default: 0 1 2)")
    parser.add_argument("--list", action="store_true", help="print each run's state and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        if args.list:
            print_status(args.preset, args.variants, args.seeds)
            return 0
        summary = run(args.preset, args.variants, args.seeds, progress=not args.no_progress)
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError, DataNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print_summary(summary)
    print(f"summary: {runlog.portable(wf_config.runs_dir() / (summary_name(args.preset) + '.json'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The headline run in one command, for a reader with one CUDA GPU: ``wf-cifar`` against ``deit-cifar``.

``python -m wf_lessons.headline`` checks the device, measures the training throughput of both models with the
``gpu`` preset's settings (``torch.compile`` and the GPU's precision included, on synthetic batches: bf16 on Ampere
and newer, fp16 with a gradient scaler on older GPUs such as the T4), sets the number of epochs so
that one ``wf-cifar`` run fits the time budget (default 5 minutes of training: the course's goal is >= 94.5% test
accuracy, mean of 3 seeds, no TTA), then trains ``wf-cifar`` and ``deit-cifar`` for each seed, each as its own
resumable run (``headline-<model>-seed<k>``), and prints one table with the run logs' paths. Both models get the
same recipe and the same number of epochs; DeiT takes the time it takes (the table shows it). The measurement and
the chosen epochs, batch and learning rate are written first (``data/runs/headline-gpu-plan.json``) and reused
when the command runs again, so that an interrupted run resumes and every seed has the same recipe.

A GPU with less memory gets a smaller batch (halved until a training step fits, the learning rate scaled with
it: :func:`wf_lessons.train.fallback.largest_fitting_batch`, the same search a training run makes when its first
step does not fit); a slower one gets fewer epochs. Both are said before training starts. On a CPU the command
refuses and points at the CPU presets.

::

    python -m wf_lessons.headline                    # 5 minutes per wf-cifar run, seeds 0 1 2
    python -m wf_lessons.headline --minutes 9 --seeds 0
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from typing import Any

import torch

from wf_lessons import config, runlog
from wf_lessons.data import DataNotFoundError
from wf_lessons.train import TrainingDiverged
from wf_lessons.train.fallback import BatchTooLarge
from wf_lessons.train.machine import choose_precision
from wf_lessons.train.recipe import SEED_LIMIT

__all__ = ["MODELS", "OVERHEAD", "MIN_EPOCHS", "PLAN", "MIN_BATCH", "plan", "measure", "run", "print_table", "main"]

#: The two models of the headline comparison, trained with the same recipe and epochs.
MODELS = ("wf-cifar", "deit-cifar")
TRAIN_IMAGES = 50_000
#: Training is slower than the throughput benchmark: augmentation on the device, the per-epoch evaluation and
#: checkpoint. The epoch count leaves this fraction of the budget for them.
OVERHEAD = 0.15
#: The fewest epochs worth training: a budget that fits fewer is refused.
MIN_EPOCHS = 5
#: The run log holding the measured throughput and the chosen epochs, batch and lr (reused when the command reruns).
PLAN = "headline-gpu-plan"


def plan(images_per_s: float, minutes: float, batch: int) -> dict[str, Any]:
    """Epochs of ``batch``-sized steps that fit ``minutes`` of training at ``images_per_s`` (after the overhead)."""
    if not images_per_s > 0 or not minutes > 0:
        raise ValueError(f"need images_per_s > 0 and minutes > 0, got {images_per_s!r} and {minutes!r}")
    epoch_s = (TRAIN_IMAGES // batch) * batch / images_per_s
    epochs = math.floor(minutes * 60 * (1 - OVERHEAD) / epoch_s)
    return {"epochs": epochs, "epoch_s_estimate": epoch_s, "train_s_estimate": epochs * epoch_s / (1 - OVERHEAD)}


#: The smallest batch the headline recipe is halved to before giving up (its learning rate is scaled linearly).
MIN_BATCH = 64


def measure(batch: int, compile: bool = True, precision: str | None = None) -> tuple[int, dict[str, Any]]:
    """Throughput of both models at the largest batch (``batch``, halved as needed, down to :data:`MIN_BATCH`) whose
    training step fits: :func:`wf_lessons.train.fallback.largest_fitting_batch`, as a training run does."""
    from wf_lessons.bench import train_throughput
    from wf_lessons.train.fallback import largest_fitting_batch

    def throughput(b: int) -> dict[str, Any]:
        return train_throughput(MODELS, batch=b, steps=20, warmup=10, compile=compile, device=torch.device("cuda"),
                                precision=precision)

    return largest_fitting_batch(throughput, batch, min_batch=MIN_BATCH, say=lambda text: print(text, flush=True))


def run(minutes: float, seeds: list[int], progress: bool = True) -> dict[str, Any]:
    """Measure, plan and train (see the module docstring); returns the summary, also written as a run log."""
    from wf_lessons.train import PRESETS, TrainConfig, train

    if not torch.cuda.is_available():
        raise ValueError("the headline run needs a CUDA GPU, and none is available here; on a CPU use the CPU "
                         "presets: python -m wf_lessons.train --preset cpu (the longest CPU recipe) or "
                         "--preset quick-cpu (a few minutes)")
    preset = PRESETS["gpu"]
    plan_path = config.runs_dir() / f"{PLAN}.json"
    if plan_path.is_file():  # runs already started: keep their settings, so that they resume and stay comparable
        saved = runlog.read(plan_path)
        if saved["minutes"] != minutes:
            raise ValueError(f"the headline runs were planned for {saved['minutes']:g} minutes ({plan_path}); rerun "
                             f"with --minutes {saved['minutes']:g}, or move that file and the headline-* logs away "
                             "to start afresh")
        print(f"reusing the plan of {plan_path.name}: the runs it started stay comparable", flush=True)
        batch, measured, schedule, lr = saved["batch"], saved["throughput"], saved["plan"], saved["lr"]
    else:
        precision = choose_precision(torch.device("cuda"), None)
        print(f"GPU: {torch.cuda.get_device_name()}; precision {precision['precision']}: {precision['reason']}; "
              "measuring training throughput (with torch.compile) ...", flush=True)
        batch, measured = measure(preset["batch_size"], precision=precision["precision"])
        schedule = plan(measured["results"]["wf-cifar"]["images_per_s"], minutes, batch)
        lr = preset["lr"] * batch / preset["batch_size"]
    rates = {name: row["images_per_s"] for name, row in measured["results"].items()}
    epochs = schedule["epochs"]
    print(f"wf-cifar {rates['wf-cifar']:,.0f} images/s, deit-cifar {rates['deit-cifar']:,.0f} images/s at batch "
          f"{batch}: {epochs} epochs fit {minutes:g} minutes of wf-cifar training "
          f"(estimated {schedule['train_s_estimate'] / 60:.1f} min; deit-cifar about "
          f"{schedule['train_s_estimate'] * rates['wf-cifar'] / rates['deit-cifar'] / 60:.1f} min)")
    if batch != preset["batch_size"]:
        print(f"smaller GPU: batch {batch} instead of {preset['batch_size']}, learning rate {lr:.2e} (scaled)")
    if epochs < MIN_EPOCHS:
        raise ValueError(f"only {epochs} epochs fit {minutes:g} minutes on this GPU; give it more time (--minutes)")
    if not plan_path.is_file():
        runlog.write({"kind": "headline-plan", **runlog.environment(torch.device("cuda")), "minutes": minutes,
                      "batch": batch, "lr": lr, "throughput": measured, "plan": schedule}, PLAN)
    runs: list[dict[str, Any]] = []
    for seed in seeds:
        for model in MODELS:
            cfg = TrainConfig(preset="gpu", model=model, seed=seed, epochs=epochs, batch_size=batch, lr=lr,
                              time_limit_s=0.0, run_name=f"headline-{model}-seed{seed}", progress=progress)
            log_path, ckpt = cfg.log_path(), cfg.checkpoint_path()
            if log_path.is_file() and runlog.read(log_path).get("complete"):
                runs.append(runlog.read(log_path))
                continue
            cfg.resume = ckpt.is_file()
            runs.append(train(cfg))
    summary = {"kind": "headline", **runlog.environment(torch.device("cuda")), "minutes": minutes,
               "batch": batch, "lr": lr, "epochs": epochs, "throughput": measured, "plan": schedule,
               "runs": [r["run_name"] for r in runs]}
    runlog.write(summary, "headline-gpu")
    return {"summary": summary, "runs": runs}


def print_table(runs: list[dict[str, Any]]) -> None:
    """Print one row per run log of ``runs`` (test accuracy, training minutes, images/s, epochs, log path), then
    each model's mean test accuracy over its seeds."""
    print(f"{'model':<11}{'seed':>5}{'test acc':>10}{'train min':>10}{'images/s':>10}{'epochs':>7}  run log")
    for r in runs:
        speed = statistics.mean(e["images_per_s"] for e in r["epochs"])
        print(f"{r['model']:<11}{r['seed']:>5}{r['test_acc']:>10.2%}{r['train_s'] / 60:>10.1f}{speed:>10,.0f}"
              f"{r['epochs_done']:>7}  data/runs/{r['run_name']}.json")
    for model in MODELS:
        accs = [r["test_acc"] for r in runs if r["model"] == model]
        if accs:
            spread = f" ± {statistics.stdev(accs):.2%}" if len(accs) > 1 else ""
            print(f"{model}: mean test accuracy {statistics.mean(accs):.2%}{spread} over {len(accs)} seed(s)")


def main(argv: list[str] | None = None) -> int:
    """The command line, ``python -m wf_lessons.headline [--minutes M] [--seeds ...]``; returns the exit status (2
    for a bad argument or a missing GPU or data, 1 when a run diverged)."""
    parser = argparse.ArgumentParser(prog="python -m wf_lessons.headline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training time budget of one wf-cifar run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        if not 0 < args.minutes < math.inf or any(not 0 <= s < SEED_LIMIT for s in args.seeds):
            raise ValueError(f"--minutes must be a finite number > 0 and seeds ints in [0, 2**32), got "
                             f"{args.minutes} and {args.seeds}")
        result = run(args.minutes, args.seeds, progress=not args.no_progress)
    except (ValueError, FileExistsError, FileNotFoundError, PermissionError, DataNotFoundError,
            BatchTooLarge) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print_table(result["runs"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Chapter 07 exercises: the gpu preset's schedule, the smoothed-loss floor, flip TTA, weight-decay groups, the
warm-up + cosine schedule built by hand, and a prediction of which cpu-preset model is the most accurate."""

from __future__ import annotations

import glob
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from wf_lessons import config, runlog
from wf_lessons.exercises import check_callable, check_number, judge_prediction, report
from wf_lessons.models import build_model
from wf_lessons.train import PRESETS, build_optimizer, predict, warmup_cosine

__all__ = ["check_exercise", "check_prediction"]

CPU_MODELS = ("wf-cifar-cpu", "all-static", "deit-cifar-cpu")  # exercise 7's names

def _gpu_schedule_steps() -> tuple[int, int]:
    preset = PRESETS["gpu"]
    steps = 50_000 // preset["batch_size"]  # the training loader drops the last partial batch
    return steps * preset["epochs"], round(preset["warmup_epochs"] * steps)


def _smoothed_loss_floor(smoothing: float = 0.1, classes: int = 10) -> float:
    """The smallest cross-entropy against a smoothed target: its entropy (reached by predicting the target)."""
    target = torch.full((classes,), smoothing / classes, dtype=torch.float64)
    target[0] += 1 - smoothing
    return float(-(target * target.log()).sum())


def _no_decay_count() -> int:
    groups = build_optimizer(build_model("wf-cifar"), 1e-3, 0.05).param_groups
    return sum(p.numel() for g in groups if g["weight_decay"] == 0 for p in g["params"])


def _check_tta(answer: Callable[[nn.Module, Tensor], Tensor]) -> tuple[bool, str]:
    gen = torch.Generator().manual_seed(0)
    torch_state = torch.get_rng_state()
    torch.manual_seed(0)
    model = build_model("wf-cifar-quick", img_size=16, embed_dim=16, depth=2).eval()
    torch.set_rng_state(torch_state)
    images = torch.randn(4, 3, 16, 16, generator=gen)
    expected, _ = predict(model, [(images, torch.zeros(4, dtype=torch.long))], tta_flip=True)
    with torch.no_grad():
        got = answer(model, images)
    if not isinstance(got, Tensor) or got.shape != expected.shape:
        shape = tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__
        return False, f"expected logits of shape {tuple(expected.shape)}, got {shape}"
    if not torch.allclose(got.float(), expected, atol=1e-5):
        if torch.allclose(got.float(), model(images), atol=1e-5):
            return False, "these are the logits of the images alone: add those of the mirrored images"
        return False, f"not quite: your logits differ from flip TTA by up to {(got - expected).abs().max():.3g}"
    return True, "correct: the mean of the logits of each image and of its mirror image"


def _check_schedule(answer: Callable[[int, int, int, float], float]) -> tuple[bool, str]:
    """``answer(step, total, warmup, min_ratio)`` must equal ``train.warmup_cosine`` at every step of a few
    schedules; a wrong value is compared with the usual slips to say which part differs."""
    for total, warmup, min_ratio in ((100, 10, 0.0), (50, 5, 0.1), (37, 1, 0.02), (20, 0, 0.0)):
        reference = warmup_cosine(total, warmup, min_ratio)
        for step in range(total):
            expected = reference(step)
            call = f"lr_factor({step}, {total}, {warmup}, {min_ratio})"
            try:
                got = answer(step, total, warmup, min_ratio)
            except ZeroDivisionError:
                return False, f"not quite: {call} divides by zero (a schedule may have no warm-up at all)"
            if isinstance(got, Tensor) and got.numel() == 1:
                got = got.item()
            if isinstance(got, bool) or not isinstance(got, (int, float)):
                return False, f"{call} should return a number, got {type(got).__name__}"
            if math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-9):
                continue
            cosine_to_zero = 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
            if step < warmup and math.isclose(got, step / warmup, abs_tol=1e-9):
                hint = "the warm-up starts at 1/warmup_steps, not at 0: (step + 1) / warmup_steps"
            elif step < warmup:
                hint = "the warm-up rises linearly from 1/warmup_steps to 1"
            elif min_ratio and math.isclose(got, cosine_to_zero, abs_tol=1e-9):
                hint = "the cosine ends at min_ratio, not at 0: min_ratio + (1 - min_ratio)·(1 + cos πp)/2"
            else:
                hint = "after the warm-up, p = (step - warmup_steps) / (total_steps - warmup_steps) runs from 0 to 1"
            return False, f"not quite: {call} = {got:.4g} instead of {expected:.4g}; {hint}"
    return True, "correct: 1/warmup_steps … 1 in the warm-up, then a cosine down to min_ratio at the last step"


def _cpu_preset_means() -> dict[str, float]:
    """Mean test accuracy over seeds of each ``cpu``-preset model in the committed run logs (exercise 7's names)."""
    accuracy: dict[str, list[float]] = {}
    for path in sorted(glob.glob(str(config.runs_dir() / "train-*.json"))):
        log = runlog.read(path)
        if log.get("kind") != "train" or log["config"].get("preset") != "cpu":
            continue
        overrides = log.get("model_overrides") or {}
        name = "all-static" if overrides == {"dynamic_blocks": []} else log["model"] if not overrides else None
        if name in CPU_MODELS:
            accuracy.setdefault(name, []).append(log["test_acc"])
    if set(accuracy) != set(CPU_MODELS):
        raise ValueError(f"the committed cpu-preset logs lack {sorted(set(CPU_MODELS) - set(accuracy))}")
    return {name: sum(values) / len(values) for name, values in accuracy.items()}


def check_prediction(number: int, prediction: object) -> bool:
    """Compare a prediction written before section 4 with the committed runs (exercise 7: ``"wf-cifar-cpu"``,
    ``"all-static"`` or ``"deit-cifar-cpu"``, the most accurate model of the ``cpu`` preset, mean over seeds)."""
    if number != 7:
        raise ValueError(f"chapter 07 has a prediction for exercise 7 only, got {number!r}")
    means = _cpu_preset_means()
    best = max(means, key=means.get)
    why = ("at this scale (64 tokens, width 64, 15 epochs) the predicted weights do not pay off against the same "
           "network without them; chapter 08 asks why" if best == "all-static" else
           "section 4's table and curves show every run")
    return judge_prediction(number, prediction, best, CPU_MODELS, why=why)


def check_exercise(number: int, answer: object) -> bool:
    """Check an answer to an exercise of chapter 07; prints why, returns True when it is right.

    1. The gpu preset's schedule: ``(total optimizer steps, warm-up steps)`` on the 50,000 training images.
    2. The smallest cross-entropy a model can reach against targets smoothed with ε = 0.1 over 10 classes.
    3. A function ``flip_tta_logits(model, images)`` returning flip-TTA logits ``(B, K)``.
    4. How many parameters (scalars) of ``wf-cifar`` get no weight decay from ``build_optimizer``.
    5. The ``cpu`` preset with batch 256 instead of 128: ``(optimizer steps per epoch, steps in the whole run)``.
    6. A function ``lr_factor(step, total_steps, warmup_steps, min_ratio)``: the warm-up + cosine multiplier (a
       callable, built).
    7. The most accurate model of the committed ``cpu``-preset runs, mean over seeds: ``"wf-cifar-cpu"``,
       ``"all-static"`` or ``"deit-cifar-cpu"`` (a str; predicted before section 4, see :func:`check_prediction`).
    """
    if number not in (1, 2, 3, 4, 5, 6, 7):
        raise ValueError(f"chapter 07 has exercises 1 to 7, got {number!r}")
    if answer is None:
        return report(number, False, "no answer yet")
    if number == 1:
        expected = _gpu_schedule_steps()
        if not isinstance(answer, tuple) or len(answer) != 2:
            ok, message = False, f"expected a pair (total steps, warm-up steps), got {answer!r}"
        elif tuple(answer) == expected:
            ok, message = True, f"correct: {expected[0]:,} steps, of which the first {expected[1]} warm up"
        elif answer[0] == 50_000 / PRESETS["gpu"]["batch_size"] * PRESETS["gpu"]["epochs"]:
            ok, message = False, "not quite: the training loader drops the last partial batch of each epoch"
        else:
            ok, message = False, f"not quite: {answer} (steps per epoch = training images // batch size)"
    elif number == 2:
        expected = _smoothed_loss_floor()
        correct = f"{expected:.4f}, the entropy of the smoothed target; the loss never reaches 0"
        ok, message = check_number(answer, expected, integer=False, abs_tol=1e-3, correct=correct)
    elif number == 3:
        ok, message = check_callable(answer, _check_tta)
    elif number == 6:
        ok, message = check_callable(answer, _check_schedule,
                                     signature="lr_factor(step, total_steps, warmup_steps, min_ratio)")
    elif number == 7:
        means = _cpu_preset_means()
        best = max(means, key=means.get)
        table = ", ".join(f"{name} {mean:.2%}" for name, mean in means.items())
        if answer not in CPU_MODELS:
            ok, message = False, f"expected one of {', '.join(map(repr, CPU_MODELS))}, got {answer!r}"
        elif answer == best:
            ok, message = True, f"correct: {best} ({table})"
        else:
            ok, message = False, (f"not quite: {answer!r} is not the most accurate (average test_acc over each "
                                  "model's seeds)")
    elif number == 5:
        per_epoch = 50_000 // 256  # the training loader drops the last partial batch
        expected = (per_epoch, per_epoch * PRESETS["cpu"]["epochs"])
        if not isinstance(answer, tuple) or len(answer) != 2:
            ok, message = False, f"expected a pair (steps per epoch, steps in the run), got {answer!r}"
        elif tuple(answer) == expected:
            ok, message = True, (f"correct: {expected[0]} steps per epoch, {expected[1]:,} in all: half the steps of "
                                 "batch 128, each on twice the images")
        else:
            ok, message = False, f"not quite: {answer} (steps per epoch = 50,000 // batch size, drop the remainder)"
    else:
        expected = _no_decay_count()
        correct = f"{expected:,} parameters, all in norms, biases and other 1-D tensors"
        ok, message = check_number(answer, expected, integer=True, correct=correct, answer_format=",")
    return report(number, ok, message)

"""Chapter 08 exercises: how much a trained network relies on its predictions, a paired interval, a zero start for
the bilateral layer, and a predictor's parameter cost.

The answers are computed from the committed run logs (``data/runs/``), so they follow the runs the course holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from wf_lessons import ablate, runlog
from wf_lessons.dynamic_linear import BilateralDynLinear
from wf_lessons.exercises import check_callable, check_number, judge_prediction, report, wrong_type
from wf_lessons.models import build_model, count_parameters

__all__ = ["check_exercise", "check_prediction"]

PRESET = "controls-cpu"
#: Exercise 1's run: the released network at the CPU recipe's learning rate, seed 0 of the controlled study's sweep.
RELIANCE_RUN = ablate.run_name(PRESET, "released", 0, 3e-3)
#: Exercise 1's prediction: the drop in validation accuracy, in points, when the trained network's predictions
#: are switched off.
DROP_OPTIONS = {"under 5": (-math.inf, 5.0), "5 to 20": (5.0, 20.0), "over 20": (20.0, math.inf)}


def _drop_points() -> float:
    log = runlog.read(RELIANCE_RUN)
    return 100 * (log["val_acc"] - log["val_acc_predictions_off"])


def _cpu_interval() -> tuple[float, float]:
    """The 95% t-interval of the cpu preset's paired differences, WeightFormer minus all-static (points)."""
    table = {label: {"seeds": [0, 1, 2], "test_acc": [runlog.read(pattern.format(s))["test_acc"] for s in range(3)]}
             for label, pattern in (("wf", "train-wf-cifar-cpu-cpu-seed{}"),
                                    ("static", "train-wf-cifar-cpu-all-static-cpu-seed{}"))}
    low, high = ablate.compare_paired(table, [("wf", "static", "")])[0]["ci95"]
    return low, high


def check_prediction(number: int, prediction: object) -> bool:
    """Compare a prediction written before "Reliance" with the measurement (exercise 1: ``"under 5"``,
    ``"5 to 20"`` or ``"over 20"`` points of validation accuracy lost when the predictions are switched off)."""
    if number != 1:
        raise ValueError(f"chapter 08 has a prediction for exercise 1 only, got {number!r}")
    drop = _drop_points()
    outcome = next(name for name, (low, high) in DROP_OPTIONS.items() if low <= drop < high)
    return judge_prediction(number, prediction, outcome, tuple(DROP_OPTIONS),
                            why=f"the drop is {drop:.1f} points: the static weights adapted to the predicted part")


def _bilateral_cost() -> int:
    return count_parameters(build_model("wf-cifar-cpu")) - count_parameters(
        build_model("wf-cifar-cpu", linear_predictor="static"))


def _check_zero_start(zero_start: Callable[..., object]) -> tuple[bool, str]:
    """``zero_start(layer)`` must make a bilateral layer's prediction zero for any input, keep a gradient, and leave
    the static weight alone."""
    torch.manual_seed(0)
    layer = BilateralDynLinear(16, 64)
    w0 = layer.w.detach().clone()
    zero_start(layer)
    x = torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(1))  # (B, N, C) on a 4×4 grid
    if not torch.equal(layer.w.detach(), w0):
        return False, "not quite: the static weight W0 changed; only the prediction should start at zero"
    if layer.dynamic_weight(x, (4, 4)).abs().max() != 0:
        return False, "not quite: the prediction Ŵ is not zero yet (which tensor does Kᵀ·V multiply by?)"
    layer(x, (4, 4)).square().sum().backward()
    grads = [p.grad for name, p in layer.named_parameters() if name not in ("w", "b") and p.grad is not None]
    if not grads or max(g.abs().max().item() for g in grads) == 0:
        return False, ("not quite: Ŵ is zero, but no predictor parameter gets a gradient any more: zero one branch "
                       "of the product Kᵀ·V, not both")
    return True, "correct: W2 = 0 makes V, Kᵀ·V and Ŵ zero, while the gradient reaches W2 through the keys"


def check_exercise(number: int, answer: object) -> bool:
    """Check an answer to an exercise of chapter 08; prints why, returns True when it is right.

    1. The drop in validation accuracy, in points, of the released network trained at 3e-3 (seed 0 of the
       controlled study's sweep) when its predictions are switched off. (a float)
    2. The 95% confidence interval of the mean paired difference, in points, of the ``cpu`` preset's WeightFormer
       minus its all-static network (3 seeds), as a ``(low, high)`` tuple. (two floats)
    3. ``zero_start(layer)``: a function that makes a ``BilateralDynLinear``'s prediction exactly zero while it
       still gets a gradient. (a function)
    4. How many parameters does the ``bilateral`` dynamic-linear predictor add to ``wf-cifar-cpu``, compared with
       the same model whose dynamic blocks use ``linear_predictor="static"``? (an int)
    """
    if number not in (1, 2, 3, 4):
        raise ValueError(f"chapter 08 has exercises 1, 2, 3 and 4, got {number!r}")
    if answer is None:
        return report(number, False, "no answer yet")
    if number == 1:
        expected = _drop_points()
        ok, message = check_number(answer, expected, integer=False, abs_tol=0.01,
                                   correct=f"{expected:.2f} points lost without the predictions")
        if not ok and isinstance(answer, (int, float)) and abs(answer * 100 - expected) < 0.01:
            message = "not quite: in points, please (multiply the accuracy difference by 100)"
    elif number == 2:
        low, high = _cpu_interval()
        if not (isinstance(answer, (tuple, list)) and len(answer) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in answer)):
            ok, message = False, wrong_type("a (low, high) pair of numbers", answer)
        elif math.isclose(answer[0], low, abs_tol=0.01) and math.isclose(answer[1], high, abs_tol=0.01):
            ok, message = True, f"correct: [{low:+.2f}, {high:+.2f}] points"
        else:
            ok, message = False, (f"not quite: [{answer[0]:+.2f}, {answer[1]:+.2f}]; a t-interval of the mean of the "
                                  "paired differences (in points), 95%, with n − 1 degrees of freedom")
    elif number == 3:
        ok, message = check_callable(answer, _check_zero_start, signature="zero_start(layer)")
    else:
        expected = _bilateral_cost()
        ok, message = check_number(answer, expected, integer=True, answer_format=",",
                                   correct=f"{expected:,} parameters: the predictor and its normalisation")
    return report(number, ok, message)

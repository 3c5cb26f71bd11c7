"""Chapter 07 exercises: a paired difference and its interval from the controlled study, a zero start for the
bilateral layer, and a predictor's parameter cost.

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


def _paired(treatment: str, control: str) -> dict:
    """The committed summary's paired comparison of ``treatment`` against ``control`` (all their common seeds)."""
    table = runlog.read(ablate.summary_name(PRESET))["variants"]
    rows = ablate.compare_paired(table, [(treatment, control, "")])
    if not rows:
        raise ValueError(f"the committed {PRESET} summary has no two common seeds of {treatment} and {control}")
    return rows[0]


#: The decomposition's links by the name the prediction of exercise 1 uses (:data:`wf_lessons.ablate.DECOMPOSITION`).
LINKS = dict(zip(("structure", "initialisation", "prediction"), ablate.DECOMPOSITION))


def check_prediction(number: int, prediction: object) -> bool:
    """Compare a prediction written before section 6 with the measurement (exercise 1: which link of the chain,
    ``"structure"``, ``"initialisation"`` or ``"prediction"``, has the largest mean paired difference in size)."""
    if number != 1:
        raise ValueError(f"chapter 07 has a prediction for exercise 1 only, got {number!r}")
    sizes = {link: abs(_paired(*pair)["mean"]) for link, pair in LINKS.items()}
    return judge_prediction(number, prediction, max(sizes, key=sizes.get), tuple(LINKS),
                            why="sizes of the three links: " + ", ".join(f"{k} {v:.2f}" for k, v in sizes.items())
                                + " points")


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
    """Check an answer to an exercise of chapter 07; prints why, returns True when it is right.

    1. In the controlled study (``controls-cpu``), the mean paired difference of test accuracy in points,
       ``released`` minus ``zero-prediction``, over their common seeds. (a float)
    2. The 95% confidence interval of the mean paired difference ``released`` minus ``all-static`` (points), as a
       ``(low, high)`` tuple. (two floats)
    3. ``zero_start(layer)``: a function that makes a ``BilateralDynLinear``'s prediction exactly zero while it
       still gets a gradient. (a function)
    4. How many parameters does the ``bilateral`` dynamic-linear predictor add to ``wf-cifar-cpu``, compared with
       the same model whose dynamic blocks use ``linear_predictor="static"``? (an int)
    """
    if number not in (1, 2, 3, 4):
        raise ValueError(f"chapter 07 has exercises 1, 2, 3 and 4, got {number!r}")
    if answer is None:
        return report(number, False, "no answer yet")
    if number == 1:
        expected = _paired("released", "zero-prediction")["mean"]
        ok, message = check_number(answer, expected, integer=False, abs_tol=0.01,
                                   correct=f"{expected:+.2f} points (mean of the paired differences)")
        if not ok and isinstance(answer, (int, float)) and abs(answer * 100 - expected) < 0.01:
            message = "not quite: in points, please (multiply the accuracy difference by 100)"
    elif number == 2:
        low, high = _paired("released", "all-static")["ci95"]
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

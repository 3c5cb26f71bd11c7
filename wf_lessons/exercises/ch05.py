"""Chapter 05 exercises: where attention's FLOPs take over, its share at ImageNet size, the patch size's effect on
FLOPs, a log-log slope written by hand, and a prediction of how DeiT's FLOPs grow with the resolution."""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Sequence

import torch

from wf_lessons import bench, complexity
from wf_lessons.exercises import check_callable, check_number, judge_prediction, report
from wf_lessons.models import build_model

__all__ = ["check_exercise", "check_prediction"]


@functools.cache
def _deit_t_attention_share() -> float:
    """The attention matmuls' share of DeiT-T's counted forward FLOPs at 224 px (meta device, math backend)."""
    torch.manual_seed(0)
    model = build_model("deit-t").eval().to("meta")
    total = bench.forward_flops(model, torch.zeros(1, 3, 224, 224, device="meta"))
    return 12 * complexity.softmax_attention_flops(n=196, d=64, heads=3) / total


@functools.cache
def _patch_flop_ratio() -> float:
    """``wf-cifar``'s counted forward FLOPs at patch 2 over those at patch 4, one 32×32 image (meta device)."""
    counts = []
    for patch in (2, 4):
        torch.manual_seed(0)
        model = build_model("wf-cifar", patch_size=patch).eval().to("meta")
        counts.append(bench.forward_flops(model, torch.zeros(1, 3, 32, 32, device="meta")))
    return counts[0] / counts[1]


@functools.cache
def _deit_t_growth() -> float:
    """DeiT-T's counted forward FLOPs at 1024 px over those at 224 px (meta device, math backend)."""
    torch.manual_seed(0)
    model = build_model("deit-t").eval().to("meta")
    counts = [bench.forward_flops(model, torch.zeros(1, 3, side, side, device="meta")) for side in (224, 1024)]
    return counts[1] / counts[0]


def _endpoint_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The slope between the first and the last point only (a usual slip: it ignores the points between)."""
    return math.log(ys[-1] / ys[0]) / math.log(xs[-1] / xs[0])


def _linear_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The least-squares slope of y against x, without logarithms (another slip)."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((a - mx) * (b - my) for a, b in zip(xs, ys)) / sum((a - mx) ** 2 for a in xs)


def _check_slope(answer: Callable[..., float]) -> tuple[bool, str]:
    rng = random.Random(5)
    cases = [([256, 1024, 4096], [0.01 * n for n in (256, 1024, 4096)])]  # exactly linear: slope 1
    for _ in range(4):
        power = rng.uniform(0.5, 2.5)
        xs = sorted(rng.sample(range(16, 20_000), 5))
        cases.append((xs, [3e-4 * x**power * math.exp(rng.gauss(0, 0.2)) for x in xs]))  # a noisy power law
    for xs, ys in cases:
        expected = complexity.loglog_slope(xs, ys)
        try:
            got = answer(list(xs), list(ys))
        except Exception as error:  # a learner's function may raise anything: say what
            return False, f"your function raised {type(error).__name__}: {error}"
        if isinstance(got, bool) or not isinstance(got, int | float):
            return False, f"expected a number (the slope), got {type(got).__name__}"
        if math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-9):
            continue
        if math.isclose(got, _endpoint_slope(xs, ys), rel_tol=1e-6):
            return False, ("not quite: that is the slope between the first and last points; fit all of them "
                           "(least squares)")
        if math.isclose(got, _linear_slope(xs, ys), rel_tol=1e-6):
            return False, "not quite: fit log y against log x, not y against x"
        if math.isclose(got, 1 / expected, rel_tol=1e-6):
            return False, "not quite: that is the slope of log x against log y; regress log y on log x"
        return False, f"not quite: for N = {xs} expected a slope of {expected:.4f}, got {got:.4f}"
    return True, "correct: the least-squares slope of log y on log x, the exponent p of y ∝ N^p"


def check_prediction(number: int, prediction: object) -> bool:
    """Compare a prediction written before section 1 with the measurement (exercise 5: ``"21"``, ``"80"`` or
    ``"440"``, about how much DeiT-T's counted FLOPs grow from 224 px to 1024 px)."""
    if number != 5:
        raise ValueError(f"chapter 05 has a prediction for exercise 5 only, got {number!r}")
    options = ("21", "80", "440")
    growth = _deit_t_growth()
    outcome = min(options, key=lambda o: abs(float(o) / growth - 1))
    return judge_prediction(number, prediction, outcome, options,
                            why="at 196 tokens attention is a small part of a ViT block (N < 6·d); its N² term takes "
                                "over only at larger N, so the growth lies between the linear and the quadratic")


def check_exercise(number: int, answer: object) -> bool:
    """Check an answer to an exercise of chapter 05; prints why, returns True when it is right.

    1. For DeiT-S (d = 384, patch 16) the smallest square image side in pixels, a multiple of 16, at which a
       block's attention matmuls cost at least as many FLOPs as its linear layers (an int).
    2. The fraction of DeiT-T's counted forward FLOPs at 224 px spent in the attention matmuls ``QKᵀ`` and ``AV``
       of its 12 blocks, to two decimals (a float within 0.01).
    3. The ratio of ``wf-cifar``'s counted forward FLOPs on one 32×32 image at patch 2 to those at patch 4, after
       predicting it in words (a float).
    4. A function ``loglog_slope(xs, ys)``: the least-squares slope of log y against log x, the exponent p of a
       power law y ∝ x^p, as the benchmark reports it (a callable, built; compared with
       ``wf_lessons.complexity.loglog_slope`` on noisy power laws).
    5. DeiT-T's counted forward FLOPs at 1024 px over those at 224 px (a float; predicted before section 1, see
       :func:`check_prediction`).
    """
    if number not in (1, 2, 3, 4, 5):
        raise ValueError(f"chapter 05 has exercises 1 to 5, got {number!r}")
    if answer is None:
        return report(number, False, "no answer yet")
    if number == 1:
        side = next(s for s in range(16, 100 * 16, 16) if (s // 16) ** 2 >= 6 * 384)  # N >= 6d
        ok, message = check_number(answer, side, integer=True, correct=f"{side} px, a {side // 16}² token grid")
    elif number == 2:
        expected = _deit_t_attention_share()
        ok, message = check_number(answer, expected, integer=False, abs_tol=0.01, correct=f"{expected:.3f}")
    elif number == 3:
        expected = _patch_flop_ratio()
        correct = f"{expected:.3f}: 4× fewer tokens, and every block is linear in N"
        ok, message = check_number(answer, expected, integer=False, rel_tol=1e-6, correct=correct)
    elif number == 4:
        ok, message = check_callable(answer, _check_slope, signature="loglog_slope(xs, ys)")
    else:
        expected = _deit_t_growth()
        ok, message = check_number(answer, expected, integer=False, rel_tol=1e-6,
                                   correct=f"{expected:.1f}: between the tokens' growth (linear layers) and its square "
                                           "(attention)")
    return report(number, ok, message)

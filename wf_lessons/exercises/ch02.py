"""Chapter 02 exercises: counting a dynamic linear layer, its rank, a deep predictor written by hand, and a
prediction of how its FLOPs grow with the token count."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from wf_lessons.dynamic_linear import DeepDynLinear, build_dynamic_linear, parameter_count
from wf_lessons.exercises import check_callable, check_number, judge_prediction, report

__all__ = ["check_exercise", "check_prediction"]


def _check_deep_weight(answer: Callable[[DeepDynLinear, Tensor, tuple[int, int]], Tensor]) -> tuple[bool, str]:
    gen = torch.Generator().manual_seed(0)
    layer = DeepDynLinear(16, 64)
    with torch.no_grad():  # a generator far from its tiny init, so that every detail of the formula shows
        for name, p in layer.named_parameters():
            if name not in ("w", "b"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    for hw in ((4, 4), (5, 7)):
        x = torch.randn(2, hw[0] * hw[1], 16, generator=gen)
        got = answer(layer, x, hw)
        if not isinstance(got, Tensor) or got.shape != (2, 16, 64):
            shape = tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__
            return False, f"expected a (B, C, D) = (2, 16, 64) tensor for hw={hw}, got {shape}"
        expected = layer.dynamic_weight(x, hw)
        if not torch.allclose(got, expected, atol=1e-5, rtol=1e-4):
            delta = (got - expected).abs().max().item()
            return False, f"for hw={hw} your Ŵ differs from layer.dynamic_weight by up to {delta:.3g}"
    return True, "correct: your deep predictor matches the package (normalised dynamic weight)"


def _flop_growth() -> float:
    """Counted FLOPs of a ``bilateral`` layer (C = 192, D = 768) on a 28×28 token grid over a 14×14 grid."""
    from wf_lessons import complexity

    torch.manual_seed(0)
    layer = build_dynamic_linear(192, 768, predictor="bilateral")
    counts = [complexity.count_flops(layer, torch.zeros(1, side * side, 192), (side, side)) for side in (14, 28)]
    return counts[1] / counts[0]


def check_prediction(number: int, prediction: object) -> bool:
    """Compare a prediction written before section 8 with the measurement (exercise 6: ``"2"``, ``"4"`` or
    ``"16"``, the factor by which ``bilateral``'s FLOPs grow when the token grid goes from 14×14 to 28×28)."""
    if number != 6:
        raise ValueError(f"chapter 02 has a prediction for exercise 6 only, got {number!r}")
    options = ("2", "4", "16")
    growth = _flop_growth()
    outcome = min(options, key=lambda o: abs(float(o) - growth))
    return judge_prediction(number, prediction, outcome, options,
                            why="X·W runs on all N tokens, the generator on N/4 pooled ones, and nothing is N×N")


def check_exercise(number: int, answer: object) -> bool:
    """Check an answer to an exercise of chapter 02; prints why, returns True when it is right.

    1. How many parameters has a ``bilateral`` layer at WFM-S width, C = 384 -> D = 1536, r = 4? (an int)
    2. Multiply-accumulates (MACs) per token of ``bilateral`` at D = 4C, r = 4 on an even grid, as a multiple
       of C² (a float; ``FlopCounterMode`` reports FLOPs = 2 × MACs).
    3. The largest possible rank of the bilateral dynamic part Ŵ on a 14×14 token grid with C = 192, D = 768
       (an int).
    4. A function ``deep_weight(layer, x, hw)`` returning the normalised dynamic weight Ŵ ``(B, C, D)`` of a
       ``DeepDynLinear`` layer, written from its parameters (a callable).
    5. The rank of Ŵ measured for a ``bilateral`` layer with ``rate=2`` (C = 192, D = 768, 14×14 grid, generator
       weights of order 1), after predicting which limit binds (an int).
    6. The factor by which ``bilateral``'s counted FLOPs (C = 192, D = 768) grow from a 14×14 to a 28×28 token grid
       (a float; predicted before section 8, see :func:`check_prediction`).
    """
    if number not in (1, 2, 3, 4, 5, 6):
        raise ValueError(f"chapter 02 has exercises 1, 2, 3, 4, 5 and 6, got {number!r}")
    if answer is None:
        return report(number, False, "no answer yet")
    if number == 4:
        ok, message = check_callable(answer, _check_deep_weight, signature="deep_weight(layer, x, hw)")
    elif number == 2:
        # MACs per token: N·C·D for X·W; per pooled token (N/4 of them): fused C·(c + d), W1 c·C, W2 d·D, KᵀV C·D
        c = 64
        macs = c * 4 * c + (c * (c // 4 + c) + (c // 4) * c + c * 4 * c + c * 4 * c) / 4
        expected = macs / c**2
        correct = f"{expected} C² MACs per token, against 4 C² for nn.Linear"
        ok, message = check_number(answer, expected, integer=False, abs_tol=1e-3, correct=correct)
    elif number == 6:
        expected = _flop_growth()
        ok, message = check_number(answer, expected, integer=False, rel_tol=1e-9,
                                   correct=f"{expected:.3f}: linear in N, as every predictor of the chapter")
    elif number == 5:
        # rank <= min(N' = 7·7, C/2 = 96, D/2 = 384): the number of pooled regions binds at r = 2
        expected = min(7 * 7, 192 // 2, 768 // 2)
        correct = f"{expected}: at r = 2 the {expected} pooled regions bind, not the bottleneck"
        ok, message = check_number(answer, expected, integer=True, correct=correct)
    else:
        # 3: Ŵ = Kᵀ V with K = f(U_k)·W1 and U_k of width C/r: rank <= min(N', C/r, D/r) = min(49, 48, 192)
        expected = parameter_count("bilateral", 384, 1536) if number == 1 else min(7 * 7, 192 // 4, 768 // 4)
        ok, message = check_number(answer, expected, integer=True, correct=f"{expected:,}")
    return report(number, ok, message)

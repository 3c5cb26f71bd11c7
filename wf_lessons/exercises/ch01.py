"""Chapter 01 exercises: the MLP reading of attention, its cost, a causal mask, attention built as an MLP, and a
prediction of how its FLOPs grow."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from wf_lessons import complexity
from wf_lessons.attention import attention_as_mlp, softmax_attention
from wf_lessons.exercises import check_callable, check_number, judge_prediction, report

__all__ = ["check_exercise", "check_prediction"]


def _check_causal_mask(answer: Callable[[int], Tensor]) -> tuple[bool, str]:
    gen = torch.Generator().manual_seed(0)
    for n in (1, 5, 12):
        mask = answer(n)
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.shape != (n, n):
            got = (
                f"{mask.dtype}, shape {tuple(mask.shape)}" if isinstance(mask, Tensor) else type(mask).__name__
            )
            return False, f"causal_mask({n}) should return a boolean ({n}, {n}) tensor, got {got}"
        q, k, v = torch.randn(3, 2, 3, n, 8, generator=gen)
        expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        if not torch.allclose(attention_as_mlp(q, k, v, mask=mask), expected, atol=1e-5):
            return False, f"with causal_mask({n}), attention_as_mlp differs from causal attention"
    return True, "correct: query i keeps hidden units 0..i, so each token only sees its past"


def _check_attention_mlp(answer: Callable[[Tensor, Tensor, Tensor], Tensor]) -> tuple[bool, str]:
    """``answer(q, k, v)`` for one head, ``(N, d)`` each, must equal PyTorch's attention; a wrong result is compared
    with the usual slips (no 1/√d, the softmax over the wrong axis, no softmax) to say which step differs."""
    gen = torch.Generator().manual_seed(4)
    for n, d in ((5, 8), (12, 16), (1, 4), (9, 3)):
        q, k, v = torch.randn(3, n, d, generator=gen)
        expected = F.scaled_dot_product_attention(q, k, v)
        got = answer(q, k, v)
        if not isinstance(got, Tensor) or got.shape != (n, d):
            shape = f"shape {tuple(got.shape)}" if isinstance(got, Tensor) else type(got).__name__
            return False, (f"with q, k, v of shape ({n}, {d}) attention_mlp should return ({n}, {d}), one output row "
                           f"per query, got {shape}")
        if torch.allclose(got.float(), expected, atol=1e-5):
            continue
        slips = {
            "divide the first layer's weight by √d: W1 = Kᵀ/√d": (q @ k.T).softmax(-1) @ v,
            "the softmax runs across the hidden units (one per token), the last axis of q·W1":
                (q @ k.T / math.sqrt(d)).softmax(0) @ v,
            "put the softmax between the two layers": q @ k.T / math.sqrt(d) @ v,
        }
        for advice, slip in slips.items():
            if torch.allclose(got.float(), slip, atol=1e-5):
                return False, f"not quite, for N = {n}, d = {d}: {advice}"
        delta = (got.float() - expected).abs().max().item()
        return False, f"not quite: for N = {n}, d = {d} your output differs from attention by up to {delta:.3g}"
    return True, "correct: softmax(q·Kᵀ/√d)·V, an MLP with one hidden unit per token"


def _flop_ratio() -> float:
    """Counted FLOPs of softmax attention at N = 1024 over N = 256 (one head, d = 64, meta tensors)."""

    def qkv(n: int) -> list[Tensor]:
        return [torch.empty(1, 1, n, 64, device="meta") for _ in range(3)]

    return complexity.count_flops(softmax_attention, *qkv(1024)) / complexity.count_flops(softmax_attention, *qkv(256))


def check_prediction(number: int, prediction: object) -> bool:
    """Compare a prediction written before section 4 with the measurement (exercise 5: ``"4"``, ``"8"`` or
    ``"16"``, the factor by which softmax attention's FLOPs grow when N grows ×4)."""
    if number != 5:
        raise ValueError(f"chapter 01 has a prediction for exercise 5 only, got {number!r}")
    options = ("4", "8", "16")
    outcome = min(options, key=lambda o: abs(float(o) - _flop_ratio()))
    return judge_prediction(number, prediction, outcome, options,
                            why="each query row passes through an MLP with N hidden units, so N rows cost N·N")


def check_exercise(number: int, answer: object) -> bool:
    """Check an answer to an exercise of chapter 01; prints why, returns True when it is right.

    1. How many numbers does G(X) predict for one head with N = 196 tokens and head size d = d_v = 64
       (W1 and W2 together)? (an int)
    2. In a ViT block of width C = 192 (MLP ratio 4), at which token count N do the attention matmuls cost as
       many FLOPs as all the block's linear layers (q, k, v, output projection, the two FFN layers)? (an int)
    3. A function ``causal_mask(n)`` returning the boolean (n, n) mask (True = keep) that makes
       ``attention_as_mlp`` causal (token i only uses tokens 0..i). (a callable)
    4. A function ``attention_mlp(q, k, v)``: one head ``(N, d)`` read as an MLP with predicted weights
       ``W1 = Kᵀ/√d`` and ``W2 = V``; returns ``(N, d)``. (a callable, built)
    5. The factor by which the counted FLOPs of ``softmax_attention`` grow from N = 256 to N = 1024, d = 64.
       (a number; predicted before section 4, see :func:`check_prediction`)
    """
    if number not in (1, 2, 3, 4, 5):
        raise ValueError(f"chapter 01 has exercises 1, 2, 3, 4 and 5, got {number!r}")
    if answer is None:
        return report(number, False, "no answer yet")
    if number == 3:
        ok, message = check_callable(answer, _check_causal_mask, signature="causal_mask(n)")
    elif number == 4:
        ok, message = check_callable(answer, _check_attention_mlp, signature="attention_mlp(q, k, v)")
    elif number == 5:
        expected = _flop_ratio()
        ok, message = check_number(answer, expected, integer=False, rel_tol=1e-9,
                                   correct=f"{expected:g}: 4× the tokens, 16× the work")
    else:
        if number == 1:
            n, d = 196, 64
            expected = 2 * n * d  # W1: d×N, W2: N×d
        else:
            c = 192
            # attention matmuls: 4·N²·C FLOPs; linear layers: (4C² + 8C²)·N MACs = 24·C²·N FLOPs
            expected = next(
                n
                for n in range(1, 100 * c)
                if complexity.softmax_attention_flops(n, c) >= 12 * complexity.linear_flops(n, c, c)
            )
        ok, message = check_number(answer, expected, integer=True)
    return report(number, ok, message)

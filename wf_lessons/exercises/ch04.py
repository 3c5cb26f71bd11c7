"""Chapter 04 exercises: parameters of a WeightFormer, its dynamic blocks, a dynamic block assembled from its
predicted weights, and a prediction of what a larger input resolution does to the parameter count (WFM-B against
WFM-S). The FLOP and scaling exercises are chapter 05's (``wf_lessons.exercises.ch05``)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from wf_lessons.exercises import check_callable, check_number, judge_prediction, report, wrong_type
from wf_lessons.models import WeightFormerBlock, build_model, count_parameters, reference_dynamic_blocks

__all__ = ["check_exercise", "check_prediction"]


@functools.cache
def _wfm_b_minus_s() -> int:
    """WFM-B's parameters minus WFM-S's (WFM-B is WFM-S at 448 px instead of 224)."""
    return count_parameters(build_model("wfm-b")) - count_parameters(build_model("wfm-s"))


def _assembled(block: WeightFormerBlock, x: Tensor, hw: tuple[int, int], *, overwrite: bool = True,
               conv_bias: bool = True, linear_bias: bool = True, predicted: bool = True) -> Tensor:
    """A dynamic block's forward from its predicted weights; the switches make the usual slips, to name them."""
    stream = block.norm1(x)
    b, n, c = x.shape
    m = stream.transpose(1, 2).reshape(b, c, *hw)  # (B, C, H, W)
    kernels = block.dwc.predicted_kernels(m).reshape(b * c, 1, 3, 3)
    bias = block.dwc.b.repeat(b) if conv_bias else None
    y = F.conv2d(m.reshape(1, b * c, *hw), kernels, bias, padding=1, groups=b * c).reshape(b, c, *hw)
    x = (stream if overwrite else x) + y.flatten(2).transpose(1, 2)
    h = block.norm2(x)
    weight = block.linear1.predicted_weight(h, hw) if predicted else block.linear1.static_weight()
    h = h @ weight + (block.linear1.b if linear_bias else 0)
    return x + block.linear2(F.gelu(h))


def _check_dynamic_block(answer: Callable[..., Tensor]) -> tuple[bool, str]:
    gen = torch.Generator().manual_seed(6)
    for c, hw in ((8, (4, 6)), (16, (5, 5)), (12, (2, 2))):
        torch.manual_seed(c)
        block = WeightFormerBlock(c, dynamic=True).eval()
        with torch.no_grad():  # weights far from their initialisation, so that every step and quirk shows
            for p in block.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        x = torch.randn(2, hw[0] * hw[1], c, generator=gen) * 2 + 1  # scale and offset: LN1 changes the stream
        with torch.no_grad():
            expected = block(x, hw)
            got = answer(block, x, hw)
        if not isinstance(got, Tensor) or got.shape != expected.shape:
            shape = tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__
            return False, (f"for x of shape {tuple(x.shape)} expected tokens (B, N, C) = {tuple(expected.shape)}, "
                           f"got {shape}")
        if torch.allclose(got, expected, atol=1e-4, rtol=1e-4):
            continue
        slips = {
            "quirk 1: the dynamic block replaces the stream, x = LN1(x), before adding the convolution's output":
                {"overwrite": False},
            "add the convolution's bias block.dwc.b (one per channel, repeated for every image)": {"conv_bias": False},
            "add the linear layer's bias block.linear1.b": {"linear_bias": False},
            "multiply by the predicted weight W0 + Ŵ (block.linear1.predicted_weight), not by W0 alone":
                {"predicted": False},
        }
        with torch.no_grad():
            for advice, switches in slips.items():
                if torch.allclose(got, _assembled(block, x, hw, **switches), atol=1e-4, rtol=1e-4):
                    return False, f"not quite: {advice}"
        return False, (f"not quite: for C = {c} on a {hw[0]}×{hw[1]} grid your output differs from the block's by up "
                       f"to {(got - expected).abs().max():.3g}")
    return True, "correct: a dynamic block is the two predicted weights applied in turn, around an overwritten stream"


def check_prediction(number: int, prediction: object) -> bool:
    """Compare a prediction written before section 4 with the count (exercise 4: ``"same"``, ``"a few percent"`` or
    ``"4x"``, how many more parameters WFM-B, the 448-px model, has than WFM-S, the same network at 224 px)."""
    if number != 4:
        raise ValueError(f"chapter 04 has a prediction for exercise 4 only, got {number!r}")
    options = ("same", "a few percent", "4x")
    ratio = (count_parameters(build_model("wfm-s")) + _wfm_b_minus_s()) / count_parameters(build_model("wfm-s"))
    outcome = "same" if ratio == 1 else "a few percent" if ratio < 1.5 else "4x"
    return judge_prediction(number, prediction, outcome, options,
                            why="no parameter depends on the number of tokens: no position embedding (quirk 4), "
                                "and every weight, static or predicted, has a size set by the width C")


def check_exercise(number: int, answer: object) -> bool:
    """Check an answer to an exercise of chapter 04; prints why, returns True when it is right.

    1. The parameter count of a reference-pattern WeightFormer for CIFAR-10 (``wf-cifar``: patch 2, 10 classes)
       of width 256 and depth 10 (an int).
    2. The indices of the dynamic blocks of a reference-pattern WeightFormer of depth 20 (a tuple of ints).
    3. A function ``dynamic_block(block, x, hw)``: a dynamic block's forward in evaluation mode, assembled from the
       kernels and the weight its two layers predict (a callable, built).
    4. WFM-B's parameter count minus WFM-S's (an int; predicted before section 4, see :func:`check_prediction`).
    """
    if number not in (1, 2, 3, 4):
        raise ValueError(f"chapter 04 has exercises 1 to 4, got {number!r}")
    if answer is None:
        return report(number, False, "no answer yet")
    if number == 1:
        expected = count_parameters(build_model("wf-cifar", embed_dim=256, depth=10))
        ok, message = check_number(answer, expected, integer=True, answer_format=",", correct=f"{expected:,}")
    elif number == 2:
        expected = reference_dynamic_blocks(20)
        if not isinstance(answer, tuple | list) or not all(isinstance(i, int) for i in answer):
            ok, message = False, wrong_type("a tuple of ints", answer)
        elif tuple(answer) == expected:
            ok, message = True, f"correct: {expected}"
        else:
            ok, message = False, "not quite: the reference makes block i dynamic when (i + 2) % 3 == 0"
    elif number == 3:
        ok, message = check_callable(answer, _check_dynamic_block, signature="dynamic_block(block, x, hw)")
    else:
        expected = _wfm_b_minus_s()
        ok, message = check_number(answer, expected, integer=True, answer_format=",",
                                   correct=f"{expected:,}: the same network; only the token grid is larger")
    return report(number, ok, message)

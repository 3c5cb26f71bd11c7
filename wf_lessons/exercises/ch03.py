"""Chapter 03 exercises: counting a dynamic depthwise convolution, pooling bins, a per-image conv by hand."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wf_lessons.dynamic_dwconv import AdaptiveDWConv, flop_counts, per_sample_depthwise_conv
from wf_lessons.exercises import check_number, report, wrong_type

__all__ = ["check_exercise"]


def _verdict(ok: bool, answer: object, hint: str) -> tuple[bool, str]:
    return ok, "correct" if ok else f"not quite: {answer!r} is not it ({hint})"


def _exercise_1(answer: object) -> tuple[bool, str]:
    expected = sum(p.numel() for p in AdaptiveDWConv(384).parameters())
    return _verdict(answer == expected, answer, "two C x C 1x1 convs, one of them with a bias, then K0 and b")


def _exercise_2(answer: object) -> tuple[bool, str]:
    jacobian = torch.autograd.functional.jacobian(lambda t: F.adaptive_avg_pool2d(t, 3), torch.zeros(1, 1, 32, 32))
    cells_per_pixel = (jacobian.reshape(9, 32, 32) != 0).sum(dim=0)  # (1, 1, 3, 3, 1, 1, 32, 32) -> (9, 32, 32)
    expected = int((cells_per_pixel > 1).sum())
    return _verdict(answer == expected, answer, "which rows and which columns belong to two bins?")


def _exercise_3(conv_fn: object) -> tuple[bool, str]:
    if not callable(conv_fn):
        return False, f"not quite: {wrong_type('a function conv_fn(x, kernels, bias)', conv_fn)}"
    gen = torch.Generator().manual_seed(3)
    for shape in [(1, 1, 1, 1), (2, 3, 5, 7), (3, 4, 16, 16)]:
        x = torch.randn(shape, generator=gen)
        kernels, bias = torch.randn(*shape[:2], 3, 3, generator=gen), torch.randn(shape[1], generator=gen)
        expected = per_sample_depthwise_conv(x, kernels, bias)
        got = conv_fn(x, kernels, bias)
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            return False, f"not quite: for x of shape {shape} expected a tensor of shape {tuple(expected.shape)}"
        if not torch.allclose(got, expected, atol=1e-5, rtol=1e-5):
            return False, f"not quite: for x of shape {shape} max |Δ| = {(got - expected).abs().max():.2e}"
    return True, "correct"


def _exercise_4(answer: object) -> tuple[bool, str]:
    expected = flop_counts(AdaptiveDWConv(192), torch.zeros(1, 192, 14, 14))["prediction"]
    return _verdict(answer == expected, answer, "a 1x1 conv is a C x C matmul at each of the 9 pooled cells")


def _exercise_5(answer: object) -> tuple[bool, str]:
    small, large = (flop_counts(AdaptiveDWConv(192), torch.zeros(1, 192, s, s))["total"] for s in (16, 32))
    ok, message = check_number(answer, large / small, integer=False, rel_tol=1e-6)
    if ok:
        message = f"correct: {large / small:.3f}: the convolution grows 4×, the prediction not at all"
    return ok, message


_EXERCISES = {1: _exercise_1, 2: _exercise_2, 3: _exercise_3, 4: _exercise_4, 5: _exercise_5}


def check_exercise(number: int, answer: object) -> bool:
    """Check an answer to an exercise of chapter 03; prints why, returns True when it is right.

    1. The parameter count of ``adaptive`` at C = 384 (an int).
    2. The number of pixels of a 32 x 32 map that ``AdaptiveAvgPool2d(3)`` averages into more than one cell (an int).
    3. A function ``conv_fn(x, kernels, bias)``: the per-image depthwise conv without ``conv2d`` or ``unfold``.
    4. The FLOPs ``FlopCounterMode`` counts for the ``adaptive`` prediction at C = 192, one image (an int).
    5. The ratio of the ``adaptive`` layer's total FLOPs at C = 192 on a 32×32 map to those on a 16×16 map, after
       predicting it in words (a float).
    """
    if number not in _EXERCISES:
        raise ValueError(f"chapter 03 has exercises 1, 2, 3, 4 and 5, got {number!r}")
    if answer is None:
        return report(number, False, "no answer yet")
    return report(number, *_EXERCISES[number](answer))

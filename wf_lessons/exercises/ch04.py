"""Chapter 04 exercises: parameters of a WeightFormer, where attention's FLOPs take over, the dynamic blocks."""

from __future__ import annotations

import functools

import torch

from wf_lessons import bench, complexity
from wf_lessons.exercises import check_number, report, wrong_type
from wf_lessons.models import build_model, count_parameters, reference_dynamic_blocks

__all__ = ["check_exercise"]


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


def check_exercise(number: int, answer: object) -> bool:
    """Check an answer to an exercise of chapter 04; prints why, returns True when it is right.

    1. The parameter count of a reference-pattern WeightFormer for CIFAR-10 (``wf-cifar``: patch 2, 10 classes)
       of width 256 and depth 10 (an int).
    2. For DeiT-S (d = 384, patch 16) the smallest square image side in pixels, a multiple of 16, at which a
       block's attention matmuls cost at least as many FLOPs as its linear layers (an int).
    3. The indices of the dynamic blocks of a reference-pattern WeightFormer of depth 20 (a tuple of ints).
    4. The fraction of DeiT-T's counted forward FLOPs at 224 px spent in the attention matmuls ``QKᵀ`` and ``AV``
       of its 12 blocks, to two decimals (a float within 0.01).
    5. The ratio of ``wf-cifar``'s counted forward FLOPs on one 32×32 image at patch 2 to those at patch 4, after
       predicting it in words (a float).
    """
    if number not in (1, 2, 3, 4, 5):
        raise ValueError(f"chapter 04 has exercises 1, 2, 3, 4 and 5, got {number!r}")
    if answer is None:
        return report(number, False, "no answer yet")
    if number == 1:
        expected = count_parameters(build_model("wf-cifar", embed_dim=256, depth=10))
        ok, message = check_number(answer, expected, integer=True, answer_format=",", correct=f"{expected:,}")
    elif number == 2:
        side = next(s for s in range(16, 100 * 16, 16) if (s // 16) ** 2 >= 6 * 384)  # N >= 6d
        ok, message = check_number(answer, side, integer=True, correct=f"{side} px, a {side // 16}² token grid")
    elif number == 3:
        expected = reference_dynamic_blocks(20)
        if not isinstance(answer, tuple | list) or not all(isinstance(i, int) for i in answer):
            ok, message = False, wrong_type("a tuple of ints", answer)
        elif tuple(answer) == expected:
            ok, message = True, f"correct: {expected}"
        else:
            ok, message = False, "not quite: the reference makes block i dynamic when (i + 2) % 3 == 0"
    elif number == 5:
        expected = _patch_flop_ratio()
        correct = f"{expected:.3f}: 4× fewer tokens, and every block is linear in N"
        ok, message = check_number(answer, expected, integer=False, rel_tol=1e-6, correct=correct)
    else:
        expected = _deit_t_attention_share()
        ok, message = check_number(answer, expected, integer=False, abs_tol=0.01, correct=f"{expected:.3f}")
    return report(number, ok, message)

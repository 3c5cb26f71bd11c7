"""Chapter 01 exercises: the MLP reading of attention, its cost, a causal mask."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from wf_lessons import complexity
from wf_lessons.attention import attention_as_mlp
from wf_lessons.exercises import check_callable, check_number, report

__all__ = ["check_exercise"]


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


def check_exercise(number: int, answer: object) -> bool:
    """Check an answer to an exercise of chapter 01; prints why, returns True when it is right.

    1. How many numbers does G(X) predict for one head with N = 196 tokens and head size d = d_v = 64
       (W1 and W2 together)? (an int)
    2. In a ViT block of width C = 192 (MLP ratio 4), at which token count N do the attention matmuls cost as
       many FLOPs as all the block's linear layers (q, k, v, output projection, the two FFN layers)? (an int)
    3. A function ``causal_mask(n)`` returning the boolean (n, n) mask (True = keep) that makes
       ``attention_as_mlp`` causal (token i only uses tokens 0..i). (a callable)
    """
    if number not in (1, 2, 3):
        raise ValueError(f"chapter 01 has exercises 1, 2 and 3, got {number!r}")
    if answer is None:
        return report(number, False, "no answer yet")
    if number == 3:
        ok, message = check_callable(answer, _check_causal_mask, signature="causal_mask(n)")
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

"""What things cost: counted FLOPs, the analytic formulas they should match, timing, and log-log slopes.

FLOP convention: one multiply-accumulate (MAC) counts as **2 FLOPs**, as ``torch.utils.flop_counter`` does.
Only matrix products (and convolutions) are counted: softmax, element-wise activations, scaling, sums and biases
are not, both here and in ``FlopCounterMode``, so the analytic formulas below match counted FLOPs exactly.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = [
    "count_flops",
    "linear_attention_flops",
    "linear_flops",
    "loglog_slope",
    "mlp_flops",
    "softmax_attention_flops",
    "time_fn",
]


def count_flops(fn_or_module: Callable[..., Any], *inputs: Any, **kwargs: Any) -> int:
    """Total FLOPs (2 per MAC) of one call ``fn_or_module(*inputs, **kwargs)``, counted by FlopCounterMode.

    Runs the call once, without gradients.
    """
    if not callable(fn_or_module):
        raise TypeError(f"expected a function or nn.Module, got {type(fn_or_module).__name__}")
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        fn_or_module(*inputs, **kwargs)
    return int(counter.get_total_flops())


def _positive_ints(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def softmax_attention_flops(
    n: int, d: int, heads: int = 1, batch: int = 1, n_keys: int | None = None, d_v: int | None = None
) -> int:
    """FLOPs of softmax attention's two matmuls, ``Q Kᵀ`` and ``A V``: ``2·B·h·N·M·(d + d_v)``.

    ``n`` queries N, ``n_keys`` keys M (default N), head size ``d``, value size ``d_v`` (default d). With
    M = N and d_v = d this is ``4·B·h·N²·d``: quadratic in N.
    """
    n_keys = n if n_keys is None else n_keys
    d_v = d if d_v is None else d_v
    _positive_ints(n=n, d=d, heads=heads, batch=batch, n_keys=n_keys, d_v=d_v)
    return 2 * batch * heads * n * n_keys * (d + d_v)


def linear_attention_flops(
    n: int,
    d: int,
    heads: int = 1,
    batch: int = 1,
    n_keys: int | None = None,
    d_v: int | None = None,
    normalize: bool = True,
) -> int:
    """FLOPs of linear attention's matmuls: ``W = φ(K)ᵀV`` (2·M·d·d_v), ``φ(Q)W`` (2·N·d·d_v), and with
    ``normalize`` the denominators ``φ(Q)z`` (2·N·d); times B·h. Linear in N (the feature map is not counted).
    """
    n_keys = n if n_keys is None else n_keys
    d_v = d if d_v is None else d_v
    _positive_ints(n=n, d=d, heads=heads, batch=batch, n_keys=n_keys, d_v=d_v)
    per_head = 2 * n_keys * d * d_v + 2 * n * d * d_v + (2 * n * d if normalize else 0)
    return batch * heads * per_head


def linear_flops(n: int, in_features: int, out_features: int, batch: int = 1) -> int:
    """FLOPs of an ``nn.Linear(in_features, out_features)`` applied to B×N tokens: ``2·B·N·in·out``."""
    _positive_ints(n=n, in_features=in_features, out_features=out_features, batch=batch)
    return 2 * batch * n * in_features * out_features


def mlp_flops(n: int, dim: int, hidden: int, batch: int = 1, out_dim: int | None = None) -> int:
    """FLOPs of a two-layer MLP ``dim -> hidden -> out_dim`` (default dim) on B×N tokens."""
    out_dim = dim if out_dim is None else out_dim
    return linear_flops(n, dim, hidden, batch) + linear_flops(n, hidden, out_dim, batch)


def _synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def time_fn(
    fn: Callable[..., Any],
    *args: Any,
    repeats: int = 5,
    warmup: int = 1,
    threads: int | None = None,
    best: bool = False,
    **kwargs: Any,
) -> float:
    """Median wall time in seconds of ``fn(*args, **kwargs)`` over ``repeats`` calls, after ``warmup`` calls.

    ``best=True`` returns the fastest call instead of the median: the usual choice for benchmarks on a machine that
    other processes share, since interference only ever adds time.

    Waits for queued CUDA work before and after each call when CUDA is in use, so GPU timings are real.
    ``threads``: run with this many intra-op CPU threads (``torch.set_num_threads``), restored afterwards; one
    thread gives steadier CPU timings on a machine that is busy with other work.
    """
    if not callable(fn):
        raise TypeError(f"expected a callable, got {type(fn).__name__}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative int, got {warmup!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        for _ in range(warmup):
            fn(*args, **kwargs)
        times = []
        for _ in range(repeats):
            _synchronize()
            start = time.perf_counter()
            fn(*args, **kwargs)
            _synchronize()
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous_threads)
    return min(times) if best else statistics.median(times)


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log y against log x: the exponent p of a power law y ∝ x^p.

    ``xs`` and ``ys``: equally long sequences (at least two points, not all x equal) of positive numbers.
    """
    xs, ys = list(xs), list(ys)
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError(f"need two equally long sequences of at least 2 points, got {len(xs)} and {len(ys)}")
    if any(not (v > 0) for v in xs + ys):
        raise ValueError("log-log slope needs positive numbers, got a value <= 0 (or NaN)")
    lx, ly = [math.log(v) for v in xs], [math.log(v) for v in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    sxx = sum((a - mx) ** 2 for a in lx)
    if sxx == 0:
        raise ValueError("log-log slope needs at least two different x values")
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sxx

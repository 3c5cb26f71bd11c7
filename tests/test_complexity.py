"""Counted FLOPs against the analytic formulas, the scaling laws, the timing helper and the log-log slope."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from wf_lessons import attention, complexity


def _meta_qkv(batch: int, heads: int, n: int, d: int, d_v: int | None = None):
    """Shape-only tensors: FlopCounterMode counts them without doing the arithmetic, so large N is free."""
    d_v = d if d_v is None else d_v
    q = torch.empty(batch, heads, n, d, device="meta")
    return q, torch.empty_like(q), torch.empty(batch, heads, n, d_v, device="meta")


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 300), st.integers(1, 64), st.integers(1, 64))
def test_counted_flops_match_the_formulas(batch, heads, n, d, d_v):
    q, k, v = _meta_qkv(batch, heads, n, d, d_v)
    for fn in (attention.softmax_attention, attention.attention_as_mlp):
        assert complexity.count_flops(fn, q, k, v) == complexity.softmax_attention_flops(n, d, heads, batch, d_v=d_v)
    for normalize in (True, False):
        counted = complexity.count_flops(attention.linear_attention, q, k, v, normalize=normalize)
        assert counted == complexity.linear_attention_flops(n, d, heads, batch, d_v=d_v, normalize=normalize)


def test_softmax_attention_flops_grow_16x_when_tokens_grow_4x():
    small = complexity.count_flops(attention.softmax_attention, *_meta_qkv(2, 4, 1024, 64))
    large = complexity.count_flops(attention.softmax_attention, *_meta_qkv(2, 4, 4096, 64))
    assert large / small == pytest.approx(16, rel=0.05)


def test_linear_attention_flops_grow_4x_when_tokens_grow_4x():
    small = complexity.count_flops(attention.linear_attention, *_meta_qkv(2, 4, 1024, 64))
    large = complexity.count_flops(attention.linear_attention, *_meta_qkv(2, 4, 4096, 64))
    assert large / small == pytest.approx(4, rel=0.05)


def test_linear_and_mlp_formulas_match_counted_modules():
    x = torch.randn(3, 10, 8)
    assert complexity.count_flops(nn.Linear(8, 16), x) == complexity.linear_flops(10, 8, 16, batch=3)
    mlp = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 8))
    assert complexity.count_flops(mlp, x) == complexity.mlp_flops(10, 8, 32, batch=3) == 2 * 2 * 3 * 10 * 8 * 32
    assert complexity.mlp_flops(10, 8, 32, out_dim=4) == 2 * 10 * (8 * 32 + 32 * 4)


def test_formulas_reject_bad_sizes():
    with pytest.raises(ValueError, match="n must be a positive int"):
        complexity.softmax_attention_flops(0, 4)
    with pytest.raises(ValueError, match="d must be a positive int"):
        complexity.linear_attention_flops(4, 2.5)
    with pytest.raises(TypeError, match="function or nn.Module"):
        complexity.count_flops(3)


def test_time_fn_returns_the_median_after_warmup(monkeypatch):
    calls = []
    clock = iter([0.0, 1.0, 10.0, 15.0, 20.0, 22.0])  # three timed calls lasting 1, 5 and 2 seconds
    monkeypatch.setattr(complexity.time, "perf_counter", lambda: next(clock))
    seconds = complexity.time_fn(lambda x, scale: calls.append(x * scale), 2, scale=3, repeats=3, warmup=2)
    assert seconds == 2.0
    assert calls == [6] * 5  # 2 warm-up calls (not timed) + 3 timed calls, with args and kwargs passed on


def test_time_fn_measures_real_time():
    x = torch.randn(64, 64)
    seconds = complexity.time_fn(torch.mm, x, x, repeats=3, warmup=1)
    assert isinstance(seconds, float) and 0 < seconds < 1
    with pytest.raises(ValueError, match="repeats"):
        complexity.time_fn(torch.mm, x, x, repeats=0)
    with pytest.raises(ValueError, match="warmup"):
        complexity.time_fn(torch.mm, x, x, warmup=-1)


def test_time_fn_runs_with_the_requested_threads_and_restores_them():
    before = torch.get_num_threads()
    seen = []
    complexity.time_fn(lambda: seen.append(torch.get_num_threads()), repeats=2, warmup=1, threads=1)
    assert seen == [1, 1, 1]
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        complexity.time_fn(torch.mm, x := torch.ones(2, 2), x, threads=0)
    with pytest.raises(ZeroDivisionError):
        complexity.time_fn(lambda: 1 / 0, threads=1)
    assert torch.get_num_threads() == before  # restored after an error too


@settings(max_examples=50, deadline=None)
@given(
    st.floats(-3, 3, allow_nan=False),
    st.floats(1e-3, 1e3),
    st.lists(st.floats(1e-2, 1e4), min_size=2, max_size=8, unique=True).filter(
        lambda xs: max(xs) / min(xs) > 1.01
    ),
)
def test_loglog_slope_recovers_a_power_law(power, scale, xs):
    ys = [scale * x**power for x in xs]
    assert math.isclose(complexity.loglog_slope(xs, ys), power, abs_tol=1e-6)


def test_loglog_slope_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        complexity.loglog_slope([1.0], [1.0])
    with pytest.raises(ValueError, match="equally long"):
        complexity.loglog_slope([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="positive"):
        complexity.loglog_slope([1.0, 2.0], [0.0, 2.0])
    with pytest.raises(ValueError, match="different x"):
        complexity.loglog_slope([2.0, 2.0], [1.0, 3.0])


def test_time_fn_best_ignores_slow_outliers():
    import time

    delays = iter([0.0, 0.05, 0.001, 0.05])  # warm-up, then a fast call between two slow ones

    def fn():
        time.sleep(next(delays))

    assert complexity.time_fn(fn, repeats=3, warmup=1, best=True) < 0.04
    delays = iter([0.0, 0.05, 0.001, 0.05])
    assert complexity.time_fn(fn, repeats=3, warmup=1) >= 0.05

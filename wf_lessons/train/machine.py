"""Machine settings of a run: bf16 autocast and CPU threads, given or chosen by a short measurement.

CPUs differ: bf16 autocast is faster than fp32 on some (AMX; AVX512-BF16 on some AMD EPYC) and slower on others
(AVX512-BF16 Xeons without AMX); two threads of small ops can be slower than one on a busy machine. So the CPU presets
say ``"auto"`` and :func:`choose_settings` times a few training steps of the run's own model with each candidate,
keeping the fastest. The measurement is recorded in the run log.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from wf_lessons.models import build_model
from wf_lessons.train.steps import build_optimizer, train_step

AUTO = "auto"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX). Native does not mean faster: measure."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def cpu_count() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (``0``: leave torch's default), then restore."""
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def measure_step_s(model_name: str, overrides: dict[str, Any], batch: int, side: int, bf16: bool, n_threads: int,
                   steps: int = 3) -> float:
    """Seconds per training step (after one warm-up step) of a fresh model on random data, on the CPU.

    The global random state is saved and restored, so measuring does not change the run that follows.
    """
    with torch.random.fork_rng(devices=[]), threads(n_threads):
        model = build_model(model_name, **overrides)
        optimizer = build_optimizer(model, 1e-4, 0.0, fused=False)
        images, labels = torch.randn(batch, 3, side, side), torch.randint(0, 2, (batch,))
        train_step(model, optimizer, images, labels, bf16=bf16)
        start = time.perf_counter()
        for _ in range(steps):
            train_step(model, optimizer, images, labels, bf16=bf16)
        return (time.perf_counter() - start) / steps


def choose_settings(model_name: str, overrides: dict[str, Any], batch: int, side: int, bf16: bool | str,
                    n_threads: int | str) -> dict[str, Any]:
    """The fastest ``{"bf16", "threads"}`` among the candidates that ``"auto"`` leaves open, with the timings.

    ``bf16="auto"`` tries fp32 and bf16; ``n_threads="auto"`` tries 1 and all cores. Fixed values are kept.
    """
    bf16_options = [False, True] if bf16 == AUTO else [bool(bf16)]
    thread_options = sorted({1, cpu_count()}) if n_threads == AUTO else [int(n_threads)]
    timings = {(b, t): measure_step_s(model_name, overrides, batch, side, b, t)
               for b in bf16_options for t in thread_options}
    best_bf16, best_threads = min(timings, key=timings.get)
    return {"bf16": best_bf16, "threads": best_threads,
            "measured_step_s": {f"{'bf16' if b else 'fp32'}, {t} thread{'s' * (t > 1)}": round(s, 4)
                                for (b, t), s in timings.items()}}

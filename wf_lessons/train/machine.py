"""Machine settings of a run: its precision (float32, or bf16 or fp16 autocast) and CPU threads, given, chosen
by what the device can do, or chosen by a short measurement.

GPUs differ (:func:`choose_precision`): Ampere and newer (A100, RTX 30xx/40xx, L4, H100) have bfloat16 tensor cores,
and bf16 autocast needs no loss scaling because bfloat16 keeps float32's range; older GPUs (T4, V100, RTX 20xx)
have float16 tensor cores only, where the standard is float16 autocast with a gradient scaler
(:func:`make_scaler`), which multiplies the loss so that small gradients do not underflow and skips a step whose
gradients overflowed. The choice and its reason are printed and recorded in the run log.

CPUs differ: bf16 autocast is faster than fp32 on some (AMX; AVX512-BF16 on some AMD EPYC) and slower on others
(AVX512-BF16 Xeons without AMX); two threads of small ops can be slower than one on a busy machine. So the CPU presets
say ``"auto"`` and :func:`choose_settings` times a few training steps of the run's own model with each candidate,
keeping the fastest. The measurement is recorded in the run log.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from wf_lessons.models import build_model
from wf_lessons.train.steps import AUTOCAST_DTYPES, build_optimizer, train_step

__all__ = [
    "AUTO",
    "cpu_has_native_bf16",
    "cpu_count",
    "threads",
    "measure_step_s",
    "choose_settings",
    "PRECISIONS",
    "BF16_CAPABILITY",
    "cuda_capability",
    "cuda_name",
    "bf16_word",
    "choose_precision",
    "make_scaler",
]

#: A ``precision``, ``threads`` (or old ``bf16``) setting chosen at start: measured on a CPU (:func:`choose_settings`),
#: the device's own choice on a GPU (:func:`choose_precision`).
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


# ------------------------------------------------------------------------------------------------ precision
#: The precisions a run may ask for (``--precision``): ``auto`` is the device's own choice (:func:`choose_precision`).
PRECISIONS = (AUTO, *AUTOCAST_DTYPES)  # auto, bf16, fp16, fp32
#: The first CUDA compute capability with bfloat16 tensor cores: Ampere (A100 8.0, RTX 30xx and A10 8.6), then
#: Ada (8.9) and Hopper (H100, H200: 9.0). Before it, Turing (T4, RTX 20xx: 7.5) and Volta (V100: 7.0) have float16
#: tensor cores only: bfloat16 runs there without them (emulated, slow), float16 with a gradient scaler is standard.
BF16_CAPABILITY = (8, 0)


def cuda_capability(device: torch.device | str | None = None) -> tuple[int, int]:
    """The CUDA compute capability ``(major, minor)`` of ``device`` (tests patch ``torch.cuda.get_device_capability``
    to stand for a T4, ``(7, 5)``, or an H100, ``(9, 0)``)."""
    major, minor = torch.cuda.get_device_capability(device)
    return int(major), int(minor)


def cuda_name(device: torch.device | str | None = None) -> str:
    """The GPU's name as the driver reports it (``"Tesla T4"``, ``"NVIDIA H100 80GB HBM3"``)."""
    return str(torch.cuda.get_device_name(device))


def bf16_word(precision: str) -> bool:
    """The old ``bf16`` flag that a precision corresponds to (``True`` for ``bf16`` only), as run logs record it."""
    return precision == "bf16"


def choose_precision(device: torch.device, requested: str | None) -> dict[str, str]:
    """The precision of a run on ``device``, and why: ``{"precision": "bf16"|"fp16"|"fp32", "reason": ...}``.

    ``requested`` ``"bf16"``, ``"fp16"`` or ``"fp32"`` is kept (with a warning where the device has no native
    support for it). ``None`` or ``"auto"`` on a CUDA GPU: ``bf16`` autocast where the GPU has bfloat16 tensor cores
    (compute capability >= 8.0: A100, RTX 30xx/40xx, L4, H100), else ``fp16`` autocast with a gradient scaler (T4,
    V100, RTX 20xx); on a CPU ``fp32`` (``"auto"`` on a CPU is measured instead: :func:`choose_settings`).
    """
    if requested not in (None, *PRECISIONS):
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} (or None: the device's default), "
                         f"got {requested!r}")
    gpu = device.type == "cuda"
    if gpu:
        capability, name = cuda_capability(device), cuda_name(device)
        native = capability >= BF16_CAPABILITY
        where = f"{name} (compute capability {capability[0]}.{capability[1]})"
    if requested in (None, AUTO):
        if not gpu:
            return {"precision": "fp32", "reason": f"the {device.type.upper()} default (float32)"}
        if native:
            return {"precision": "bf16", "reason": f"{where} has bfloat16 tensor cores (Ampere or newer): bf16 "
                                                    "autocast, no loss scaling"}
        return {"precision": "fp16", "reason": f"{where} has no bfloat16 tensor cores (before Ampere): float16 "
                                                "autocast with a gradient scaler"}
    reason = f"asked for ({requested})"
    if requested == "bf16" and gpu and not native:
        warnings.warn(f"bf16 autocast on {where}, which has no bfloat16 tensor cores, is slow; precision='fp16' "
                      "(--precision fp16) is the standard there", stacklevel=3)
        reason += f"; {where} has no bfloat16 tensor cores"
    elif requested == "fp16" and not gpu:
        reason += "; float16 autocast on a CPU (slow: for testing the GPU path)"
    return {"precision": requested, "reason": reason}


def make_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """A ``torch.amp.GradScaler`` for a float16 run (its gradients would underflow without loss scaling); None
    otherwise (bfloat16 has float32's range)."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None

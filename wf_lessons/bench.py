"""Benchmark commands: every comparison measured side by side in one run, on one machine.

``python -m wf_lessons.bench scaling`` times ``wf-cifar`` against ``deit-cifar`` (fused and math attention) as the
number of tokens grows (larger images at a fixed patch), with peak memory and counted FLOPs; prints the table,
the log-log slope of each curve over its three largest sizes and the crossover where WeightFormer becomes
faster, and writes a run log ``data/runs/bench-scaling-<device>.json``.

``python -m wf_lessons.bench train-throughput`` measures training images/s of ``wf-cifar`` and ``deit-cifar`` side
by side on the current device, with the training step of :mod:`wf_lessons.train` (AdamW, bf16 autocast on GPU,
optionally ``torch.compile``), and writes ``data/runs/bench-train-throughput-<device>.json``.

``python -m wf_lessons.bench dwconv`` times the four formulations of the per-image depthwise convolution of
:func:`wf_lessons.dynamic_dwconv.per_sample_depthwise_conv` side by side: per method, the best of 5 interleaved rounds
of ``torch.utils.benchmark`` medians; it prints the grouped conv's ms and every alternative's time divided by it
(> 1: slower than grouped), and writes ``data/runs/bench-dwconv-<device>.json`` (``--quick``: two small sizes, no
log).

All three check every argument before measuring anything (a bad value is one ``error:`` line, exit status 2) and never
replace an existing run log unless given ``--overwrite``; ``--name`` picks another log name under ``data/runs/``.
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from wf_lessons import config, runlog
from wf_lessons.checks import check_int, cli_int
from wf_lessons.complexity import count_flops, loglog_slope, time_fn
from wf_lessons.dynamic_dwconv import CONV_METHODS, per_sample_depthwise_conv
from wf_lessons.models import MODEL_NAMES, ViT, build_model

__all__ = [
    "SCALING_VARIANTS",
    "CPU_SIDES",
    "GPU_SIDES",
    "activation_bytes",
    "peak_memory_bytes",
    "forward_flops",
    "time_once",
    "crossover",
    "check_scaling_args",
    "scaling",
    "summarize",
    "print_report",
    "THROUGHPUT_MODELS",
    "train_throughput",
    "DWCONV_SIZES",
    "QUICK_DWCONV_SIZES",
    "dwconv_benchmark",
    "format_dwconv_benchmark",
    "main",
]

#: label -> (model name, attention backend or None)
SCALING_VARIANTS = {
    "wf-cifar": ("wf-cifar", None),
    "deit-cifar fused": ("deit-cifar", "fused"),
    "deit-cifar math": ("deit-cifar", "math"),
}
#: Image sides (pixels) that ``scaling`` measures by default on a CPU: N = 256 ... 4096 tokens at patch 2.
CPU_SIDES = (32, 48, 64, 96, 128)
#: ... and on a GPU: up to N = 16,384 tokens.
GPU_SIDES = (32, 64, 96, 128, 160, 192, 256)


def activation_bytes(model: nn.Module, images: torch.Tensor) -> int:
    """Bytes of the tensors autograd saves for the backward pass of ``model(images)`` (parameters excluded).

    This is the memory a training step must hold at its peak beyond weights and gradients; it is measurable on the
    CPU, where PyTorch keeps no allocator statistics.
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(images).sum()
    return sum(seen.values())


def peak_memory_bytes(model: nn.Module, images: torch.Tensor) -> tuple[int, str]:
    """Memory of one forward+backward beyond what was allocated before it, and how it was measured."""
    if images.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        model(images).sum().backward()
        torch.cuda.synchronize()
        model.zero_grad(set_to_none=True)
        return torch.cuda.max_memory_allocated() - before, "CUDA peak allocated during forward+backward"
    return activation_bytes(model, images), "activations saved for backward (CPU)"


def forward_flops(model: nn.Module, images: torch.Tensor) -> int:
    """Counted forward FLOPs. A ViT is counted through its math backend: the counter misses fused CPU kernels."""
    if not isinstance(model, ViT):
        return count_flops(model, images)
    backend = model.attn_backend
    try:
        return count_flops(model.set_attn_backend("math"), images)
    finally:
        model.set_attn_backend(backend)


def time_once(model: nn.Module, images: torch.Tensor) -> dict[str, float]:
    """One forward and one forward+backward call, each timed after one untimed call (s)."""

    def forward() -> None:
        with torch.no_grad():
            model(images)

    def forward_backward() -> None:
        model(images).sum().backward()
        model.zero_grad(set_to_none=True)

    return {
        "forward_s": time_fn(forward, repeats=1, warmup=1),
        "forward_backward_s": time_fn(forward_backward, repeats=1, warmup=1),
    }


def crossover(tokens: Sequence[int], wf: Sequence[float], other: Sequence[float]) -> str:
    """Where ``wf`` times drop below ``other`` times, interpolated log-linearly between measured sizes."""
    ratios = [math.log(a / b) for a, b in zip(wf, other)]
    if ratios[0] < 0:
        return f"faster at every measured size (from N = {tokens[0]})"
    for i in range(1, len(tokens)):
        if ratios[i] < 0:
            t = ratios[i - 1] / (ratios[i - 1] - ratios[i])
            n = math.exp(math.log(tokens[i - 1]) + t * (math.log(tokens[i]) - math.log(tokens[i - 1])))
            return f"N ≈ {n:,.0f} tokens"
    return f"not reached up to N = {tokens[-1]} (ratio there {wf[-1] / other[-1]:.2f}×)"


def check_scaling_args(
    sides: Sequence[int], batch: int = 1, repeats: int = 3,
    variants: dict[str, tuple[str, str | None]] = SCALING_VARIANTS,
) -> list[int]:
    """Check :func:`scaling`'s arguments before anything is measured; returns the sides in increasing order.

    ``sides``: at least two different ints, each a multiple of every variant's patch size (the slopes and the
    crossover need two sizes); ``batch`` and ``repeats``: ints >= 1.
    """
    check_int("batch", batch)
    check_int("repeats", repeats)
    if isinstance(sides, (str, bytes)) or not isinstance(sides, Sequence):
        raise ValueError(f"sides must be a sequence of image sides in pixels, got {sides!r}")
    for side in sides:
        check_int("every image side", side)
    if len(set(sides)) < 2:
        raise ValueError(f"the scaling benchmark needs at least two different image sides, got {list(sides)}")
    for label, (name, _) in variants.items():
        with torch.device("meta"):  # only the patch size is needed: build without allocating or initialising
            patch = build_model(name).patch_size
        if any(side % patch for side in sides):
            raise ValueError(f"image sides must be multiples of {label}'s patch size {patch}, got {list(sides)}")
    return sorted(set(sides))


def scaling(
    sides: Sequence[int], batch: int = 1, repeats: int = 3, device: torch.device | None = None,
    variants: dict[str, tuple[str, str | None]] = SCALING_VARIANTS, progress: bool = True,
) -> dict[str, Any]:
    """Measure every variant at every image side; returns ``{"tokens": [...], "results": {label: [row, ...]}}``.

    Each row holds the forward and forward+backward times (s, best of ``repeats``), peak memory (bytes) and counted
    forward FLOPs. The timings are taken in ``repeats`` interleaved rounds, each visiting every (side, variant)
    once, so that a disturbance (another program, a clock change) spoils one call of one round rather than one
    variant's whole series; the best of the rounds is kept, since interference only ever adds time. The arguments
    are checked first (:func:`check_scaling_args`).
    """
    sides = check_scaling_args(sides, batch, repeats, variants)
    device = device or config.device()
    models: dict[str, nn.Module] = {}
    for label, (name, backend) in variants.items():
        torch.manual_seed(0)
        models[label] = build_model(name).to(device)
        if backend is not None:
            models[label].set_attn_backend(backend)
    tokens = {label: [(side // model.patch_size) ** 2 for side in sides] for label, model in models.items()}
    first = next(iter(tokens.values()))
    if any(t != first for t in tokens.values()):
        raise ValueError(f"the variants {list(variants)} do not share a patch size: token counts {tokens}")
    torch.manual_seed(0)
    images = {side: torch.randn(batch, 3, side, side, device=device) for side in sides}  # the same for every variant
    results = {label: [{"side": side, "tokens": n} for side, n in zip(sides, tokens[label])] for label in models}
    for label, model in models.items():
        for row in results[label]:
            try:
                memory, how = peak_memory_bytes(model, images[row["side"]])
            except torch.OutOfMemoryError:
                _out_of_memory(row, device)  # e.g. attention's N×N scores at N = 16,384 on a small GPU
                continue
            row |= {"memory_bytes": memory, "memory_kind": how, "flops": forward_flops(model, images[row["side"]])}
    calls = repeats * len(sides) * len(models)
    bar_args = {} if progress else {"disable": True}  # otherwise tqdm reads TQDM_DISABLE itself (notebook tqdm too)
    bar = tqdm(total=calls, desc="scaling (interleaved rounds)", unit="size", **bar_args)
    for _ in range(repeats):
        for i, side in enumerate(sides):
            for label, model in models.items():
                row = results[label][i]
                if not row.get("out_of_memory"):
                    try:
                        for key, seconds in time_once(model, images[side]).items():
                            row[key] = min(seconds, row.get(key, math.inf))
                    except torch.OutOfMemoryError:
                        _out_of_memory(row, device)
                bar.update()
    bar.close()
    return {"tokens": first, "sides": list(sides), "batch": batch, "repeats": repeats, "results": results}


def _out_of_memory(row: dict[str, Any], device: torch.device) -> None:
    """Mark a (variant, size) that did not fit: it keeps its place in the log, without measurements."""
    for key in ("memory_bytes", "memory_kind", "flops", "forward_s", "forward_backward_s"):
        row.pop(key, None)
    row["out_of_memory"] = True
    if device.type == "cuda":
        torch.cuda.empty_cache()


def summarize(measured: dict[str, Any]) -> dict[str, Any]:
    """Slopes over the three largest sizes each variant fitted in memory (None with fewer than two), crossovers
    against each attention variant and time ratios per size (None where either did not fit)."""
    tokens, results = measured["tokens"], measured["results"]
    slopes = {}
    for label, rows in results.items():
        fitted = [r for r in rows if not r.get("out_of_memory")][-3:]
        slopes[label] = {key: loglog_slope([r["tokens"] for r in fitted], [r[key] for r in fitted])
                         if len(fitted) >= 2 else None
                         for key in ("forward_s", "forward_backward_s", "memory_bytes", "flops")}
    wf_label = next(label for label in results if label.startswith("wf"))
    wf = [r.get("forward_backward_s") for r in results[wf_label]]
    others = [label for label in results if label != wf_label]
    times = {label: [r.get("forward_backward_s") for r in results[label]] for label in others}
    both = {label: [i for i, (a, b) in enumerate(zip(wf, t)) if a is not None and b is not None]
            for label, t in times.items()}
    return {
        "slopes_last3": slopes,
        "crossover_forward_backward": {
            label: crossover([tokens[i] for i in both[label]], [wf[i] for i in both[label]],
                             [times[label][i] for i in both[label]]) if both[label] else "no size fitted both"
            for label in others
        },
        "time_ratio_wf_over": {
            label: [a / b if a is not None and b is not None else None for a, b in zip(wf, t)]
            for label, t in times.items()
        },
    }


def print_report(measured: dict[str, Any], summary: dict[str, Any]) -> None:
    """Print the tables of :func:`scaling`'s ``measured`` and its :func:`summarize` ``summary``: times, memory and
    FLOPs per size, the time ratios, the log-log slopes and the crossovers."""
    results = measured["results"]
    print(f"\n{'model':<24}{'N':>7}{'fwd ms':>10}{'fwd+bwd ms':>12}{'mem MiB':>10}{'GFLOPs':>9}")
    for label, rows in results.items():
        for r in rows:
            if r.get("out_of_memory"):
                print(f"{label:<24}{r['tokens']:>7}   out of memory")
                continue
            print(f"{label:<24}{r['tokens']:>7}{r['forward_s'] * 1e3:>10.1f}{r['forward_backward_s'] * 1e3:>12.1f}"
                  f"{r['memory_bytes'] / 2**20:>10.1f}{r['flops'] / 1e9:>9.2f}")
    kinds = [r["memory_kind"] for rows in results.values() for r in rows if "memory_kind" in r]
    print(f"\nmemory: {kinds[0] if kinds else 'nothing fitted'}")
    print("\nfwd+bwd time ratio WeightFormer / attention, side by side:")
    print(f"{'N':>7}" + "".join(f"{label:>20}" for label in summary["time_ratio_wf_over"]))
    for i, n in enumerate(measured["tokens"]):
        print(f"{n:>7}" + "".join(f"{ratios[i]:>19.2f}×" if ratios[i] is not None else f"{'—':>20}"
                                  for ratios in summary["time_ratio_wf_over"].values()))
    print("\nlog-log slopes over the three largest sizes that fitted:")
    print(f"{'model':<24}{'fwd':>7}{'fwd+bwd':>9}{'memory':>8}{'FLOPs':>7}")
    for label, s in summary["slopes_last3"].items():
        print(f"{label:<24}" + "".join(f"{s[k]:>{w}.2f}" if s[k] is not None else f"{'—':>{w}}" for k, w in
                                       (("forward_s", 7), ("forward_backward_s", 9), ("memory_bytes", 8),
                                        ("flops", 7))))
    print("\nWeightFormer becomes faster (fwd+bwd) than")
    for label, where in summary["crossover_forward_backward"].items():
        print(f"  {label}: {where}")


def _scaling_main(args: argparse.Namespace) -> int:
    device = config.device(args.device)
    sides = check_scaling_args(args.sides or (GPU_SIDES if device.type == "cuda" else CPU_SIDES), args.batch,
                               args.repeats)
    log_name = args.name if args.name is not None else f"bench-scaling-{device.type}"
    config.new_run_log_path(log_name, args.overwrite)  # refuse before measuring
    log = {"benchmark": "scaling", **runlog.environment(device)}
    print(f"scaling benchmark on {log['device']}: sides {list(sides)}, batch {args.batch}, repeats {args.repeats}")
    start = time.perf_counter()
    measured = scaling(sides, args.batch, args.repeats, device)
    summary = summarize(measured)
    print_report(measured, summary)
    log |= {**measured, **summary, "wall_s": time.perf_counter() - start}
    path = runlog.write(log, log_name)
    print(f"\nrun log: {path}")
    return 0


# ------------------------------------------------------------------------------------- train-throughput
#: The models :func:`train_throughput` compares by default.
THROUGHPUT_MODELS = ("wf-cifar", "deit-cifar")
CIFAR_TRAIN_IMAGES = 50_000


def train_throughput(
    models: Sequence[str] = THROUGHPUT_MODELS,
    batch: int = 512,
    steps: int = 20,
    warmup: int = 5,
    device: torch.device | None = None,
    compile: bool = False,
    bf16: bool | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    precision: str | None = None,
) -> dict[str, Any]:
    """Training images/s of each model, one after the other on the same device, with synthetic 32×32 batches.

    Each model runs ``warmup`` untimed steps (compilation happens there), then ``steps`` timed ones of
    :func:`wf_lessons.train.train_step`. ``precision`` (``bf16`` is its old name): as a training run's, by default
    the device's choice (:func:`wf_lessons.train.machine.choose_precision`), with a gradient scaler for ``fp16``. A
    ``torch.compile`` that fails falls back to eager mode, as in training (the row's ``compile`` says so).
    Returns ``{"results": {name: row}, "throughput_ratio_first_over_second": ..., "precision": ...}``.
    """
    from wf_lessons.train import build_optimizer, train_step
    from wf_lessons.train.fallback import CompileFallback
    from wf_lessons.train.machine import choose_precision, make_scaler

    _check_throughput_args(models, batch, steps, warmup)
    device = device or config.device()
    if precision is None and bf16 is not None:
        precision = "bf16" if bf16 else "fp32"
    choice = choose_precision(device, precision)
    precision = choice["precision"]
    results: dict[str, dict[str, Any]] = {}
    for name in models:
        torch.manual_seed(0)
        model = build_model(name, **(overrides or {})).to(device)
        size = model.img_size
        images = torch.randn(batch, 3, size, size, device=device)
        labels = torch.randint(0, model.num_classes, (batch,), device=device)
        flops = forward_flops(model.eval(), images[:1])
        model.train()
        optimizer = build_optimizer(model, 1e-3, 0.05)
        scaler = make_scaler(device, precision)
        compiled = CompileFallback(model, compile, device)
        step = functools.partial(_train_step, train_step, optimizer, images, labels, precision, scaler)
        start = time.perf_counter()
        for i in range(warmup + steps):
            if i == warmup:
                _sync(device)
                warmup_s = time.perf_counter() - start
                start = time.perf_counter()
            compiled.run(step)
        _sync(device)
        step_s = (time.perf_counter() - start) / steps
        results[name] = {
            "images_per_s": batch / step_s,
            "step_s": step_s,
            "epoch_s_estimate": CIFAR_TRAIN_IMAGES / (batch / step_s),
            "warmup_s": warmup_s,
            "parameters": sum(p.numel() for p in model.parameters()),
            "flops_per_image": flops,
            "train_tflops_per_s_estimate": 3 * flops * batch / step_s / 1e12,
            "compile": compiled.status,
        }
        if progress:
            print(f"  {name:<12} {batch / step_s:10.1f} images/s ({step_s * 1e3:.1f} ms per step of {batch})",
                  flush=True)
        del model, optimizer, compiled, step
    names = list(results)
    ratio = None
    if len(names) == 2:
        ratio = results[names[0]]["images_per_s"] / results[names[1]]["images_per_s"]
    return {"batch": batch, "steps": steps, "warmup": warmup, "compile": compile, "bf16": precision == "bf16",
            "precision": precision, "precision_reason": choice["reason"],
            "results": results, "throughput_ratio_first_over_second": ratio}


def _train_step(step: Any, optimizer: Any, images: torch.Tensor, labels: torch.Tensor, precision: str, scaler: Any,
                model: nn.Module) -> None:
    """One training step of the throughput benchmark (the recipe's label smoothing and clipping)."""
    step(model, optimizer, images, labels, label_smoothing=0.1, grad_clip=5.0, precision=precision, scaler=scaler)


def _check_throughput_args(models: Sequence[str], batch: int, steps: int, warmup: int) -> None:
    if isinstance(models, str) or not models:
        raise ValueError(f"models must be a non-empty list of model names, got {models!r}")
    if len(set(models)) != len(models):
        raise ValueError(f"models must be different names, got {list(models)}")
    unknown = [m for m in models if m not in MODEL_NAMES]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; valid names: {', '.join(MODEL_NAMES)}")
    check_int("batch", batch)
    check_int("steps", steps)
    check_int("warmup", warmup, low=0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _train_throughput_main(args: argparse.Namespace) -> int:
    device = config.device(args.device)
    gpu = device.type == "cuda"
    batch = args.batch if args.batch is not None else (512 if gpu else 64)
    steps = args.steps if args.steps is not None else (30 if gpu else 3)
    warmup = args.warmup if args.warmup is not None else ((10 if args.compile else 5) if gpu else 1)
    _check_throughput_args(args.models, batch, steps, warmup)
    log_name = args.name if args.name is not None else f"bench-train-throughput-{device.type}"
    config.new_run_log_path(log_name, args.overwrite)  # refuse before measuring
    if args.threads:
        torch.set_num_threads(args.threads)
    log = {"benchmark": "train-throughput", **runlog.environment(device)}
    print(f"training throughput on {log['device']}: batch {batch}, {warmup} warm-up + {steps} timed steps, "
          f"compile {args.compile}")
    start = time.perf_counter()
    measured = train_throughput(args.models, batch, steps, warmup, device, args.compile)
    rows = measured["results"]
    print(f"\n{'model':<12}{'images/s':>11}{'ms/step':>10}{'epoch s (est.)':>16}{'TFLOP/s (est.)':>16}")
    for name, r in rows.items():
        print(f"{name:<12}{r['images_per_s']:>11.1f}{r['step_s'] * 1e3:>10.1f}{r['epoch_s_estimate']:>16.1f}"
              f"{r['train_tflops_per_s_estimate']:>16.2f}")
    if measured["throughput_ratio_first_over_second"] is not None:
        first, second = list(rows)
        print(f"\n{first} / {second} training throughput, side by side: "
              f"{measured['throughput_ratio_first_over_second']:.2f}×")
    log |= {**measured, "wall_s": time.perf_counter() - start,
            "note": "synthetic batches; TFLOP/s estimate = 3 × forward FLOPs × images/s"}
    path = runlog.write(log, log_name)
    print(f"\nrun log: {path}")
    return 0


# ------------------------------------------------------------------------------------------------- dwconv
#: (B, C, H = W): a small case, WFM-T and WFM-S blocks at 224 px (14 x 14 tokens), CIFAR-sized maps.
DWCONV_SIZES = [(8, 64, 16), (64, 192, 14), (32, 384, 14), (128, 192, 16), (128, 64, 32)]
#: The two small sizes of ``dwconv --quick``.
QUICK_DWCONV_SIZES = [(8, 64, 16), (64, 192, 14)]


def dwconv_benchmark(
    sizes: list[tuple[int, int, int]] = DWCONV_SIZES,
    methods: tuple[str, ...] = CONV_METHODS,
    device: str = "cpu",
    backward: bool = True,
    min_run_time: float = 0.05,
    rounds: int = 5,
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """Time the methods of :func:`wf_lessons.dynamic_dwconv.per_sample_depthwise_conv` side by side with
    ``torch.utils.benchmark``.

    Each round times every method once (its median over ``min_run_time`` seconds), methods interleaved so that a
    busy machine slows all of them alike; a method's time is its best round. Returns one row per size ``(B, C, H)``:
    ``{"size": (B, C, H), "ms": {method: ms}}`` for the forward pass, or forward + backward when ``backward``.
    Every method is first checked to agree with ``"grouped"``. ``threads``: CPU threads (default: torch's current
    setting); one thread gives steadier numbers on a busy machine.
    """
    cpp_log = logging.getLogger("torch.utils.cpp_extension")  # silence its "no CUDA runtime" notice on import
    level = cpp_log.level
    cpp_log.setLevel(logging.ERROR)
    try:
        from torch.utils.benchmark import Timer
    finally:
        cpp_log.setLevel(level)

    rows = []
    gen = torch.Generator().manual_seed(0)
    for B, C, H in sizes:
        x = torch.randn(B, C, H, H, generator=gen).to(device).requires_grad_(backward)
        kernels = torch.randn(B, C, 3, 3, generator=gen).to(device).requires_grad_(backward)
        bias = torch.randn(C, generator=gen).to(device).requires_grad_(backward)
        reference = per_sample_depthwise_conv(x, kernels, bias, "grouped")
        timers = {}
        for method in methods:
            if not torch.allclose(per_sample_depthwise_conv(x, kernels, bias, method), reference, atol=1e-4, rtol=1e-4):
                raise AssertionError(f"method {method!r} disagrees with 'grouped' at size {(B, C, H)}")
            timers[method] = Timer(
                "f(x, k, b, m).sum().backward()" if backward else "f(x, k, b, m)",
                globals={"f": per_sample_depthwise_conv, "x": x, "k": kernels, "b": bias, "m": method},
                num_threads=threads or torch.get_num_threads(),
            )
        ms = dict.fromkeys(methods, float("inf"))
        for _ in range(rounds):
            for method, timer in timers.items():
                ms[method] = min(ms[method], timer.blocked_autorange(min_run_time=min_run_time).median * 1e3)
        rows.append({"size": (B, C, H), "ms": ms})
    return rows


def format_dwconv_benchmark(rows: list[dict[str, Any]]) -> str:
    """A table: the grouped conv's median ms, then every other method's time divided by it."""
    methods = list(rows[0]["ms"])
    others = [m for m in methods if m != "grouped"]
    lines = [f"{'B, C, H=W':<16}{'grouped ms':>11}" + "".join(f"{m + ' ×':>14}" for m in others)]
    for row in rows:
        ms = row["ms"]
        lines.append(
            f"{', '.join(map(str, row['size'])):<16}{ms['grouped']:>11.2f}"
            + "".join(f"{ms[m] / ms['grouped']:>14.2f}" for m in others)
        )
    return "\n".join(lines)


def _dwconv_main(args: argparse.Namespace) -> int:
    device = config.device(args.device)
    name = args.name if args.name is not None else f"bench-dwconv-{device.type}"
    if not args.quick:
        config.new_run_log_path(name, args.overwrite)  # refuse before measuring
    threads = args.threads or torch.get_num_threads()
    sizes = QUICK_DWCONV_SIZES if args.quick else DWCONV_SIZES
    log = {"benchmark": "per-image depthwise conv", **runlog.environment(device), "threads": threads}
    for backward in (False,) if args.forward_only else (False, True):
        pass_name = "forward + backward" if backward else "forward"
        print(f"{pass_name} on {device}, torch {torch.__version__}, {threads} threads")
        rows = dwconv_benchmark(sizes, device=str(device), backward=backward, threads=threads)
        print(format_dwconv_benchmark(rows))
        log[pass_name] = rows
    if not args.quick:
        print(f"run log: {runlog.write(log, name)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line, ``python -m wf_lessons.bench scaling|train-throughput|dwconv``; returns the exit status (2
    for a bad argument)."""
    parser = argparse.ArgumentParser(prog="python -m wf_lessons.bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("scaling", help="time and memory against the number of tokens")
    s.add_argument("--sides", type=cli_int(1), nargs="+",
                   help="image sides in pixels, at least two, multiples of 2 (patch 2: N = (side/2)²)")
    s.add_argument("--batch", type=cli_int(1), default=1)
    s.add_argument("--repeats", type=cli_int(1), default=3)
    t = sub.add_parser("train-throughput", help="training images/s of wf-cifar and deit-cifar, side by side")
    t.add_argument("--models", nargs="+", default=list(THROUGHPUT_MODELS), choices=MODEL_NAMES, metavar="MODEL",
                   help=f"models to compare (default: {' '.join(THROUGHPUT_MODELS)}; any of {', '.join(MODEL_NAMES)})")
    t.add_argument("--batch", type=cli_int(1), help="batch size (default: 512 on GPU, 64 on CPU)")
    t.add_argument("--steps", type=cli_int(1), help="timed steps (default: 30 on GPU, 3 on CPU)")
    t.add_argument("--warmup", type=cli_int(0),
                   help="untimed steps first (default: 5 on GPU, 10 with --compile, 1 on CPU)")
    t.add_argument("--compile", action="store_true", help="torch.compile each model")
    t.add_argument("--threads", type=cli_int(1), help="CPU threads for torch (default: torch's default)")
    d = sub.add_parser("dwconv", help="the per-image depthwise convolution's formulations, side by side")
    d.add_argument("--quick", action="store_true", help="two small sizes only (writes no run log)")
    d.add_argument("--forward-only", action="store_true", help="time the forward pass only")
    d.add_argument("--threads", type=cli_int(1), default=None, help="torch CPU threads (default: torch's choice)")
    for command, p in (("scaling", s), ("train-throughput", t), ("dwconv", d)):
        p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
        p.add_argument("--name", help=f"run log name under data/runs/ (default: bench-{command}-<device>)")
        p.add_argument("--overwrite", action="store_true", help="replace the run log if it exists")
    args = parser.parse_args(argv)
    run = {"train-throughput": _train_throughput_main, "scaling": _scaling_main, "dwconv": _dwconv_main}[args.command]
    try:
        return run(args)
    except (ValueError, FileExistsError) as error:  # every argument is checked before measuring
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

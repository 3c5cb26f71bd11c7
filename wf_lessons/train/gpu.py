"""The GPU preset's design: the throughput estimate it was sized from (no GPU was available to measure)."""

from __future__ import annotations

import torch

from wf_lessons.complexity import count_flops
from wf_lessons.models import build_model
from wf_lessons.train.recipe import PRESETS

__all__ = ["GPU_ASSUMED_RATES", "GPU_PRESET_REASONING", "gpu_preset_estimate"]

#: What the gpu preset's design assumes about one H100 running these width-192 models (sustained rates, not peaks).
#: No GPU was available when the preset was written: these are estimates to be replaced by measurements
#: (``python -m wf_lessons.bench train-throughput`` on the GPU).
#: ``eager_op_us``: what PyTorch spends per operator in eager mode when the kernels are too small to fill the GPU
#: (Python dispatch and a kernel launch, one after the other): the bound of small models (study-gpu's estimate).
GPU_ASSUMED_RATES = {"memory_tb_per_s": 2.5, "matmul_tflop_per_s": 400.0, "eager_op_us": 8.0}

#: How the gpu preset was designed: the estimate behind it (:func:`gpu_preset_estimate`) and the choices it led to.
GPU_PRESET_REASONING = """\
The gpu preset was designed without a GPU, from an estimate of the epoch time (gpu_preset_estimate): counted
FLOPs of a training step (3 x forward) at an assumed sustained matmul rate, plus the memory traffic of the
element-wise work (norms, activations, residual adds, depthwise convolutions: a rough model of about 12 N x C plus
6 N x 4C bf16 values per block, forward and backward) at an assumed sustained memory bandwidth. At width 192 with
256 tokens the step is bound by memory traffic more than by matmuls, which is what bf16 and torch.compile (fusing
element-wise kernels) address. The epoch count is chosen so that the estimated training time stays under the
5-minute goal (>= 94.5% test accuracy, mean of 3 seeds, no TTA), leaving room for compilation and evaluation in
one 10-minute command; time_limit_s stops after the last epoch that fits, with a resumable checkpoint. The
regularisation (RandAugment m9, erasing 0.25, mixup/CutMix on half the batches, label smoothing 0.1, drop-path
0.1) follows DeiT and the small-ViT CIFAR anchors of chapters/paper_notes.md ("CIFAR-10 anchors"), lighter on
mixing because the schedule is short. On the GPU, measure first (python -m wf_lessons.bench train-throughput
--compile) and change --epochs if the measured epoch time differs from the estimate."""


def gpu_preset_estimate(model: str = "wf-cifar", rates: dict[str, float] | None = None) -> dict[str, float]:
    """The estimate behind the gpu preset: seconds per epoch and per run of ``model`` on one H100.

    Counts the forward FLOPs of one 32×32 image (``FlopCounterMode``), takes 3× for a training step, and adds the
    memory traffic of the rough model in :data:`GPU_PRESET_REASONING`, at the rates of :data:`GPU_ASSUMED_RATES`.
    """
    rates = rates or GPU_ASSUMED_RATES
    net = build_model(model).eval()
    flops = count_flops(net, torch.zeros(1, 3, 32, 32))
    tokens = (32 // net.patch_size) ** 2
    width, depth = net.norm.normalized_shape[0], len(net.blocks)
    bytes_per_image = 3 * depth * (12 * tokens * width + 6 * tokens * 4 * width) * 2  # fwd + bwd, bf16
    images = 50_000  # one epoch
    matmul_s = 3 * flops * images / (rates["matmul_tflop_per_s"] * 1e12)
    memory_s = bytes_per_image * images / (rates["memory_tb_per_s"] * 1e12)
    epoch_s = matmul_s + memory_s
    return {"forward_gflops_per_image": flops / 1e9, "memory_mb_per_image": bytes_per_image / 1e6,
            "matmul_s_per_epoch": matmul_s, "memory_s_per_epoch": memory_s, "epoch_s": epoch_s,
            "epochs": PRESETS["gpu"]["epochs"], "train_s": epoch_s * PRESETS["gpu"]["epochs"]}


# %% [markdown]
# # 07 · Training a small WeightFormer on CIFAR-10, side by side with DeiT
#
# [Open in Colab](https://colab.research.google.com/github/wf-lessons/wf-lessons/blob/main/chapters/07_training_on_cifar10.ipynb) (its first code cell installs the course there)
#
# Chapters 01–04 built WeightFormer and its DeiT-style baseline. This chapter trains them from scratch on CIFAR-10
# with one pipeline for both: the two models of a pair get the same data, augmentations, recipe, number of epochs
# and seeds. The two *networks* are not one network with two token mixers, though. They share the patch
# embedding, the width, the MLP ratio, the final LayerNorm and the pooled linear head, and differ in
#
# - **the blocks**: a WeightFormer block mixes tokens with a 3×3 depthwise convolution and then applies an MLP; in
#   one block of three (its dynamic blocks) the convolution's kernels and the MLP's first weight are predicted from
#   the input. A DeiT block is pre-norm multi-head softmax attention followed by an MLP (chapter 04 draws both);
# - **positions**: DeiT adds a learned position embedding to the tokens, WeightFormer has none;
# - **the depth**: set per pair; in the two larger pairs the DeiT takes the depth that brings its parameter count
#   near the WeightFormer's (chapter 04 does this for `wf-cifar`), the two smallest models have four blocks each;
# - hence **parameters and FLOPs**: the parameter counts are close in the two larger pairs and not in the tiny
#   one, and DeiT counts more FLOPs per image in every pair.
#
# A difference in accuracy between the two is therefore one between two model families of similar size under one
# recipe, not an effect of the token mixer alone. The cell after the imports prints the three pairs the
# course defines, and which of them have been trained: the two pairs at patch 4 (64 tokens) on a CPU, with
# committed run logs; `wf-cifar` and `deit-cifar`, sized by chapter 04 at about five million parameters at patch 2
# (256 tokens) for the `gpu` preset, not yet.
#
# In this chapter you will
#
# 1. look at CIFAR-10 the way the trainer sees it: two uint8 tensors that live on the device;
# 2. go through the training recipe piece by piece and see why each trick is there — augmentation as batched
#    tensor ops, label smoothing, AdamW without decay on 1-D parameters, warm-up and cosine, gradient clipping,
#    drop-path, EMA, bf16, `torch.compile`, test-time flips — and the two presets built from them;
# 3. run a short training live;
# 4. read the committed runs of WeightFormer and DeiT side by side, accuracy against epochs and against time;
# 5. see where a trained model goes wrong (a confusion matrix, its most confident mistakes);
# 6. pick a test image and look at the weights and kernels WeightFormer predicts for it.
#
# Everything reusable lives in `wf_lessons.train` (the loop, its command line, checkpoints, run logs),
# `wf_lessons.augment` (the batched augmentations) and `wf_lessons.data` (the tensors and the device loader).
# Long runs are commands, not cells: the chapter loads their run logs from `data/runs/` and prints the command that
# made each one. In quick mode the live run is a tiny model for a few steps on a slice of the data. Symbols follow
# the course's [notation table](paper_notes.md#notation) (W0 + Ŵ and K0 + K̂: the static and predicted weights).

# %% tags=["setup"]
# Colab, or a Python without the course: clone the course (its committed run logs come with it), install it, fetch
# CIFAR-10 and use quick mode unless there is a CUDA GPU. In the course's own environment this cell does nothing.
import importlib.util
import os
import sys

if importlib.util.find_spec("wf_lessons") is None:
    # !git clone --quiet --depth 1 https://github.com/wf-lessons/wf-lessons wf-lessons
    # %pip install --quiet ./wf-lessons
    # !{sys.executable} -m wf_lessons.data prepare
    os.environ.setdefault("WF_RUNS_DIR", os.path.abspath("wf-lessons/data/runs"))
    import torch

    os.environ.setdefault("WF_QUICK", "0" if torch.cuda.is_available() else "1")

# %%
import glob
import math
import random
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import torch
import torch.nn.functional as F

from wf_lessons import augment, bench, config, data, runlog, train
from wf_lessons.models import WeightFormer, build_model, count_parameters, predicted_weights
from wf_lessons.notebooks import show_source

QUICK = config.quick()
DEVICE = config.device()
torch.set_num_threads(1)  # small models on a shared two-core CPU: one thread is the fastest and the steadiest
print("quick mode:", QUICK, "| device:", DEVICE.type)

# %% tags=["nbval-check-output"]
PAIRS = {"quick-cpu": ("wf-cifar-tiny", "deit-cifar-tiny"), "cpu": ("wf-cifar-cpu", "deit-cifar-cpu"),
         "gpu": ("wf-cifar", "deit-cifar")}
committed = [runlog.read(p) for pattern in ("train-*.json", "headline-*.json")
             for p in sorted(glob.glob(str(config.runs_dir() / pattern)))]
print(f"{'preset':<10}{'model':<17}{'patch':>5}{'tokens':>7}{'width':>6}{'blocks':>7}  {'token mixer':<38}"
      f"{'parameters':>11}{'MFLOPs/image':>13}{'runs logged':>12}")
for preset, pair in PAIRS.items():
    for name in pair:
        model = build_model(name).eval()
        if isinstance(model, WeightFormer):
            mixer = f"3×3 DWC, dynamic blocks {list(model.dynamic_blocks)}"
        else:
            mixer = f"attention, {model.blocks[0].attn.num_heads} heads, pos. embedding"
        runs = sum(log.get("kind") == "train" and log["model"] == name and not log.get("model_overrides")
                   for log in committed)
        print(f"{preset:<10}{name:<17}{model.patch_size:>5}{(32 // model.patch_size) ** 2:>7}"
              f"{model.patch_embed.proj.out_channels:>6}{len(model.blocks):>7}  {mixer:<38}"
              f"{count_parameters(model):>11,}{bench.forward_flops(model, torch.zeros(1, 3, 32, 32)) / 1e6:>13.1f}"
              f"{runs:>12}")

# %% [markdown]
# ## 1. The data, as the trainer sees it
#
# `data.cifar10(split)` returns the whole split as two tensors: uint8 images `(N, 3, 32, 32)` and int64 labels
# `(N,)`. The first call decodes the images once into a cache file; later calls just load that file. The whole
# training split, one byte per pixel, is small enough (the cell prints its size) to keep on any GPU for the whole
# run, which is what the trainer does: no data-loader workers, no per-image Python, as in airbench.

# %% tags=["nbval-check-output"]
train_images, train_labels = data.cifar10("train")
test_images, test_labels = data.cifar10("test")
print("train:", tuple(train_images.shape), train_images.dtype, "| labels", tuple(train_labels.shape),
      train_labels.dtype)
print("test: ", tuple(test_images.shape), test_images.dtype)
print(f"train images take {train_images.numel() / 2**20:.1f} MiB as uint8")
print("images per class (train):", torch.bincount(train_labels).tolist())
print("images per class (test): ", torch.bincount(test_labels).tolist())

# %% [markdown]
# Ten balanced classes of tiny photographs. Eight of each:

# %%
fig, axes = plt.subplots(10, 8, figsize=(7, 9))
for c, name in enumerate(data.CLASSES):
    first = torch.nonzero(train_labels == c).flatten()[:8]
    for j, i in enumerate(first):
        axes[c, j].imshow(train_images[i].permute(1, 2, 0))
        axes[c, j].set_xticks([])
        axes[c, j].set_yticks([])
    axes[c, 0].set_ylabel(name, rotation=0, ha="right", va="center")
plt.suptitle("CIFAR-10: the first eight training images of each class")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2. The recipe, piece by piece
#
# Small vision transformers trained from scratch on CIFAR-10 need help: they have no convolution's built-in
# preference for local patterns, and 50,000 images are few. The strong small-model results collected in the course's
# paper notes ([paper_notes.md](paper_notes.md), "CIFAR-10 anchors") all lean on the same things: enough tokens
# (patch 2–4 at 32 px), a pooled head, and
# DeiT-style regularisation. For scale, those notes list CCT-7/3x1 (3.8M parameters) at 94.78% after 200 epochs,
# a width-192 ViT with SPT+LSA at 94.53% after 100 epochs (93.58% for the plain ViT with the same recipe), and
# airbench's ResNet at 94% in 2.6 s on an A100, the latter by keeping the data on the GPU, augmenting there, bf16,
# `torch.compile`, large batches, label smoothing, weight averaging and flip test-time augmentation. Our recipe takes
# the engineering of airbench and the regularisation of DeiT. Each piece below is one switch of `TrainConfig`.
#
# ### 2.1 The whole split on the device, batches cut there
#
# `data.DeviceLoader` moves the uint8 tensors to the device once. Each epoch draws a permutation from a generator
# seeded with `(seed, epoch)`, cuts batches, random-crops them (4 pixels of zero padding, one gather for the batch)
# and flips half of them, all as tensor ops, then normalises with CIFAR-10's mean and std. Seeding per epoch is
# what makes `--resume` exact: epoch 7 yields the same batches whether or not the run stopped after epoch 6.

# %% tags=["nbval-check-output"]
loader = data.DeviceLoader(train_images[:512], train_labels[:512], batch_size=64, train=True, device="cpu", seed=0)
images, labels = next(loader.epoch(0))
again, _ = next(loader.epoch(0))
print("batch:", tuple(images.shape), images.dtype, "| labels:", tuple(labels.shape), labels.dtype)
print("batches per epoch:", len(loader), "(512 // 64; training drops a last partial batch)")
print("epoch 0 drawn twice gives the same batch:", torch.equal(images, again))
print("mean and std of a normalised batch are near 0 and 1:", abs(images.mean().item()) < 0.3,
      abs(images.std().item() - 1) < 0.3)

# %% [markdown]
# ### 2.2 Stronger augmentations, still batched
#
# Cropping and flipping say "a shifted or mirrored cat is still a cat". DeiT adds four more, and
# `wf_lessons.augment` implements each as tensor ops on the whole batch, each with its own switch:
#
# - **RandAugment** (`randaugment_ops`, `randaugment_magnitude`): every image gets a few operations drawn from a list
#   (rotate, shear, translate, brightness, contrast, colour, sharpness, posterize, solarize, autocontrast) at a
#   random strength around the magnitude. Batched: each operation is computed for the whole batch and kept where
#   it was drawn.
# - **Random erasing** (`erasing`): with some probability, one rectangle of the image becomes noise; the model must
#   not rely on any single part of the object.
# - **Mixup** and **CutMix** (`mixup`, `cutmix`, `mix_prob`): blend each image with another (Mixup), or paste a box of
#   another into it (CutMix), and blend the labels in the same proportion. The targets become probabilities.
#
# Here is one batch of eight test images, one of each of the first eight classes, through each, seeded:

# %%
demo = torch.stack([torch.nonzero(test_labels == c).flatten()[0] for c in range(8)])  # indices, one per class
originals = data.normalize(test_images[demo])
g = torch.Generator().manual_seed(0)
rows = {
    "original": originals,
    "crop + flip": data.random_flip(data.random_crop(originals, 4, g), g),
    "RandAugment (2 ops, m9)": augment.rand_augment(originals, 2, 9.0, generator=g),
    "random erasing (p=1)": augment.random_erasing(originals, 1.0, g),
}
one_hot = augment.one_hot(test_labels[demo], 10)
rows["mixup (λ=0.6)"], mixup_targets = augment.mixup(originals, one_hot, 0.6)
rows["CutMix (λ=0.6)"], cutmix_targets = augment.cutmix(originals, one_hot, 0.6, random.Random(0))

fig, axes = plt.subplots(len(rows), 8, figsize=(9, 1.25 * len(rows)))
for r, (title, batch) in enumerate(rows.items()):
    for j in range(8):
        axes[r, j].imshow(augment.to_unit(batch[j : j + 1])[0].clamp(0, 1).permute(1, 2, 0))
        axes[r, j].set_xticks([])
        axes[r, j].set_yticks([])
    axes[r, 0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Each keeps the batch's shape and dtype, and mixing keeps each target a probability distribution. Image 0 is
# mixed with image 7, its partner in the reversed batch:

# %% tags=["nbval-check-output"]
for title, batch in rows.items():
    assert batch.shape == originals.shape and batch.dtype == originals.dtype, title
print("every augmentation keeps (B, 3, 32, 32) float32:", True)
print("classes of image 0 and of its partner (image 7):", data.CLASSES[test_labels[demo[0]]], "and",
      data.CLASSES[test_labels[demo[7]]])
print("mixup target of image 0: ", [round(v, 2) for v in mixup_targets[0].tolist()])
print("targets sum to 1 (mixup, CutMix):", torch.allclose(mixup_targets.sum(1), torch.ones(8)),
      torch.allclose(cutmix_targets.sum(1), torch.ones(8)))

# %% [markdown]
# ### 2.3 Label smoothing
#
# Cross-entropy against a one-hot target rewards ever larger logits for the right class; the model grows
# over-confident. Label smoothing with ε replaces the target by `(1 − ε)·one_hot + ε/K` over K classes, so the
# best prediction is no longer a certainty. PyTorch's `F.cross_entropy(..., label_smoothing=ε)` does exactly this,
# also for probability targets (after mixing):

# %% tags=["nbval-check-output"]
gen = torch.Generator().manual_seed(0)
logits = torch.randn(5, 10, generator=gen)
targets = torch.tensor([3, 1, 4, 1, 5])
eps = 0.1
smoothed = (1 - eps) * F.one_hot(targets, 10) + eps / 10  # (5, 10): rows sum to 1
inline = -(smoothed * logits.log_softmax(-1)).sum(-1).mean()
torch_loss = F.cross_entropy(logits, targets, label_smoothing=eps)
print("inline vs F.cross_entropy: max |Δ| < 1e-6:", (inline - torch_loss).abs().item() < 1e-6)

# %% [markdown]
# ### 2.4 AdamW, without decay on 1-D parameters
#
# Weight decay pulls weights towards zero, which regularises matrices and kernels. On LayerNorm gains, biases or
# DeiT's position embedding it only fights the parameter's job, so DeiT and the reference code exempt every
# parameter with one dimension (and the position embedding). `train.build_optimizer` makes the two groups:

# %% tags=["nbval-check-output"]
show_source(train.build_optimizer)
for name in ("wf-cifar", "deit-cifar"):
    torch.manual_seed(0)
    model = build_model(name)
    decay, no_decay = train.build_optimizer(model, 1e-3, 0.05).param_groups
    count = lambda group: sum(p.numel() for p in group["params"])
    print(f"{name:<11} {count_parameters(model):>9,} parameters: decay on {len(decay['params'])} tensors "
          f"({count(decay):,}), none on {len(no_decay['params'])} tensors ({count(no_decay):,})")

# %% [markdown]
# ### 2.5 Warm-up, then a cosine, per step
#
# Adam's first steps use poor estimates of the gradient's scale, and a transformer's LayerNorms and residual
# stream are fragile at initialisation: a linear warm-up over the first epochs lets both settle before the full
# learning rate. A cosine then brings the rate down to (nearly) zero at the last step, where the model settles into a
# minimum. The rate changes every step, not every epoch. The `gpu` preset's schedule:

# %%
preset = train.PRESETS["gpu"]
steps_per_epoch = 50_000 // preset["batch_size"]
total = steps_per_epoch * preset["epochs"]
factor = train.warmup_cosine(total, round(preset["warmup_epochs"] * steps_per_epoch), preset["min_lr_ratio"])
plt.figure(figsize=(6, 2.5))
plt.plot([preset["lr"] * factor(s) for s in range(total)])
plt.xlabel("step")
plt.ylabel("learning rate")
plt.title(f"gpu preset: {preset['epochs']} epochs of {steps_per_epoch} steps")
plt.show()

# %% [markdown]
# ### 2.6 The rest of one step
#
# One training step (`train.train_step`) runs the model under **bf16 autocast** on a GPU with bfloat16 tensor cores
# (Ampere and newer: half the memory traffic, tensor cores; bfloat16 keeps float32's range, so no loss scaling is
# needed; on older GPUs such as the T4 and V100 the run takes float16 with a gradient scaler instead,
# `train.choose_precision`, and the run log says which and why), computes the smoothed
# cross-entropy in float32, and **clips the gradient norm** (5.0, as the reference code), which tames the rare
# spike that would otherwise throw a small transformer off course:

# %%
show_source(train.train_step, body_only=True)  # its signature lists the arguments named above

# %% [markdown]
# bf16 is not only a GPU matter, but on a CPU it is a gamble: with AMX, or on some CPUs with AVX512-BF16, autocast
# speeds up training; on others that have AVX512-BF16 but no AMX it is *slower* than float32. That is why the CPU
# presets measure instead of assuming (`bf16="auto"`, `wf_lessons.train.machine`). Measured here, one training step
# of the tiny quick-cpu models in float32 and under bf16 autocast:

# %%
from wf_lessons.complexity import time_fn

print("native bf16 on this CPU:", train.cpu_has_native_bf16())
batch = data.normalize(train_images[:64]).to(DEVICE)
for name in ("wf-cifar-tiny", "deit-cifar-tiny"):
    torch.manual_seed(0)
    net = build_model(name).to(DEVICE)
    opt = train.build_optimizer(net, 1e-3, 0.05)
    step_s = {bf16: time_fn(train.train_step, net, opt, batch, train_labels[:64].to(DEVICE), bf16=bf16, repeats=3)
              for bf16 in (False, True)}
    faster = "bf16" if step_s[True] < step_s[False] else "float32"
    print(f"{name:<16} float32 {step_s[False] * 1e3:6.1f} ms, bf16 {step_s[True] * 1e3:6.1f} ms per step of 64: "
          f"{faster} is faster here")

# %% [markdown]
# Around it, the loop (`train.train`) adds:
#
# - **drop-path** (`drop_path`): each residual branch is skipped for a random subset of the images, more often in
#   deeper blocks (a linear ramp); the network becomes an ensemble of shallower ones. WeightFormer drops only its MLP
#   branch, as the reference code does; DeiT drops both branches. It is `torchvision.ops.StochasticDepth`.
# - **EMA** of the weights (`ema_decay`): an exponential moving average of the parameters, evaluated instead of the
#   raw ones; it smooths the last steps' noise (`torch.optim.swa_utils.AveragedModel`).
# - **`torch.compile`** (`compile`): fuses the many small element-wise operations of a width-192 model, which are
#   bound by memory traffic, into fewer kernels. Compilation happens during the first steps, so the first epoch of
#   a compiled run is the slow one (the run logs time every epoch).
# - **flip test-time augmentation** (`tta_flip`): average the logits of each test image and its mirror image. The
#   headline numbers do not use it; the run log reports it separately when asked.
#
# ### 2.7 Two presets
#
# A preset is a named set of these switches; anything given explicitly wins. `quick-cpu` is made for two CPU cores
# and a few minutes, one run at a time (it may use both cores): a small model (`wf-cifar-tiny` or
# `deit-cifar-tiny`: patch 4, width 64, four blocks), few epochs, no heavy regularisation (a model that sees each
# image only a few times cannot overfit). `cpu` is the longest run a learner would make on a laptop:
# `wf-cifar-cpu` (six blocks, two of them dynamic) for 15 epochs on one thread, so that WeightFormer and DeiT
# train side by side on two cores. Both CPU presets say `"auto"` for bf16 (and `quick-cpu` for threads): a few
# steps of each candidate are timed at the start and the fastest wins, because bf16 autocast is faster than fp32
# on some CPUs and slower on others (section 2.6); the run log records the measurement. `gpu` is the headline
# recipe for one H100:

# %% tags=["nbval-check-output"]
names = ("quick-cpu", "cpu", "gpu")
keys = sorted(set().union(*(train.PRESETS[n] for n in names)), key=list(train.DEFAULTS).index)
print(f"{'setting':<22}{'default':>12}" + "".join(f"{n:>16}" for n in names))
for key in keys:
    print(f"{key:<22}{train.DEFAULTS[key]!s:>12}" + "".join(f"{train.PRESETS[n].get(key, '')!s:>16}" for n in names))

# %% [markdown]
# The `gpu` preset was designed from throughput estimates, without a GPU to measure on; the reasoning is stored
# with it, and `train.gpu_preset_estimate` recomputes the estimate from counted FLOPs and the assumed rates. These
# are estimates, not measurements: the GPU run logs will say how far off they are. The estimate assumes one GPU
# of the Hopper class (an H100, bf16 autocast, at the sustained rates printed below); an Ampere GPU (A100) also
# trains in bf16 but at lower rates, and a GPU from before Ampere (T4, V100) trains in float16 with a gradient
# scaler at far lower ones, so on those the estimate does not apply: `python -m wf_lessons.headline` measures the
# GPU it runs on and fits the epochs to it.

# %%
print(train.GPU_PRESET_REASONING)
print("\nassumed sustained rates on one H100:", train.GPU_ASSUMED_RATES)
for name in ("wf-cifar", "deit-cifar"):
    est = train.gpu_preset_estimate(name)
    print(f"{name:<11} {est['forward_gflops_per_image']:.2f} GFLOPs/image forward, "
          f"~{est['memory_mb_per_image']:.0f} MB moved per training image -> estimated {est['epoch_s']:.1f} s/epoch, "
          f"{est['train_s'] / 60:.1f} min for {est['epochs']} epochs")

# %% [markdown]
# ## 3. A live run
#
# `train.train(TrainConfig(...))` is the whole loop; it returns the run log, a dict. `write_log=False` keeps this
# exploratory run out of the committed logs, and its checkpoint goes to a temporary folder (section 5 uses it). In
# quick mode it is a tiny WeightFormer on a slice of the training set for a few steps: the point is to see the
# loop run, not the accuracy. Without quick mode it runs the whole `quick-cpu` recipe on a CPU, or a shortened
# `gpu` recipe on a GPU. `progress=False` turns off the progress bar and the epoch lines: in a notebook the bar is
# a widget (`tqdm.auto`), which would be stored in the notebook and which `TQDM_DISABLE` does not switch off there;
# the cell prints one line per epoch from the run log instead (the command line, `python -m wf_lessons.train`,
# shows both).

# %%
scratch = Path(tempfile.mkdtemp())  # the live run's checkpoint goes here, not into data/checkpoints
if QUICK:
    live_config = train.TrainConfig(
        model="wf-cifar-tiny", preset="quick-cpu", epochs=2, train_per_class=250, eval_per_class=50,
        device="cpu", write_log=False, checkpoint_dir=scratch, progress=False,
    )
elif DEVICE.type == "cuda":
    live_config = train.TrainConfig(model="wf-cifar", preset="gpu", epochs=10, write_log=False,
                                    checkpoint_dir=scratch, progress=False)
else:
    live_config = train.TrainConfig(preset="quick-cpu", write_log=False, checkpoint_dir=scratch, progress=False)
live = train.train(live_config)
for e in live["epochs"]:
    print(f"epoch {e['epoch']}/{live_config.epochs}: train loss {e['train_loss']:.4f} acc {e['train_acc']:.4f} | "
          f"test loss {e['test_loss']:.4f} acc {e['test_acc']:.4f}")
print(f"final test accuracy ({live['test_images']:,} test images): {live['test_acc']:.3f} "
      f"after {live['train_s']:.0f} s of training")

# %% [markdown]
# The run log holds everything about the run: the command (here the Python call), the git commit, the device, the
# torch version, the seed, the model's size and FLOPs, and one record per epoch. Its keys:

# %% tags=["nbval-check-output"]
print(sorted(live))
print("per epoch:", sorted(live["epochs"][0]))

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
epochs = [e["epoch"] for e in live["epochs"]]
for ax, quantity in zip(axes, ("loss", "acc")):
    for split in ("train", "test"):
        ax.plot(epochs, [e[f"{split}_{quantity}"] for e in live["epochs"]], "o-", label=split)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel({"loss": "loss", "acc": "accuracy"}[quantity])
    ax.legend()
plt.suptitle(f"live run: {live['model']}, {live['data']['train_images']:,} training images")
plt.tight_layout()
plt.show()

# %% [markdown]
# **Predict first (exercise 7).** Before you read section 4: the `cpu` preset trained three models of about the
# same size for 15 epochs on the whole training set, three seeds each: the WeightFormer `wf-cifar-cpu`, the same
# network with every block static (`dynamic_blocks=()`, no predicted weights at all: "all-static") and the DeiT
# `deit-cifar-cpu`. Which reaches the highest test accuracy, averaged over its seeds? Write your guess in the cell
# below; section 4 shows the runs, and exercise 7 reads the answer from their logs.

# %% tags=["predict"]
# answered in: 4. The committed runs, side by side
prediction_7 = None  # your guess: "wf-cifar-cpu", "all-static" or "deit-cifar-cpu"

# %% [markdown]
# ## 4. The committed runs, side by side
#
# The real runs are commands, and their run logs are committed under `data/runs/`. Each was made with one line,
# for example
#
# ```
# python -m wf_lessons.train --preset quick-cpu --model wf-cifar-tiny --seed 0
# python -m wf_lessons.train --preset quick-cpu --model deit-cifar-tiny --seed 0
# python -m wf_lessons.train --preset cpu --model wf-cifar-cpu --seed 0  # and deit-cifar-cpu: 15 epochs
# python -m wf_lessons.train --preset gpu --model wf-cifar --seed 0      # and deit-cifar; seeds 0, 1, 2
# ```
#
# Each ends by printing one line such as `test_acc=... epochs=... wall_s=...`; `--resume` continues an interrupted
# run from its last checkpoint, exactly. The cell below reads every training log it finds and prints, for each, the
# command that made it. At the time of writing the `quick-cpu` and `cpu` logs are committed (the `cpu` preset, 15
# epochs on one thread, also trained the all-static network that chapter 08 starts from; `quick-cpu` ran once with the
# precision its start-up measurement chose, bf16 on this machine, and once forced to float32 with `--no-bf16`,
# which is what the measurement picks on a CPU where bf16 is slower): **the `gpu` runs have not been
# made yet** (no GPU was available), and the cell says so until their logs exist; then it plots them too.
#
# For the GPU runs there are two helpers. `python -m wf_lessons.train --preset gpu --dry-run` runs the preset's
# whole code path (compile, bf16, every augmentation, evaluation, checkpoint, stop and resume) at toy size for a
# few steps, on any device, so that a bug cannot waste a GPU session; the course's tests run it on a CPU. And
# `python -m wf_lessons.headline`, on a machine with a CUDA GPU, measures both models' throughput with the
# preset's settings, fits the number of epochs to a time budget (5 minutes of `wf-cifar` training by default),
# trains both models for three seeds as resumable runs and prints one table.

# %%
logs = [runlog.read(p) for p in sorted(glob.glob(str(config.runs_dir() / "train-*.json")))]
logs = [log for log in logs if log.get("kind") == "train"]
by_preset: dict[str, list[dict]] = {}
for log in logs:
    by_preset.setdefault(log["config"]["preset"] or "custom", []).append(log)
print(f"{'run':<44}{'device':<28}{'params':>10}{'GFLOPs':>8}{'epochs':>7}{'test acc':>10}{'train s':>9}{'wall s':>8}")
for log in logs:
    wall = log["process_wall_s"] or log["wall_s"]
    print(f"{log['run_name']:<44}{log['device'][:27]:<28}{log['parameters']:>10,}{log['flops_per_image'] / 1e9:>8.3f}"
          f"{log['epochs_done']:>7}{log['test_acc']:>10.4f}{log['train_s']:>9.0f}{wall:>8.0f}")
for log in logs:
    dirty = (f", with local changes to {', '.join(log['git_dirty'])}" if log.get("git_dirty")
             else "" if "git_dirty" in log else " (older log: '-dirty' marks uncommitted changes)")
    print(f"  {log['run_name']}: {log['command']}  (commit {log['git_commit']}{dirty})")
if "gpu" not in by_preset:
    print("\ngpu preset: no run logs yet — the GPU runs are pending (see the README for their status).")

# %% [markdown]
# Accuracy against epochs compares what each model makes of the same number of looks at the data; accuracy
# against training time compares what each makes of the same budget. (The per-epoch points of `quick-cpu` are on
# 1,000 test images to save time; the final accuracy in the table above uses all 10,000.)

# %%
def run_group(log: dict) -> str:
    """A run's name without its prefix and seed: model, variant and preset (one colour per group)."""
    return log["run_name"].removeprefix("train-").rsplit("-seed", 1)[0]


for preset_name, runs in by_preset.items():
    groups: dict[str, list[dict]] = {}
    for log in sorted(runs, key=lambda log: (run_group(log), log["seed"])):
        groups.setdefault(run_group(log), []).append(log)
    train.plot_curves(groups, f"preset {preset_name} — on {runs[0]['device']}")  # one colour per group
    plt.show()

# %% [markdown]
# ## 5. Where the model goes wrong
#
# A single accuracy hides which classes are confused with which. The confusion matrix counts, for every true class
# (rows), what the model predicted (columns). We inspect the trained WeightFormer that ships with the package,
# `wf_lessons.pretrained.load("wf-cifar-cpu")`: the `cpu` preset's run of section 4 (its manifest names the run
# log). Your own runs' checkpoints load the same way with `train.load_model(path)`.

# %%
from wf_lessons import pretrained

inspected = pretrained.load("wf-cifar-cpu", device=DEVICE)
meta = pretrained.manifest("wf-cifar-cpu")
source = f"shipped model wf-cifar-cpu, {meta['test_acc']:.1%} on the whole test set (run log {meta['run_log']})"
print("model inspected:", source)
# in quick mode a balanced subset of the test set (200 per class), in a seeded random order
subset_images, subset_labels = data.cifar10("test", per_class=200 if QUICK else None)
order = torch.randperm(len(subset_labels), generator=torch.Generator().manual_seed(0))
subset_images, subset_labels = subset_images[order], subset_labels[order]
n_eval = len(subset_labels)
eval_loader = data.DeviceLoader(subset_images, subset_labels, 500, train=False, device=DEVICE)
logits, truth = train.predict(inspected, eval_loader)
predicted = logits.argmax(1)
confusion = torch.zeros(10, 10, dtype=torch.long)
confusion.index_put_((truth, predicted), torch.ones_like(truth), accumulate=True)
print(f"accuracy on {n_eval:,} test images: {(predicted == truth).float().mean():.3f}")

# %%
plt.figure(figsize=(5.5, 5))
plt.imshow(confusion, cmap="Blues")
for i in range(10):
    for j in range(10):
        plt.text(j, i, int(confusion[i, j]), ha="center", va="center", fontsize=7,
                 color="white" if confusion[i, j] > confusion.max() / 2 else "black")
plt.xticks(range(10), data.CLASSES, rotation=60, fontsize=8)
plt.yticks(range(10), data.CLASSES, fontsize=8)
plt.xlabel("predicted")
plt.ylabel("true")
plt.title(f"confusion matrix ({source.split(' (')[0]})", fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# The most confident mistakes are worth a look: some are the model's fault, some are ambiguous or mislabelled
# images.

# %%
probabilities = logits.softmax(1)
confidence = probabilities.max(1).values
wrong = torch.nonzero(predicted != truth).flatten()
worst = wrong[confidence[wrong].argsort(descending=True)[:12]]
fig, axes = plt.subplots(2, 6, figsize=(10, 4))
for ax, i in zip(axes.flat, worst.tolist()):
    ax.imshow(subset_images[i].permute(1, 2, 0))
    ax.set_title(f"#{i}: {data.CLASSES[predicted[i]]} {confidence[i]:.2f}\n(true: {data.CLASSES[truth[i]]})",
                 fontsize=7)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 6. What WeightFormer predicts for one image
#
# Every dynamic block of a WeightFormer predicts, from the image in hand, a correction Ŵ to its first MLP weight
# (C×4C, chapter 02) and to its 3×3 depthwise kernels (chapter 03). `models.predicted_weights(model, images)`
# returns, per dynamic block, the weights actually applied: `W0 + Ŵ` and `K0 + K̂`. Subtracting the static parts
# shows what the image changed. Pick a test image and a dynamic block below: the figure just below the code is the
# first state (image 0, the first dynamic block), which static copies of the notebook show too; in JupyterLab each
# change of the controls redraws the figure under them.

# %%
import ipywidgets as widgets

from wf_lessons.interactive import figure_controls

assert isinstance(inspected, WeightFormer)
dynamic = list(inspected.dynamic_blocks)


def show_prediction(index: int = 0, block: int = dynamic[0]) -> None:
    """Test image ``index``, the model's top-5 prediction, and what it changed in dynamic block ``block``: K̂ of
    the first 16 depthwise kernels and the linear layer's Ŵ."""
    image = data.normalize(subset_images[index : index + 1]).to(DEVICE)
    layer = inspected.blocks[block]
    with torch.no_grad():
        probs = inspected(image).softmax(1)[0].cpu()
        weights = predicted_weights(inspected, image)[block]
        w_hat = (weights["linear"][0] - layer.linear1.static_weight()).cpu()  # (C, 4C): Ŵ for this image
        kernels = weights["dwc"][0].cpu()  # (C, 3, 3): K0 + K̂
        k_hat = kernels - layer.dwc.static_kernel.squeeze(1).cpu()  # (C, 3, 3): K̂ for this image
    fig, axes = plt.subplots(1, 4, figsize=(13.5, 3.3), width_ratios=[1, 1.2, 1.2, 2.6], layout="constrained")
    axes[0].imshow(subset_images[index].permute(1, 2, 0))
    axes[0].set_title(f"#{index}: true {data.CLASSES[subset_labels[index]]}", fontsize=9)
    axes[0].axis("off")
    top = probs.argsort(descending=True)[:5]
    axes[1].barh([data.CLASSES[i] for i in top.tolist()][::-1], probs[top].tolist()[::-1])
    axes[1].set_xlim(0, 1)
    axes[1].set_xlabel("probability")
    axes[1].set_title("prediction (top 5)", fontsize=9)
    c = kernels.shape[0]
    side = 4 if c >= 16 else 2  # a side × side grid of 3×3 kernels
    show = side * side
    tiles = k_hat[:show].reshape(side, side, 3, 3).permute(0, 2, 1, 3).reshape(3 * side, 3 * side)
    limit = k_hat[:show].abs().max()
    shown = axes[2].imshow(tiles, cmap="RdBu_r", vmin=-limit, vmax=limit)
    for x in range(3, 3 * side, 3):  # white lines between the 3×3 kernels
        axes[2].axvline(x - 0.5, color="white", lw=2)
        axes[2].axhline(x - 0.5, color="white", lw=2)
    fig.colorbar(shown, ax=axes[2], shrink=0.9, label="tap value")
    axes[2].set_title(f"block {block}: K̂ of DWC channels 0–{show - 1}\n(3×3 each, row by row)", fontsize=9)
    axes[2].axis("off")
    limit = w_hat.abs().max()
    shown = axes[3].imshow(w_hat, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
    fig.colorbar(shown, ax=axes[3], shrink=0.9, label="weight entry")
    axes[3].set_title(f"block {block}: Ŵ ({c} inputs × {w_hat.shape[1]} outputs)", fontsize=9)
    axes[3].set_xlabel("output feature")
    axes[3].set_ylabel("input channel")
    plt.show()


figure_controls(show_prediction, {
    "index": widgets.IntSlider(value=0, min=0, max=n_eval - 1, description="test image"),
    "block": widgets.Dropdown(options=dynamic, value=dynamic[0], description="dynamic block",
                              style={"description_width": "initial"}),
})

# %% [markdown]
# Different images get different kernels and weights: that is the whole idea of the model. For two images, one
# weight matrix and one set of kernels each, per dynamic block:

# %%
with torch.no_grad():
    probe = predicted_weights(inspected, data.normalize(subset_images[:2]).to(DEVICE))
block0 = probe[dynamic[0]]
c = inspected.blocks[dynamic[0]].linear1.in_features
print("dynamic blocks:", dynamic)
print("linear weight per image:", tuple(block0["linear"].shape), "= (B, C, 4C) with C =", c)
print("DWC kernels per image:  ", tuple(block0["dwc"].shape), "= (B, C, 3, 3)")
print("two images get different kernels:", not torch.allclose(block0["dwc"][0], block0["dwc"][1]))

# %% [markdown]
# ## Summary
#
# **Main result:** under the `cpu` preset (15 epochs on all 50,000 training images with crops, flips and label
# smoothing, one CPU thread per run, seeds 0, 1 and 2, test accuracy on all 10,000 test images without TTA), the
# WeightFormer `wf-cifar-cpu` reaches 77.67–77.96%, an all-static network (`dynamic_blocks=()`) 80.47–81.07% and
# the DeiT `deit-cifar-cpu` 69.88–71.24% (section 4's committed logs): at this scale both convolutional networks
# beat the DeiT. The all-static network is ahead of the WeightFormer, but it is not the same network without
# prediction (no `norm1` overwrite, another kernel initialisation, 23% fewer parameters, faster steps), and these
# runs chose nothing on held-out data; chapter 08 takes the gap apart with controls that each change one thing.
# There, on a held-out validation split with five paired seeds, the gap sits on the prediction itself, not on the
# block structure or the initialisation, and the predicting networks fit the training images less well.
# The `gpu` runs of the ≈5M-parameter models are pending.
#
# - The whole of CIFAR-10 fits on the device as uint8 tensors; batches are cut, cropped, flipped, RandAugmented,
#   erased and mixed there as batched tensor ops, from generators seeded per epoch.
# - One recipe trains both models: label-smoothed cross-entropy, AdamW without decay on 1-D parameters, warm-up
#   then cosine per step, gradient clipping, drop-path, optional EMA, bf16 autocast and `torch.compile` on a GPU,
#   optional flip TTA. The presets `quick-cpu` and `gpu` are named sets of these switches.
# - `python -m wf_lessons.train` writes an atomic checkpoint every epoch (Ctrl-C keeps the last good one;
#   `--resume` continues exactly) and a run log with the command, commit, device, versions, seed, model size and
#   FLOPs, per-epoch metrics and wall times. Every number of this chapter's comparison comes from those logs.
# - The `quick-cpu` and `cpu` runs of section 4 compare the models on a CPU; the `gpu` runs, the headline
#   comparison, are pending.
# - Looking inside: a confusion matrix and the confident mistakes show what the model confuses; `predicted_weights`
#   shows that every image gets its own MLP weights and convolution kernels.
#
# ## Exercises
#
# Each exercise has a cell that computes the answer (a stub with a hint in the student copy, `chapters/student/`)
# and a cell that checks it with `ch07.check_exercise(number, answer)`.
#
# 1. How many optimizer steps does the `gpu` preset take in a whole run on the 50,000 training images, and how
#    many of them are warm-up? Answer with a pair `(total, warmup)`, from `train.PRESETS["gpu"]` and what section 2.1
#    says about the last batch.
# 2. With label smoothing ε = 0.1 over 10 classes, what is the smallest training loss a model can reach (the best
#    possible prediction for every image)? Why does the training loss of the live run never approach 0?
# 3. Write `flip_tta_logits(model, images)` returning the flip test-time-augmented logits `(B, K)` of a batch
#    `(B, 3, H, W)`, without `train.predict`.
# 4. How many parameters (scalars, not tensors) of `wf-cifar` get no weight decay from `train.build_optimizer`?
# 5. **Change a hyper-parameter, predict, measure.** Double the `cpu` preset's batch size, from 128 to 256. Before
#    measuring, say what happens to the number of optimizer steps per epoch and in the whole 15-epoch run, and
#    what that means for the warm-up (one epoch) and for how often the weights move. Then measure with the package:
#    build the training loader (`data.DeviceLoader(..., batch_size=256, train=True)`) and answer with the pair
#    `(steps per epoch, steps in the whole run)`.
# 6. **Build it.** Write `lr_factor(step, total_steps, warmup_steps, min_ratio)`, the learning-rate multiplier of
#    section 2.5 at optimizer step `step` (counted from 0): a linear warm-up that reaches 1 at the end of the
#    warm-up (the first step already uses `1/warmup_steps`), then a cosine from 1 down to `min_ratio` at the last
#    step. The checker compares it, step by step, with `train.warmup_cosine` for several schedules.
# 7. **Predicted before section 4, now measured.** You wrote your guess in `prediction_7` before section 4. From
#    the committed `cpu`-preset run logs (`logs` of section 4), compute each model's mean test accuracy over its
#    seeds and give the name of the best: `"wf-cifar-cpu"`, `"all-static"` (the WeightFormer with
#    `dynamic_blocks=()`) or `"deit-cifar-cpu"`.

# %%
from wf_lessons.exercises import ch07

# %% tags=["solution"]
# hint: the loader drops the last partial batch: 50,000 // batch_size steps per epoch; warm-up is warmup_epochs of them
answer_1 = (steps_per_epoch * preset["epochs"], round(preset["warmup_epochs"] * steps_per_epoch))

# %% tags=["nbval-check-output"]
ch07.check_exercise(1, answer_1)

# %% tags=["solution"]
# hint: the best prediction is the smoothed target itself; the loss is then that target's entropy
# −(0.91·log 0.91 + 9·0.01·log 0.01). A training loss can never go below it (and mixing raises the floor).
p_true, p_other = 1 - eps + eps / 10, eps / 10
answer_2 = -(p_true * math.log(p_true) + 9 * p_other * math.log(p_other))

# %% tags=["nbval-check-output"]
ch07.check_exercise(2, answer_2)

# %% tags=["solution"]
# hint: in eval mode, average the logits of the batch and of the batch mirrored left-right (images.flip(-1))
def flip_tta_logits(model, images):
    model.eval()
    with torch.no_grad():
        return (model(images) + model(images.flip(-1))) / 2


answer_3 = flip_tta_logits

# %% tags=["nbval-check-output"]
ch07.check_exercise(3, answer_3)

# %% tags=["solution"]
# hint: train.build_optimizer returns two parameter groups; sum numel() over the one without weight decay
torch.manual_seed(0)
_, no_decay = train.build_optimizer(build_model("wf-cifar"), 1e-3, 0.05).param_groups
answer_4 = sum(p.numel() for p in no_decay["params"])

# %% tags=["nbval-check-output"]
ch07.check_exercise(4, answer_4)

# %% tags=["solution"]
# hint: len(data.DeviceLoader(train_images, train_labels, 256, train=True)) is the number of steps per epoch
loader_256 = data.DeviceLoader(train_images, train_labels, 256, train=True)
answer_5 = (len(loader_256), len(loader_256) * train.PRESETS["cpu"]["epochs"])
print(answer_5, "against", (len(train_images) // 128, len(train_images) // 128 * train.PRESETS["cpu"]["epochs"]),
      "at batch 128")

# %% tags=["nbval-check-output"]
ch07.check_exercise(5, answer_5)

# %% tags=["solution", "build"]
# hint: warm-up: (step + 1) / warmup_steps; then progress p from 0 to 1 over the rest, min + (1 - min)·(1 + cos πp)/2
def lr_factor(step, total_steps, warmup_steps, min_ratio):
    if step < warmup_steps:
        return (step + 1) / warmup_steps  # linear: 1/warmup_steps at step 0, 1 at the last warm-up step
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))  # 0 -> 1 after the warm-up
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


answer_6 = lr_factor

# %% tags=["nbval-check-output"]
ch07.check_exercise(6, answer_6)

# %% tags=["solution"]
# hint: group the cpu-preset logs by model (an override dynamic_blocks=[] is the all-static control), average test_acc
accuracy: dict[str, list[float]] = {}
for log in by_preset.get("cpu", []):
    static = log.get("model_overrides", {}).get("dynamic_blocks") == []
    accuracy.setdefault("all-static" if static else log["model"], []).append(log["test_acc"])
means = {name: sum(values) / len(values) for name, values in accuracy.items()}
for name, mean in means.items():
    print(f"{name:<15} {len(accuracy[name])} seeds, mean test accuracy {mean:.2%}")
answer_7 = max(means, key=means.get)

# %% tags=["nbval-check-output"]
ch07.check_prediction(7, prediction_7)
ch07.check_exercise(7, answer_7)

# %% [markdown]
# ## References
#
# - R. He, D. Han, G. Huang. *Linear-Time Global Visual Modeling without Explicit Attention*. arXiv 2605.01711
#   (2026); reference code github.com/LeapLabTHU/WeightFormer (its ImageNet training recipe). The course's notes:
#   [paper_notes.md](paper_notes.md).
# - H. Touvron et al. *Training data-efficient image transformers & distillation through attention* (DeiT).
#   ICML 2021, arXiv 2012.12877 (the recipe: AdamW, warm-up, cosine, label smoothing, mixup/cutmix, drop-path).
# - A. Dosovitskiy et al. *An Image is Worth 16x16 Words* (ViT). ICLR 2021, arXiv 2010.11929.
# - CIFAR-10 anchors quoted in section 1: A. Hassani et al. *Escaping the Big Data Paradigm with Compact
#   Transformers* (CCT), arXiv 2104.05704; S. H. Lee, S. Lee, B. C. Song. *Vision Transformer for Small-Size
#   Datasets* (SPT + LSA), arXiv 2112.13492; A. Trockman, J. Z. Kolter. *Patches Are All You Need?* (ConvMixer),
#   arXiv 2201.09792; K. Jordan. *airbench* (github.com/KellerJordan/cifar10-airbench); github.com/omihub777/ViT-CIFAR.
# - I. Loshchilov, F. Hutter. *Decoupled Weight Decay Regularization* (AdamW). ICLR 2019, arXiv 1711.05101; and
#   *SGDR: Stochastic Gradient Descent with Warm Restarts* (cosine schedule). ICLR 2017, arXiv 1608.03983.
# - C. Szegedy et al. *Rethinking the Inception Architecture* (label smoothing). CVPR 2016, arXiv 1512.00567.
# - A. Krizhevsky. *Learning Multiple Layers of Features from Tiny Images* (CIFAR-10), 2009.
# - PyTorch: `torch.optim.AdamW`, `torch.optim.lr_scheduler`, `torch.nn.functional.cross_entropy`
#   (`label_smoothing`), `torch.autocast` (bf16), `torch.compile`; `ipywidgets` (`IntSlider`, `Dropdown`, `Output`).

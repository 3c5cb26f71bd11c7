# %% [markdown]
# # 00 · Introduction: global modelling without explicit attention
#
# [Open in Colab](https://colab.research.google.com/github/wf-lessons/wf-lessons/blob/main/chapters/00_introduction.ipynb) (its first code cell installs the course there)
#
# This course teaches one idea, from first principles to a trained model. It is the idea of the WeightFormer paper,
# *"Linear-Time Global Visual Modeling without Explicit Attention"* (R. He, D. Han, G. Huang, arXiv 2605.01711):
#
# > Softmax attention is a two-layer MLP whose weights are **predicted from the input**. Its global power comes
# > from those predicted weights, not from comparing every token with every other. So predict weights of a
# > **fixed size** instead (a C×4C matrix, a C×3×3 kernel), and global modelling costs time *linear* in the
# > number of tokens.
#
# In this chapter you will
#
# 1. see the question the course answers and the road map to the answer;
# 2. check that your machine is ready (versions, device, quick mode, data);
# 3. learn how to run the course on a laptop (quick mode) or on one GPU;
# 4. take a first look at the data the later chapters train on.

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

# %% [markdown]
# ## The question, in plain words
#
# A Vision Transformer cuts an image into N patches ("tokens") and lets every token look at every other through
# softmax attention. That is what makes it *global*: the output at one token can depend on any pixel of the
# image. It is also what makes it expensive: the N×N attention matrix grows with the square of N, so doubling the
# image side multiplies N by 4 and the attention cost by 16.
#
# Convolutional networks are cheap (linear in N) but *local*: a 3×3 kernel is the same everywhere and sees only its
# neighbours. WeightFormer asks whether there is a third way: layers whose **weights are computed from the whole
# image** (so every output can depend on every pixel) but whose cost is linear in N. Chapter 01 shows that softmax
# attention is already such a "dynamic" layer, only with weights whose size grows with N. Chapters 02 and 03 build
# the fixed-size alternatives; 04 assembles them into the model and 05 measures what it costs; 06 checks that they
# really see the whole image; 07 and 08 train them.

# %% [markdown]
# ## Road map
#
# | # | chapter | what you build | package module |
# |---|---|---|---|
# | 00 | introduction | this check-up | `config`, `envcheck` |
# | 01 | attention is an MLP with predicted weights | the derivation, checked numerically; costs | `attention`, `complexity` |
# | 02 | dynamic linear layers | every weight predictor of the paper | `dynamic_linear` |
# | 03 | dynamic depthwise convolutions | every kernel predictor of the paper | `dynamic_dwconv` |
# | 04 | the WeightFormer architecture | the block and its quirks, the model, a DeiT baseline, checkpoints | `models` |
# | 05 | cost and scaling | parameters and FLOPs against DeiT, the FLOP crossover, time and memory against N | `bench` |
# | 06 | effective receptive fields | the paper's Fig. 3 on CIFAR-10 models | `erf` |
# | 07 | training on CIFAR-10 | WeightFormer against a same-size DeiT (CPU presets; one GPU for the headline) | `data`, `train`, `headline` |
# | 08 | does predicting weights help? | a fair ablation: controls that each change one thing, a validation split, paired seeds with intervals | `ablate`, `pretrained` |
#
# Everything a later chapter reuses lives once in the package `wf_lessons`, with tests; a chapter derives a thing
# inline to teach it, then shows that the package version agrees. Your own coursework can `import wf_lessons`.
# The symbols the chapters share (N tokens on an H×W grid, C channels, D outputs, the static weight W0 and the
# normalised prediction Ŵ, the kernels K0 and K̂, ...) are collected, with their shapes, in the
# [notation table](paper_notes.md#notation) of the course's paper notes.

# %% [markdown]
# ## Is this machine ready?
#
# `wf_lessons.envcheck.print_report()` lists the versions the course uses, the device PyTorch will compute on,
# whether quick mode is on and whether CIFAR-10 is in the data folder.

# %%
from wf_lessons import envcheck

envcheck.print_report()

# %% [markdown]
# Every switch of the course is read in one place, `wf_lessons.config`. These are its public functions:

# %%
import inspect

from wf_lessons import config

for name in ("quick", "data_dir", "device", "seed_everything"):
    print(f"config.{name}{inspect.signature(getattr(config, name))}\n    {inspect.getdoc(getattr(config, name)).splitlines()[0]}")

# %% [markdown]
# ## How to run the course
#
# **On a laptop (CPU).** Set quick mode: `WF_QUICK=1 make lab`. Every chapter then shrinks its data, steps and
# models so it runs on two CPU cores in a minute or two; the prose says what the full run gives and where its
# committed run log is (`data/runs/*.json`). The tests (`make test`) always run in quick mode.
#
# **On one GPU.** `make lab` without quick mode. Chapters never run anything longer than a few minutes themselves:
# long trainings are commands (`python -m wf_lessons.train ...`) whose run logs and checkpoints the chapters load.
# Each chapter prints the exact command that produced the numbers it shows.
#
# **The data.** `make data` downloads CIFAR-10 with torchvision when you are online. Offline, an image-folder
# archive works too: `make data CIFAR10_ARCHIVE=path/to/cifar10-jpg.tar.gz`. Either way the images are decoded
# once into a cached tensor file; `wf_lessons.data.cifar10(split)` returns them as tensors.

# %% [markdown]
# ## A first look at CIFAR-10
#
# 60,000 colour images of 32×32 pixels in 10 classes: 50,000 for training, 10,000 for testing. `cifar10` returns
# uint8 images `(N, 3, 32, 32)` and int64 labels `(N,)`; `per_class` takes a small balanced subset.

# %% tags=["nbval-check-output"]
from wf_lessons.data import CLASSES, cifar10

images, labels = cifar10("test", per_class=8)
print("images:", tuple(images.shape), images.dtype, " labels:", tuple(labels.shape), labels.dtype)
print("per class:", labels.bincount().tolist())

# %%
import matplotlib.pyplot as plt

fig, axes = plt.subplots(4, 10, figsize=(10, 4.4))
for c, name in enumerate(CLASSES):
    for row, image in enumerate(images[labels == c][:4]):
        ax = axes[row, c]
        ax.imshow(image.permute(1, 2, 0))  # (3, 32, 32) -> (32, 32, 3) for matplotlib
        ax.set_xticks([]), ax.set_yticks([])
    axes[0, c].set_title(name, fontsize=9)
fig.suptitle("CIFAR-10 test images, four per class")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## From pixels to tokens
#
# The models of this course cut each image into non-overlapping p×p patches and embed each patch as a token, so
# a 32×32 image gives (32/p)² tokens. Two patch sizes appear on CIFAR-10:
#
# - **p = 4, 64 tokens on an 8×8 grid: every model the course has trained.** The training was done on a two-core
#   CPU, and a quarter of the tokens means a quarter of the work in every per-token layer. `wf-cifar-tiny` and
#   `deit-cifar-tiny` (width 64, four blocks) train in minutes (preset `quick-cpu`); `wf-cifar-cpu` and
#   `deit-cifar-cpu` (width 64, six and five blocks) train for 15 epochs (preset `cpu`, the longest run meant for
#   a laptop); three of its seed-0 runs (WeightFormer, the same model with every block static, DeiT) ship with
#   the package (`wf_lessons.pretrained`) for chapters 06 and 07. `wf-cifar-study` (width 64, four blocks) is the
#   model of chapter 08's predictor study.
# - **p = 2, 256 tokens on a 16×16 grid: `wf-cifar` and `deit-cifar`**, the ≈5M-parameter models that chapter 04
#   sizes for one GPU (strong small CIFAR-10 transformers use patch 2 to 4, see the [paper notes](paper_notes.md),
#   "CIFAR-10 anchors"). **They have not been trained yet**: no GPU has been available to the course so far
#   (chapter 07 gives the command). They are used where no training is needed: chapter 04 counts their parameters,
#   chapter 05 their FLOPs and how their time and memory grow with the number of tokens, and chapter 06 computes
#   their theoretical receptive field.
#
# `envcheck.tokens` does the arithmetic, with a clear error when the image size is not a multiple of the patch:

# %% tags=["nbval-check-output"]
for size, patch in [(32, 2), (32, 4), (224, 16), (448, 16)]:
    print(f"{size}x{size} image, patch {patch:>2}: {envcheck.tokens(size, patch):>4} tokens")
try:
    envcheck.tokens(32, 3)
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# ## Summary
#
# **Main result:** the machine that ran this notebook is ready for the course (the report above lists its versions,
# device and data), and CIFAR-10 arrives as uint8 images `(N, 3, 32, 32)` with int64 labels, which every trained
# model of the course cuts into 64 tokens (patch 4).
#
# - The course asks whether global visual modelling needs explicit N×N attention, and answers with layers whose
#   weights are predicted from the whole input at a fixed size: linear cost, global reach.
# - `wf_lessons.config` holds every switch (quick mode, data folder, device, seeding); `envcheck` tells whether a
#   machine is ready.
# - Quick mode (`WF_QUICK=1`) runs every chapter on a laptop; long runs are commands with committed run logs.
# - CIFAR-10 arrives as uint8 tensors. Every trained model of the course uses patch 4 (64 tokens per 32×32
#   image); the ≈5M-parameter `wf-cifar` and `deit-cifar` use patch 2 (256 tokens) and are not trained yet.
#
# ## Exercises
#
# Each exercise has a cell that computes the answer (in the student copy, `chapters/student/`, it is a stub with a
# hint for you to replace) and a cell that checks it with `wf_lessons.exercises.ch00.check_exercise`.
#
# 1. How many tokens does a 32×32 CIFAR-10 image give with patch size 2?
# 2. How many tokens does a 224×224 ImageNet image give with patch size 16?
# 3. By what factor does the number of entries of the N×N attention matrix grow from 224 px to 448 px (patch 16)?

# %%
from wf_lessons.exercises import ch00

# %% tags=["solution"]
# hint: envcheck.tokens(image_size, patch_size) counts the patches of a square image
answer_1 = envcheck.tokens(32, 2)

# %% tags=["nbval-check-output"]
ch00.check_exercise(1, answer_1)

# %% tags=["solution"]
# hint: the same function, at ImageNet's resolution and patch size
answer_2 = envcheck.tokens(224, 16)

# %% tags=["nbval-check-output"]
ch00.check_exercise(2, answer_2)

# %% tags=["solution"]
# hint: the matrix has N² entries; doubling the image side multiplies N by 4
answer_3 = (envcheck.tokens(448, 16) / envcheck.tokens(224, 16)) ** 2

# %% tags=["nbval-check-output"]
ch00.check_exercise(3, answer_3)

# %% [markdown]
# ## References
#
# - R. He, D. Han, G. Huang. *Linear-Time Global Visual Modeling without Explicit Attention*. arXiv 2605.01711
#   (2026); reference code: github.com/LeapLabTHU/WeightFormer. The course's own notes on both:
#   [paper_notes.md](paper_notes.md).
# - A. Dosovitskiy et al. *An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale* (ViT).
#   ICLR 2021, arXiv 2010.11929.
# - H. Touvron et al. *Training data-efficient image transformers & distillation through attention* (DeiT).
#   ICML 2021, arXiv 2012.12877.
# - A. Krizhevsky. *Learning Multiple Layers of Features from Tiny Images* (CIFAR-10). Technical report, 2009.
# - torchvision's `torchvision.datasets.CIFAR10` (the download behind `make data`); `matplotlib.pyplot.imshow`.

# %% [markdown]
# # 00 · Introduction: global modelling without explicit attention
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
# the fixed-size alternatives; 04 assembles them into the model; 05 checks that they really see the whole image;
# 06 and 07 train them.

# %% [markdown]
# ## Road map
#
# | # | chapter | what you build | package module |
# |---|---|---|---|
# | 00 | introduction | this check-up | `config`, `envcheck` |
# | 01 | attention is an MLP with predicted weights | the derivation, checked numerically; costs | `attention`, `complexity` |
# | 02 | dynamic linear layers | every weight predictor of the paper | `dynamic_linear` |
# | 03 | dynamic depthwise convolutions | every kernel predictor of the paper | `dynamic_dwconv` |
# | 04 | the WeightFormer architecture | the model, a DeiT baseline, linear scaling measured | `models`, `bench` |
# | 05 | effective receptive fields | the paper's Fig. 3 on CIFAR-10 models | `erf` |
# | 06 | training on CIFAR-10 | WeightFormer against a same-size DeiT on one GPU | `data`, `train` |
# | 07 | which predictor matters | ablations on CIFAR-10 (not written yet) | `train` |
#
# Everything a later chapter reuses lives once in the package `wf_lessons`, with tests; a chapter derives a thing
# inline to teach it, then shows that the package version agrees. Your own coursework can `import wf_lessons`.

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
# a 32×32 image gives (32/p)² tokens. On CIFAR-10 the course uses p = 2: 256 tokens on a 16×16 grid, the regime
# where small vision transformers do well. `envcheck.tokens` does the arithmetic, with a clear error when the
# image size is not a multiple of the patch:

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
# - The course asks whether global visual modelling needs explicit N×N attention, and answers with layers whose
#   weights are predicted from the whole input at a fixed size: linear cost, global reach.
# - `wf_lessons.config` holds every switch (quick mode, data folder, device, seeding); `envcheck` tells whether a
#   machine is ready.
# - Quick mode (`WF_QUICK=1`) runs every chapter on a laptop; long runs are commands with committed run logs.
# - CIFAR-10 arrives as uint8 tensors; with patch 2 a 32×32 image is 256 tokens.
#
# ## Exercises
#
# Check each answer with `envcheck.check_exercise(number, answer)`.
#
# 1. How many tokens does a 32×32 CIFAR-10 image give with patch size 2?
# 2. How many tokens does a 224×224 ImageNet image give with patch size 16?
# 3. By what factor does the number of entries of the N×N attention matrix grow from 224 px to 448 px (patch 16)?

# %%
print(envcheck.check_exercise(1, 0))  # replace 0 with your answer

# %% [markdown]
# ### Solutions
#
# Run the cell below to see the answers checked.

# %% tags=["nbval-check-output"]
print(envcheck.check_exercise(1, envcheck.tokens(32, 2)))
print(envcheck.check_exercise(2, envcheck.tokens(224, 16)))
print(envcheck.check_exercise(3, (envcheck.tokens(448, 16) / envcheck.tokens(224, 16)) ** 2))

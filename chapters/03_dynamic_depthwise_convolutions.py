# %% [markdown]
# # 03 · Dynamic depthwise convolutions: every kernel predictor
#
# [Open in Colab](https://colab.research.google.com/github/wf-lessons/wf-lessons/blob/main/chapters/03_dynamic_depthwise_convolutions.ipynb) (its first code cell installs the course there)
#
# Chapter 02 predicted the weight of a linear layer from the whole image. WeightFormer does the same for the other
# layer of its dynamic blocks, a **3×3 depthwise convolution**: each image gets its own C kernels of size 3×3,
# computed from the image itself. The kernel has a fixed size (C×3×3, whatever the image size), so the layer stays
# linear in the number of pixels, yet every output pixel can depend on every input pixel.
#
# In this chapter you will
#
# 1. start from a static depthwise conv and see what "local and the same everywhere" means, numerically;
# 2. apply the template of every dynamic layer, the kernels `K0 + K̂` with `K̂ = K̃/(‖K̃‖_F + 1)`, to convolution
#    kernels;
# 3. derive the paper's released layer (`adaptive`) inline, line by line, check it against the package, and see how
#    one grouped convolution applies a different kernel to every image;
# 4. see why the 3×3 pooling bins of `AdaptiveAvgPool2d(3)` overlap on 32×32 and 64×64 maps;
# 5. meet the four predictors as four answers to one question: *where does each tap's information come from?*;
# 6. look at the kernels predicted for real CIFAR-10 images, count parameters and FLOPs, and explore with a widget.
#
# **Which definitions are the paper's.** `adaptive` ("spatially adaptive prediction") is the paper's released layer
# (class `DynCnn` in the reference code; [paper notes](paper_notes.md), "The released dynamic depthwise convolution"), reproduced exactly. The paper only *names* the other
# strategies (GAP, Amp-Dir, Conv); `gap`, `amp_dir` and `conv` as defined here are the course's reconstruction.
# `static` is a plain `nn.Conv2d(C, C, 3, padding=1, groups=C)`.
#
# Symbols follow the course's [notation table](paper_notes.md#notation): K0 the static kernels, K̃ the raw
# prediction, K̂ the normalised one, each C×3×3 per image.
#
# Everything reusable lives in `wf_lessons.dynamic_dwconv`. Nothing here is trained: the predictors have their
# initial (random) weights, so the kernels you will see show what the layer *can* respond to, not what a trained
# network has learned. The chapter is the same in quick mode and in a full run: it trains nothing, and its largest
# computation is a small timing run (section 3).

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

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle
from torch import nn

from wf_lessons import config
from wf_lessons import dynamic_dwconv as dd
from wf_lessons.dynamic_dwconv import DWC_PREDICTORS, DynamicDWConv, build_dynamic_dwconv
from wf_lessons.notebooks import show_source

QUICK = config.quick()
print("quick mode:", QUICK)
print("predictors:", list(DWC_PREDICTORS))

# %% [markdown]
# ## 1. A static depthwise convolution: local, and the same everywhere
#
# A depthwise convolution gives each of the C channels its own k×k kernel and never mixes channels: an
# `nn.Conv2d(C, C, 3, padding=1, groups=C)` holds a weight of shape `(C, 1, 3, 3)` (one 3×3 kernel per channel)
# and a bias `(C,)`. It costs 9 multiply-adds per pixel and channel.
#
# Two properties follow, and both are what the dynamic versions change:
#
# * **local**: output pixel (r, c) reads only the 3×3 input neighbourhood around (r, c);
# * **the same everywhere**: the same kernel slides over every position of every image, so the layer cannot adapt
#   to the image it sees.
#
# Let us check both with a seeded toy example: the gradient of one output pixel tells which input pixels it reads.

# %% tags=["nbval-check-output"]
C = 4
gen = torch.Generator().manual_seed(0)
torch.manual_seed(0)
static = nn.Conv2d(C, C, 3, padding=1, groups=C)
print("weight", tuple(static.weight.shape), "bias", tuple(static.bias.shape))

x = torch.randn(2, C, 8, 8, generator=gen, requires_grad=True)  # (B, C, H, W)
static(x)[0, :, 4, 4].sum().backward()  # output pixel (4, 4) of image 0, all channels
reads = x.grad[0].abs().sum(0) > 0  # (H, W): which input pixels it depends on
rows, cols = reads.nonzero().unbind(1)
print(f"output (4, 4) reads rows {rows.min().item()}..{rows.max().item()}, "
      f"cols {cols.min().item()}..{cols.max().item()}: {int(reads.sum())} pixels")

with torch.no_grad():  # same everywhere: shifting the input shifts the output (away from the border)
    shifted = static(x.roll(1, dims=-1))
    print("shift the input by one column -> output shifted by one column:",
          torch.allclose(shifted[..., 2:-1], static(x)[..., 1:-2], atol=1e-6))

# %% [markdown]
# ## 2. The template: a static kernel plus a bounded prediction
#
# Every dynamic layer of the paper has the same shape ([paper notes](paper_notes.md), "The shared template"): an ordinary learned weight plus a prediction
# from the input, normalised:
#
# $$K_0 + \hat K_b, \qquad \hat K_b = \frac{\tilde K_b}{\lVert \tilde K_b\rVert_F + 1}, \qquad \tilde K_b = G(X_b)$$
#
# For the depthwise convolution the norm is taken **per sample and per channel**, over the k×k taps of one kernel
# (the Frobenius norm of a 3×3 matrix). The map r ↦ r/(r+1) keeps the direction of K̃ and squeezes its norm below 1,
# so no image can blow up its kernels; at initialisation the static part K0 is an ordinary small kernel
# (trunc-normal, std 0.02) and the dynamic part is whatever the random predictor gives. The package function
# `dd.normalize_kernels` is that one line:

# %% tags=["nbval-check-output"]
show_source(dd.normalize_kernels)
raw = torch.zeros(3, 3, 3)
raw[0, 1, 1], raw[1, 0, 0], raw[2] = 0.5, 3.0, 100.0  # kernels with norms 0.5, 3 and 300
print("norms before:", raw.norm(dim=(-2, -1)).tolist())
print("norms after: ", [round(v, 4) for v in dd.normalize_kernels(raw).norm(dim=(-2, -1)).tolist()])


# %% [markdown]
# The whole layer in one picture (`wf_lessons.diagrams`); sections 3 to 5 fill in the boxes.

# %%
from wf_lessons import diagrams

diagrams.dynamic_dwconv()
plt.show()

# %%
r = torch.linspace(0, 10, 200)
plt.figure(figsize=(4.5, 3))
plt.plot(r, r / (r + 1), label="‖K̂‖ = ‖K̃/(‖K̃‖+1)‖ = r/(r+1)")
plt.plot(r, torch.clamp(r, max=1.2), "--", color="grey", label="‖K̃‖ = r (clipped at 1.2)")
plt.axhline(1, color="k", lw=0.5)
plt.xlabel("norm r of the raw prediction K̃")
plt.ylabel("norm of the dynamic part")
plt.legend(loc="lower right")
plt.title("the normalisation keeps every dynamic kernel's norm below 1")
plt.show()

# %% [markdown]
# ## 3. `adaptive`, the released layer, derived line by line
#
# The reference code (class `DynCnn`; [paper notes](paper_notes.md), "The released dynamic depthwise convolution") predicts the kernels in three steps:
#
# 1. **pool** the input to a k×k map: `P = AdaptiveAvgPool2d(3)(X)`, shape `(B, C, 3, 3)`: cell (i, j) is the
#    average of image region (i, j) of a 3×3 grid of regions;
# 2. **predict** with two 1×1 convolutions: `K̃ = Conv1x1_noBias(GELU(Conv1x1(P)))`, shape `(B, C, 3, 3)`. A 1×1
#    conv mixes channels at each cell separately, so tap (i, j) of every kernel comes from region (i, j) only;
# 3. **normalise** per sample and channel and add the static kernel: `K0 + K̂`, `K̂ = K̃/(‖K̃‖_F + 1)`.
#
# Then it convolves each image with its own kernels. Here are the steps inline, on a seeded toy layer with C = 4:

# %%
def adaptive_inline(x, w, b, wfm):
    """``adaptive`` as in the reference code (chapters/paper_notes.md): x (B, C, H, W), w = K0 (C, 1, 3, 3), b (C,),
    wfm the 1x1-GELU-1x1 predictor."""
    B, C, H, W = x.shape
    P = F.adaptive_avg_pool2d(x, 3)  # (B, C, 3, 3): one average per region
    K_raw = wfm(P)  # K̃ (B, C, 3, 3): 1x1 conv (with bias) -> GELU -> 1x1 conv (no bias)
    K_hat = K_raw / (K_raw.norm(dim=(-2, -1), keepdim=True) + 1)  # K̂, per sample and channel: norm < 1
    kernels = (w.squeeze(1) + K_hat).reshape(B * C, 1, 3, 3)  # K0 + K̂: one kernel per (sample, channel)
    y = F.conv2d(x.reshape(1, B * C, H, W), kernels, b.repeat(B), padding=1, groups=B * C)
    return y.reshape(B, C, H, W)


# %% [markdown]
# The package's `build_dynamic_dwconv(dim, kernel_size=3, predictor="adaptive")` holds exactly the reference's parameters
# under the reference's names (`w` = K0, `b`, and `wfm`, the predictor), so an official checkpoint's `dwc.*`
# entries load into it unchanged. Same numbers in, same numbers out:

# %% tags=["nbval-check-output"]
torch.manual_seed(0)
layer = build_dynamic_dwconv(C, predictor="adaptive")
for name, tensor in layer.state_dict().items():
    print(f"{name:<13} {tuple(tensor.shape)}")

x = torch.randn(2, C, 11, 7, generator=gen)  # any H and W, here neither divisible by 3
with torch.no_grad():
    delta = (adaptive_inline(x, layer.w, layer.b, layer.wfm) - layer(x)).abs().max()
print("inline == package, max |Δ| < 1e-6:", bool(delta < 1e-6))
print("output", tuple(layer(x).shape), "| kernels of each image", tuple(layer.predicted_kernels(x).shape))

# %% [markdown]
# The package splits the layer the same way. `raw_kernels(x)` is the raw prediction K̃, `dynamic_kernels(x)` is
# `K̂ = K̃/(‖K̃‖+1)` and `predicted_kernels(x)` is `K0 + K̂`, the kernels the forward pass applies, all
# `(B, C, k, k)`:

# %%
show_source(dd.AdaptiveDWConv)
show_source(DynamicDWConv.forward)

# %% [markdown]
# ### One convolution, a different kernel for every image
#
# `F.conv2d` applies the same weight to every image of a batch. The reference code gets around it by folding the
# batch into the channels: `(B, C, H, W) -> (1, B·C, H, W)`, kernels `(B, C, 3, 3) -> (B·C, 1, 3, 3)`, and
# `groups = B·C`, so each of the B·C groups convolves one channel of one image with its own kernel. A loop over the
# images gives the same result:

# %% tags=["nbval-check-output"]
with torch.no_grad():
    kernels = layer.predicted_kernels(x)  # (B, C, 3, 3)
    folded = F.conv2d(x.reshape(1, 2 * C, 11, 7), kernels.reshape(2 * C, 1, 3, 3), layer.b.repeat(2),
                      padding=1, groups=2 * C).reshape(2, C, 11, 7)
    loop = torch.cat([F.conv2d(x[i : i + 1], kernels[i].unsqueeze(1), layer.b, padding=1, groups=C) for i in range(2)])
print("grouped conv == loop over images:", torch.allclose(folded, loop, atol=1e-6))
print("each image's output depends on that image only:",
      torch.allclose(layer(x[:1]), layer(x)[:1], atol=1e-6))

# %% [markdown]
# Is one big grouped convolution fast? `dd.per_sample_depthwise_conv` implements it and three alternatives (a loop
# over the images, nine shifted multiply-adds, unfold + einsum); `python -m wf_lessons.bench dwconv` times them
# side by side and writes its results to `data/runs/bench-dwconv-cpu.json`. The cell below runs a small
# version here, on one CPU thread (steadier on a busy machine); times vary from run to run and machine to machine,
# so read the ratios, not the digits. A ratio above 1 means slower than the grouped conv, which the layer keeps
# (it is also the reference's formulation).

# %%
from wf_lessons import bench

print("forward + backward, 1 thread")  # the full set: python -m wf_lessons.bench dwconv --threads 1
print(bench.format_dwconv_benchmark(bench.dwconv_benchmark([(8, 64, 16), (32, 192, 14)], backward=True,
                                                           min_run_time=0.02, rounds=3, threads=1)))

# %% [markdown]
# ## 4. The 3×3 pooling bins overlap
#
# `AdaptiveAvgPool2d(3)` cuts each side of the map into 3 bins. PyTorch's rule for bin i of a side of length H is
#
# $$\text{start}_i = \lfloor iH/3 \rfloor, \qquad \text{end}_i = \lceil (i+1)H/3 \rceil \quad\text{(end excluded)}$$
#
# When H is a multiple of 3 the bins tile the side exactly. When it is not, the floor and the ceiling round in
# opposite directions and neighbouring bins **share a row**. CIFAR-10 maps (32×32 pixels, or 16×16 tokens after a
# 2×2 patch embedding) and 64×64 maps are not multiples of 3. Inline, then the package's `adaptive_pool_bins`, and
# both against PyTorch's own pooling:

# %% tags=["nbval-check-output"]
import math


def bins_inline(size, n=3):
    return [(math.floor(i * size / n), math.ceil((i + 1) * size / n)) for i in range(n)]


for size in (32, 64, 48, 16, 5):
    bins = bins_inline(size)
    shared = sorted({row for (_, end), (start, _) in zip(bins, bins[1:]) for row in range(start, end)})
    x_side = torch.randn(1, 2, size, size, generator=gen)
    manual = torch.stack([torch.stack([x_side[..., r0:r1, c0:c1].mean((-2, -1)) for c0, c1 in bins], -1)
                          for r0, r1 in bins], -2)  # (1, 2, 3, 3)
    agrees = bins == dd.adaptive_pool_bins(size) and torch.allclose(manual, F.adaptive_avg_pool2d(x_side, 3), atol=1e-6)
    print(f"H = {size:>2}: bins {bins}  rows in two bins: {shared or 'none'}  same as PyTorch: {agrees}")

# %% [markdown]
# On a 32×32 map, rows 10 and 21 belong to two bins each, and so do columns 10 and 21. A pixel on one of those
# lines is averaged into two cells, and a pixel where two of them cross into four. The picture counts, for every
# pixel, how many of the 9 cells read it:

# %%
def cells_per_pixel(size):
    count = torch.zeros(size, size, dtype=torch.int64)
    for r0, r1 in dd.adaptive_pool_bins(size):
        for c0, c1 in dd.adaptive_pool_bins(size):
            count[r0:r1, c0:c1] += 1
    return count


BIN_COLOURS = ("tab:red", "tab:blue", "tab:green")  # bin 0, 1, 2 of a side
fig, axes = plt.subplots(1, 2, figsize=(9, 4.6), layout="constrained")
for ax, size in zip(axes, (32, 64)):
    im = ax.imshow(cells_per_pixel(size), cmap="Greys", vmin=0, vmax=5)  # light = read by one cell
    for (r0, r1), color in zip(dd.adaptive_pool_bins(size), BIN_COLOURS):  # row bins: solid, full width
        ax.add_patch(Rectangle((-0.5, r0 - 0.5), size, r1 - r0, fill=False, ec=color, lw=2, ls="-"))
    for (c0, c1), color in zip(dd.adaptive_pool_bins(size), BIN_COLOURS):  # column bins: dashed, full height
        ax.add_patch(Rectangle((c0 - 0.5, -0.5), c1 - c0, size, fill=False, ec=color, lw=2, ls="--"))
    ax.set_title(f"{size}×{size}: bins {dd.adaptive_pool_bins(size)}", fontsize=9)
    ax.set(xlabel="pixel column", ylabel="pixel row")
fig.colorbar(im, ax=axes, ticks=[1, 2, 4], label="pooled cells reading this pixel", shrink=0.8)
fig.suptitle("AdaptiveAvgPool2d(3): row bins (solid) and column bins (dashed), bin 0 red, 1 blue, 2 green;\n"
             "the shared rows and columns are read by 2 cells, their crossings by 4", fontsize=10)
plt.show()

# %% [markdown]
# A checked cell, one pixel at a time: pixel (10, 5) of a 32×32 map sits on a shared row, pixel (10, 21) on a
# crossing. The Jacobian of PyTorch's pooling says which cells read a pixel, independently of the formula above:

# %% tags=["nbval-check-output"]
jacobian = torch.autograd.functional.jacobian(lambda t: F.adaptive_avg_pool2d(t, 3), torch.zeros(1, 1, 32, 32))
reads = jacobian.reshape(3, 3, 32, 32) != 0  # (cell i, cell j, row, col)
for pixel in [(5, 5), (10, 5), (10, 21)]:
    cells = [tuple(c) for c in reads[:, :, pixel[0], pixel[1]].nonzero().tolist()]
    print(f"pixel {pixel}: read by cells {cells}")
print("counts agree with the picture:", torch.equal(reads.sum((0, 1)), cells_per_pixel(32)))

# %% [markdown]
# These shared lines matter later: the paper's effective receptive fields (its Fig. 3; [paper notes](paper_notes.md), "Figures") show 3×3 grid
# lines from the overlapping `AdaptiveAvgPool2d(3)` bins for Adaptive and Amp-Dir. Chapter 06 measures effective
# receptive fields on CIFAR-10 models.
#
# ## 5. Four predictors: where does each tap's information come from?
#
# The three steps above leave one design choice open: **what does tap (i, j) of the predicted kernel read?** The
# paper compares four answers (its Fig. 3 names GAP, Adaptive, Amp-Dir and Conv):
#
# | predictor | tap (i, j) reads | source |
# |---|---|---|
# | `static` | nothing: K0 is a learned constant | a plain depthwise `nn.Conv2d` |
# | `gap` | **one global vector**, the channel means of the image, for every tap | the course's reconstruction |
# | `adaptive` | **region (i, j)** of the 3×3 grid of regions | the released layer (reference `DynCnn`) |
# | `amp_dir` | **amplitude and direction decoupled**: direction local, amplitude global | the course's reconstruction |
# | `conv` | region (i, j) **and its neighbouring regions** | the course's reconstruction |
#
# The definitions ([paper notes](paper_notes.md), "What the course reconstructs"):
#
# * `gap`: `GAP(X) → Linear(C, C/4) → GELU → Linear(C/4, 9C)`, reshaped to C×3×3;
# * `amp_dir`: direction = the `adaptive` prediction scaled to unit norm per channel; amplitude
#   `a = sigmoid(Linear(C, C)(GAP(X)))` in (0, 1) per channel; `K = K0 + a · direction`;
# * `conv`: like `adaptive`, but the predictor is a depthwise 3×3 conv (padding 1) → GELU → 1×1 conv over the
#   pooled 3×3 map, so each tap also sees the neighbouring cells.
#
# Every one of them uses the template of section 2 (`amp_dir` bounds its norm by the amplitude, which lies in
# (0, 1)). The three reconstructions, from the package:

# %%
for cls in (dd.GapDWConv, dd.AmpDirDWConv, dd.ConvDWConv):
    show_source(cls)

# %% [markdown]
# The table is a claim about gradients: tap (i, j) of the prediction K̃ *reads* an input pixel when the gradient of
# that tap with respect to the pixel is non-zero. `dd.tap_sources(layer, (H, W), (i, j))` computes that gradient on
# a random input. For `amp_dir` it shows the direction's source (the amplitude reads every pixel, as in `gap`).

# %% tags=["nbval-check-output"]
torch.manual_seed(0)
toy = {name: build_dynamic_dwconv(8, predictor=name) for name in DWC_PREDICTORS}
sources = {(name, tap): dd.tap_sources(toy[name], (32, 32), tap) for name in toy for tap in [(0, 0), (1, 1)]}
for (name, tap), grad in sources.items():
    if (grad > 0).any():
        rows, cols = (grad > 0).nonzero().unbind(1)
        box = f"rows {rows.min().item()}..{rows.max().item()}, cols {cols.min().item()}..{cols.max().item()}"
        print(f"{name:<9} tap {tap}: {box} ({int((grad > 0).sum())} pixels)")
    else:
        print(f"{name:<9} tap {tap}: no pixel")

# %%
fig, axes = plt.subplots(2, 5, figsize=(12, 5))
for col, name in enumerate(DWC_PREDICTORS):
    for row, tap in enumerate([(0, 0), (1, 1)]):
        ax = axes[row, col]
        ax.imshow(sources[name, tap] > 0, cmap="Greys", vmin=0, vmax=1)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(f"{name}: tap {tap}", fontsize=9)
fig.suptitle("which pixels of a 32×32 map each tap of the prediction K̃ reads (black: reads, white: does not)")
plt.show()

# %% [markdown]
# Read it row by row. Tap (0, 0) of `adaptive` reads the top-left region only (rows and columns 0..10, as the bins
# of section 4 say), and its centre tap the centre region (rows 10..21, with the shared lines). `conv` widens each
# tap to the neighbouring regions: the corner tap reads 2×2 regions, the centre tap all nine. `gap` reads the whole
# image for every tap, and `static` reads nothing.
#
# Because `adaptive` ties tap (i, j) to region (i, j), mirroring the image mirrors its predicted kernels (the
# bins are symmetric and the 1×1 convs act cell by cell). `gap` ties taps to rows of a weight matrix instead, and
# `conv`'s 3×3 predictor kernel has no reason to be symmetric:

# %% tags=["nbval-check-output"]
x_toy = torch.randn(2, 8, 16, 13, generator=gen)
with torch.no_grad():
    for name in ("gap", "adaptive", "amp_dir", "conv"):
        mirrored = toy[name].dynamic_kernels(x_toy.flip(-1))
        print(f"{name:<9} kernels of the mirrored image == mirrored kernels:",
              torch.allclose(mirrored, toy[name].dynamic_kernels(x_toy).flip(-1), atol=1e-6))

# %% [markdown]
# ## 6. The kernels real images receive
#
# A dynamic depthwise conv sits inside the network, after a patch embedding and a LayerNorm ([paper notes](paper_notes.md),
# "The architecture"), so its
# input has C channels, not 3. To feed it real images we use a stand-in: a **seeded random** 2×2 patch embedding,
# `nn.Conv2d(3, C, 2, stride=2)` (untrained), then a LayerNorm over the channels. A 32×32 CIFAR-10 image becomes a
# `(C, 16, 16)` map. The images are the first test image of each class (`wf_lessons.data.cifar10`).

# %%
from wf_lessons.data import CLASSES, cifar10, normalize

images, labels = cifar10("test", per_class=1)  # (10, 3, 32, 32) uint8, one per class
C_IMG = 16
torch.manual_seed(0)
stem = nn.Conv2d(3, C_IMG, 2, stride=2)  # seeded and random: a stand-in for a trained patch embedding
layers = {name: build_dynamic_dwconv(C_IMG, predictor=name) for name in DWC_PREDICTORS}
with torch.no_grad():
    feats = stem(normalize(images))  # (10, C, 16, 16)
    feats = F.layer_norm(feats.permute(0, 2, 3, 1), (C_IMG,)).permute(0, 3, 1, 2)  # LayerNorm over channels
print("images", tuple(images.shape), "-> feature maps", tuple(feats.shape))

# %% [markdown]
# For five images, the static kernel K0 (top row: the same for every image) and the dynamic part
# K̂ = K̃/(‖K̃‖+1) that `adaptive` adds for each image, for the first four channels. All kernels share one colour scale.

# %%
SHOWN = [3, 1, 8, 5, 7]  # cat, automobile, ship, dog, horse
CHANNELS = range(4)


def show_kernels(name="adaptive", shown=SHOWN):
    """K0 (top row) and the dynamic part K̂ of the first four channels for each image in ``shown``."""
    layer = layers[name]
    with torch.no_grad():
        dynamic = layer.dynamic_kernels(feats[shown])  # K̂: (5, C, 3, 3)
        k0 = layer.static_kernel.detach().squeeze(1)  # (C, 3, 3)
    scale = max(dynamic[:, list(CHANNELS)].abs().max().item(), k0[list(CHANNELS)].abs().max().item(), 1e-8)
    fig, axes = plt.subplots(len(shown) + 1, len(CHANNELS) + 1, figsize=(7.5, 1.45 * (len(shown) + 1)),
                             layout="constrained")
    axes[0, 0].axis("off")
    axes[0, 0].text(0.5, 0.5, "static K0", ha="center", va="center")
    for col, c in enumerate(CHANNELS, start=1):
        tile = axes[0, col].imshow(k0[c], cmap="RdBu_r", vmin=-scale, vmax=scale)
        axes[0, col].set_title(f"channel {c}", fontsize=9)
    for row, i in enumerate(shown, start=1):
        axes[row, 0].imshow(images[i].permute(1, 2, 0))
        axes[row, 0].set_title(f"{CLASSES[int(labels[i])]}: K̂", fontsize=9)
        for col, c in enumerate(CHANNELS, start=1):
            axes[row, col].imshow(dynamic[row - 1, c], cmap="RdBu_r", vmin=-scale, vmax=scale)
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(tile, ax=axes[:, 1:], shrink=0.6, label="kernel tap value (one scale for all)")
    fig.suptitle(f"{name}: K0 (top) and each image's dynamic part K̂ (3×3 taps per kernel)", fontsize=10)
    plt.show()


show_kernels("adaptive")

# %% [markdown]
# Each row differs from the others: the layer gives every image its own kernels. How much, compared with the
# kernels' size? The ratio below is the spread of the dynamic part across the ten images divided by its average
# size (0 would mean every image gets the same kernel); the second number compares the dynamic part with K0.

# %%
with torch.no_grad():
    for name, layer in layers.items():
        dynamic = layer.dynamic_kernels(feats)  # (10, C, 3, 3)
        size = dynamic.norm(dim=(-2, -1)).mean().item()
        spread = dynamic.std(dim=0).norm(dim=(-2, -1)).mean().item()
        k0 = layer.static_kernel.norm(dim=(-2, -1)).mean().item()
        print(f"{name:<9} spread / size of the dynamic part: {spread / max(size, 1e-12):.2f}   "
              f"dynamic / static size: {size / k0:.2f}")
    amplitudes = layers["amp_dir"].amplitudes(feats)  # (10, C)
    print(f"amp_dir amplitudes: {amplitudes.min().item():.2f} to {amplitudes.max().item():.2f}")

# %% [markdown]
# Read the numbers printed above. With these random initial weights, on inputs that went through a LayerNorm, the
# dynamic part is not small next to K0 (trunc-normal with std 0.02 at initialisation), and it changes from
# image to image. An untrained `gap` sees only the C channel means of the whole map, so compare its spread with
# that of the predictors that see regions. What a *trained* network does with the dynamic path is for chapters
# 06–08.
#
# **Inside the model these ratios change.** The layers here keep PyTorch's default initialisation. A
# `WeightFormer` (chapter 04) re-initialises every `nn.Linear` of the network, as the reference code does:
# trunc-normal weights with std 0.02 and zero biases (`models._init_weights`, applied with `model.apply`). `gap`'s
# predictor is made of `nn.Linear` layers, so inside the model its prediction starts far smaller, and its
# dynamic/static ratio in chapter 06 differs from the one printed here; the 1×1 convolutions of `adaptive`,
# `amp_dir` and `conv` are `nn.Conv2d` and keep their default initialisation in both places. The cell measures
# it on this chapter's `gap` layer:

# %% tags=["nbval-check-output"]
import copy

from wf_lessons import models

gap_model_init = copy.deepcopy(layers["gap"])
torch.manual_seed(0)
gap_model_init.apply(models._init_weights)  # what WeightFormer.__init__ does to every nn.Linear
with torch.no_grad():
    for label, layer in (("default init (this chapter)", layers["gap"]), ("trunc-normal 0.02 (in the model)", gap_model_init)):
        size = layer.dynamic_kernels(feats).norm(dim=(-2, -1)).mean().item()
        print(f"gap, {label:<33}: dynamic / static size {size / layer.static_kernel.norm(dim=(-2, -1)).mean().item():.2g}")

# %% [markdown]
# **Predict first (exercise 5).** Before you read section 7: take `adaptive` at C = 192 and double the side of its
# input map, 16×16 → 32×32 (4× the pixels). Do the layer's total FLOPs (prediction plus convolution) grow by less
# than 4×, exactly 4× or more than 4×? Write your guess in the cell below; exercise 5 measures it.

# %% tags=["predict"]
# answered in: 7. What each predictor costs
prediction_5 = None  # your guess: "less than 4", "4" or "more than 4"

# %% [markdown]
# ## 7. What each predictor costs
#
# `dd.flop_counts(layer, x)` counts FLOPs with `torch.utils.flop_counter.FlopCounterMode` (2 FLOPs per
# multiply-add; it counts matrix products and convolutions, not the pooling, GELU or normalisation, each one pass
# over its input). The table is at the width of WFM-T (C = 192) on a 14×14 token map (224 px, patch 16), one image.

# %% tags=["nbval-check-output"]
C_T, HW_T = 192, (14, 14)
x_t = torch.zeros(1, C_T, *HW_T)
print(f"{'predictor':<10}{'parameters':>11}  {'formula':<16}{'prediction FLOPs':>17}{'conv FLOPs':>12}{'total':>11}")
for name in DWC_PREDICTORS:
    torch.manual_seed(0)
    layer_t = build_dynamic_dwconv(C_T, predictor=name)
    n = sum(p.numel() for p in layer_t.parameters())
    assert n == dd.parameter_count(name, C_T)
    f = dd.flop_counts(layer_t, x_t)
    print(f"{name:<10}{n:>11,}  {dd.PARAMETER_FORMULAS[name]:<16}{f['prediction']:>17,}{f['convolution']:>12,}"
          f"{f['total']:>11,}")

# %% [markdown]
# The released `adaptive` layer has 2C² + 11C = 75,840 parameters at C = 192. Its prediction runs on 9 pooled cells,
# whatever the image size, so it costs more than the 3×3 convolution itself on a 14×14 map — but it does not
# grow with the image. Doubling the side of the map multiplies the convolution by 4 and leaves the prediction alone:

# %% tags=["nbval-check-output"]
torch.manual_seed(0)
adaptive_t = build_dynamic_dwconv(C_T, predictor="adaptive")
print(f"{'H = W':>6}{'prediction FLOPs':>18}{'conv FLOPs':>14}{'total':>14}")
for side in (7, 14, 28, 56, 112):
    f = dd.flop_counts(adaptive_t, torch.zeros(1, C_T, side, side))
    print(f"{side:>6}{f['prediction']:>18,}{f['convolution']:>14,}{f['total']:>14,}")

# %% [markdown]
# The total is a constant plus a term linear in H×W: linear-time, like any convolution, yet the kernels depend on
# the whole image. The convolution costs 2·9·C FLOPs per pixel; once H×W is large it dominates and the prediction
# becomes a small fixed overhead. Exercise 4 asks you to count the prediction yourself.
#
# ## 8. Explore
#
# Pick a predictor, an image and a channel. The figure shows the input feature channel, the static kernel K0, the
# image's dynamic part K̂, their sum (the kernel the layer applies) and the output channel. The figure just below
# the code is the first state (adaptive, the cat, channel 0), which a static copy of this notebook (e.g. on GitHub)
# shows too; in JupyterLab each change of the controls redraws the figure under them.

# %%
def explore(name="adaptive", index=3, channel=0):
    """One image and channel through one predictor: the input channel, K0, K̂, K0 + K̂ and the output channel."""
    layer = layers[name]
    with torch.no_grad():
        x_i = feats[index : index + 1]  # (1, C, 16, 16)
        dynamic = layer.dynamic_kernels(x_i)[0, channel]  # K̂: (3, 3)
        k0 = layer.static_kernel.detach()[channel, 0]  # (3, 3)
        y = layer(x_i)[0, channel]  # (16, 16)
    scale = max((k0 + dynamic).abs().max().item(), k0.abs().max().item(), dynamic.abs().max().item())
    fig, axes = plt.subplots(1, 6, figsize=(13.5, 2.9), width_ratios=[1, 1.25, 1, 1, 1.25, 1.25],
                             layout="constrained")
    axes[0].imshow(images[index].permute(1, 2, 0))
    axes[0].set_title(CLASSES[int(labels[index])], fontsize=9)
    for ax, (feature, title) in zip(axes[[1, 5]], [(x_i[0, channel], f"input channel {channel}"),
                                                    (y, f"output channel {channel}")]):
        shown = ax.imshow(feature, cmap="viridis")
        ax.set_title(title, fontsize=9)
        fig.colorbar(shown, ax=ax, shrink=0.8, label="feature value")
    for ax, (kernel, title) in zip(axes[2:5], [(k0, "static K0"), (dynamic, "dynamic part K̂"),
                                               (k0 + dynamic, "applied K0 + K̂")]):
        tile = ax.imshow(kernel, cmap="RdBu_r", vmin=-scale, vmax=scale)
        ax.set_title(title, fontsize=9)
    fig.colorbar(tile, ax=axes[4], shrink=0.8, label="tap value (K0, K̂, K0 + K̂)")
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(f"{name}, ‖K̂‖ = {dynamic.norm().item():.3f} (< 1)", fontsize=10)
    plt.show()


# %%
import ipywidgets as widgets

from wf_lessons.interactive import figure_controls

figure_controls(explore, {
    "name": widgets.Dropdown(options=list(DWC_PREDICTORS), value="adaptive", description="predictor"),
    "index": widgets.Dropdown(options=[(CLASSES[int(labels[i])], i) for i in range(len(labels))], value=3,
                              description="image"),
    "channel": widgets.IntSlider(min=0, max=C_IMG - 1, value=0, description="channel"),
})

# %% [markdown]
# Things to look for: `static` has no dynamic part; `gap`, `adaptive` and `conv` change the kernel with the image;
# `amp_dir`'s dynamic norm (in the title) is exactly its amplitude, a sigmoid of a linear map of the channel means
# (section 6 printed their range on these images).
#
# ## Summary
#
# **Main result:** a dynamic depthwise convolution applies `K0 + K̂`, 3×3 kernels predicted per image whose dynamic
# part has norm below 1; the released `adaptive` layer matches a line-by-line transcription of the reference to
# 1e-6, has 2C² + 11C parameters (75,840 at C = 192), and its prediction costs the same FLOPs on any map size, so the
# layer stays linear in H×W.
#
# * A static depthwise conv is local (a 3×3 neighbourhood) and the same for every position and every image.
# * A dynamic depthwise conv keeps the 3×3 kernel and its linear cost but predicts the kernels from the image:
#   `K0 + K̂`, `K̂ = K̃/(‖K̃‖_F + 1)` per sample and channel, so the dynamic part has norm below 1.
# * The released layer, `adaptive`, pools the image to 3×3 regions (`AdaptiveAvgPool2d(3)`), predicts with a
#   1×1 conv → GELU → 1×1 conv, and applies every image's kernels with one grouped conv (`groups = B·C`). It has
#   2C² + 11C parameters (75,840 at C = 192); `wf_lessons.dynamic_dwconv` reproduces it exactly.
# * When the side is not a multiple of 3 (32, 64, …), neighbouring pooling bins share a row or column.
# * The predictors differ in where tap (i, j) gets its information: one global vector (`gap`), region (i, j)
#   (`adaptive`), amplitude and direction decoupled (`amp_dir`), region (i, j) and its neighbours (`conv`);
#   `gap`, `amp_dir` and `conv` are the course's reconstruction.
# * The prediction's FLOPs do not depend on H×W; the layer's total is a constant plus a term linear in H×W.
#
# ## Exercises
#
# Each exercise has a cell that computes the answer (a stub with a hint in the student copy, `chapters/student/`)
# and a cell that checks it with `wf_lessons.exercises.ch03.check_exercise`.
#
# 1. How many parameters has an `adaptive` layer at WFM-S width, C = 384? (Pencil and paper first.)
# 2. How many pixels of a 32×32 map does `AdaptiveAvgPool2d(3)` average into more than one of its 9 cells?
# 3. Write `conv_fn(x, kernels, bias)`, the per-image depthwise conv (zero padding 1) for x `(B, C, H, W)`,
#    kernels `(B, C, 3, 3)` and bias `(C,)`, without `conv2d` or `unfold`: nine shifted multiply-adds.
# 4. How many FLOPs does `FlopCounterMode` count for the `adaptive` prediction at C = 192, for one image? Does it
#    change on a 28×28 map?
# 5. **Predicted before section 7, now measured.** You wrote in `prediction_5`, before section 7, whether the
#    total FLOPs of `adaptive` at C = 192 grow by less than, exactly or more than 4× when its input map goes from
#    16×16 to 32×32. Measure with `dd.flop_counts` and give the ratio total(32×32) / total(16×16).
# 6. **Build it.** Write `adaptive_kernels(layer, x)`, the kernels `K0 + K̂` `(B, C, 3, 3)` that an `adaptive`
#    layer applies to a batch `x` `(B, C, H, W)`, from its parameters (`layer.wfm`, the predictor; `layer.w`, K0 of
#    shape `(C, 1, 3, 3)`) and the three steps of section 3: pool, predict, normalise per sample and channel, add
#    K0. The checker compares it with `layer.predicted_kernels(x)` on random layers and maps of several sizes.

# %%
from wf_lessons.exercises import ch03

# %% tags=["solution"]
# hint: two 1×1 convs C→C (the first with a bias), the static kernel K0 (9 per channel) and the bias b
answer_1 = 2 * 384**2 + 11 * 384  # 2C² + 11C

# %% tags=["nbval-check-output"]
ch03.check_exercise(1, answer_1)

# %% tags=["solution"]
# hint: on a 32×32 side the bins are dd.adaptive_pool_bins(32); which rows (and columns) belong to two bins?
# The shared rows are 10 and 21, and so are the shared columns: every pixel outside the 30×30 "private" rows and
# columns is read by two or four cells.
answer_2 = 32 * 32 - 30 * 30

# %% tags=["nbval-check-output"]
ch03.check_exercise(2, answer_2)

# %% tags=["solution", "build"]
# hint: pad by one (F.pad), then add the nine shifted copies of x, each scaled by one tap of its kernel
def conv_fn(x, kernels, bias):
    B, C, H, W = x.shape
    padded = F.pad(x, (1, 1, 1, 1))  # (B, C, H + 2, W + 2)
    y = bias.view(1, C, 1, 1).expand(B, C, H, W)
    for i in range(3):
        for j in range(3):
            y = y + padded[:, :, i : i + H, j : j + W] * kernels[:, :, i, j, None, None]
    return y


answer_3 = conv_fn

# %% tags=["nbval-check-output"]
ch03.check_exercise(3, answer_3)

# %% tags=["solution"]
# hint: each 1×1 conv is a C×C matrix product at each of the 9 pooled cells (2 FLOPs per multiply-add)
answer_4 = 2 * (2 * 9 * C_T * C_T)  # no H or W in it
print("same on 28×28:", dd.flop_counts(adaptive_t, torch.zeros(1, C_T, 28, 28))["prediction"] == answer_4)

# %% tags=["nbval-check-output"]
ch03.check_exercise(4, answer_4)

# %% tags=["solution"]
# hint: dd.flop_counts(layer, torch.zeros(1, 192, side, side)) returns the prediction, convolution and total FLOPs
# Prediction: the prediction runs on the 3×3 pooled map, so its FLOPs stay; the convolution does 9 multiply-adds
# per pixel, so its FLOPs grow 4×; the total grows by less than 4×, the closer to 4 the larger the map.
counts = {side: dd.flop_counts(adaptive_t, torch.zeros(1, C_T, side, side)) for side in (16, 32)}
for side, count in counts.items():
    print(f"{side}×{side}: " + ", ".join(f"{part} {value:,}" for part, value in count.items()))
answer_5 = counts[32]["total"] / counts[16]["total"]

# %% tags=["nbval-check-output"]
ch03.check_prediction(5, prediction_5)
ch03.check_exercise(5, answer_5)

# %% tags=["solution", "build"]
# hint: P = F.adaptive_avg_pool2d(x, 3); K̃ = layer.wfm(P); divide by the norm over the last two axes plus 1; add K0
def adaptive_kernels(layer, x):
    raw = layer.wfm(F.adaptive_avg_pool2d(x, 3))  # K̃: (B, C, 3, 3), tap (i, j) from region (i, j)
    normalised = raw / (raw.norm(dim=(-2, -1), keepdim=True) + 1)  # K̂: per sample and channel, norm < 1
    return layer.w.squeeze(1) + normalised  # K0 + K̂: (C, 3, 3) broadcast over the batch


answer_6 = adaptive_kernels

# %% tags=["nbval-check-output"]
ch03.check_exercise(6, answer_6)

# %% [markdown]
# ## References
#
# - R. He, D. Han, G. Huang. *Linear-Time Global Visual Modeling without Explicit Attention*. arXiv 2605.01711
#   (2026); reference code github.com/LeapLabTHU/WeightFormer (`DynCnn`). The course's notes, including which
#   predictors are reconstructions: [paper_notes.md](paper_notes.md).
# - Y. Chen et al. *Dynamic Convolution: Attention over Convolution Kernels*. CVPR 2020, arXiv 1912.03458, and
#   B. Yang et al. *CondConv: Conditionally Parameterized Convolutions*. NeurIPS 2019, arXiv 1904.04971 (earlier
#   input-dependent kernels).
# - D. Hendrycks, K. Gimpel. *Gaussian Error Linear Units (GELUs)*. arXiv 1606.08415.
# - A. Krizhevsky. *Learning Multiple Layers of Features from Tiny Images* (CIFAR-10), 2009.
# - PyTorch: `torch.nn.AdaptiveAvgPool2d` (its bin rule), `torch.nn.functional.conv2d` with `groups`,
#   `torch.nn.init.trunc_normal_`, `torch.autograd.functional.jacobian`, `torch.utils.flop_counter.FlopCounterMode`;
#   `ipywidgets` (`Dropdown`, `IntSlider`, `Output`).

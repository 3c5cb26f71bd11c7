# %% [markdown]
# # 04 · The WeightFormer architecture
#
# [Open in Colab](https://colab.research.google.com/github/wf-lessons/wf-lessons/blob/main/chapters/04_the_weightformer_architecture.ipynb) (its first code cell installs the course there)
#
# Chapters 02 and 03 built WeightFormer's two dynamic layers: a linear layer whose C×4C weight, and a depthwise
# 3×3 convolution whose kernels, are predicted from the whole image at a fixed size, so their cost is linear in
# the number of tokens N. This chapter assembles them into the paper's network, exactly as the reference code
# does (`model/wfm.py` of LeapLabTHU/WeightFormer; [paper notes](paper_notes.md), "The architecture"), and puts
# it beside the DeiT-style attention baseline the course compares it with. What the network costs, and how that
# cost grows with N, is chapter 05's subject.
#
# In this chapter you will
#
# 1. assemble a WeightFormer block and meet the reference code's quirks: a dynamic block's first LayerNorm
#    *overwrites* the residual stream (measured against the textbook pre-norm block), one dynamic block in three,
#    drop-path on the MLP branch only, no position embedding;
# 2. follow an image through the whole model, shape by shape;
# 3. count the parameters of the paper's WFM-T/S/B against DeiT-T/S/B and see where they sit;
# 4. see how the course's CIFAR-10 models `wf-cifar` and `deit-cifar` were sized (≈5M parameters);
# 5. load weights in the official checkpoint layout (a synthetic checkpoint here) and read the error a mismatched
#    checkpoint gives.
#
# Everything reusable lives in `wf_lessons.models`; symbols follow the [notation table](paper_notes.md#notation) (N
# tokens on an H×W grid, C channels, p the patch size); everything is the same in quick mode and in a full run.

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
import copy
import io

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from wf_lessons import config, models
from wf_lessons.dynamic_dwconv import build_dynamic_dwconv
from wf_lessons.dynamic_linear import build_dynamic_linear
from wf_lessons.models import (
    ViT,
    WeightFormer,
    WeightFormerBlock,
    build_model,
    count_parameters,
    load_reference_state_dict,
    predicted_weights,
    reference_dynamic_blocks,
)
from wf_lessons.notebooks import show_source

QUICK = config.quick()
torch.set_num_threads(1)  # everything here is small; one thread is fastest and steadiest on a shared CPU
print("quick mode:", QUICK)
print("named models:", ", ".join(models.MODEL_NAMES))

# %% [markdown]
# ## 1. The two layers, recalled
#
# A WeightFormer network works on tokens `(B, N, C)` laid out on an H×W grid (N = H·W). Its two dynamic layers,
# with the predictors the paper released:
#
# - `build_dynamic_linear(C, 4C, predictor="bilateral")` (chapter 02): tokens `(B, N, C)` → `(B, N, 4C)`, one C×4C
#   weight per image, `W0 + Ŵ(X)`;
# - `build_dynamic_dwconv(C, 3, predictor="adaptive")` (chapter 03): a feature map `(B, C, H, W)` → same shape, one 3×3
#   kernel per image and channel, `K0 + K̂(X)`.
#
# Each needs the grid: the linear layer pools 2×2 neighbourhoods of tokens, the convolution works on the map.

# %% tags=["nbval-check-output"]
C, HW = 32, (6, 8)  # a toy width and a non-square grid
N = HW[0] * HW[1]
torch.manual_seed(0)
dyn_linear, dyn_conv = build_dynamic_linear(C, 4 * C), build_dynamic_dwconv(C, 3)
tokens = torch.randn(2, N, C, generator=torch.Generator().manual_seed(1))  # (B, N, C)
feature_map = tokens.transpose(1, 2).reshape(2, C, *HW)  # (B, N, C) -> (B, C, H, W), tokens row-major
print("DynamicLinear:", tuple(tokens.shape), "->", tuple(dyn_linear(tokens, HW).shape))
print("DynamicDWConv:", tuple(feature_map.shape), "->", tuple(dyn_conv(feature_map).shape))

# %% [markdown]
# ## 2. The block, as the reference writes it
#
# A WeightFormer block has the outline of a transformer block, a token-mixing branch and then an MLP branch, each
# added to a residual stream `x`. The token mixer is a depthwise 3×3 convolution instead of attention. Two kinds of
# block alternate ([paper notes](paper_notes.md), "The architecture"):
#
# ```
# dynamic block:  x = LN1(x)                                        # overwrites the residual stream
#                 x = x + DynDWC(x as B×C×H×W)
#                 x = x + DropPath(FC2(GELU(DynLinear_C→4C(LN2(x)))))
# static block:   x = x + DWC3x3(x)                                 # no norm before the conv
#                 x = x + DropPath(FC2(GELU(Linear_C→4C(LN2(x)))))
# ```
#
# The package's block is this, line for line (the source, not a copy):

# %%
show_source(WeightFormerBlock.forward)


# %% [markdown]
# The two blocks side by side (`wf_lessons.diagrams`); mark where the residual stream is overwritten.

# %%
from wf_lessons import diagrams

diagrams.weightformer_blocks()
plt.show()

# %% [markdown]
# `_tokens_to_map` is the reshape `(B, N, C) -> (B, C, H, W)` from section 1. A static block holds plain
# `nn.Conv2d(C, C, 3, groups=C)` and `nn.Linear(C, 4C)`; a dynamic block swaps in the two dynamic layers and adds
# `norm1`. Their parameter names are the reference code's, so the authors' checkpoints load into them (section 6):

# %% tags=["nbval-check-output"]
torch.manual_seed(0)
static_block, dynamic_block = WeightFormerBlock(C, dynamic=False), WeightFormerBlock(C, dynamic=True)
for title, block in (("static", static_block), ("dynamic", dynamic_block)):
    print(f"{title} block, {count_parameters(block):,} parameters:")
    for key, value in block.state_dict().items():
        print(f"    {key:<22} {tuple(value.shape)}")
print("output shape:", tuple(dynamic_block(tokens, HW).shape))

# %% [markdown]
# ### Quirk 1: the first LayerNorm of a dynamic block overwrites the residual stream
#
# The textbook (pre-norm) transformer block normalises only what goes *into a branch*, `x = x + f(LN(x))`: the
# residual stream `x` itself flows from the first block to the last untouched, so every block can add to it and
# read everything added before. The reference's dynamic block instead writes `x = LN1(x)`: the stream itself is
# replaced by its normalised version. To see what that changes, here is the block as a textbook pre-norm block
# with the *same* modules and weights, which is **not** what the reference computes:

# %%
def to_map(x, hw):
    """(B, N, C) tokens -> (B, C, H, W) map (tokens row-major)."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *hw)


def prenorm_block(block, x, hw):
    """The same block read as a textbook pre-norm block: norm1 on the conv branch only (NOT the reference)."""
    branch = block.norm1(x) if block.dynamic else x
    x = x + block.dwc(to_map(branch, hw)).flatten(2).transpose(1, 2)  # the stream x itself is kept
    h = block.norm2(x)
    h = block.linear1(h, hw) if block.dynamic else block.linear1(h)
    return x + block.drop_path(block.linear2(F.gelu(h)))


# %% [markdown]
# A LayerNorm removes each token's mean and scale: `LN(a·x + b) = LN(x)` for a per-token scale a > 0 and a
# per-token offset b added to every channel (up to LayerNorm's tiny eps). After `x = LN1(x)` nothing downstream can
# tell what scale or offset each token had, so the reference dynamic block gives *the same output* when its input
# tokens are rescaled and shifted; the pre-norm block does not (its stream still carries them), nor does a static
# block, which has no `norm1`:

# %% tags=["nbval-check-output"]
scale = 1 + 4 * torch.rand(2, N, 1, generator=torch.Generator().manual_seed(2))  # per-token scales in (1, 5)
shift = torch.randn(2, N, 1, generator=torch.Generator().manual_seed(3))  # per-token offsets
moved = tokens * scale + shift


def max_change(fn):  # the largest change of fn's output when the tokens are moved
    return (fn(moved) - fn(tokens)).abs().max().item()


for label, fn in (("reference dynamic block,", lambda t: dynamic_block(t, HW)),
                  ("pre-norm dynamic block, ", lambda t: prenorm_block(dynamic_block, t, HW)),
                  ("static block,           ", lambda t: static_block(t, HW))):
    print(label, "output unchanged (max |Δ| < 1e-4):", max_change(fn) < 1e-4)

# %% [markdown]
# Why it matters:
#
# - **For the function.** Every third block resets the stream to zero mean and unit variance per token (then
#   LN1's own scale and shift): whatever scale the earlier blocks built up is discarded, and there is no identity
#   path from the first block to the last. The network is a stack of three-block residual segments, each starting
#   from a normalised stream.
# - **For reproduction.** The pre-norm reading has exactly the same parameters and state-dict keys: a
#   "cleaned-up" reimplementation would load the authors' checkpoints without a warning and compute something
#   else. Below, one set of random weights (large enough that every branch matters) runs through both readings of
#   `wf-cifar`; `run_blocks` runs the stem, then each block through a given function, and records the RMS size of
#   the residual stream after each block (with the package's `block(x, hw)` it must reproduce the model's output).

# %% tags=["nbval-check-output"]
def run_blocks(model, images, block_fn):
    """Logits (B, classes) of a WeightFormer whose blocks are computed by block_fn(block, x, hw), and the RMS of
    the residual stream after each block (a list of floats)."""
    x, hw = model.patch_embed(images)  # (B, N, C) tokens on the hw grid
    x = model.init_norm(x)
    rms = []
    for block in model.blocks:
        x = block_fn(block, x, hw)
        rms.append(x.pow(2).mean().sqrt().item())
    logits = model.head(model.norm(x).mean(dim=1))  # mean over tokens, as forward does
    return logits, rms


def randomized(model, seed=0, std=0.1):
    """The model with every parameter drawn N(0, std²): big enough for every (dynamic) branch to matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


torch.manual_seed(0)
wf_cifar = build_model("wf-cifar").eval()
images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
random_wf = randomized(copy.deepcopy(wf_cifar))
with torch.no_grad():
    logits_ref, rms_ref = run_blocks(random_wf, images, lambda block, x, hw: block(x, hw))
    logits_pre, rms_pre = run_blocks(random_wf, images, prenorm_block)
    print("run_blocks with the package's blocks == model(images) (max |Δ| < 1e-5):",
          (logits_ref - random_wf(images)).abs().max().item() < 1e-5)
    print("same weights, pre-norm reading: logits differ by more than 1e-3:",
          (logits_pre - logits_ref).abs().max().item() > 1e-3)

# %% [markdown]
# The stream's size tells the same story: the reference stream falls back at every dynamic block (dotted lines),
# where `LN1` resets it to the scale of its own affine weights (1 at initialisation), while the pre-norm stream
# keeps everything it accumulated. Drawn for the random weights above and for the model at its initialisation:

# %%
with torch.no_grad():
    _, rms_ref_init = run_blocks(wf_cifar, images, lambda block, x, hw: block(x, hw))
    _, rms_pre_init = run_blocks(wf_cifar, images, prenorm_block)

fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), layout="constrained")
for ax, (ref, pre, title) in zip(axes, [(rms_ref, rms_pre, "random weights (std 0.1)"),
                                        (rms_ref_init, rms_pre_init, "at initialisation")]):
    ax.plot(ref, "o-", label="reference: x = LN1(x)")
    ax.plot(pre, "s--", label="pre-norm reading: x + DWC(LN1(x))")
    ax.vlines(wf_cifar.dynamic_blocks, 0, 1, transform=ax.get_xaxis_transform(), color="grey", linestyle=":",
              linewidth=1)
    ax.set(yscale="log", xlabel="block index (dotted: dynamic blocks)", title=f"wf-cifar, {title}",
           ylabel="RMS of the residual stream after the block")
    ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ### Quirk 2: one block in three is dynamic, by the rule (i + 2) % 3 == 0
#
# Block `i` (counted from 0) is dynamic when `(i + 2) % 3 == 0`: blocks 1, 4, 7, …; two static blocks sit between
# consecutive dynamic ones. For the paper's depth 17 the last block (16) is dynamic; for `wf-cifar`'s depth 13 it
# is not. The pattern fixes where `norm1` and the predicted weights live, so it is part of the checkpoint layout.
# `dynamic_blocks=()` gives the all-static network (a ConvNet/MLP with no input-dependent weights), and any other
# tuple of indices is one argument away.

# %% tags=["nbval-check-output"]
def pattern(model):
    return " ".join("D" if b.dynamic else "s" for b in model.blocks)


for depth in (17, 13):
    print(f"depth {depth}: dynamic blocks {reference_dynamic_blocks(depth)}")
print("wf-cifar:             ", pattern(wf_cifar))
all_static = build_model("wf-cifar-quick", dynamic_blocks=())
print("wf-cifar-quick, static:", pattern(all_static))
print("wf-cifar-quick, every block dynamic:", pattern(build_model("wf-cifar-quick", dynamic_blocks=range(5))))

# %% [markdown]
# ### Quirk 3: drop-path on the MLP branch only
#
# Stochastic depth (`torchvision.ops.StochasticDepth`, "drop-path") randomly skips a residual branch for whole
# samples during training. A DeiT block applies it to both branches, the reference WeightFormer block only to the
# MLP branch; the rate ramps linearly over depth from 0 to the model's `drop_path`. With rate 1 every sample's MLP
# branch is dropped in training mode, so the block's output is exactly the stream after its convolution branch:

# %% tags=["nbval-check-output"]
print("drop-path rates of wf-cifar-quick with drop_path=0.2:",
      [round(b.drop_path.p, 3) for b in build_model("wf-cifar-quick", drop_path=0.2).blocks])

torch.manual_seed(0)
always_drop = WeightFormerBlock(C, dynamic=True, drop_path=1.0).train()
with torch.no_grad():
    after_conv = always_drop.norm1(tokens)  # the dynamic block's first line
    after_conv = after_conv + always_drop.dwc(to_map(after_conv, HW)).flatten(2).transpose(1, 2)
    print("training, rate 1: output == stream after the conv branch:", torch.equal(always_drop(tokens, HW), after_conv))

# %% [markdown]
# ### Quirk 4: no position embedding
#
# A ViT adds a learned position embedding to its tokens: attention treats its input as a set, so it must be told
# where each token is. WeightFormer has none: position reaches it through the 3×3 depthwise convolutions (which
# see each token's neighbours) and their zero padding (which marks the image border). There is no class token
# either; both models classify from the mean token. A side effect: nothing in WeightFormer is tied to the training
# resolution, while the ViT must resize its embedding for another grid.

# %% tags=["nbval-check-output"]
torch.manual_seed(0)
deit_cifar = build_model("deit-cifar").eval()
for name, model in (("wf-cifar", wf_cifar), ("deit-cifar", deit_cifar)):
    position_keys = {k: tuple(v.shape) for k, v in model.state_dict().items() if "pos" in k}
    print(f"{name:>10}: position parameters {position_keys}")
with torch.no_grad():
    for size in ((32, 32), (48, 40)):
        grid = (size[0] // 2, size[1] // 2)
        embedding = deit_cifar.position_embedding(grid)  # (1, N, C), resized bicubically unless grid is 16×16
        print(f"images {size}: wf-cifar logits {tuple(wf_cifar(torch.zeros(1, 3, *size)).shape)}; "
              f"deit-cifar logits {tuple(deit_cifar(torch.zeros(1, 3, *size)).shape)}, "
              f"position embedding for its {grid[0]}×{grid[1]} grid {tuple(embedding.shape)}")

# %% [markdown]
# ## 3. The model
#
# The whole network is a stem, the blocks, and a pooled head:
#
# ```
# PatchEmbed (conv, kernel = stride = patch) -> LayerNorm "init_norm" -> blocks -> LayerNorm "norm"
#     -> mean over tokens -> Linear head
# ```

# %%
show_source(WeightFormer.forward_features)
show_source(WeightFormer.forward)

# %% [markdown]
# An image through `wf-cifar` (width 192, patch 2, 13 blocks), shape by shape. `predicted_weights` runs the model
# once and returns, for each dynamic block, the weights it predicted for each image: one C×4C linear weight and C
# 3×3 kernels per image.

# %% tags=["nbval-check-output"]
with torch.no_grad():
    x, hw = wf_cifar.patch_embed(images)
    print(f"images {tuple(images.shape)} -> patch embedding: tokens {tuple(x.shape)} on a {hw[0]}×{hw[1]} grid")
    x = wf_cifar.init_norm(x)
    for block in wf_cifar.blocks:
        x = block(x, hw)
    print(f"after {len(wf_cifar.blocks)} blocks: {tuple(x.shape)}")
    pooled = wf_cifar.norm(x).mean(dim=1)  # (B, C)
    print(f"norm, mean over tokens: {tuple(pooled.shape)} -> head: logits {tuple(wf_cifar.head(pooled).shape)}")
    print("the same as model(images) (max |Δ| < 1e-6):",
          (wf_cifar.head(pooled) - wf_cifar(images)).abs().max().item() < 1e-6)

weights = predicted_weights(wf_cifar, images)
for i, w in weights.items():
    print(f"block {i:>2}: linear weights {tuple(w['linear'].shape)}, conv kernels {tuple(w['dwc'].shape)}")

# %% [markdown]
# The attention baseline `ViT` (DeiT-style, `models.ViT`) shares the stem and the pooled head; its blocks are the
# textbook pre-norm transformer blocks, with softmax attention (`scaled_dot_product_attention`); chapter 05 shows
# one and compares what the two families cost.
#
# **Predict first (exercise 4).** Before you read section 4: WFM-B is WFM-S run on 448-px images instead of
# 224-px ones, so it sees 28×28 = 784 tokens instead of 14×14 = 196, four times as many. How many more parameters
# does it have: the **same** number, **a few percent** more, or about **4x** as many? Think of which of the
# parameters met so far depend on the number of tokens. Write your guess in the cell below; section 4 counts
# them, and exercise 4 asks for the difference.

# %% tags=["predict"]
# answered in: 4. The paper's models: WFM-T, WFM-S, WFM-B
prediction_4 = None  # your guess: "same", "a few percent" or "4x"

# %% [markdown]
# ## 4. The paper's models: WFM-T, WFM-S, WFM-B
#
# The paper's three models ([paper notes](paper_notes.md), "Released layers and models") share one design: width
# 192 (T) or 384 (S, B), 17 blocks, patch 16; WFM-B is WFM-S run at 448 px instead of 224. The DeiT baselines of
# the same names have 12 blocks of width 192 / 384 / 768 (the course's `ViT`: no class token, so 2·C parameters
# fewer than DeiT's own models). The WeightFormer counts must be the reference's exactly.

# %% tags=["nbval-check-output"]
IMAGENET = ("wfm-t", "wfm-s", "wfm-b", "deit-t", "deit-s", "deit-b")
parameters = {}
for name in IMAGENET:
    torch.manual_seed(0)
    model = build_model(name)
    parameters[name] = count_parameters(model)
    print(f"{name:>7}: {parameters[name]:>11,} parameters, {model.img_size} px, patch {model.patch_size}")
del model  # the ImageNet-sized weights are not needed again

# %% [markdown]
# WFM-S and WFM-B have the same count: no weight of a WeightFormer depends on the number of tokens (no position
# embedding, quirk 4; every static or predicted weight has a size set by the width C). Chapter 05 counts where the
# parameters sit and what each model costs in FLOPs.
#
# ## 5. The course's CIFAR-10 models
#
# ImageNet-sized models cannot be trained on one GPU in a course; chapter 07 trains on CIFAR-10 (32×32 images).
# To give WeightFormer what makes small vision transformers work there, enough tokens, the 5M-parameter models
# use **patch 2**: 16×16 = 256 tokens per image, at WFM-T's width 192. The budget, about 5M parameters, is the
# size of the strong small CIFAR transformers (3.8M to 6.3M; [paper notes](paper_notes.md), "CIFAR-10 anchors").
# That leaves one free choice, the depth. A block's parameters do not depend on the image size, so the count is a
# stem-and-head constant plus one term per block, tabulated without building a model per depth:

# %% tags=["nbval-check-output"]
wf_kwargs = models.CONFIGS["wf-cifar"][1]
deit_kwargs = models.CONFIGS["deit-cifar"][1]
width = wf_kwargs["embed_dim"]
# stem, final norm and head: a one-block model (its block 0 is static) minus that block
wf_base = count_parameters(WeightFormer(**{**wf_kwargs, "depth": 1})) - count_parameters(WeightFormerBlock(width))
wf_static = count_parameters(WeightFormerBlock(width, dynamic=False))
wf_dynamic = count_parameters(WeightFormerBlock(width, dynamic=True))
deit_base = (count_parameters(ViT(**{**deit_kwargs, "depth": 1}))  # stem, position embedding, final norm, head
             - count_parameters(models.ViTBlock(width, deit_kwargs["num_heads"], 4.0, 0.0, "fused")))
deit_block = count_parameters(models.ViTBlock(width, deit_kwargs["num_heads"], 4.0, 0.0, "fused"))


def wf_params(depth):
    n_dyn = len(reference_dynamic_blocks(depth))
    return wf_base + n_dyn * wf_dynamic + (depth - n_dyn) * wf_static


print(f"{'depth':>5} | {'dynamic':>7} | {'wf params':>10} | {'deit params':>11}")
for depth in range(8, 17):
    print(f"{depth:>5} | {len(reference_dynamic_blocks(depth)):>7} | {wf_params(depth):>10,} | "
          f"{deit_base + depth * deit_block:>11,}")
print("\nformula == built model: wf-cifar", wf_params(wf_kwargs["depth"]) == count_parameters(wf_cifar),
      "| deit-cifar", deit_base + deit_kwargs["depth"] * deit_block == count_parameters(deit_cifar))

# %% [markdown]
# Depth 13 is the depth closest to 5.0M parameters, and it keeps the reference pattern of a dynamic block
# every three. The attention baseline `deit-cifar` takes the depth whose count is closest to `wf-cifar`'s, so
# the two differ by the model family and not by the size. Quick mode uses smaller models of the same architectures,
# `wf-cifar-quick` and `deit-cifar-quick` (patch 4: 64 tokens, width 96), small enough to train on two CPU cores in
# minutes; the last lines list all four with their configurations:

# %% tags=["nbval-check-output"]
closest_wf = min(range(1, 30), key=lambda d: abs(wf_params(d) - 5_000_000))
closest_deit = min(range(1, 30), key=lambda d: abs(deit_base + d * deit_block - count_parameters(wf_cifar)))
print("depth closest to 5.0M parameters:", closest_wf, "| configured:", wf_kwargs["depth"])
print("deit depth closest to wf-cifar:", closest_deit, "| configured:", deit_kwargs["depth"])
gap = abs(count_parameters(deit_cifar) - count_parameters(wf_cifar)) / count_parameters(wf_cifar)
print(f"wf-cifar {count_parameters(wf_cifar):,} vs deit-cifar {count_parameters(deit_cifar):,} parameters: "
      f"within 1%: {gap < 0.01}")
wf_quick, deit_quick = build_model("wf-cifar-quick").eval(), build_model("deit-cifar-quick").eval()
cifar_models = {"wf-cifar": wf_cifar, "deit-cifar": deit_cifar, "wf-cifar-quick": wf_quick,
                "deit-cifar-quick": deit_quick}
for name, model in cifar_models.items():
    print(f"{name:>17}: {type(model).__name__:<12} {count_parameters(model):>9,} parameters  {models.CONFIGS[name][1]}")

# %% [markdown]
# ## 6. Loading the authors' weights
#
# The authors publish ImageNet checkpoints of WFM-T/S/B. Because the course's modules are named like the
# reference's, a checkpoint maps onto them key for key: `load_reference_state_dict(model, checkpoint)` accepts the
# bare state dict or the `{"model": state_dict, ...}` wrapper the reference training saves, checks every key and
# shape, and loads. No machine building this course can download the checkpoints, so we show it on a
# **synthetic** checkpoint: random tensors under the official keys, written here from the key list in the [paper
# notes](paper_notes.md) ("Checkpoint layout"), independently of the course's model, for the `wf-cifar-quick` shape.

# %%
def official_layout(c, depth, patch, classes):
    """Key -> shape of a checkpoint of the official code (chapters/paper_notes.md, "Checkpoint layout"), width c."""
    layout = {
        "patch_embed.proj.weight": (c, 3, patch, patch), "patch_embed.proj.bias": (c,),
        "init_norm.weight": (c,), "init_norm.bias": (c,), "norm.weight": (c,), "norm.bias": (c,),
        "head.weight": (classes, c), "head.bias": (classes,),
    }
    for i in range(depth):
        p = f"blocks.{i}."
        layout |= {p + "norm2.weight": (c,), p + "norm2.bias": (c,),
                   p + "linear2.weight": (c, 4 * c), p + "linear2.bias": (c,)}
        if (i + 2) % 3 == 0:  # dynamic block
            layout |= {
                p + "norm1.weight": (c,), p + "norm1.bias": (c,),
                p + "linear1.w": (c, 4 * c), p + "linear1.b": (4 * c,),  # in×out: used as x @ w
                p + "linear1.wfm.weight": (c // 4 + c, c), p + "linear1.wfm.bias": (c // 4 + c,),
                p + "linear1.w1": (c // 4, c), p + "linear1.w2": (c, 4 * c),
                p + "dwc.w": (c, 1, 3, 3), p + "dwc.b": (c,),
                p + "dwc.wfm.0.weight": (c, c, 1, 1), p + "dwc.wfm.0.bias": (c,), p + "dwc.wfm.2.weight": (c, c, 1, 1),
            }
        else:  # static block
            layout |= {p + "linear1.weight": (4 * c, c), p + "linear1.bias": (4 * c,),  # nn.Linear: out×in
                       p + "dwc.weight": (c, 1, 3, 3), p + "dwc.bias": (c,)}
    return layout


def synthetic_checkpoint(layout, seed=0):
    """Random tensors (std 0.1) under the official keys, in the wrapper the reference saves."""
    g = torch.Generator().manual_seed(seed)
    return {"model": {k: torch.randn(shape, generator=g) * 0.1 for k, shape in layout.items()}, "epoch": 299}


# %% [markdown]
# The official layout and the course's model agree key for key and shape for shape. Note the two conventions for
# the MLP's first layer: a static block's `linear1.weight` is an `nn.Linear` weight, out×in (4C×C); a dynamic
# block's `linear1.w` is in×out (C×4C), used as `x @ w`.

# %% tags=["nbval-check-output"]
quick_kwargs = models.CONFIGS["wf-cifar-quick"][1]
layout = official_layout(quick_kwargs["embed_dim"], quick_kwargs["depth"], quick_kwargs["patch_size"], 10)
course_layout = {k: tuple(v.shape) for k, v in build_model("wf-cifar-quick").state_dict().items()}
print(f"{len(layout)} official keys; the course's model has the same keys and shapes:", layout == course_layout)
for key in ("blocks.0.linear1.weight", "blocks.1.linear1.w", "blocks.1.linear1.wfm.weight",
            "blocks.1.dwc.wfm.0.weight"):
    print(f"    {key:<28} {layout[key]}")

# %% [markdown]
# A round trip through a file: save the synthetic checkpoint as the reference does, load it (with
# `weights_only=True`, which refuses anything but tensors and plain containers), load it into a fresh model, save
# that model's state dict in the same wrapper, and load it into another fresh model. The first model must hold
# exactly the checkpoint's tensors, and both models must give identical outputs. (That the course's forward pass
# on these tensors is the reference's forward pass is checked in `tests/test_models.py`, against a transcription
# of the reference block written on the raw state dict.)

# %% tags=["nbval-check-output"]
def save_and_load(obj):
    buffer = io.BytesIO()  # a file in memory
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


checkpoint = save_and_load(synthetic_checkpoint(layout))
first = load_reference_state_dict(build_model("wf-cifar-quick"), checkpoint).eval()
second = load_reference_state_dict(build_model("wf-cifar-quick"), save_and_load({"model": first.state_dict()})).eval()
with torch.no_grad():
    out_first, out_second = first(images), second(images)
print("loaded: every tensor equals the checkpoint's:",
      all(torch.equal(v, checkpoint["model"][k]) for k, v in first.state_dict().items()))
print("round trip: outputs identical:", torch.equal(out_first, out_second))
print("outputs", tuple(out_first.shape), "finite:", bool(out_first.isfinite().all()))

# %% [markdown]
# A checkpoint that does not fit raises a `ValueError` listing every missing, unexpected and mis-shaped key, and
# loads nothing. The classic mistake: loading the ImageNet WFM-T checkpoint (layout built for width 192, depth 17,
# patch 16, 1000 classes) into the CIFAR model `wf-cifar`. Into the model it was made for, `wfm-t`, it loads:

# %% tags=["nbval-check-output"]
wfm_t_checkpoint = {"model": {k: torch.zeros(shape) for k, shape in official_layout(192, 17, 16, 1000).items()}}
try:
    load_reference_state_dict(build_model("wf-cifar"), wfm_t_checkpoint)
except ValueError as error:
    print(error)
wfm_t_model = load_reference_state_dict(build_model("wfm-t"), wfm_t_checkpoint)
print("into wfm-t: loaded", type(wfm_t_model).__name__, f"({count_parameters(wfm_t_model):,} parameters)")

# %% [markdown]
# With the real files (downloaded from the authors' release on a machine with network access), the steps are:
#
# ```python
# checkpoint = torch.load("wfm_tiny.pth", map_location="cpu", weights_only=True)
# model = load_reference_state_dict(build_model("wfm-t"), checkpoint).eval()
# model.head = torch.nn.Linear(192, 10)  # to fine-tune on another dataset: load first, then replace the head
# ```
#
# (Training scripts in the Swin/DeiT family may also store their configuration object in the file; then
# `weights_only=True` refuses it, and `weights_only=False` is safe only for a file you trust.)
#
# ## Summary
#
# **Main result:** the course's WeightFormer reproduces the reference architecture with its quirks: WFM-T/S/B have
# exactly 7,074,184 / 27,492,136 / 27,492,136 parameters and the authors' checkpoint layout loads key for key.
#
# - A WeightFormer block is a transformer block with a depthwise 3×3 convolution as its token mixer; one block in
#   three (i with (i + 2) % 3 == 0) uses the dynamic convolution and dynamic linear layer of chapters 03 and 02.
# - The quirks are part of the model: a dynamic block's first LayerNorm **overwrites** the residual stream (its
#   output ignores a per-token rescaling and shift of its input; a pre-norm reading with the same weights computes
#   something else); drop-path acts on the MLP branch only; there is no position embedding and no class token, so
#   no parameter depends on the number of tokens (WFM-B has WFM-S's count).
# - The CIFAR models use patch 2 (256 tokens) at width 192; depth 13 gives `wf-cifar` ≈ 5.0M parameters, and
#   `deit-cifar` takes the depth that matches it within 1%.
# - `load_reference_state_dict` loads checkpoints in the official layout (also wrapped in `{"model": ...}`) and
#   lists every missing, unexpected and mis-shaped key when one does not fit.
#
# Chapter 05 counts what these models cost and measures how the cost grows with the number of tokens.
#
# ## Exercises
#
# Each exercise has a cell that computes the answer (a stub with a hint in the student copy, `chapters/student/`)
# and a cell that checks it with `wf_lessons.exercises.ch04.check_exercise` (expected values from the package).
#
# 1. How many parameters has a reference-pattern WeightFormer for CIFAR-10 (patch 2, 10 classes) of width 256
#    and depth 10? Use section 5's decomposition (stem and head, static blocks, dynamic blocks).
# 2. Which blocks are dynamic in a reference-pattern WeightFormer of depth 20? Give the tuple of indices.
# 3. **Build it.** Write `dynamic_block(block, x, hw)`, the forward pass of a *dynamic* WeightFormer block in
#    evaluation mode, from the weights its two layers predict for each image: `block.dwc.predicted_kernels(m)`
#    (K0 + K̂, `(B, C, 3, 3)`, for the token map `m` `(B, C, H, W)`) applied with one grouped convolution and the
#    bias `block.dwc.b`, and `block.linear1.predicted_weight(h, hw)` (W0 + Ŵ, `(B, C, 4C)`) applied as
#    `h @ W + block.linear1.b`, with the norms, GELU, `linear2` and the residual stream as in section 2 (quirk 1
#    included), without calling `block`, `block.dwc` or `block.linear1`. The checker compares it with `block(x, hw)`.
# 4. **Predicted before section 4, now counted.** You wrote your guess in `prediction_4` before section 4. Give
#    WFM-B's parameter count minus WFM-S's.

# %%
from wf_lessons.exercises import ch04

# %% tags=["solution"]
# hint: count_parameters of a depth-1 model minus its (static) block gives stem and head; then one block of each kind
# depth 10 has the dynamic blocks (1, 4, 7) and 7 static ones
static_256 = count_parameters(WeightFormerBlock(256, dynamic=False))
base_256 = count_parameters(WeightFormer(**{**wf_kwargs, "embed_dim": 256, "depth": 1})) - static_256
dynamic_256 = count_parameters(WeightFormerBlock(256, dynamic=True))
answer_1 = base_256 + 3 * dynamic_256 + 7 * static_256
print(f"{answer_1:,}", "| stem and head by hand:", 3 * 4 * 256 + 256 + 2 * 2 * 256 + 10 * 256 + 10 == base_256)

# %% tags=["nbval-check-output"]
ch04.check_exercise(1, answer_1)

# %% tags=["solution"]
# hint: models.reference_dynamic_blocks, or the rule (i + 2) % 3 == 0
answer_2 = tuple(i for i in range(20) if (i + 2) % 3 == 0)

# %% tags=["nbval-check-output"]
ch04.check_exercise(2, answer_2)

# %% tags=["solution", "build"]
# hint: x = block.norm1(x) first; the map is x.transpose(1, 2).reshape(B, C, H, W); fold the batch into the groups
def dynamic_block(block, x, hw):
    x = block.norm1(x)  # quirk 1: the residual stream itself is replaced
    b, n, c = x.shape
    m = x.transpose(1, 2).reshape(b, c, *hw)  # (B, N, C) -> (B, C, H, W)
    kernels = block.dwc.predicted_kernels(m)  # K0 + K̂: (B, C, 3, 3)
    y = F.conv2d(m.reshape(1, b * c, *hw), kernels.reshape(b * c, 1, 3, 3), block.dwc.b.repeat(b),
                 padding=1, groups=b * c).reshape(b, c, *hw)  # one kernel per (image, channel)
    x = x + y.flatten(2).transpose(1, 2)
    h = block.norm2(x)
    h = h @ block.linear1.predicted_weight(h, hw) + block.linear1.b  # W0 + Ŵ: one (C, 4C) weight per image
    return x + block.linear2(F.gelu(h))  # drop-path is the identity in evaluation mode


answer_3 = dynamic_block

# %% tags=["nbval-check-output"]
ch04.check_exercise(3, answer_3)

# %% tags=["solution"]
# hint: parameters["wfm-b"] - parameters["wfm-s"] from section 4
answer_4 = parameters["wfm-b"] - parameters["wfm-s"]
print(f"{answer_4:,}")

# %% tags=["nbval-check-output"]
ch04.check_prediction(4, prediction_4)
ch04.check_exercise(4, answer_4)

# %% [markdown]
# ## References
#
# - R. He, D. Han, G. Huang. *Linear-Time Global Visual Modeling without Explicit Attention*. arXiv 2605.01711
#   (2026); reference code github.com/LeapLabTHU/WeightFormer (`model/wfm.py`). The course's notes:
#   [paper_notes.md](paper_notes.md).
# - H. Touvron et al. *Training data-efficient image transformers & distillation through attention* (DeiT).
#   ICML 2021, arXiv 2012.12877.
# - A. Dosovitskiy et al. *An Image is Worth 16x16 Words* (ViT). ICLR 2021, arXiv 2010.11929.
# - G. Huang et al. *Deep Networks with Stochastic Depth* (drop-path). ECCV 2016, arXiv 1603.09382.
# - J. L. Ba, J. R. Kiros, G. E. Hinton. *Layer Normalization*. arXiv 1607.06450.
# - PyTorch: `torch.load(..., weights_only=True)`, `torchvision.ops.StochasticDepth` (drop-path).

# %% [markdown]
# # 02 · Dynamic linear layers: every weight predictor
#
# [Open in Colab](https://colab.research.google.com/github/wf-lessons/wf-lessons/blob/main/chapters/02_dynamic_linear_layers.ipynb) (its first code cell installs the course there)
#
# Chapter 01 ended with WeightFormer's move: keep attention's idea of an MLP whose weights are *predicted from the
# input*, but predict weights of a **fixed size**, so that the cost stays linear in the number of tokens N. This
# chapter builds that layer for the first linear layer of a transformer MLP, `C -> D` with `D = 4C`, and every
# way of predicting its weight that the paper names (its Fig. 3: GAP, Linear, Nonlinear, Bilateral, Deep).
#
# In this chapter you will
#
# 1. meet the template every dynamic layer of the paper shares, the weight `W0 + Ŵ` with `Ŵ = W̃/(‖W̃‖ + 1)`, and
#    see what the normalisation guarantees;
# 2. climb a ladder of predictors, static → gap → linear → nonlinear → bilateral → deep, each rung motivated by
#    something the rung below cannot do, each shown numerically;
# 3. derive the paper's released layer (`bilateral`) inline, line by line, and check it against the package;
# 4. see that this layer is an unnormalised linear attention whose query is the input itself, plus a static weight;
# 5. count parameters and FLOPs for every predictor at the width of the paper's smallest model;
# 6. look at the weights the layer predicts for two real CIFAR-10 images, and pick predictors and images yourself.
#
# **Which definitions are the paper's.** `bilateral` is the paper's released layer (class `DynLinear` in the
# reference code; see [paper notes](paper_notes.md), "The released dynamic linear layer"), reproduced exactly. The paper only *names* the other strategies; `gap`, `linear`,
# `nonlinear` and `deep` as defined here are the course's reconstruction: one ladder over the same two-branch
# generator with the same bottleneck widths. `static` is a plain `nn.Linear`.
#
# Everything reusable lives in `wf_lessons.dynamic_linear`. The chapter is the same in quick mode and in a full
# run: it trains nothing (section 9 loads a trained model that ships with the package) and its largest
# computation is one layer applied to 16×16 tokens. Symbols follow the course's
# [notation table](paper_notes.md#notation): X (N×C) the tokens, D the output width, r the bottleneck rate, W0 the
# static weight, W̃ the raw prediction and Ŵ the normalised one.

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

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from wf_lessons import complexity, config
from wf_lessons import dynamic_linear as dl
from wf_lessons.dynamic_linear import build_dynamic_linear
from wf_lessons.notebooks import show_source

QUICK = config.quick()
print("quick mode:", QUICK)
print("predictors:", list(dl.LINEAR_PREDICTORS))

# %% [markdown]
# ## 1. The template: a static weight plus a bounded prediction
#
# A dynamic linear layer maps tokens `X` (N×C, one image) to `Y` (N×D) with **one weight matrix per image**:
#
# $$Y = X\,(W_0 + \hat W) + b, \qquad \hat W = \frac{\tilde W}{\lVert \tilde W\rVert + 1}\ \text{(per output column)},\qquad \tilde W = G(X).$$
#
# `W0` (C×D) and `b` (D) are ordinary learned parameters. `W̃ = G(X)` (C×D) is the raw prediction, a function of
# the whole image. The normalisation divides each *output column* of `W̃` (a vector of C numbers: how output feature j reads
# the inputs) by its norm plus one. The direction is kept; a norm r becomes r/(r+1), which is always below 1. So
# however large the prediction gets, it can move each column of the weight by less than one unit: the layer stays
# close to an ordinary linear layer unless `W0` itself is small. Here is the map on a few norms, and a check on a
# random matrix:

# %% tags=["nbval-check-output"]
gen = torch.Generator().manual_seed(0)
for r in (0.001, 0.1, 1.0, 10.0, 1000.0):
    print(f"raw column norm {r:>8}: normalised {r / (r + 1):.6f}")

raw = torch.randn(1, 16, 64, generator=gen) * 50  # (B, C, D): a large prediction
normalised = raw / (raw.norm(dim=-2, keepdim=True) + 1)  # the norm runs over C: one per output column
cosine = F.cosine_similarity(raw, normalised, dim=-2)  # (B, D): direction of each column
print("every column norm < 1:", bool((dl.column_norms(normalised) < 1).all()))
print("every column keeps its direction (cosine = 1 to 1e-6):", bool(((cosine - 1).abs() < 1e-6).all()))


# %% [markdown]
# The whole layer in one picture (`wf_lessons.diagrams`); the rest of the chapter fills in each box.

# %%
from wf_lessons import diagrams

diagrams.dynamic_linear()
plt.show()

# %% [markdown]
# ## 2. Rung 0 — `static`: the weight every image shares
#
# The baseline is no prediction at all: `W = W0`. `build_dynamic_linear(C, D, predictor="static")` is exactly an
# `nn.Linear`; it even has the same state-dict keys (`weight` of shape D×C, `bias`), so the weights of an
# `nn.Linear` load into it. We work with small toy sizes first: C = 16 channels, D = 64 outputs, tokens on a
# 6×6 grid, two images.

# %% tags=["nbval-check-output"]
C, D, HW = 16, 64, (6, 6)
N = HW[0] * HW[1]


def toy_tokens(seed, batch=2):
    """Seeded toy tokens (B, N, C) on the 6×6 grid."""
    return torch.randn(batch, N, C, generator=torch.Generator().manual_seed(seed))


x = toy_tokens(1)
static = build_dynamic_linear(C, D, predictor="static")
reference = nn.Linear(C, D)
static.load_state_dict(reference.state_dict())
print(static)
print("state-dict keys:", list(static.state_dict()))
print("x", tuple(x.shape), "-> y", tuple(static(x, HW).shape))
print("equal to nn.Linear:", torch.equal(static(x, HW), reference(x)))

weights = static.predicted_weight(x, HW)  # (B, C, D): the weight each image is multiplied by
print("per-image weights", tuple(weights.shape), "- the same for both images:", torch.equal(weights[0], weights[1]))

# %% [markdown]
# **What it cannot do:** look at the image. Every token of every image is multiplied by the same matrix, so a
# token's output depends on that token alone. Global context has to come from elsewhere (attention, pooling,
# large convolutions). The dynamic rungs below all predict a part `W̃` that depends on the whole image.
#
# ### The shared generator
#
# Every predicting rung uses the same two-branch generator, with bottleneck rate r = 4 (the
# released layer's, [paper notes](paper_notes.md), "The released dynamic linear layer"):
#
# ```
# P      = AvgPool2d(2)(X on its H×W grid)                    N' = (H//2)(W//2) pooled tokens
# U_k, U_v = split(P·A + a, [C/r, D/r])                       one nn.Linear C -> C/r + D/r, with bias
# K      = f(U_k)·W1        W1: (C/r)×C       keys,   N'×C
# V      = g(U_v)·W2        W2: (D/r)×D       values, N'×D
# W̃      = Kᵀ·V · C^-0.5 / N                                  N = the full token count
# ```
#
# `W̃ = Σᵢ kᵢᵀ vᵢ · C^-0.5/N` is a sum of outer products, one per pooled token: each pooled token i proposes a
# rank-1 update "read the input along kᵢ, write along vᵢ". The rungs differ only in what is fed to the generator
# and in the activations `f` and `g`. To compare them fairly we build every layer from the same seed, so that the
# parameters they share (`w`, `b`, `wfm`, `w1`, `w2`) are identical, and we give the generator random weights of
# order 1 instead of its tiny initialisation (section 9 measures how tiny that is), so the
# differences are large enough to see.

# %% tags=["nbval-check-output"]
def toy_layer(predictor):
    """A toy layer C -> D whose generator parameters are drawn N(0, 1) (same seed for every predictor)."""
    torch.manual_seed(0)
    layer = build_dynamic_linear(C, D, predictor=predictor)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name not in ("w", "b", "weight", "bias"):
                p.copy_(torch.randn(p.shape, generator=g))
    return layer


toy = {name: toy_layer(name) for name in dl.LINEAR_PREDICTORS}
print("shared parameters identical in gap and bilateral:",
      all(torch.equal(p, toy["bilateral"].get_parameter(n)) for n, p in toy["gap"].named_parameters()))

# %% [markdown]
# ## 3. Rung 1 — `gap`: a prediction from the image's average
#
# The simplest way to let the image in: summarise it by its global average token `x̄` and predict from that. The
# `gap` layer (the course's reconstruction) runs the generator on `x̄` as if every pooled token were `x̄`:
# `W̃ = N'·k(x̄)ᵀ v(x̄) · C^-0.5/N`. One key, one value: the prediction is a single outer product, **rank 1**.
# (The factor N' is our choice: fed one token alone, with the same `/N`, the prediction would be N' times smaller
# than `bilateral`'s on an image whose pooled tokens are all equal, and the ladder would compare sizes, not ideas.)

# %% tags=["nbval-check-output"]
gap = toy["gap"]
with torch.no_grad():
    d_gap = gap.raw_dynamic_weight(x, HW)  # (B, C, D), before normalisation
    print("gap prediction", tuple(d_gap.shape), "rank per image:", torch.linalg.matrix_rank(d_gap).tolist())
    print("differs between the two images:", not torch.allclose(d_gap[0], d_gap[1]))

# %% [markdown]
# **What it cannot do:** see anything but the mean. Shuffle the tokens of an image (a completely different
# picture with the same average) and `gap` predicts exactly the same weight:

# %% tags=["nbval-check-output"]
shuffled = x[:, torch.randperm(N, generator=torch.Generator().manual_seed(2))]  # same tokens, new places
with torch.no_grad():
    print("gap, shuffled image: same weight (to 1e-6):",
          torch.allclose(gap.dynamic_weight(shuffled, HW), gap.dynamic_weight(x, HW), atol=1e-6))

# %% [markdown]
# ## 4. Rung 2 — `linear`: one proposal per region
#
# Feed the generator every pooled token instead of their mean. Each 2×2 region proposes its own outer product,
# so the sum is no longer rank 1: its rank can reach the number of regions N' (9 here: the 6×6 grid pools to
# 3×3), or the bottleneck width if that is smaller. Keys are `f(U_k)·W1` with `U_k` only C/r wide, so the rank is at
# most min(N', C/r, D/r): 4 for this toy layer with C = 16. In `linear` (the course's reconstruction) both
# branches are linear, `f = g = identity`: keys and values are linear projections of the pooled tokens. The
# shuffled image now gets a different weight:

# %% tags=["nbval-check-output"]
linear = toy["linear"]
with torch.no_grad():
    p = linear.pooled_tokens(x, HW)  # (B, N', C)
    print("pooled tokens", tuple(p.shape), " rank of the prediction:",
          torch.linalg.matrix_rank(linear.raw_dynamic_weight(x, HW)).tolist(),
          " bound min(N', C/r, D/r):", min(p.shape[1], C // 4, D // 4))
    print("linear, shuffled image: same weight:",
          torch.allclose(linear.dynamic_weight(shuffled, HW), linear.dynamic_weight(x, HW), atol=1e-6))

# %% [markdown]
# (Shuffling whole 2×2 regions would still go unnoticed: `W̃` is a sum over pooled tokens, so every generator
# here sees the image as a *set* of regions. Position enters only through which tokens pool together, and, in the
# full network, through the depthwise convolution that precedes this layer.)
#
# **What it cannot do:** anything beyond second-order statistics. With linear branches the keys are
# `kᵢ = (pᵢA_k + a_k) W1` and the values `vᵢ = (pᵢA_v + a_v) W2`, so the whole prediction is
#
# $$\tilde W = \frac{C^{-1/2}}{N}\; W_1^\top \Big[\sum_i (p_iA_k + a_k)^\top (p_iA_v + a_v)\Big]\, W_2
#   \qquad (C\times C/r)\,(C/r\times D/r)\,(D/r\times D) = C\times D,$$
#
# a quadratic function of the pooled tokens `pᵢ`, read through the bottleneck (`A_k`, `A_v` are the two halves of
# the fused `nn.Linear`'s weight, `a_k`, `a_v` of its bias). With the bias at zero (as at initialisation) the bracket
# is `A_kᵀ (Σᵢ pᵢᵀpᵢ) A_v`, so `W̃ = C^-0.5/N · W1ᵀ A_kᵀ (Σᵢ pᵢᵀpᵢ) A_v W2`: a fixed projection of the tokens'
# second-moment matrix. An image and its negative have the same second moments, so they get the same weight:

# %% tags=["nbval-check-output"]
with torch.no_grad():
    for layer in toy.values():
        if hasattr(layer, "wfm"):
            layer.wfm.bias.zero_()  # the fused bias at its initial value, for every toy layer alike


def same_for_negative(layer):
    with torch.no_grad():
        return torch.allclose(layer.dynamic_weight(-x, HW), layer.dynamic_weight(x, HW), atol=1e-6)


print("linear: X and -X get the same weight:", same_for_negative(linear))

# %% [markdown]
# ## 5. Rung 3 — `nonlinear`: a non-linearity on one side
#
# Put a SiLU on the value branch, `g = SiLU` (`nonlinear`, the course's reconstruction). The prediction is no
# longer a function of the second moments alone, and the sign of the image matters:

# %% tags=["nbval-check-output"]
nonlinear = toy["nonlinear"]
print("nonlinear: X and -X get the same weight:", same_for_negative(nonlinear))

# %% [markdown]
# **What it cannot do:** give the keys a non-linear view. The keys `K = U_k·W1` are still a linear projection of each
# pooled token, and the keys are the *input side* of the prediction: every column of `W̃` is a combination of
# the keys, `W̃[:, j] = Σᵢ kᵢ vᵢⱼ`. Which input directions the predicted weight reads is therefore confined to
# linear images of the pooled tokens: flip the image and the keys simply flip sign.

# %% tags=["nbval-check-output"]
with torch.no_grad():
    k_pos, _ = nonlinear.keys_values(x, HW)  # (B, N', C) keys, (B, N', D) values
    k_neg, _ = nonlinear.keys_values(-x, HW)
    print("nonlinear: keys of -X are minus the keys of X:", torch.allclose(k_neg, -k_pos, atol=1e-6))

# %% [markdown]
# ## 6. Rung 4 — `bilateral`: the released layer, derived line by line
#
# SiLU on **both** branches, `f = g = SiLU`: keys and values are both non-linear features of each region. This
# is the layer the paper released (reference class `DynLinear`). Let us write it out from the reference code (see
# [paper notes](paper_notes.md), "The released dynamic linear layer"), one line per
# equation, using the parameters of the package's layer, and on a grid with odd sides (7×5), where the 2×2
# pooling floors: it drops the last row and column of tokens, as the reference does.

# %% tags=["nbval-check-output"]
bilateral = toy_layer("bilateral")  # fresh: the fused bias is non-zero again
hw_odd = (7, 5)
x_odd = torch.randn(2, hw_odd[0] * hw_odd[1], C, generator=torch.Generator().manual_seed(3))

with torch.no_grad():
    B_, N_, C_ = x_odd.shape
    grid = x_odd.transpose(1, 2).reshape(B_, C_, *hw_odd)  # (B, N, C) -> (B, C, H, W), tokens row-major
    P = nn.AvgPool2d(2)(grid).flatten(2).transpose(1, 2)  # (B, C, 3, 2) -> (B, N' = 6, C)
    U, V = torch.split(bilateral.wfm(P), [C // 4, D // 4], dim=-1)  # one fused Linear: (B, N', C/4), (B, N', D/4)
    K_f = F.silu(U) @ bilateral.w1  # (B, N', C)
    V_f = F.silu(V) @ bilateral.w2  # (B, N', D)
    W_hat = K_f.transpose(1, 2) @ V_f * C_**-0.5 / N_  # (B, C, D): divided by the FULL token count N
    W_hat = W_hat / (W_hat.norm(dim=-2, keepdim=True) + 1)  # per output column
    Y = x_odd @ (bilateral.w + W_hat) + bilateral.b  # (B, N, D): one weight matrix per image

    print("P", tuple(P.shape), " K_f", tuple(K_f.shape), " V_f", tuple(V_f.shape), " Ŵ", tuple(W_hat.shape),
          " Y", tuple(Y.shape))
    delta_w = (W_hat - bilateral.dynamic_weight(x_odd, hw_odd)).abs().max().item()
    delta_y = (Y - bilateral(x_odd, hw_odd)).abs().max().item()
    print("inline vs package Ŵ: max |Δ| < 1e-6:", delta_w < 1e-6)
    print("inline vs package Y: max |Δ| < 1e-6:", delta_y < 1e-6)

# %% [markdown]
# The package splits the same computation into small methods that every predicting rung shares; the rungs
# override only what differs (`gap` its input, `deep` its branches, the others their two activations):

# %%
for method in ("pooled_tokens", "branches", "raw_dynamic_weight", "dynamic_weight", "predicted_weight", "forward"):
    show_source(getattr(dl.BilateralDynLinear, method))

# %% [markdown]
# Two details are easy to miss because the paper's pseudo-code figure omits them, while the reference code has
# them: the scale divides by the **full** token count N (not by the N' pooled tokens that are summed), and the
# per-column normalisation. The tests (`tests/test_dynamic_linear.py`) compare the package with a line-by-line
# transcription to 1e-6 and check that each of these details, changed, makes the comparison fail.
#
# ### The released layer is a linear attention with the input as its own query
#
# By associativity, `X·Ŵ = X·(Kᵀ V') = (X Kᵀ)·V'`, where `V'` is the values scaled by `C^-0.5/N` and by the
# column normalisation. Read right to left, that is attention: scores `X Kᵀ` (N×N', one per token and pooled
# region) with **no softmax and no normalisation**, multiplied by values. The query is the input X itself. So
# `bilateral` is an unnormalised linear attention over N' pooled regions, plus the static layer `X W0 + b`:

# %% tags=["nbval-check-output"]
with torch.no_grad():
    K_f, V_f = bilateral.keys_values(x_odd, hw_odd)  # (B, N', C), (B, N', D)
    column_scale = bilateral.raw_dynamic_weight(x_odd, hw_odd).norm(dim=-2, keepdim=True) + 1  # (B, 1, D)
    V_scaled = V_f * C**-0.5 / x_odd.shape[1] / column_scale  # (B, N', D)
    scores = x_odd @ K_f.transpose(1, 2)  # (B, N, N'): query = the token itself, key = a pooled region
    Y_attention = x_odd @ bilateral.w + bilateral.b + scores @ V_scaled
    print("scores", tuple(scores.shape), "- one per (token, pooled region), no softmax")
    print("static + linear attention vs layer: max |Δ| < 1e-6:",
          (Y_attention - bilateral(x_odd, hw_odd)).abs().max().item() < 1e-6)

# %% [markdown]
# The reading explains the cost too: computing `Ŵ = KᵀV'` first costs N'·C·D, then `X·Ŵ` costs N·C·D; computing
# the N×N' scores first would cost N·N'·(C + D), quadratic in N. Chapter 01's linear attention makes the same
# choice of order.
#
# ## 7. Rung 5 — `deep`: deeper branches
#
# The last rung of the paper's list makes each branch one hidden layer deeper: Linear → SiLU → Linear → SiLU → W
# (`deep`, the course's reconstruction). In `bilateral` each key and value is a one-hidden-layer function of its
# region; `deep` asks whether richer per-region features predict better weights, at the price of two extra
# bottleneck layers (`hidden1`, C/r × C/r, and `hidden2`, D/r × D/r). Its state dict:

# %% tags=["nbval-check-output"]
deep = toy["deep"]
for key, value in deep.state_dict().items():
    print(f"{key:>15}: {tuple(value.shape)}")

# %% [markdown]
# **Predict first (exercise 6).** Before you read section 8: the released `bilateral` layer at WFM-T width runs on a
# 14×14 token grid. Double the image side, so the grid becomes 28×28 and N grows ×4. By what factor do the layer's
# counted FLOPs grow: about 2, about 4 or about 16? (Think of which products run on all N tokens, which on the N'
# pooled ones, and whether any of them is N×N.) Write your guess in the cell below; exercise 6 measures it.

# %% tags=["predict"]
# answered in: 8. What each predictor costs at WFM-T width
prediction_6 = None  # your guess: "2", "4" or "16"

# %% [markdown]
# ## 8. What each predictor costs at WFM-T width
#
# The paper's smallest model, WFM-T, has C = 192 channels and D = 4C = 768 in its MLP; a 224-pixel image with
# 16-pixel patches gives 14×14 tokens. `dl.parameter_count` is the formula (see its docstring); the module's own
# count must agree. FLOPs are counted by PyTorch's `FlopCounterMode` through `complexity.count_flops` (chapter 01;
# one multiply-accumulate = 2 FLOPs, matrix products only). The last column doubles the image side (28×28 tokens,
# N ×4) and divides: linear cost means ×4.

# %% tags=["nbval-check-output"]
C_T, D_T, HW_T = 192, 768, (14, 14)
HW_2 = (28, 28)


def flops(layer, hw):
    return complexity.count_flops(layer, torch.zeros(1, hw[0] * hw[1], layer.in_features), hw)


rows = []
for name in dl.LINEAR_PREDICTORS:
    torch.manual_seed(0)
    layer = build_dynamic_linear(C_T, D_T, predictor=name)
    n_params = sum(p.numel() for p in layer.parameters())
    assert n_params == dl.parameter_count(name, C_T, D_T)
    rows.append((name, n_params, flops(layer, HW_T), flops(layer, HW_2)))

static_params, static_flops = rows[0][1], rows[0][2]
print(f"{'predictor':>10} | {'parameters':>10} | {'× static':>8} | {'MFLOPs 14×14':>12} | {'× static':>8} | "
      f"{'28×28 / 14×14':>13}")
for name, n_params, f_small, f_large in rows:
    print(f"{name:>10} | {n_params:>10,} | {n_params / static_params:>8.2f} | {f_small / 1e6:>12.1f} | "
          f"{f_small / static_flops:>8.3f} | {f_large / f_small:>13.3f}")

torch.manual_seed(0)
bilateral_t = build_dynamic_linear(C_T, D_T, predictor="bilateral")
extra = dl.parameter_count("bilateral", C_T, D_T) - static_params
print(f"\nbilateral's {extra:,} extra parameters over nn.Linear:")
for name, p in bilateral_t.named_parameters():
    if name not in ("w", "b"):  # W0 and b are nn.Linear's own
        print(f"{name:>12} {tuple(p.shape)!s:>12}: {p.numel():>7,} = {p.numel() / extra:.0%}")

# %% [markdown]
# Reading the table:
#
# - `bilateral` has 9.5·C² + 5.25·C parameters against 4·C² + 4·C for `nn.Linear`. Most of the extra parameters
#   (the share is printed above) are `w2`, the value branch's up-projection (D/r × D): it writes every output
#   column, so it is as wide as the layer. `gap`, `linear` and `nonlinear` have exactly the same parameters (they
#   share the generator) and `deep` adds its two hidden layers.
# - The generator runs on N/4 pooled tokens, so `bilateral` costs about 1.6× a static layer. `gap` runs it on
#   one token, so it costs almost nothing beyond the static layer.
# - Every predictor is linear in N (the ratio is 4, or slightly below for `gap` whose generator cost does not grow
#   with N). Softmax attention would give 16 (chapter 01).
#
# ## 9. The weights two real images receive
#
# Now real data, first at initialisation, then in a trained network. The layer reads tokens, so at initialisation
# we need a patch embedding: here a **seeded, untrained** one, `Conv2d(3, 192, kernel_size=2, stride=2)` on the
# normalised 32×32 image, which gives 16×16 tokens of 192 channels, followed by a LayerNorm (in the network this
# layer reads LayerNorm-ed tokens). The dynamic layers are WFM-T-width layers of every predictor, at their
# initialisation.

# %%
from wf_lessons.data import CLASSES, cifar10, normalize

images, labels = cifar10("test", per_class=1)  # the first test image of every class: (10, 3, 32, 32) uint8
torch.manual_seed(0)
embed = nn.Conv2d(3, C_T, kernel_size=2, stride=2)  # seeded random patch embedding: 32×32 px -> 16×16 tokens
HW_IMG = (16, 16)


def image_tokens(index):
    """Tokens (1, 256, 192) of test image `index`: random patch embedding, then LayerNorm."""
    with torch.no_grad():
        t = embed(normalize(images[index : index + 1])).flatten(2).transpose(1, 2)  # (1, C, 16, 16) -> (1, N, C)
        return F.layer_norm(t, (C_T,))


layers = {}
for name in dl.LINEAR_PREDICTORS:  # the same seed: the shared parameters are identical across predictors
    torch.manual_seed(0)
    layers[name] = build_dynamic_linear(C_T, D_T, predictor=name).eval()

pair = (CLASSES.index("cat"), CLASSES.index("ship"))
print("images:", [CLASSES[int(labels[i])] for i in pair], " tokens:", tuple(image_tokens(pair[0]).shape))

# %% [markdown]
# First: how large is the prediction at initialisation, next to the static weight? Every
# weight starts at standard deviation 0.02, and the prediction multiplies several of them, so it starts tiny
# against the static weight: the network begins as a static MLP and learns to use the dynamic path.

# %%
cat_tokens = image_tokens(pair[0])
static_norm = dl.column_norms(layers["bilateral"].static_weight()).mean().item()
print(f"mean column norm of the static W0: {static_norm:.3f}")
for name, layer in layers.items():
    if name != "static":
        with torch.no_grad():
            dynamic_norm = dl.column_norms(layer.dynamic_weight(cat_tokens, HW_IMG)).mean().item()
        print(f"{name:>10}: mean column norm of Ŵ for the cat {dynamic_norm:.1e}  "
              f"(W0 is {static_norm / dynamic_norm:,.0f}× larger)")

# %% [markdown]
# So at initialisation the predicted part is noise far below the static weight; a heat-map of it would show
# nothing a network has learned. What does a *trained* network predict? The course ships one
# (`wf_lessons.pretrained`): `wf-cifar-cpu`, a WeightFormer of width C = 64 with patch 4 (8×8 tokens) whose blocks
# 1 and 4 are dynamic, each with a `bilateral` layer 64 → 256, trained for 15 epochs on CIFAR-10 (chapter 07
# shows how, and its manifest names the run log). `models.predicted_weights` runs it on images and returns, for
# every dynamic block, the weight `W0 + Ŵ` each image received; subtracting the static `W0` leaves Ŵ.

# %%
from wf_lessons import pretrained
from wf_lessons.models import predicted_weights

trained = pretrained.load("wf-cifar-cpu")
meta = pretrained.manifest("wf-cifar-cpu")
print(f"wf-cifar-cpu: {meta['test_acc']:.1%} test accuracy on {meta['test_images']:,} images "
      f"(run log {meta['run_log']}); dynamic blocks {list(trained.dynamic_blocks)}")
with torch.no_grad():
    applied = predicted_weights(trained, normalize(images))  # {block: {"linear": (10, C, D), "dwc": ...}}
trained_w_hat = {b: applied[b]["linear"] - trained.blocks[b].linear1.static_weight().detach()
                 for b in trained.dynamic_blocks}  # {block: Ŵ (10 images, C, D)}
for b, w_hat in trained_w_hat.items():
    w0 = trained.blocks[b].linear1.static_weight().detach()
    print(f"block {b}: Ŵ {tuple(w_hat.shape[1:])} per image; mean column norm of Ŵ "
          f"{dl.column_norms(w_hat).mean().item():.3f}, of W0 {dl.column_norms(w0).mean().item():.3f}; "
          f"rank of Ŵ per image {sorted(set(torch.linalg.matrix_rank(w_hat).tolist()))}")

# %% [markdown]
# Training has grown the prediction from orders of magnitude below `W0` to a sizeable fraction of it (the mean
# column norms above). The heat-maps: Ŵ for two images (the whole 64 × 256 matrix) and their difference. The
# static part is the same for both images, so the difference of the full weights `W0 + Ŵ` is the difference of
# the Ŵ. All three panels share one colour scale (clipped at the 99th percentile of the entries' sizes, so that
# a few extreme entries do not wash out the rest).

# %%
def show_predictions(first, second, block=1):
    """Heat-maps of the trained model's Ŵ (C × D) in one dynamic block for two test images, and their
    difference, with how much the images' weights differ in the title."""
    a, b = trained_w_hat[block][first], trained_w_hat[block][second]  # (C, D) each
    w0 = trained.blocks[block].linear1.static_weight().detach()
    names = [CLASSES[int(labels[i])] for i in (first, second)]
    panels = [(a, f"Ŵ for the {names[0]}"), (b, f"Ŵ for the {names[1]}"), (a - b, "difference")]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6), width_ratios=[0.9, 3, 3, 3], layout="constrained")
    axes[0].imshow(torch.cat([images[first], images[second]], dim=1).permute(1, 2, 0))  # stacked vertically
    axes[0].set_title(f"{names[0]} (top),\n{names[1]} (bottom)", fontsize=9)
    axes[0].axis("off")
    lim = float(torch.cat([p.abs().flatten() for p, _ in panels]).quantile(0.99))  # a few extremes saturate
    for ax, (panel, title) in zip(axes[1:], panels):
        image = ax.imshow(panel, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
        ax.set_title(f"block {block}: {title}", fontsize=10)
        ax.set_xlabel(f"output feature (D = {panel.shape[1]})")
        ax.set_ylabel(f"input channel (C = {panel.shape[0]})")
    fig.colorbar(image, ax=axes[1:], fraction=0.02, pad=0.01, extend="both", label="weight entry")
    fig.suptitle(f"trained wf-cifar-cpu: ‖Ŵ_a − Ŵ_b‖ / ‖Ŵ_a‖ = {(a - b).norm() / a.norm():.2f},  "
                 f"‖W_a − W_b‖ / ‖W0‖ = {(a - b).norm() / w0.norm():.2f}", fontsize=10)
    plt.show()


show_predictions(*pair)

# %% [markdown]
# The two numbers in the title: the first compares the two *predictions* with the size of one of them (near 1 or
# above: they are as different as they are large, so the layer responds to the image); the second compares the two
# full *weights* with the static weight (how far apart the two images' weights are, next to what they share).
# At initialisation (measured above) the second would be negligible; after training the two images' weights differ
# by a visible fraction of `W0`: the trained network uses its dynamic path.
#
# ### Try it yourself
#
# Pick another second image and the other dynamic block (the first image stays the cat); the figure under the
# controls is redrawn for each change. The figure just below the cell is the first state, which static copies of
# the notebook (e.g. on GitHub) show too.

# %%
import ipywidgets as widgets

from wf_lessons.interactive import figure_controls

figure_controls(lambda second, block: show_predictions(pair[0], second, block), {
    "second": widgets.Dropdown(options=[(CLASSES[int(labels[i])], i) for i in range(len(labels))], value=pair[1],
                               description="image"),
    "block": widgets.Dropdown(options=list(trained.dynamic_blocks), value=trained.dynamic_blocks[0],
                              description="block"),
})

# %% [markdown]
# Things to look for: the difference panel is as strong as the predictions themselves, so no image gets "the
# average weight plus a little"; and the stripes: Ŵ = W̃/(‖W̃‖ + 1) with W̃ = KᵀV has rank at most
# min(N', C/r, D/r) = min(16, 16, 64) = 16 on this 8×8 grid (section 4), so every row of Ŵ is a combination of a
# few row patterns and every column of a few column patterns (the ranks measured above stay within that bound).
#
# ## Summary
#
# **Main result:** every dynamic linear layer applies `W0 + Ŵ`, a weight predicted per image whose dynamic part
# has column norms below 1; the released `bilateral` layer matches a line-by-line transcription of the reference
# to 1e-6 and, like every predictor, costs FLOPs linear in N (×4 for ×4 tokens). At initialisation Ŵ is orders of
# magnitude below `W0`; in the trained `wf-cifar-cpu` it is a sizeable, image-dependent part of the weight.
#
# - Every dynamic linear layer of the paper computes `Y = X(W0 + Ŵ) + b` with one weight per image, `Ŵ = W̃ /
#   (‖W̃‖ + 1)` per output column: each column of the prediction has norm below 1, whatever the input.
# - The predictors form a ladder over one two-branch generator `W̃ = Kᵀ V · C^-0.5/N` on 2×2-pooled tokens:
#   `static` (no prediction) → `gap` (the mean only, rank 1) → `linear` (second moments only: X and −X look the
#   same) → `nonlinear` (SiLU on the values; keys still linear) → `bilateral` (SiLU on both: the released layer)
#   → `deep` (deeper branches). All but `bilateral` and `static` are the course's reconstruction.
# - `bilateral` matches a line-by-line transcription of the reference to 1e-6, including the two details the
#   paper's figure omits: the scale divides by the full token count N, and the per-column normalisation.
# - It is an unnormalised linear attention with the input as its own query over N' pooled regions, plus `X W0 + b`;
#   computing `KᵀV` first keeps it linear in N.
# - At WFM-T width `bilateral` has 351,216 parameters (2.4× an `nn.Linear`) and costs about 1.6× its FLOPs; every
#   predictor's FLOPs grow ×4 when N does. At initialisation the prediction is tiny next to `W0`; the trained
#   model's is not (section 9).
#
# ## Exercises
#
# Each exercise has a cell that computes the answer (a stub with a hint in the student copy, `chapters/student/`)
# and a cell that checks it with `wf_lessons.exercises.ch02.check_exercise`.
#
# 1. How many parameters has a `bilateral` layer at WFM-S width, C = 384 → D = 1536, r = 4? (Pencil and paper,
#    then `dl.parameter_count` or a module.)
# 2. How many multiply-accumulates per token does `bilateral` cost at D = 4C, r = 4 on an even grid, as a multiple
#    of C²? (An `nn.Linear` costs 4·C².) Count each matrix product of section 6; remember that the generator
#    runs on N/4 pooled tokens. Check with `complexity.count_flops` (FLOPs = 2 × MACs).
# 3. What is the largest possible rank of the bilateral prediction Ŵ on a 14×14 token grid with C = 192,
#    D = 768, r = 4? Why does the normalisation not change it?
# 4. Write `deep_weight(layer, x, hw)` returning the normalised prediction Ŵ `(B, C, D)` of a `deep` layer from
#    its parameters (`wfm`, `hidden1`, `hidden2`, `w1`, `w2`), in the style of section 6.
# 5. **Change a hyper-parameter, predict, measure.** Halve the bottleneck: `rate=2` instead of 4, same grid and
#    widths as exercise 3. First write down, in words, what you expect for (a) the parameter count and (b) the
#    largest rank of Ŵ: which of the three limits of exercise 3 binds now? Then build
#    `build_dynamic_linear(192, 768, predictor="bilateral", rate=2)`, give its generator weights of order 1 (as the toy
#    layers of section 2) and measure the rank of Ŵ on a random input, in float64. The answer is the measured rank.
# 6. **Predicted before section 8, now measured.** You wrote your guess in `prediction_6` before section 8. Measure
#    the factor: the counted FLOPs of the `bilateral` layer at C = 192, D = 768 on a 28×28 grid divided by those on
#    a 14×14 grid (the function `flops` of section 8 counts them).

# %%
from wf_lessons.exercises import ch02

# %% tags=["solution"]
# hint: count the parameters of build_dynamic_linear(384, 1536, predictor="bilateral"), or use dl.parameter_count
answer_1 = sum(p.numel() for p in build_dynamic_linear(384, 1536, predictor="bilateral").parameters())  # 9.5C² + 5.25C

# %% tags=["nbval-check-output"]
ch02.check_exercise(1, answer_1)

# %% tags=["solution"]
# hint: X·W costs C·D per token; the fused Linear, w1, w2 and KᵀV run on N/4 pooled tokens
# Per token: X·W costs C·D = 4C². Per pooled token (there are N/4): the fused Linear C·(C/4 + C) = 1.25C², w1
# (C/4)·C = 0.25C², w2 C·4C = 4C², Kᵀ V C·4C = 4C², together 9.5C², divided by 4.
answer_2 = (C_T * D_T + (C_T * (C_T // 4 + D_T // 4) + (C_T // 4) * C_T + (D_T // 4) * D_T + C_T * D_T) / 4) / C_T**2
measured = flops(layers["bilateral"], HW_T) / 2 / (HW_T[0] * HW_T[1]) / C_T**2
print("MACs per token / C², formula vs counted:", answer_2, measured)

# %% tags=["nbval-check-output"]
ch02.check_exercise(2, answer_2)

# %% tags=["solution"]
# hint: Ŵ = KᵀV with K = SiLU(U)·W1; how wide is U, and how many pooled tokens are there on a 14×14 grid?
# rank Ŵ <= min(N' = 7·7 = 49, C/r = 48, D/r = 192) = 48: the bottleneck binds, not the number of regions. The
# normalisation multiplies Ŵ on the right by an invertible diagonal matrix, which keeps the rank. Measured on a
# random input in float64, so that rounding noise does not pass for extra rank:
with torch.no_grad():
    x_rank = torch.randn(1, 196, C_T, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    answer_3 = int(torch.linalg.matrix_rank(copy.deepcopy(layers["bilateral"]).double().dynamic_weight(x_rank))[0])

# %% tags=["nbval-check-output"]
ch02.check_exercise(3, answer_3)

# %% tags=["solution", "build"]
# hint: section 6's transcription, with layer.hidden1 / layer.hidden2 applied after the first SiLU of each branch
def deep_weight(layer, x, hw):
    b, n, c = x.shape
    p = F.avg_pool2d(x.transpose(1, 2).reshape(b, c, *hw), 2).flatten(2).transpose(1, 2)  # (B, N', C)
    u, v = torch.split(layer.wfm(p), [layer.w1.shape[0], layer.w2.shape[0]], dim=-1)
    k = F.silu(layer.hidden1(F.silu(u))) @ layer.w1  # (B, N', C)
    v = F.silu(layer.hidden2(F.silu(v))) @ layer.w2  # (B, N', D)
    w = k.transpose(1, 2) @ v * c**-0.5 / n  # (B, C, D)
    return w / (w.norm(dim=1, keepdim=True) + 1)


answer_4 = deep_weight

# %% tags=["nbval-check-output"]
ch02.check_exercise(4, answer_4)

# %% tags=["solution"]
# hint: build the rate-2 layer, copy N(0, 1) values into its generator parameters, then torch.linalg.matrix_rank
# Prediction: the generator's widths double (C/2 = 96, D/2 = 384), so the parameters grow (w1, w2 and the fused
# Linear double); the rank limits become min(N' = 49, 96, 384) = 49: the number of pooled regions binds now.
torch.manual_seed(0)
layer_r2 = build_dynamic_linear(C_T, D_T, predictor="bilateral", rate=2).double()
g = torch.Generator().manual_seed(1)
with torch.no_grad():
    for name, p in layer_r2.named_parameters():
        if name not in ("w", "b"):
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    x_r2 = torch.randn(1, 196, C_T, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    answer_5 = int(torch.linalg.matrix_rank(layer_r2.dynamic_weight(x_r2, (14, 14)))[0])
print(f"rate 2: {sum(p.numel() for p in layer_r2.parameters()):,} parameters "
      f"(rate 4: {dl.parameter_count('bilateral', C_T, D_T):,}); rank of Ŵ {answer_5}")

# %% tags=["nbval-check-output"]
ch02.check_exercise(5, answer_5)

# %% tags=["solution"]
# hint: flops(layers["bilateral"], (28, 28)) / flops(layers["bilateral"], (14, 14))
answer_6 = flops(layers["bilateral"], (28, 28)) / flops(layers["bilateral"], (14, 14))
print(f"N ×4 -> FLOPs ×{answer_6:.3f}")

# %% tags=["nbval-check-output"]
ch02.check_prediction(6, prediction_6)
ch02.check_exercise(6, answer_6)

# %% [markdown]
# ## References
#
# - R. He, D. Han, G. Huang. *Linear-Time Global Visual Modeling without Explicit Attention*. arXiv 2605.01711
#   (2026); reference code github.com/LeapLabTHU/WeightFormer (`DynLinear`). The course's notes, including which
#   predictors are reconstructions: [paper_notes.md](paper_notes.md).
# - A. Katharopoulos et al. *Transformers are RNNs: Fast Autoregressive Transformers with Linear Attention*.
#   ICML 2020, arXiv 2006.16236 (the linear-attention reading of section 6).
# - S. Elfwing, E. Uchibe, K. Doya. *Sigmoid-Weighted Linear Units for Neural Network Function Approximation in
#   Reinforcement Learning* (SiLU). Neural Networks 2018, arXiv 1702.03118.
# - A. Krizhevsky. *Learning Multiple Layers of Features from Tiny Images* (CIFAR-10), 2009.
# - PyTorch: `torch.nn.Linear`, `torch.nn.functional.avg_pool2d`, `torch.nn.functional.silu`,
#   `torch.linalg.matrix_rank`, `torch.utils.flop_counter.FlopCounterMode`; `ipywidgets` for the menus.

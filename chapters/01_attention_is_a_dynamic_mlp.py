# %% [markdown]
# # 01 · Attention is an MLP whose weights are predicted from the input
#
# [Open in Colab](https://colab.research.google.com/github/wf-lessons/wf-lessons/blob/main/chapters/01_attention_is_a_dynamic_mlp.ipynb) (its first code cell installs the course there)
#
# The whole course rests on one observation of the WeightFormer paper (its Fig. 2): read row by row, softmax
# attention is an ordinary two-layer MLP, except that its weights are not learned parameters: they are
# **computed from the input sequence**. This chapter derives that reading, checks it numerically against
# PyTorch's own attention, and follows it to its cost.
#
# In this chapter you will
#
# 1. write the attention formula and check it against `torch.nn.functional.scaled_dot_product_attention`;
# 2. read it row by row as a two-layer MLP with weights `W1 = Kᵀ/√d` and `W2 = V`, and see what "predicted"
#    means: the weights are a function `G(X)` of the input;
# 3. see why this MLP costs O(N²): its hidden width is the number of tokens N;
# 4. meet two relatives: the transformer FFN (the same MLP with *static* weights) and linear attention (a dynamic
#    *linear* layer whose weight has a fixed size, so its cost is linear in N);
# 5. measure the costs (counted FLOPs and CPU time against N) and arrive at the question WeightFormer answers.
#
# Everything reusable lives in `wf_lessons.attention` and `wf_lessons.complexity`; the chapter derives each thing
# inline first, then checks that the package agrees. Symbols (N, C, d, ...) are those of the course's
# [notation table](paper_notes.md#notation).

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
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from wf_lessons import attention, complexity, config
from wf_lessons.notebooks import show_source

QUICK = config.quick()
print("quick mode:", QUICK)

# %% [markdown]
# ## 1. The attention formula
#
# Take N tokens `X` (N×C) and three learned projections to queries, keys and values of width d:
# `Q = X W_Q`, `K = X W_K`, `V = X W_V` (each N×d). Softmax attention is
#
# $$O = \operatorname{softmax}\!\left(\frac{Q K^\top}{\sqrt d}\right) V .$$
#
# `Q Kᵀ` is an N×N matrix of scores, one for every (query, key) pair; the softmax turns each row into weights that
# sum to 1; multiplying by `V` averages the values with those weights. Shapes are the best check that we have
# understood, so we print them at each step. A local, seeded `torch.Generator` makes every number reproducible.

# %% tags=["nbval-check-output"]
gen = torch.Generator().manual_seed(0)
N, C, d = 6, 8, 4
X = torch.randn(N, C, generator=gen)  # N tokens of C channels
W_Q, W_K, W_V = (torch.randn(C, d, generator=gen) / math.sqrt(C) for _ in range(3))

Q, K, V = X @ W_Q, X @ W_K, X @ W_V  # each (N, d)
scores = Q @ K.T / math.sqrt(d)  # (N, N): one score per (query, key) pair
A = scores.softmax(dim=-1)  # (N, N): each row sums to 1
out = A @ V  # (N, d)
print("X", tuple(X.shape), "-> Q, K, V", tuple(Q.shape), "-> scores", tuple(scores.shape), "-> O", tuple(out.shape))
print("rows of A sum to 1:", torch.allclose(A.sum(-1), torch.ones(N)))

# %% [markdown]
# The package's `softmax_attention` does exactly this for any leading batch and head dimensions, e.g. multi-head
# tensors `(B, h, N, d)`. Both agree with PyTorch's fused `scaled_dot_product_attention`:

# %% tags=["nbval-check-output"]
reference = F.scaled_dot_product_attention(Q, K, V)
print("inline  vs torch: max |Δ| < 1e-6:", (out - reference).abs().max().item() < 1e-6)
print("package vs torch: max |Δ| < 1e-6:", (attention.softmax_attention(Q, K, V) - reference).abs().max().item() < 1e-6)

# %% [markdown]
# ## 2. Row by row, attention is a two-layer MLP
#
# Look at one output row, the one for query `q_i` (a vector of size d):
#
# $$o_i = \operatorname{softmax}\!\left(q_i \,\frac{K^\top}{\sqrt d}\right) V
#       = \operatorname{act}(q_i W_1)\, W_2, \qquad W_1 = \frac{K^\top}{\sqrt d}\ (d\times N),\quad
#         \operatorname{act} = \operatorname{softmax},\quad W_2 = V\ (N\times d).$$
#
# That is a two-layer MLP applied to `q_i`: a first linear layer from d inputs to **N hidden units**, an
# activation, a second linear layer from N hidden units back to d outputs. Hidden unit j belongs to token j: its
# input weights are token j's key, its output weights are token j's value. Two things are unusual about this MLP:
#
# - the activation is a softmax *across* the hidden units (it normalises the hidden layer) instead of an
#   element-wise non-linearity such as GELU;
# - the weights are not parameters of the model. They are made from the sequence itself.
#
# Let us apply that MLP to each query row separately, in a plain Python loop, and compare with attention:

# %% tags=["nbval-check-output"]
W1, W2 = K.T / math.sqrt(d), V  # (d, N), (N, d)


def mlp(x, w1, w2):
    """A two-layer MLP with a softmax over its hidden units: x (d,) -> (d,)."""
    hidden = x @ w1  # (N,): one pre-activation per hidden unit, i.e. per token
    return hidden.softmax(dim=-1) @ w2


O_mlp = torch.stack([mlp(Q[i], W1, W2) for i in range(N)])  # one query row at a time
print("W1", tuple(W1.shape), " W2", tuple(W2.shape), " hidden units:", W1.shape[1])
print("row-by-row MLP vs attention: max |Δ| < 1e-6:", (O_mlp - out).abs().max().item() < 1e-6)


# %% [markdown]
# The picture of this MLP (drawn by `wf_lessons.diagrams`): hidden unit j is token j, and both weight
# matrices are made from the input.

# %%
from wf_lessons import diagrams

diagrams.attention_as_mlp()
plt.show()

# %% [markdown]
# The package version, `attention_as_mlp`, applies the same MLP to every query row at once (batching rows is how
# any MLP is applied). It is built from two small pieces: `predicted_weights` makes `(W1, W2)` from the keys and
# values, and `two_layer_mlp` is an ordinary MLP with a pluggable activation:

# %%
show_source(attention.attention_as_mlp)
show_source(attention.predicted_weights)

# %% [markdown]
# **Masks act on hidden units.** A boolean mask (the same convention as `scaled_dot_product_attention`'s
# `attn_mask`: **True = keep**) says which keys each query may use. In the MLP reading it switches hidden units
# off, per query: a switched-off unit is left out of the softmax and contributes nothing. Here is the identity on
# multi-head tensors `(B, h, N, d)` with a random mask (each query keeps at least one key):

# %% tags=["nbval-check-output"]
B, h, n_tok, d_head = 2, 4, 10, 16
q, k, v = torch.randn(3, B, h, n_tok, d_head, generator=gen)
mask = torch.rand(B, h, n_tok, n_tok, generator=gen) < 0.5
mask[..., 0] = True  # every query keeps key 0
out_mlp = attention.attention_as_mlp(q, k, v, mask=mask)
out_torch = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
print("output:", tuple(out_mlp.shape))
print("attention_as_mlp vs scaled_dot_product_attention, masked: max |Δ| < 1e-5:",
      (out_mlp - out_torch).abs().max().item() < 1e-5)

# %% [markdown]
# The tests (`tests/test_attention.py`) check the same identity with property-based testing (hypothesis) over
# random shapes, head counts and masks, to 1e-5 in fp32.

# %% [markdown]
# ### Many heads, and the output projection W_O
#
# A real attention layer has h heads and an output projection. Head t has its own projections
# `W_Q^t, W_K^t, W_V^t` (C×d, with d = C/h), so its own two-layer MLP with N hidden units; the h outputs are
# concatenated and multiplied by `W_O` (C×C). Split `W_O` into h row blocks `W_O^t` (d×C each): the concatenation
# followed by `W_O` is the *sum* over heads of `o_i^t W_O^t`. So `W_O` folds into each head's second layer, and the
# whole layer is **one** MLP with h·N hidden units:
#
# $$o_i = \sum_{t=1}^{h} \operatorname{softmax}\!\big(q_i^t W_1^t\big)\,\big(W_2^t W_O^t\big),\qquad
#   W_1^t = \frac{(K^t)^\top}{\sqrt d}\ (d\times N),\quad W_2^t W_O^t = V^t W_O^t\ (N\times C).$$
#
# The hidden units come in h groups of N (one unit per token and head); the softmax normalises each group
# separately; the second layer's weight `V^t W_O^t` maps every group back to all C channels. `W_O` itself is
# static, a learned parameter; what is predicted is still the keys and values. The cell checks this reading
# against PyTorch's own `torch.nn.MultiheadAttention` (without biases, to keep the formula short):

# %% tags=["nbval-check-output"]
torch.manual_seed(0)  # nn.MultiheadAttention's initialisation uses the global generator
C_mh, heads, n_mh = 12, 3, 7
d_mh = C_mh // heads
mha = torch.nn.MultiheadAttention(C_mh, heads, bias=False, batch_first=True)
x_mh = torch.randn(1, n_mh, C_mh, generator=gen)  # (B, N, C)
W_in = mha.in_proj_weight.detach().T  # (C, 3C): [W_Q | W_K | W_V], each C×C = h heads of C×d
W_O = mha.out_proj.weight.detach().T  # (C, C): rows t·d..(t+1)·d are W_O^t
q_mh, k_mh, v_mh = (x_mh[0] @ W_in).split(C_mh, dim=-1)  # each (N, C) = h heads side by side
hidden_groups, second_layer = [], []
for t in range(heads):
    cols = slice(t * d_mh, (t + 1) * d_mh)
    w1_t, w2_t = attention.predicted_weights(k_mh[:, cols], v_mh[:, cols])  # (d, N), (N, d)
    hidden_groups.append((q_mh[:, cols] @ w1_t).softmax(dim=-1))  # (N queries, N hidden units of head t)
    second_layer.append(w2_t @ W_O[cols])  # V^t W_O^t: (N, C)
hidden = torch.cat(hidden_groups, dim=-1)  # (N, h·N): h groups of N hidden units
out_one_mlp = hidden @ torch.cat(second_layer)  # (N, h·N) @ (h·N, C)
with torch.no_grad():
    out_torch_mha, _ = mha(x_mh, x_mh, x_mh, need_weights=False)
print(f"h = {heads} heads of d = {d_mh}: one MLP with {hidden.shape[-1]} hidden units, "
      f"second layer {tuple(torch.cat(second_layer).shape)}")
print("one MLP vs torch.nn.MultiheadAttention: max |Δ| < 1e-6:",
      (out_one_mlp - out_torch_mha[0]).abs().max().item() < 1e-6)

# %% [markdown]
# ## 3. What is "predicted": the weight generator G(X)
#
# Write the MLP as a function of its input and its weights, `o_i = F_W(q_i)`. In attention the weights are
#
# $$W = G(X) = \left\{\; W_1 = \frac{(X W_K)^\top}{\sqrt d},\;\; W_2 = X W_V \;\right\},$$
#
# a function of the whole sequence X. The projections `W_K`, `W_V` are learned; the weights `W1`, `W2` the MLP
# uses are *generated* for each input. The paper reads attention's global power this way: it lives in these
# dynamically generated weights, a compressed summary of the whole context.
#
# **`F_W(q_i)` or `F_W(X)`?** The paper writes `O = F_W(X)`: the MLP takes the tokens themselves. This course
# writes `F_W(q_i)`, with the query projection outside the MLP, so that the first layer's weight is exactly the
# predicted `Kᵀ/√d`. The two are the same function: `q_i W_1 = x_i (W_Q Kᵀ/√d)`, so absorbing the static `W_Q`
# into the first layer (and `W_O` into the second, as above) gives an MLP on `x_i` with weights
# `W_Q Kᵀ/√d` (C×N) and `V W_O` (N×C), still predicted from X. Keeping `W_Q` outside separates what is learned
# (`W_Q`, `W_K`, `W_V`, `W_O`) from what is predicted (`K`, `V`); the next cell checks the absorbed form too.
#
# To see it, feed two different inputs through the **same** layer (same `W_K`, `W_V`) and look at the weights the
# MLP receives. The MLP is the same function; its weights are not.

# %% tags=["nbval-check-output"]
def G(x):
    """The weight generator of one attention head: x (N, C) -> W1 (d, N), W2 (N, d)."""
    return attention.predicted_weights(x @ W_K, x @ W_V)


X_a, X_b = torch.randn(2, N, C, generator=gen)  # two different inputs of N tokens
(W1_a, W2_a), (W1_b, W2_b) = G(X_a), G(X_b)
print("W1:", tuple(W1_a.shape), " W2:", tuple(W2_a.shape), " same weights for both inputs:", torch.equal(W1_a, W1_b))
absorbed = (X_a @ (W_Q @ W1_a)).softmax(dim=-1) @ W2_a  # F_W(x_i) with W_Q folded into the first layer
print("F_W(X) with W_Q absorbed == F_W(q_i): max |Δ| < 1e-6:",
      (absorbed - attention.softmax_attention(X_a @ W_Q, X_a @ W_K, X_a @ W_V)).abs().max().item() < 1e-6)

# %%
fig, axes = plt.subplots(2, 2, figsize=(8, 6), width_ratios=[N, d], layout="constrained")
lim = max(t.abs().max().item() for t in (W1_a, W2_a, W1_b, W2_b))
for row, (name, w1, w2) in enumerate([("input A", W1_a, W2_a), ("input B", W1_b, W2_b)]):
    for col, (w, label) in enumerate([(w1, "W1 = Kᵀ/√d  (d × N)"), (w2, "W2 = V  (N × d)")]):
        image = axes[row, col].imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[row, col].set(xticks=range(w.shape[1]), yticks=range(w.shape[0]))
        axes[row, col].set_title(f"{name}: {label}", fontsize=10)
        axes[row, col].set_xlabel("hidden unit (token)" if col == 0 else "output feature")
        axes[row, col].set_ylabel("input feature" if col == 0 else "hidden unit (token)")
fig.colorbar(image, ax=axes, shrink=0.6, label="weight")
fig.suptitle("The same attention layer predicts different MLP weights for different inputs")
plt.show()

# %% [markdown]
# Each column of `W1` and each row of `W2` is one hidden unit, that is one token. Give the layer more tokens and
# the MLP gets wider: the shape of the predicted weights depends on N.
#
# How much does making the weights cost? Computing `K` and `V` is two N×C by C×d products, O(N·C·d): linear in N.
# Generating the weights is cheap. *Applying* them is what costs, as the next section shows.
#
# **Predict first (exercise 5).** Before you read section 4: when the number of tokens N grows ×4 (same head size
# d), by what factor do the FLOPs of softmax attention grow: 4, 8 or 16? Write your guess in the cell below, as a
# string; exercise 5 measures it and says whether you were right.

# %% tags=["predict"]
# answered in: 4. Why the hidden width N makes attention quadratic
prediction_5 = None  # your guess: "4", "8" or "16"

# %% [markdown]
# ## 4. Why the hidden width N makes attention quadratic
#
# One query row goes through an MLP with N hidden units: `q_i W1` costs N·d multiply-accumulates (MACs) and
# `act(·) W2` another N·d. There are N query rows, so the whole layer costs 2·N²·d MACs. This course counts
# **FLOPs = 2 × MACs**, the convention of `torch.utils.flop_counter`, so softmax attention costs 4·N²·d FLOPs per
# head; `complexity.softmax_attention_flops` is that formula. `complexity.count_flops` runs a function under
# PyTorch's `FlopCounterMode` and returns what it counted. Only matrix products are counted (softmax and scaling
# are not), both by the formula and by the counter.
#
# Tensors on the `meta` device have shapes but no data: the counter sees every matrix product without any
# arithmetic being done, so even large N costs nothing to count.

# %% tags=["nbval-check-output"]
def meta_qkv(n, d, heads=1):
    """Shape-only queries, keys and values (1, heads, n, d) for counting FLOPs."""
    q = torch.empty(1, heads, n, d, device="meta")
    return q, torch.empty_like(q), torch.empty_like(q)


for n in (256, 1024, 4096):
    counted = complexity.count_flops(attention.attention_as_mlp, *meta_qkv(n, 64))
    formula = complexity.softmax_attention_flops(n, 64)
    print(f"N = {n:>4}: counted {counted:>13,} FLOPs   4·N²·d = {formula:>13,}   equal: {counted == formula}")
ratio = complexity.count_flops(attention.softmax_attention, *meta_qkv(4096, 64)) / complexity.count_flops(
    attention.softmax_attention, *meta_qkv(1024, 64)
)
print("4× the tokens ->", ratio, "× the FLOPs")

# %% [markdown]
# Four times the tokens, sixteen times the work. Nothing about the *function* forces this: it is the width of the
# predicted MLP, one hidden unit per token, that grows with the input.

# %% [markdown]
# ## 5. The FFN: the same MLP with static weights
#
# Every transformer block also has a feed-forward network, `FFN(x) = GELU(x W1 + b1) W2 + b2`, applied to each
# token. Read it with the eyes of section 2: the rows of the first layer's weight are **keys**, the rows of the
# second layer's (transposed) weight are **values**, and the FFN is "attention" of each token over H learned keys
# and values, with GELU instead of softmax. The differences from attention are exactly two:
#
# - the keys and values are **learned parameters**, the same for every input (static weights);
# - their number H (the hidden width, usually 4C) is fixed by the model, **not by N**.
#
# `attention.ffn_as_attention(x, fc1, fc2)` computes an FFN this way, through the same `two_layer_mlp` as
# `attention_as_mlp`:

# %% tags=["nbval-check-output"]
torch.manual_seed(0)  # nn.Linear's initialisation uses the global generator
C_ffn = 16
fc1, fc2 = torch.nn.Linear(C_ffn, 4 * C_ffn), torch.nn.Linear(4 * C_ffn, C_ffn)
keys, values, _, _ = attention.ffn_keys_values(fc1, fc2)
tokens = torch.randn(2, 50, C_ffn, generator=gen)  # (B, N, C)
with torch.no_grad():
    ffn_out = fc2(F.gelu(fc1(tokens)))
    as_attention = attention.ffn_as_attention(tokens, fc1, fc2)
print("learned keys", tuple(keys.shape), " learned values", tuple(values.shape), " (H × C, H = 4C)")
print("FFN vs attention over learned keys/values: max |Δ| < 1e-6:", (ffn_out - as_attention).abs().max().item() < 1e-6)

# %% [markdown]
# Its cost: H hidden units per token, so 2·N·C·H MACs in all. Linear in N, because H does not depend on N:

# %% tags=["nbval-check-output"]
ffn = torch.nn.Sequential(fc1, torch.nn.GELU(), fc2)
for n in (256, 1024):
    counted = complexity.count_flops(ffn, torch.randn(1, n, C_ffn, generator=gen))
    print(f"N = {n:>4}: FFN {counted:>9,} FLOPs  (formula: {complexity.mlp_flops(n, C_ffn, 4 * C_ffn):>9,})")

# %% [markdown]
# So attention and the FFN are the two ends of one family. The FFN is cheap but static: token i's output depends
# on token i only. Attention is global (its weights summarise every token) but its hidden width, and so its cost
# per token, grows with N.

# %% [markdown]
# ## 6. Linear attention: the first linear-cost dynamic layer
#
# Replace the softmax by a feature map φ applied to queries and keys separately (Katharopoulos et al., 2020, use
# `φ(x) = elu(x) + 1`, which is positive). Then the attention matrix is `φ(Q) φ(K)ᵀ` and, by associativity,
#
# $$O = \big(\varphi(Q)\,\varphi(K)^\top\big)\, V
#     = \varphi(Q)\,\big(\underbrace{\varphi(K)^\top V}_{W:\ d\times d}\big).$$
#
# The right-hand side is a **dynamic linear layer**: one d×d weight `W = φ(K)ᵀV`, predicted from the whole
# sequence, applied to every (feature-mapped) query. Its size does not depend on N, so making it costs O(N·d²)
# and applying it costs O(N·d²): linear in N. The usual normalised variant divides row i by `φ(q_i)·z` with
# `z = Σ_j φ(k_j)`, which is the row sum of the quadratic form.
#
# `linear_attention` computes the dynamic-layer form; `linear_attention_quadratic` computes the N×N form, for
# checking only:

# %% tags=["nbval-check-output"]
for normalize in (False, True):
    fast = attention.linear_attention(q, k, v, feature_map="elu", normalize=normalize)
    slow = attention.linear_attention_quadratic(q, k, v, feature_map="elu", normalize=normalize)
    rel = ((fast - slow).abs().max() / slow.abs().max()).item()
    print(f"normalize={normalize!s:<5}: φ(Q)(φ(K)ᵀV) vs (φ(Q)φ(K)ᵀ)V: max relative |Δ| < 1e-6: {rel < 1e-6}")

for n in (10, 1000):
    W_lin, z = attention.linear_attention_weight(torch.randn(n, 16, generator=gen), torch.randn(n, 16, generator=gen))
    print(f"N = {n:>4} tokens -> predicted weight W {tuple(W_lin.shape)}, normaliser z {tuple(z.shape)}")

# %% [markdown]
# The package code, for the record:

# %%
show_source(attention.linear_attention)

# %% [markdown]
# ## 7. The costs, counted and measured
#
# Now the whole picture against N (one head of size d, batch 1): counted FLOPs from `FlopCounterMode`, and CPU
# time from `complexity.time_fn` (the median of a few calls after a warm-up). On a log-log plot a power law
# `cost ∝ N^p` is a straight line of slope p; `complexity.loglog_slope` fits it by least squares. We expect
# p = 2 for softmax attention and p = 1 for linear attention.
#
# Counted FLOPs are exact, so their slopes are the same on every machine. Measured times depend on the machine:
# at small N fixed per-call overheads flatten the curves, so we fit the time slopes on the largest three sizes
# only; once the N×N matrix no longer fits in the CPU's cache, softmax attention's slope can even exceed 2. We
# time with one CPU thread (`threads=1`), which keeps the measurements steady when other programs share the
# machine; the scaling law is the same. Quick mode measures fewer sizes with fewer repeats.

# %%
N_MAX_EXP = 11 if QUICK else 12  # largest N = 2**N_MAX_EXP
REPEATS = 5 if QUICK else 9
METHODS = {"softmax attention": attention.softmax_attention, "linear attention": attention.linear_attention}


def cost_curves(ns, d, repeats=REPEATS):
    """Counted FLOPs and measured CPU seconds of each method at each N: {method: (flops, seconds)}."""
    gen = torch.Generator().manual_seed(0)
    curves = {}
    for name, fn in METHODS.items():
        flops = [complexity.count_flops(fn, *meta_qkv(n, d)) for n in ns]
        seconds = [
            complexity.time_fn(fn, *torch.randn(3, 1, 1, n, d, generator=gen), repeats=repeats, threads=1)
            for n in ns
        ]
        curves[name] = (flops, seconds)
    return curves


MEASURED = {}  # (n_max_exp, d) -> (ns, curves): each setting is measured once


def plot_costs(n_max_exp=N_MAX_EXP, d=64):
    """Counted FLOPs and measured CPU time against N (log-log), from N = 64 to 2**n_max_exp."""
    ns = [2**e for e in range(6, n_max_exp + 1)]
    if (n_max_exp, d) not in MEASURED:
        MEASURED[n_max_exp, d] = ns, cost_curves(ns, d)
    curves = MEASURED[n_max_exp, d][1]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, (flops, seconds) in curves.items():
        p_flops = complexity.loglog_slope(ns, flops)
        p_time = complexity.loglog_slope(ns[-3:], seconds[-3:])
        axes[0].loglog(ns, flops, "o-", base=2, label=f"{name}: slope {p_flops:.2f}")
        axes[1].loglog(ns, seconds, "o-", base=2, label=f"{name}: slope {p_time:.2f} (last 3)")
    axes[0].set(xlabel="tokens N", ylabel="FLOPs (counted)", title=f"Counted FLOPs, d = {d}")
    axes[1].set(xlabel="tokens N", ylabel="time per call (s, median)", title=f"Measured CPU time, d = {d}")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    plt.tight_layout()
    plt.show()
    return ns, curves


# %% [markdown]
# The figure below is drawn for the setting above (largest N = 2^11 in quick mode, 2^12 otherwise; d = 64). The
# sliders under it change the largest N and the head size d and redraw the figure under them, in JupyterLab (a
# static copy of this notebook, e.g. on GitHub, shows the first figure only). Watch where the two curves cross: a
# larger d moves the crossover to larger N, since linear attention pays d² per token and softmax attention N·d.
# The largest sizes take several seconds to measure.

# %%
import ipywidgets as widgets

from wf_lessons.interactive import figure_controls

figure_controls(plot_costs, {
    "n_max_exp": widgets.IntSlider(value=N_MAX_EXP, min=8, max=13, description="log₂ N max",
                                   continuous_update=False),
    "d": widgets.SelectionSlider(options=[16, 32, 64, 128, 256], value=64, description="d", continuous_update=False),
})
ns, curves = MEASURED[N_MAX_EXP, 64]  # the first state, measured for the figure above

# %% [markdown]
# The FLOP slopes (fitted over every size) do not depend on the machine, so we can check them:

# %% tags=["nbval-check-output"]
for name, (flops, _) in curves.items():
    print(f"{name:>17}: FLOPs ∝ N^{complexity.loglog_slope(ns, flops):.2f}")

# %% [markdown]
# ## 8. The WeightFormer question
#
# Put the three layers side by side as "an MLP whose weights are predicted from the input":
#
# | layer | weights | size of the weights | cost |
# |---|---|---|---|
# | FFN | static, learned | fixed (C×H) | linear in N, but no global context |
# | softmax attention | predicted: `{Kᵀ/√d, V}` | grows with N (d×N and N×d) | quadratic in N |
# | linear attention | predicted: `φ(K)ᵀV` | fixed (d×d) | linear in N |
#
# The paper ([paper notes](paper_notes.md), "The idea") takes the lesson literally: keep the *dynamic-MLP* idea, since the global power lives in
# the predicted weights, but predict weights of a **fixed size, independent of N**: a C×4C matrix for the first
# layer of the MLP, and a C×3×3 kernel for a depthwise convolution. Then the cost is O(N·C²), linear in N, like the
# FFN, while every output can still depend on the whole image through the predicted weights. Here is how the
# number of predicted values grows with the token count for each kind of layer (d = 64 per head; C = 192, the
# width of the paper's smallest model):

# %% tags=["nbval-check-output"]
d_head, C_wf = 64, 192
header = ["tokens N", "attention W1+W2", "linear attn W", "C×4C linear", "C×3×3 dw-conv"]
print(" | ".join(f"{col:>15}" for col in header))
for n in (196, 784, 3136):  # 224, 448 and 896 px images with 16 px patches
    k_n = v_n = torch.empty(n, d_head, device="meta")  # shapes are all we need
    w1, w2 = attention.predicted_weights(k_n, v_n)
    w_lin, _ = attention.linear_attention_weight(k_n, v_n)
    sizes = [n, w1.numel() + w2.numel(), w_lin.numel(), C_wf * 4 * C_wf, C_wf * 3 * 3]
    print(" | ".join(f"{size:>15,}" for size in sizes))

# %% [markdown]
# ### So what exactly is "compressed"?
#
# A sharp reader sees a contradiction in the table. The paper calls attention's predicted weights "a compressed
# summary of the whole context", yet `W1 = Kᵀ/√d` and `W2 = V` are not compressed along the token axis at all:
# they *are* the sequence, one key and one value per token, and they grow with N. And at small N a fixed-size
# weight can be *larger* than attention's: the cell compares one C×4C weight with the keys and values of a whole
# attention layer of the same width (all heads: 2·N·C numbers).

# %% tags=["nbval-check-output"]
for n in (64, 196, 256, 784):
    kv = 2 * n * C_wf  # keys and values of all heads of a width-C attention layer
    print(f"N = {n:>3}: attention predicts {kv:>7,} numbers, a C×4C weight {4 * C_wf**2:,} "
          f"-> the fixed-size weight is {4 * C_wf**2 / kv:.2f}× attention's")
crossing = next(n for n in range(1, 10_000) if 2 * n * C_wf > 4 * C_wf**2)
print(f"attention predicts more numbers than one C×4C weight from N = {crossing} tokens on (N > 2C)")

# %% [markdown]
# The course's reading, which the rest of the chapters make precise:
#
# - Attention compresses only along the **channels** (each token's C features become d per head); along the
#   tokens it keeps everything, and pays for it with N hidden units per query.
# - WeightFormer's weight is a **fixed-size** function of the whole image. "Compressed" means that its size does
#   not depend on N, so every token's information must pass through the same C×4C (or C×3×3) numbers; it does
#   not mean "fewer numbers than attention" at every N (below N = 2C it is more).
# - Its information content is smaller than its size: chapter 02 shows that the predicted C×4C part has rank at
#   most C/4, and chapter 03 that a kernel is predicted from a 3×3 pooled map. The bottleneck is in the predictor,
#   not in the number of entries.

# %% [markdown]
# Fixed-size predicted weights raise the questions the rest of the course answers: *how* should such weights be
# predicted from the input (chapter 02 for linear layers, 03 for depthwise convolutions, with every predictor the
# paper names), does a network built from them see the whole image (chapter 06), and does it learn as well as
# attention at the same size (chapters 07 and 08)?

# %% [markdown]
# ## Summary
#
# **Main result:** softmax attention is, row by row, a two-layer MLP whose weights `Kᵀ/√d` and `V` are predicted
# from the input (`attention_as_mlp` equals PyTorch's attention to 1e-5); the MLP has one hidden unit per token, so
# its counted FLOPs grow ×16 when N grows ×4, while a predicted weight of fixed size (linear attention's d×d)
# grows ×4.
#
# - Softmax attention, read row by row, is a two-layer MLP `o_i = softmax(q_i W1) W2` with `W1 = Kᵀ/√d` (d×N)
#   and `W2 = V` (N×d); the softmax is an activation across the N hidden units, and masks switch hidden units off.
#   `attention.attention_as_mlp` equals `scaled_dot_product_attention` to 1e-5.
# - The weights are **predicted** from the input: `W = G(X)`. Generating them is cheap (O(N·C·d)); applying them
#   costs O(N²·d) because the MLP has one hidden unit per token.
# - The FFN is the same MLP with static, learned weights ("attention over learned keys and values" with GELU);
#   linear attention is a dynamic linear layer whose d×d weight `φ(K)ᵀV` has a fixed size, so it costs O(N·d²).
# - Counted FLOPs (`complexity.count_flops`, FLOP = 2 MACs) grow ×16 for softmax attention and ×4 for linear
#   attention when N grows ×4; measured CPU time follows at large N.
# - WeightFormer's move: predicted weights of a fixed size (C×4C, C×3×3), so global, input-dependent weights at
#   linear cost.
#
# ## Exercises
#
# Each exercise has a cell that computes the answer (a stub with a hint in the student copy, `chapters/student/`)
# and a cell that checks it with `wf_lessons.exercises.ch01.check_exercise`.
#
# 1. One attention head sees N = 196 tokens with d = d_v = 64. How many numbers does `G(X)` predict (the entries
#    of `W1` and `W2` together)?
# 2. In a ViT block of width C = 192 with an MLP ratio of 4, the linear layers (q, k, v, the output projection and
#    the FFN's two layers) cost 24·C²·N FLOPs. At which token count N do the attention matmuls (4·N²·C FLOPs,
#    summed over heads) cost exactly as much? Use `complexity.softmax_attention_flops` and
#    `complexity.linear_flops` or pencil and paper.
# 3. Write `causal_mask(n)` returning the boolean (n, n) mask (True = keep) that makes `attention_as_mlp` causal:
#    token i may only use tokens 0..i. Which hidden units does query i keep?
# 4. **Build it.** Write `attention_mlp(q, k, v)`, one attention head read as an MLP: from keys and values
#    `(N, d)` make the two weights `W1 = Kᵀ/√d` (d×N) and `W2 = V` (N×d), then apply the MLP `softmax(q W1) W2` to
#    every query row of `q` `(N, d)`; return `(N, d)`. Use only matrix products and `softmax` (not
#    `scaled_dot_product_attention` or the package's functions): the checker compares your function with PyTorch's
#    attention on random inputs of several sizes and says which step differs.
# 5. **Predicted before section 4, now measured.** You wrote your guess in `prediction_5` before section 4. Measure
#    the factor with `complexity.count_flops`: the counted FLOPs of `attention.softmax_attention` at N = 1024
#    divided by those at N = 256 (d = 64, one head; `meta_qkv` of section 4 makes the inputs).

# %%
from wf_lessons.exercises import ch01

# %% tags=["solution"]
# hint: W1 is d×N and W2 is N×d; attention.predicted_weights makes both from keys and values of shape (N, d)
w1, w2 = attention.predicted_weights(torch.empty(196, 64), torch.empty(196, 64))
answer_1 = w1.numel() + w2.numel()  # 2·N·d

# %% tags=["nbval-check-output"]
ch01.check_exercise(1, answer_1)

# %% tags=["solution"]
# hint: find the first N with softmax_attention_flops(N, 192) >= the six linear layers (12 C×C matmuls' worth)
answer_2 = next(n for n in range(1, 10_000)  # 4·N²·C = 24·C²·N  <=>  N = 6·C
                if complexity.softmax_attention_flops(n, 192) >= 12 * complexity.linear_flops(n, 192, 192))

# %% tags=["nbval-check-output"]
ch01.check_exercise(2, answer_2)

# %% tags=["solution"]
# hint: query i keeps hidden units (tokens) 0..i: a lower-triangular boolean matrix (torch.tril)
def causal_mask(n):
    return torch.ones(n, n, dtype=torch.bool).tril()


answer_3 = causal_mask

# %% tags=["nbval-check-output"]
ch01.check_exercise(3, answer_3)

# %% tags=["solution", "build"]
# hint: W1 = k.T / math.sqrt(d) and W2 = v; the hidden layer is (q @ W1).softmax(dim=-1), one unit per token
def attention_mlp(q, k, v):
    w1 = k.T / math.sqrt(k.shape[-1])  # (d, N): one hidden unit per token, its input weights are the token's key
    w2 = v  # (N, d): its output weights are the token's value
    return (q @ w1).softmax(dim=-1) @ w2  # (N, d): the softmax runs across the N hidden units


answer_4 = attention_mlp

# %% tags=["nbval-check-output"]
ch01.check_exercise(4, answer_4)

# %% tags=["solution"]
# hint: complexity.count_flops(attention.softmax_attention, *meta_qkv(n, 64)) for n = 1024 and n = 256
answer_5 = (complexity.count_flops(attention.softmax_attention, *meta_qkv(1024, 64))
            / complexity.count_flops(attention.softmax_attention, *meta_qkv(256, 64)))
print(f"4× the tokens -> {answer_5}× the FLOPs")

# %% tags=["nbval-check-output"]
ch01.check_prediction(5, prediction_5)
ch01.check_exercise(5, answer_5)

# %% [markdown]
# ## References
#
# - R. He, D. Han, G. Huang. *Linear-Time Global Visual Modeling without Explicit Attention*. arXiv 2605.01711
#   (2026), Fig. 2 (attention as a dynamic MLP); code: github.com/LeapLabTHU/WeightFormer. The course's notes:
#   [paper_notes.md](paper_notes.md).
# - A. Vaswani et al. *Attention Is All You Need*. NeurIPS 2017, arXiv 1706.03762 (scaled dot-product and
#   multi-head attention).
# - A. Katharopoulos, A. Vyas, N. Pappas, F. Fleuret. *Transformers are RNNs: Fast Autoregressive Transformers
#   with Linear Attention*. ICML 2020, arXiv 2006.16236 (the `elu + 1` feature map).
# - M. Geva, R. Schuster, J. Berant, O. Levy. *Transformer Feed-Forward Layers Are Key-Value Memories*.
#   EMNLP 2021, arXiv 2012.14913 (the FFN read as attention over learned keys and values).
# - A. Dosovitskiy et al. *An Image is Worth 16x16 Words* (ViT). ICLR 2021, arXiv 2010.11929.
# - PyTorch: `torch.nn.functional.scaled_dot_product_attention`, `torch.nn.MultiheadAttention`,
#   `torch.utils.flop_counter.FlopCounterMode`, the `meta` device; `ipywidgets` for the sliders.

# %% [markdown]
# # 05 · Cost and scaling: what "linear in N" buys
#
# [Open in Colab](https://colab.research.google.com/github/wf-lessons/wf-lessons/blob/main/chapters/05_cost_and_scaling.ipynb) (its first code cell installs the course there)
#
# Chapter 04 assembled WeightFormer and its DeiT-style baseline. This chapter asks what they cost: parameters and
# FLOPs of the paper's models against DeiT's, how the FLOPs grow with the resolution, where WeightFormer *can*
# start to beat attention, and how time and memory grow with the number of tokens N when measured.
#
# In this chapter you will
#
# 1. count parameters and FLOPs of WFM-T/S/B against DeiT-T/S/B, and see how FLOPs grow with the resolution;
# 2. find, from a FLOP count, where attention's N² term overtakes a ViT block's linear layers (N = 6·d tokens),
#    and where the course's models sit on that curve;
# 3. measure time and memory against N in a small live run;
# 4. read the full scaling benchmark from its committed run logs (CPU; GPU when one has been run) and state
#    honestly what it shows.
#
# FLOPs are counted by PyTorch's `FlopCounterMode` through `wf_lessons.complexity` (chapter 01); the benchmark is
# `wf_lessons.bench`. Two appendices after the exercises explain how the counting is done (on the `meta` device,
# and why a ViT is counted through the math attention backend). Symbols follow the course's
# [notation table](paper_notes.md#notation) (N tokens, d or C the width, p the patch size). The live timing run
# uses the small quick-mode models in both modes (a full run repeats each timing more often); everything else is
# the same in quick mode and in a full run.

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
import math

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import NullLocator

from wf_lessons import bench, complexity, config, models, runlog
from wf_lessons.models import build_model, count_parameters
from wf_lessons.notebooks import show_source

QUICK = config.quick()
torch.set_num_threads(1)  # everything here is small; one thread is fastest and steadiest on a shared CPU
print("quick mode:", QUICK)

# %% [markdown]
# Two helpers used throughout: `meta_copy` moves a model to PyTorch's `meta` device (shapes, no data: nothing is
# computed, so even a 1024-px image costs no time), and `flops` counts one image's forward FLOPs, ViTs through the
# math attention backend (`bench.forward_flops`). Appendix A checks that both give the true count.

# %%
def meta_copy(model):
    """A copy of the model on the meta device: parameters with shapes, no data."""
    return copy.deepcopy(model).to("meta")


def flops(model, side, device="meta"):
    """Counted forward FLOPs of one side×side image (ViTs through the math backend)."""
    return bench.forward_flops(model, torch.zeros(1, 3, side, side, device=device))


torch.manual_seed(0)
wf_cifar, deit_cifar = build_model("wf-cifar").eval(), build_model("deit-cifar").eval()
wf_quick, deit_quick = build_model("wf-cifar-quick").eval(), build_model("deit-cifar-quick").eval()
deit_kwargs = models.CONFIGS["deit-cifar"][1]

# %% [markdown]
# **Predict first (exercise 5).** Before you read section 1: DeiT-T at 224 px sees 14×14 = 196 tokens; at 1024 px
# (patch 16) it sees 64×64 = 4096, 20.9 times as many. By about how much do its counted forward FLOPs grow: about
# 21× (like the tokens), about 80×, or about 440× (like the tokens squared)? Think of which parts of a ViT block are
# linear in N and which quadratic, and how large each is at 196 tokens. Write your guess in the cell below;
# section 1 counts it, and exercise 5 measures it.

# %% tags=["predict"]
# answered in: 1. Parameters and FLOPs: WFM-T/S/B against DeiT-T/S/B
prediction_5 = None  # your guess: "21", "80" or "440"

# %% [markdown]
# ## 1. Parameters and FLOPs: WFM-T/S/B against DeiT-T/S/B
#
# Chapter 04 met the paper's three models (width 192 or 384, 17 blocks, patch 16; WFM-B is WFM-S at 448 px) and
# DeiT baselines of the same names (12 blocks of width 192 / 384 / 768). The DeiT block is the textbook pre-norm
# transformer block; its attention is where the N² goes:

# %%
show_source(models.ViTBlock.forward)
show_source(models.Attention.forward)

# %% [markdown]
# Where WFM-T's parameters sit: a dynamic block costs more than a static one (its dynamic linear layer has about
# 2.4 times the parameters of an `nn.Linear`, chapter 02, and its convolution carries a kernel predictor,
# chapter 03), and one block in three is dynamic:

# %% tags=["nbval-check-output"]
IMAGENET = ("wfm-t", "wfm-s", "wfm-b", "deit-t", "deit-s", "deit-b")
meta_models, parameters = {}, {}
for name in IMAGENET:
    torch.manual_seed(0)
    meta_models[name] = meta_copy(build_model(name).eval())
    parameters[name] = count_parameters(meta_models[name])
wfm_t = meta_models["wfm-t"]
static_params = count_parameters(next(b for b in wfm_t.blocks if not b.dynamic))
dynamic_params = count_parameters(next(b for b in wfm_t.blocks if b.dynamic))
n_dynamic = len(wfm_t.dynamic_blocks)
stem_and_head = parameters["wfm-t"] - n_dynamic * dynamic_params - (len(wfm_t.blocks) - n_dynamic) * static_params
print(f"one static block  {static_params:>9,}  × {len(wfm_t.blocks) - n_dynamic}")
print(f"one dynamic block {dynamic_params:>9,}  × {n_dynamic}")
print(f"stem, final norm and head {stem_and_head:,}  (WFM-T: {parameters['wfm-t']:,})")

# %% [markdown]
# FLOPs are counted the chapter 01 way: matrix products and convolutions only, **1 multiply-accumulate (MAC) =
# 2 FLOPs**. Papers usually report MACs, so the table gives both. The six models at their resolutions (224 px;
# 448 px for WFM-B, and DeiT-B at 224 as in DeiT):

# %% tags=["nbval-check-output"]
resolution = {name: meta_models[name].img_size for name in IMAGENET}
gflops = {name: flops(meta_models[name], resolution[name]) / 1e9 for name in IMAGENET}
print(f"{'model':>7} | {'pixels':>6} | {'tokens':>6} | {'parameters':>11} | {'GFLOPs':>7} | {'GMACs':>6}")
for name in IMAGENET:
    tokens_n = (resolution[name] // meta_models[name].patch_size) ** 2
    print(f"{name:>7} | {resolution[name]:>6} | {tokens_n:>6} | {parameters[name]:>11,} | {gflops[name]:>7.2f} | "
          f"{gflops[name] / 2:>6.2f}")

# %% [markdown]
# The GMACs column is the course's own count (`FlopCounterMode` on the meta device, matrix products and
# convolutions only, 1 MAC = 2 FLOPs); the course could not read the paper's table, so these are not the paper's
# numbers and are not checked against them. Normalisations, softmax and activations are not counted here, so any
# published count that includes them would be a little higher.
# At ImageNet resolution WeightFormer and DeiT of the same size cost about the same: with 196 tokens a DeiT
# spends little on attention (section 2 makes this precise). The difference appears when the resolution grows:
# WeightFormer's FLOPs grow in proportion to the number of tokens, DeiT's faster.

# %% tags=["nbval-check-output"]
SIDES = (224, 448, 672, 1024)
print(f"{'GMACs at':>10}" + "".join(f"{s:>8} px" for s in SIDES) + f"{'growth 224→1024':>17}"
      + f"{'tokens ×':>10}")
for name in ("wfm-t", "deit-t", "wfm-s", "deit-s"):
    macs = [flops(meta_models[name], s) / 2e9 for s in SIDES]
    print(f"{name:>10}" + "".join(f"{m:>11.2f}" for m in macs) + f"{macs[-1] / macs[0]:>16.1f}×"
          + f"{(SIDES[-1] // 16) ** 2 / (SIDES[0] // 16) ** 2:>9.1f}×")

# ## 2. Where can WeightFormer beat attention? A FLOP count
#
# The claim of the paper is linear cost in the number of tokens N. Before measuring, count. In a ViT block of
# width d (MLP ratio 4) the linear layers (qkv d→3d, projection d→d, MLP d→4d→d) cost `2·(3 + 1 + 8)·d²` FLOPs
# per token, `24·d²·N` in all; the two attention matmuls `QKᵀ` and `AV` cost `2·N·d` FLOPs per token each for
# every key, `4·d·N²` in all (summed over heads, whatever their number). They are equal at
#
# $$4\,d\,N^2 = 24\,d^2 N \iff N = 6\,d .$$
#
# Below 6·d tokens the attention matmuls are the *smaller* part of a ViT block's FLOPs: their fraction is
# `N / (N + 6d)`, below one half. Replace attention by something that costs nothing at all, and the block gets
# `1 / (1 − fraction) = 1 + N / (6d)` times cheaper: less than 2× below 6·d tokens. The package's formulas, and a
# counted block at N = 6d:

# %% tags=["nbval-check-output"]
def vit_block_flops(n, d):
    """(linear-layer FLOPs, attention-matmul FLOPs) of one ViT block, MLP ratio 4, from the package's formulas."""
    linear = complexity.linear_flops(n, d, 3 * d) + complexity.linear_flops(n, d, d) + complexity.mlp_flops(n, d, 4 * d)
    return linear, complexity.softmax_attention_flops(n, d)


d_model = deit_kwargs["embed_dim"]
n_cross = 6 * d_model
linear_part, attention_part = vit_block_flops(n_cross, d_model)
print(f"d = {d_model}: N = 6d = {n_cross} tokens; linear {linear_part:,} FLOPs, attention {attention_part:,} FLOPs")
torch.manual_seed(0)
block = models.ViTBlock(d_model, deit_kwargs["num_heads"], 4.0, 0.0, "math")
counted = complexity.count_flops(block, torch.zeros(1, n_cross, d_model))
print("counted block FLOPs == linear + attention:", counted == linear_part + attention_part)
for d in (192, 384, 768):
    print(f"d = {d:>3}: attention matmuls equal the linear layers at N = 6d = {6 * d:>5} tokens "
          f"= a {math.sqrt(6 * d):.0f}×{math.sqrt(6 * d):.0f} grid")

# %% [markdown]
# Where the models of this course sit on that curve:

# %%
n_axis = torch.logspace(1, 5, 200)
fig, ax = plt.subplots(figsize=(7.5, 3.8), layout="constrained")
for d in (192, 384, 768):
    ax.plot(n_axis, n_axis / (n_axis + 6 * d), label=f"d = {d}")
marks = {"ImageNet 224 px, patch 16": 196, "CIFAR 32 px, patch 2": 256, "ImageNet 448 px, patch 16": 784,
         "128 px, patch 2": 4096}
for label, n in marks.items():
    ax.axvline(n, color="grey", linestyle=":", linewidth=1)
    ax.text(n * 1.05, 0.02, label, rotation=90, fontsize=8, va="bottom")
ax.axhline(0.5, color="black", linewidth=0.5)
ax.set_xscale("log")
ax.set_xlabel("tokens N")
ax.set_ylabel("fraction of a ViT block's FLOPs\nin the attention matmuls")
ax.legend()
plt.show()

# %% tags=["nbval-check-output"]
for label, n in marks.items():
    lin, att = vit_block_flops(n, 192)
    print(f"{label:<28} N = {n:>5}: attention is {att / (lin + att):.1%} of a d = 192 ViT block's FLOPs; "
          f"removing it all saves at most {(lin + att) / lin:.2f}×")

# %% [markdown]
# A WeightFormer block is not free either: per token it costs about as much as a ViT block's linear layers
# (its MLP, plus the dynamic layers' predictors and the depthwise convolutions). Counting the two CIFAR models
# against N (on the meta device, from 256 to 16,384 tokens) shows both parts: WeightFormer's FLOPs per token stay
# flat; DeiT's are a constant (its linear layers, patch embedding and head) plus the attention matmuls, which grow
# with N.

# %% tags=["nbval-check-output"]
wf_meta, deit_meta = meta_copy(wf_cifar), meta_copy(deit_cifar)
head_dim = d_model // deit_kwargs["num_heads"]
print(f"{'':>12} | {'MFLOPs per token':^48} |")
print(f"{'side':>5} | {'N':>4} | {'wf-cifar':>10} | {'deit-cifar':>10} | {'of it: rest':>11} | {'attention':>9} | "
      f"{'wf / deit':>9}")
for side in (32, 48, 64, 96, 128, 192, 256):
    n = (side // 2) ** 2
    a, b = flops(wf_meta, side), flops(deit_meta, side)
    att = len(deit_cifar.blocks) * complexity.softmax_attention_flops(n, head_dim, deit_kwargs["num_heads"])
    print(f"{side:>5} | {n:>5} | {a / n / 1e6:>10.2f} | {b / n / 1e6:>10.2f} | {(b - att) / n / 1e6:>11.2f} | "
          f"{att / n / 1e6:>9.2f} | {a / b:>9.2f}")

# %% [markdown]
# So `wf-cifar` counts fewer FLOPs than `deit-cifar` at every N here: at the smallest sizes partly because its
# per-token work (column `wf-cifar`) is a little below DeiT's attention-free part (column `rest`), and more and
# more because of the attention matmuls as N grows. But FLOPs are not time. The dynamic layers consist of many
# small operations (poolings, per-image weight products, a grouped convolution with one group per image and
# channel), while a ViT is almost all large matmuls, the operation every processor runs fastest. So below 6·d
# tokens WeightFormer can be at most about twice as fast as a ViT with the same per-token work, at a few hundred
# tokens at best by its small FLOP lead, and in time it may even be slower. Its advantage has to show on the token
# axis, at large N. That is what the benchmark measures.
#
#
# ## 3. Time and memory against N, measured
#
# `python -m wf_lessons.bench scaling` runs `wf-cifar` against `deit-cifar` with the fused attention kernels and
# with the math backend (which materialises the N×N matrix) on larger and larger images at patch 2, and measures
# forward and forward+backward time, memory and counted FLOPs. Each time is the **best of a few rounds**, not a
# median: every round visits every size and variant once (one untimed call, then one timed call), so a
# disturbance from another program spoils one call of one round instead of one variant's whole series, and the
# minimum over the rounds is the call least disturbed. On the CPU "memory" is the bytes of the activations
# autograd saves for the backward pass; on a GPU it is the peak allocated memory. One call is timed by
# `bench.time_once` (`bench.scaling` loops it over the rounds, sizes and variants):


# %%
show_source(bench.time_once)


# %% [markdown]
# Each figure below plots the three quantities against N on log-log axes. A power law `y ∝ N^p` is a straight
# line of slope p, so the legend gives each curve's slope over its three largest sizes (`bench.summarize`):
# slope 1 is linear, 2 is quadratic. Grey guide lines show the two. The FLOP panel draws only the math backend:
# the fused one does exactly the same arithmetic, and the benchmark counts both through the math backend
# (appendix A), so their curves coincide.

# %%
def plot_scaling(measured, summary, title):
    """Log-log time, memory and FLOPs against tokens for each variant; slopes (last three sizes) in the legend."""
    tokens_n = measured["tokens"]
    kind = next(r["memory_kind"] for rows in measured["results"].values() for r in rows if "memory_kind" in r)
    panels = [("forward_backward_s", "forward+backward time (s)", 1.0),
              ("memory_bytes", f"memory (MiB)\n{kind}", 2**20), ("flops", "forward FLOPs (G, counted)", 1e9)]
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.4), layout="constrained")
    for ax, (key, label, unit) in zip(axes, panels):
        for j, (variant, rows) in enumerate(measured["results"].items()):
            if key == "flops" and "fused" in variant:
                continue
            fitted = [r for r in rows if key in r]  # a GPU log marks sizes that did not fit: "out_of_memory"
            slope = summary["slopes_last3"][variant][key]
            ax.plot([r["tokens"] for r in fitted], [r[key] / unit for r in fitted], "o-", color=f"C{j}",
                    label=f"{variant} (slope {'—' if slope is None else f'{slope:.2f}'})")
        low = min(r[key] for rows in measured["results"].values() for r in rows if key in r) / unit
        for power, style in ((1, "--"), (2, ":")):
            guide = [low * (n / tokens_n[0]) ** power for n in tokens_n]
            ax.plot(tokens_n, guide, style, color="grey", linewidth=1, label=f"∝ N^{power}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(tokens_n, labels=[f"{n:,}" for n in tokens_n], fontsize=8)  # the measured sizes
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("tokens N")
        ax.set_ylabel(label, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    plt.show()


# %% [markdown]
# ### A small live run
#
# Rendering a chapter must stay short, so the live run uses the quick-mode models (width 96, patch 4) on small
# images, on one CPU thread (set at the top of the chapter). For width 96 the FLOP analysis puts the point where
# attention equals the linear layers at 6·96 = 576 tokens, the largest size measured here. The run takes a few
# seconds; its timings depend on the machine and on whatever else it is doing at the moment, so read them as a
# rough picture, not as the result (that is the committed run below).

# %%
LIVE_VARIANTS = {
    "wf-quick": ("wf-cifar-quick", None),
    "deit-quick fused": ("deit-cifar-quick", "fused"),
    "deit-quick math": ("deit-cifar-quick", "math"),
}
LIVE_SIDES = (16, 32, 48, 64, 96)  # patch 4: N = 16 ... 576 tokens
live = bench.scaling(LIVE_SIDES, batch=1, repeats=3 if QUICK else 7, device=torch.device("cpu"),
                     variants=LIVE_VARIANTS, progress=False)
live_summary = bench.summarize(live)
bench.print_report(live, live_summary)

# %%
plot_scaling(live, live_summary, "live run: quick models on this machine's CPU (one thread), batch 1")

# %% [markdown]
# The slopes of the small sizes are not yet the asymptotic ones: at a few hundred tokens every model is still
# dominated by its per-token (linear) work, so even the math-attention curve is far from slope 2. The memory
# panel shows the first clear difference: the math backend stores the N×N attention matrices for the backward
# pass. What the run says about speed, size by size: WeightFormer's forward+backward time over each ViT's, beside
# its FLOPs over the ViT's, and the FLOP rate each model achieves in its forward pass. Where the time ratio is
# above the FLOP ratio, WeightFormer turns its FLOPs into time less efficiently than the ViT.

# %%
def speed_table(measured, summary):
    """Per N: fwd+bwd time and FLOPs of WeightFormer over each ViT variant's, and every variant's forward GFLOP/s."""
    results = measured["results"]
    wf_label = next(label for label in results if label.startswith("wf"))
    others = list(summary["time_ratio_wf_over"])
    columns = [f"time wf / {o}" for o in others] + ["FLOPs wf / ViT"] + [f"GFLOP/s {v}" for v in results]
    print(f"{'N':>6} | " + " | ".join(columns))
    for i, n in enumerate(measured["tokens"]):
        ratios = [summary["time_ratio_wf_over"][o][i] for o in others]  # None: a size that did not fit in memory
        values = [f"{r:.2f}×" if r is not None else "—" for r in ratios]
        wf, vit = results[wf_label][i], results[others[0]][i]
        values.append(f"{wf['flops'] / vit['flops']:.2f}×" if "flops" in wf and "flops" in vit else "—")
        values += [f"{rows[i]['flops'] / rows[i]['forward_s'] / 1e9:.1f}" if "forward_s" in rows[i] else "—"
                   for rows in results.values()]
        print(f"{n:>6} | " + " | ".join(f"{v:>{len(c)}}" for v, c in zip(values, columns)))
    for o in others:
        print(f"WeightFormer becomes faster than {o}: {summary['crossover_forward_backward'][o]}")


speed_table(live, live_summary)

# %% [markdown]
# ## 4. The committed benchmark runs
#
# The full sweep, `wf-cifar` against `deit-cifar` from N = 256 to 4096 tokens on the CPU (and to 16,384 on a GPU),
# takes minutes, so it is a command whose run log is committed under `data/runs/`, and the chapter reads it: the
# CPU log, and the GPU log (`bench-scaling-cuda`) once a GPU run has been committed (until then the cell says so
# and prints the command). The
# course sets targets for it (`TARGETS` below, and on the CPU a time ratio at N = 4096): about linear time and
# memory for WeightFormer, a clearly faster-than-linear time for the math-attention ViT. The cell checks each
# against the log and prints how far off a missed one is.

# %%
TARGETS = [  # (what, variant, quantity, comparison, bound)
    ("WeightFormer's time slope", "wf-cifar", "forward_backward_s", "<=", 1.15),
    ("WeightFormer's memory slope", "wf-cifar", "memory_bytes", "<=", 1.1),
    ("math-attention ViT's time slope", "deit-cifar math", "forward_backward_s", ">=", 1.6),
]


def flag_outliers(measured):
    """Print every point whose time exceeds the same variant's time at the next larger N: more work, less time is
    impossible, so such a point was disturbed (another program, a frequency change) and must not be interpreted."""
    tokens_n, found = measured["tokens"], False
    for variant, rows in measured["results"].items():
        for key in ("forward_s", "forward_backward_s"):
            for i in range(len(rows) - 1):
                if key in rows[i] and key in rows[i + 1] and rows[i][key] > rows[i + 1][key]:
                    found = True
                    print(f"  OUTLIER {variant}, {key} at N = {tokens_n[i]:,}: {rows[i][key] * 1e3:.1f} ms, more than "
                          f"{rows[i + 1][key] * 1e3:.1f} ms at N = {tokens_n[i + 1]:,}; ratios at N = {tokens_n[i]:,} "
                          "involving it are not interpreted")
    if not found:
        print("  no outliers: every time grows with N")


def report_log(name):
    """Print and plot a committed scaling run log; returns it, or None when it does not exist yet."""
    try:
        log = runlog.read(name)
    except FileNotFoundError:
        device_flag = " --device cuda" if name.endswith("cuda") else ""
        print(f"The run log data/runs/{name}.json does not exist yet: no {name.rsplit('-', 1)[-1].upper()} "
              f"sweep has been committed.\nMake it with:  python -m wf_lessons.bench scaling{device_flag}")
        return None
    print(f"run log {name}: `{log['command']}` on {log['device']}, torch {log['torch']}, "
          f"commit {log['git_commit']}, {log['wall_s'] / 60:.1f} min, batch {log['batch']}")
    if log.get("git_dirty", log["git_commit"].endswith("-dirty")):
        print("  (the code that ran differed from that commit:", log.get("git_dirty") or "uncommitted changes", ")")
    bench.print_report(log, log)
    print("\ntargets:")
    for what, variant, key, op, bound in TARGETS:
        value = log["slopes_last3"][variant][key]
        if value is None:
            print(f"  {what} {op} {bound}: not measured (fewer than two sizes fitted in memory)")
            continue
        met = value <= bound if op == "<=" else value >= bound
        verdict = "met" if met else f"missed by {abs(value - bound):.2f}"
        print(f"  {what} {op} {bound}: measured {value:.2f} -> {verdict}")
    if 4096 in log["tokens"] and name.endswith("cpu"):
        ratio = log["time_ratio_wf_over"]["deit-cifar fused"][log["tokens"].index(4096)]
        print(f"  fwd+bwd time at N = 4096, WeightFormer / fused ViT <= 0.5: measured {ratio:.2f} -> "
              f"{'met' if ratio <= 0.5 else f'missed by {ratio - 0.5:.2f}'}")
    plot_scaling(log, log, f"committed run: {log['device']}, batch {log['batch']}")
    speed_table(log, log)
    flag_outliers(log)
    return log


logs = {kind: report_log(f"bench-scaling-{kind}") for kind in ("cpu", "cuda")}

# %% [markdown]
# ## 5. The honest conclusion
#
# - **Where the crossover lies.** Counting FLOPs, attention's N² term equals a ViT block's linear layers at
#   N = 6·d tokens (section 2: 1152 tokens at d = 192). Below that, attention is the minor part of a
#   ViT's cost, so a model that replaces it with layers costing about as much per token as the linear layers can
#   save less than 2×, and at the few hundred tokens of ImageNet at patch 16 or CIFAR at patch 2 only the small
#   fractions printed in section 2. At small N, WeightFormer's lead in time should therefore be of the order of
#   its FLOP lead, which section 2 traced to a slightly smaller per-token budget plus a minor attention share.
#   The committed CPU run agrees: at its smallest size, N = 256, the time ratio and the FLOP ratio in its
#   speed table above are of the same order, and its outlier check finds no point measured *slower* at a smaller
#   N than at the next larger one (the work done rules that out, so such a point would be a disturbed measurement;
#   the interleaved rounds make them rare). With the tiny models of the live quick run WeightFormer can even be
#   slower. Above 6·d the ViT's cost grows quadratically and WeightFormer's linearly, so the gap widens with every
#   doubling of N: that is what the slopes and the ratios at the largest sizes of the committed runs show.
# - **What linear scaling buys is resolution**, not speed at ImageNet-classification size: at 224 px with patch 16
#   (196 tokens) the two families cost about the same FLOPs (section 1). High-resolution images, dense prediction
#   and long token sequences are where WeightFormer's design pays off.
# - **Memory** shows the difference early: the math backend stores N×N attention matrices; fused kernels avoid
#   storing them, but must still do the N² arithmetic.
#
# The numbers behind each point are printed above: the live run on this machine and, when committed, the full run
# logs.
#

# %% [markdown]
# ## Summary
#
# **Main result:** WeightFormer's counted FLOPs grow in proportion to the tokens (WFM-T ×20.8 from 224 to 1024 px
# for ×20.9 the tokens, DeiT-T ×79.9), but at ImageNet resolution both families cost about the same, since a ViT
# block's attention is its smaller part below N = 6·d tokens; WeightFormer's advantage is on the token axis.
#
# - Count FLOPs on the meta device, and count ViTs with the math attention backend (appendix A).
# - Attention equals a ViT block's linear layers at N = 6·d tokens; below that, replacing attention saves less
#   than 2× over a ViT with the same per-token work, and at small N WeightFormer's lead in time is of the order
#   of its lead in FLOPs (and with tiny models it can be slower).
# - Measured against N, WeightFormer's time and memory grow about linearly; a math-attention ViT's time grows
#   clearly faster than linearly, and its memory holds the N×N matrices. Read slopes over the largest sizes, and
#   distrust any point that is slower than the next larger one.
#
# ## Exercises
#
# Each exercise has a cell that computes the answer (a stub with a hint in the student copy, `chapters/student/`)
# and a cell that checks it with `wf_lessons.exercises.ch05.check_exercise` (expected values from the package).
#
# 1. For DeiT-S (d = 384, patch 16) what is the smallest square image side, in pixels and a multiple of 16, at
#    which the attention matmuls of a block cost at least as many FLOPs as its linear layers?
# 2. What fraction of DeiT-T's counted forward FLOPs at 224 px are the attention matmuls `QKᵀ` and `AV` (all 12
#    blocks)? Give a number between 0 and 1, to two decimals.
# 3. **Change a hyper-parameter, predict, measure.** Change `wf-cifar`'s patch size from 2 to 4
#    (`build_model("wf-cifar", patch_size=4)`). First write down, in words, what you expect for the parameter
#    count (which parts depend on the patch?) and for the forward FLOPs of one 32×32 image (how many tokens are
#    left?). Then measure with `flops` on a meta copy and give FLOPs(patch 2) / FLOPs(patch 4).
# 4. **Build it.** Write `loglog_slope(xs, ys)`, the exponent p of a power law y ∝ x^p fitted to measured points:
#    the least-squares slope of log y against log x (every point, not only the first and the last). The
#    benchmark's slopes are this (`complexity.loglog_slope`); the checker compares yours with it on noisy power
#    laws and names the usual slips. Then apply it to the live run's WeightFormer times.
# 5. **Predicted before section 1, now measured.** You wrote your guess in `prediction_5` before section 1.
#    Measure DeiT-T's counted forward FLOPs at 1024 px divided by those at 224 px (`flops` on a meta copy).

# %%
from wf_lessons.exercises import ch05

# %% tags=["solution"]
# hint: attention equals the linear layers at N = 6d tokens; N = (side / 16)²
answer_1 = 16 * math.isqrt(6 * 384)  # 6·384 = 2304 = 48² exactly
lin_s, att_s = vit_block_flops(6 * 384, 384)
print(answer_1, "px | at N = 6d attention == linear layers:", lin_s == att_s)

# %% tags=["nbval-check-output"]
ch05.check_exercise(1, answer_1)

# %% tags=["solution"]
# hint: per block the attention matmuls cost 4·d·N² FLOPs; divide 12 of them by section 1's total
# The counted total includes the patch embedding and the head, so the share is a little below N / (N + 6d).
answer_2 = 12 * 4 * 192 * 196**2 / (gflops["deit-t"] * 1e9)
print(f"{answer_2:.2f}  (N / (N + 6d) = {196 / (196 + 6 * 192):.2f} for a block alone)")

# %% tags=["nbval-check-output"]
ch05.check_exercise(2, answer_2)

# %% tags=["solution"]
# hint: flops(meta_copy(build_model("wf-cifar", patch_size=p)), 32) for p = 2 and p = 4
# Prediction: only the patch embedding depends on the patch (3·p²·C weights), so the count grows a little; the
# blocks see 8×8 = 64 tokens instead of 256, and every block's cost is linear in N, so the FLOPs drop about 4×
# (a little less, since the patch embedding does the same work on 4× fewer, 4× larger patches).
for p in (2, 4):
    print(f"patch {p}: {count_parameters(build_model('wf-cifar', patch_size=p)):,} parameters")
flops_p = {p: flops(meta_copy(build_model("wf-cifar", patch_size=p)), 32) for p in (2, 4)}
answer_3 = flops_p[2] / flops_p[4]
print(f"FLOPs patch 2 / patch 4 = {answer_3:.3f}")

# %% tags=["nbval-check-output"]
ch05.check_exercise(3, answer_3)

# %% tags=["solution", "build"]
# hint: take the logarithms of xs and ys; the slope is Σ(lx − mean lx)(ly − mean ly) / Σ(lx − mean lx)²
def loglog_slope(xs, ys):
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


answer_4 = loglog_slope
wf_times = [r["forward_backward_s"] for r in live["results"]["wf-quick"]]
print(f"live run, WeightFormer's fwd+bwd time, last three sizes: slope {answer_4(live['tokens'][-3:], wf_times[-3:]):.2f}")

# %% tags=["nbval-check-output"]
ch05.check_exercise(4, answer_4)

# %% tags=["solution"]
# hint: flops(meta_copy(build_model("deit-t")), side) for side = 1024 and side = 224
deit_t_meta = meta_copy(build_model("deit-t"))
answer_5 = flops(deit_t_meta, 1024) / flops(deit_t_meta, 224)
print(f"DeiT-T, 224 -> 1024 px: tokens ×{(1024 // 16) ** 2 / (224 // 16) ** 2:.1f}, FLOPs ×{answer_5:.1f}")

# %% tags=["nbval-check-output"]
ch05.check_prediction(5, prediction_5)
ch05.check_exercise(5, answer_5)

# %% [markdown]
# ## Appendix A. Counting FLOPs without computing anything
#
# Two practical points behind `meta_copy` and `flops`. First, the counter only needs the shapes of the operations,
# so the models run on PyTorch's `meta` device: tensors with shapes but no data. Second, on a CPU the fused
# attention kernel (`scaled_dot_product_attention`) is invisible to `FlopCounterMode` in this torch version: a real
# CPU count of a fused ViT silently leaves out the attention matmuls. The math backend does the same arithmetic in
# plain matmuls that are counted, so the package counts every ViT through it, `bench.forward_flops`:

# %%
show_source(bench.forward_flops)

# %% [markdown]
# The cell checks both points on the quick models (patch 4, so 8×8 = 64 tokens at 32 px): a count on the meta
# device equals a count on real tensors, and the plain count of the fused ViT on a CPU is short by exactly the
# attention matmuls of its blocks.

# %% tags=["nbval-check-output"]
print("wf-cifar-quick:   meta count == real count:", flops(meta_copy(wf_quick), 32) == flops(wf_quick, 32, "cpu"))
print("deit-cifar-quick: meta count == real count:",
      flops(meta_copy(deit_quick), 32) == flops(deit_quick, 32, "cpu"))
attention_matmuls = len(deit_quick.blocks) * complexity.softmax_attention_flops(n=64, d=32, heads=3)  # 3 heads of 32
plain_fused = complexity.count_flops(deit_quick, torch.zeros(1, 3, 32, 32))  # attn_backend is "fused"
print(f"deit-cifar-quick ({deit_quick.attn_backend}): plain CPU count is short by exactly the attention matmuls:",
      flops(deit_quick, 32, "cpu") - plain_fused == attention_matmuls)

# %% [markdown]
# ## References
#
# - R. He, D. Han, G. Huang. *Linear-Time Global Visual Modeling without Explicit Attention*. arXiv 2605.01711
#   (2026); reference code github.com/LeapLabTHU/WeightFormer. The course's notes: [paper_notes.md](paper_notes.md).
# - H. Touvron et al. *Training data-efficient image transformers & distillation through attention* (DeiT).
#   ICML 2021, arXiv 2012.12877.
# - T. Dao et al. *FlashAttention*. NeurIPS 2022, arXiv 2205.14135 (why fused attention kernels avoid storing the
#   N×N matrix).
# - PyTorch: `torch.utils.flop_counter.FlopCounterMode`, the `meta` device,
#   `torch.nn.functional.scaled_dot_product_attention` (the fused backend), `time.perf_counter` behind
#   `complexity.time_fn`.

# %% [markdown]
# # 08 · Does predicting weights help? A fair ablation on CIFAR-10
#
# [Open in Colab](https://colab.research.google.com/github/wf-lessons/wf-lessons/blob/main/chapters/08_which_predictor_matters.ipynb) (its first code cell installs the course there)
#
# Chapters 02–06 built WeightFormer's weight predictors and showed what they can do; chapter 07 trained one. None
# of that says whether **predicting weights helps**. This chapter answers that question the way a careful paper
# would, and on the way teaches how to run an ablation that can be trusted.
#
# The course's first answer was a comparison of chapter 07's `cpu` preset: the WeightFormer `wf-cifar-cpu` against
# "the same network with every block static", with the static network ahead by about three points after 15 epochs.
# Read carefully, that comparison is not fair. The two networks differ in much more than prediction:
#
# - **structure**: a dynamic block first *overwrites* the residual stream with `norm1(x)` (chapter 04's quirk); a
#   static block has no such norm;
# - **initialisation**: the released layers draw their static kernel `K0` with std 0.02, PyTorch's depthwise conv
#   draws it about ten times larger; and the released DWC's *prediction* is not small at the start at all;
# - **size and speed**: the static network has about a quarter fewer parameters and trains much faster per step;
# - and the choices around them (one learning rate for both, curves and verdict on the test set, three seeds
#   judged by "every seed beats every seed").
#
# So "the static control wins" mixed four causes. This chapter takes it apart with controls that each change
# **one** thing, a protocol that keeps the test set for the end, and statistics that say how sure we can be.
#
# In this chapter you will
#
# 1. see, in code, why the all-static network is not the same network, and build controls that each change one thing;
# 2. follow the protocol: a held-out validation split, a learning-rate sweep per family, the test set once,
#    seeds paired by data order;
# 3. read the gap decomposed into structure, initialisation and prediction, each a paired difference with its 95%
#    interval, corrected for asking many questions at once;
# 4. look inside the trained networks: how large the predictions grow, how much the networks rely on them, and
#    whether the gap is one of fitting or of generalising;
# 5. re-read the earlier 2-epoch predictor study with the same statistics;
# 6. say what the runs can claim, what would change the verdict, and test two regimes where prediction might help
#    (a schedule twice as long, a 16×16 token grid).
#
# Everything reusable lives in `wf_lessons.ablate` (controls, sweep, summary, paired comparisons, the forest plot)
# and `wf_lessons.models` (the `predict` and `prediction_init` switches). The runs are commands; their logs are
# committed under `data/runs/` and this chapter reads them. Symbols as in the course's
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
import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import MaxNLocator

from wf_lessons import ablate, bench, config, gpu_study, runlog, train
from wf_lessons.models import build_model, count_parameters, prediction_norm_ratios

QUICK = config.quick()
PRESET = "controls-cpu"  # the controlled study: 15 epochs, wf-cifar-cpu, validation split
torch.set_num_threads(1)
print(f"quick mode: {QUICK}; device: {config.device()}")

# %% [markdown]
# ## 1. The claim, and what it was measured on
#
# The paper trains WeightFormer on ImageNet-1K at three sizes and compares it with DeiT (softmax attention) and
# Vim (a state-space model) of similar size. Its Fig. 1 gives top-1 accuracy; **read from the figure** (so to about
# ±0.1 points), WeightFormer reaches about 76.3 / 81.3 / 83.4 % (tiny / small / base) against DeiT's 72.2 / 79.8 /
# 81.8 % ([paper notes](paper_notes.md), "Results"). **The paper reports no CIFAR-10 result and no static
# control**: it does not say how much of WeightFormer's accuracy comes from its skeleton of 3×3 depthwise convs and
# MLPs (a good image model on its own, ConvMixer) rather than from the predicted weights. That is what a CIFAR-10
# course can measure.
#
# ## 2. Not the same network
#
# `wf-cifar-cpu` has six blocks; blocks 1 and 4 are dynamic. Setting `dynamic_blocks=()` makes every block static.
# Side by side, block 1 of each:

# %% tags=["nbval-check-output"]
torch.manual_seed(0)
released = build_model("wf-cifar-cpu")
torch.manual_seed(0)
all_static = build_model("wf-cifar-cpu", dynamic_blocks=())
for name, model in (("released", released), ("all-static", all_static)):
    block = model.blocks[1]
    kernel = block.dwc.static_kernel if block.dynamic else block.dwc.weight
    print(f"{name:<11} block 1: norm1 overwrite {hasattr(block, 'norm1')!s:<5}  "
          f"dwc {type(block.dwc).__name__:<15} linear1 {type(block.linear1).__name__:<19} "
          f"std of K0 {kernel.std():.3f}")
    print(f"{'':<11} whole model: {count_parameters(model):,} parameters")

# %% [markdown]
# Three differences besides prediction, visible before any training. A fourth appears at initialisation: the
# released DWC's predictor (chapter 03: pooling, a 1×1 conv, GELU, a 1×1 conv) keeps PyTorch's default init for
# its 1×1 convolutions, so its normalised prediction `K̂` (norm just below 1 per channel) starts much *larger* than
# the small static kernel `K0` it is added to. The dynamic linear layer's prediction `Ŵ`, by contrast, starts tiny:
# its generator's weights are all drawn with std 0.02 and multiply. `prediction_norm_ratios` measures
# `‖Ŵ‖/‖W0‖` and `‖K̂‖/‖K0‖` on a batch:

# %%
images = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
for block, r in prediction_norm_ratios(released, images).items():
    print(f"block {block}: ‖Ŵ‖/‖W0‖ = {r['linear']:.1e}   ‖K̂‖/‖K0‖ = {r['dwc']:.2f}")

# %% [markdown]
# So the story "a WeightFormer starts as a static network and learns to use its predictions" holds for the linear
# layer only: the released DWC starts out *dominated* by its prediction. Whether that start costs accuracy is a
# question the controls below can answer.
#
# ## 3. Controls that each change one thing
#
# Each control is an ordinary training run of chapter 07 with `build_model` overrides (`ablate.CONTROLS`):

# %% tags=["nbval-check-output"]
for name, (family, overrides, what) in ablate.CONTROLS.items():
    n = count_parameters(build_model("wf-cifar-cpu", **overrides))
    print(f"{name:<21}{n:>8,}  {str(overrides):<52} lr family: {family}")

# %% [markdown]
# Read them as a chain from the all-static network to the released one, each link one change:
#
# | step | from → to | the one thing that changes |
# |---|---|---|
# | structure | `all-static` → `slot-static` | the dynamic blocks' structure (the `norm1` overwrite), static layers in both slots |
# | initialisation | `slot-static` → `zero-prediction` | the static weights' init: the released layers' (`K0` std 0.02) instead of the static layers' |
# | prediction | `zero-prediction` → `released` | the predictions switched on (`predict="none"` forces every `Ŵ` and `K̂` to zero in the forward pass; structure, init and parameters stay) |
#
# The three links add up exactly, seed by seed, to `released − all-static`. Around the chain:
#
# - `zero-init` is the released network whose predictions start at exactly zero and are learned from there
#   (**the course's own experiment**, not the paper's): the DWC predictor's last 1×1 conv and the linear
#   predictor's value projection `W2` are zeroed. Zeroing *one* branch of the bilateral product `Kᵀ·V` keeps the
#   gradient alive; zeroing both would leave it at zero for ever. It tests whether the released start is what costs;
# - `predict-dwc-only` and `predict-linear-only` switch on one kind of prediction, to see which one carries an effect;
# - `static-param-matched` (8 static blocks) and `static-time-matched` (11 static blocks) read "static wins" at equal
#   size and at about equal training time per step.
#
# A control is only a control if it really computes what it claims. `tests/test_controls.py` proves that
# `zero-prediction` zeroes every prediction (scrambling its predictors changes nothing) and that `zero-init`
# computes its `zero-prediction` twin at step 0 while its zeroed layers still get gradient. The same, live, on a
# smaller network: both built from one seed, trained on the same batches.

# %%
def twin_runs(steps: int) -> list[tuple[int, float, float]]:
    """Train zero-init and zero-prediction twins of a small WeightFormer side by side on the same random batches;
    per step: (step, max |Δ logits|, zero-init's ‖K̂‖/‖K0‖ in block 1)."""
    small = {"embed_dim": 32, "depth": 3, "dynamic_blocks": (1,)}
    torch.manual_seed(0)
    grows = build_model("wf-cifar-cpu", prediction_init="zero", **small)
    torch.manual_seed(0)
    fixed = build_model("wf-cifar-cpu", predict="none", **small)
    opts = [torch.optim.AdamW(m.parameters(), lr=3e-3) for m in (grows, fixed)]
    g = torch.Generator().manual_seed(1)
    probe = torch.randn(16, 3, 32, 32, generator=g)
    rows = []
    for step in range(steps + 1):
        with torch.no_grad():
            gap = (grows.eval()(probe) - fixed.eval()(probe)).abs().max().item()
        rows.append((step, gap, prediction_norm_ratios(grows, probe)[1]["dwc"]))
        x, y = torch.randn(32, 3, 32, 32, generator=g), torch.randint(0, 10, (32,), generator=g)
        for model, opt in zip((grows.train(), fixed.train()), opts):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return rows


for step, gap, ratio in twin_runs(10 if QUICK else 30)[::5]:
    print(f"step {step:>2}: max |logits(zero-init) − logits(zero-prediction)| = {gap:.1e}, ‖K̂‖/‖K0‖ = {ratio:.3f}")

# %% [markdown]
# Identical at step 0 (up to float rounding of two ways of computing the same convolution); apart as soon as the
# zero-init network's predictions grow.
#
# ## 4. The protocol
#
# **A validation split.** 5,000 of the 50,000 training images (500 per class, drawn once with a fixed seed:
# `data.validation_split`) are held out. Every curve and every choice (the learning rate) uses them; the
# **test set is evaluated once per run, at the end**, and only the final comparison reads it.
#
# **A learning rate per family, chosen on validation.** One rate for every network favours whichever network it
# happens to suit. The sweep trains the released network and the all-static control at 1.5e-3, 3e-3 and 6e-3
# (seed 0, the full 15 epochs); each *family* then trains at its sweep's best validation accuracy: the
# WeightFormer-structured controls at the released network's rate, the all-static networks at the control's.
#
# **Seeds, paired.** Every variant trains with the same seeds; a seed fixes the data order and augmentation draws,
# so seed `s` of every variant sees exactly the same batches. The comparison of two variants is then the mean of
# their **paired** differences, with a 95% t-interval (`scipy.stats`); several comparisons at once get their
# p-values **Holm-corrected** (`statsmodels`), so that asking ten questions does not make one look significant by
# luck. The earlier "every seed beats every seed" rule is dropped: with three seeds against three, that ordering
# happens by chance one time in ten (one in twenty each way), and it ignores the pairing.
#
# **One precision for all.** The runs use bf16 autocast on the CPU (fixed, not measured per run, so that no
# variant trains in another precision than its control).
#
# The commands (each resumable; two copies share the work, one per core):
#
# ```
# python -m wf_lessons.ablate --preset controls-cpu --sweep                # the learning-rate sweep
# python -m wf_lessons.ablate --preset controls-cpu --seeds 0 1 2 3 4      # every control at its family's rate
# python -m wf_lessons.ablate --preset controls-cpu --variants released all-static slot-static zero-prediction
# python -m wf_lessons.ablate --preset controls-cpu --list                 # what is done, partial, to do
# ```

# %%
summary = runlog.read(ablate.summary_name(PRESET))
print(f"summary of commit {summary['git_commit'][:12]}")
for variant, rates in summary["lr_sweep"].items():
    needed = [lr for v, lr in ablate.sweep_runs(PRESET) if v == variant]
    try:
        chosen = f"chosen {ablate.chosen_lr(PRESET, variant):g}"
    except ablate.SweepNotDone:  # the best rate is at an edge: the sweep grew past it and the new rate is not trained yet
        chosen = f"not chosen yet ({len(rates)} of {len(needed)} rates done: the best was at the edge)"
    print(f"{variant:<11} validation accuracy by learning rate: "
          + ", ".join(f"{lr}: " + ("diverged" if acc is None else f"{acc:.2%}") for lr, acc in rates.items())
          + f"  -> {chosen}")


def sweep_logs(variant: str) -> list[dict]:
    """The finished sweep runs of ``variant`` (seed 0), by increasing learning rate."""
    return [runlog.read(ablate.run_name(PRESET, variant, 0, float(lr))) for lr in summary["lr_sweep"][variant]]


fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.4), gridspec_kw={"width_ratios": [1, 1.6]})
rates_seen = sorted({float(lr) for rates in summary["lr_sweep"].values() for lr in rates})
for (variant, rates), colour in zip(summary["lr_sweep"].items(), ("tab:green", "0.4")):
    done = [(float(lr), 100 * acc) for lr, acc in rates.items() if acc is not None]
    ax1.plot(*zip(*done), "o-", color=colour, label=variant)
    for log, style in zip(sweep_logs(variant), ("o:", "s--", "^-.", "d-", "v:", "x--")):
        ax2.plot([e["epoch"] for e in log["epochs"]], [100 * e["val_acc"] for e in log["epochs"]], style,
                 color=colour, ms=3, label=f"{variant}, lr {log['config']['lr']:g}")
ax1.set_xscale("log")
ax1.set_xticks(rates_seen, [f"{lr:g}" for lr in rates_seen])
ax1.minorticks_off()
ax1.set_xlabel("peak learning rate")
ax1.set_ylabel("final validation accuracy (%)")
ax1.set_title("the sweep (seed 0, 15 epochs)", fontsize=10)
ax1.legend(fontsize=8)
ax2.set_xlabel("epoch")
ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
ax2.set_ylabel("validation accuracy (%)")
ax2.set_title("every sweep run, epoch by epoch", fontsize=10)
ax2.legend(fontsize=7, loc="lower right", ncol=2)
for ax in (ax1, ax2):
    ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# A best rate at the edge of the grid would say nothing about the rates beyond it, so the sweep grows by a factor 2
# past an edge that wins (at most twice) until the best rate has a worse one on each side; the cell above prints
# each family's rates as they stand and whether its rate is chosen yet.
#
# ## 5. The runs
#
# Per variant: the seeds finished so far, the test accuracy (all 10,000 images, once per run), the final validation
# accuracy, size and measured training speed (one thread each, two runs side by side; comparable to each other,
# not a benchmark):

# %%
table = summary["variants"]
PLANNED_SEEDS = 5
print(f"{'variant':<21}{'lr':>7}{'seeds':>6}{'test %':>8}{'± std':>7}{'val %':>7}{'params':>9}{'img/s':>7}")
for name, v in table.items():
    print(f"{name:<21}{v['lr']:>7g}{len(v['seeds']):>6}{100 * v['mean']:>8.2f}{100 * v['std']:>7.2f}"
          f"{100 * sum(v['val_acc']) / len(v['val_acc']):>7.2f}{v['parameters']:>9,}{v['images_per_s']:>7.0f}")
missing = [n for n in ablate.CONTROLS if len(table.get(n, {}).get("seeds", [])) < PLANNED_SEEDS]
print(f"\nvariants with fewer than the planned {PLANNED_SEEDS} seeds so far:", ", ".join(missing) or "none")

# %%
CURVES = ("released", "all-static", "slot-static", "zero-prediction")
curve_logs = {name: [runlog.read(r) for r in table[name]["runs"]] for name in CURVES if name in table}
if curve_logs:
    train.plot_curves(curve_logs, "the decomposition's four networks: validation accuracy per epoch",
                      colours=("tab:green", "0.4", "tab:orange", "tab:blue")[:len(curve_logs)])
    plt.show()
else:
    print("no run at a chosen learning rate yet")

# %% [markdown]
# ## 6. Where the gap comes from
#
# Before you read on, decide which of the three links you expect to carry most of the gap between the released
# network and the all-static control, and in which direction.
#
# The decomposition: each link a paired difference of test accuracy, its 95% interval and the Holm-corrected
# p-value over all the study's comparisons. The total at the top; a link that holds after the correction is drawn
# in colour (blue: the treatment is better, red: worse).

# %%
comparisons = {(c["treatment"], c["control"]): c for c in summary["comparisons"]}
chain = [("released", "all-static"), *ablate.DECOMPOSITION]
rows = [comparisons[pair] for pair in chain if pair in comparisons]
if rows:
    ablate.plot_comparisons(rows, "released − all-static, and its three links (test accuracy, paired by seed)")
    plt.tight_layout()
    plt.show()
else:
    print("no comparison has two seeds yet")

# %%
def verdict(c: dict) -> str:
    """One line for a comparison: the mean difference, its interval, and what it establishes after the correction."""
    low, high = c["ci95"]
    holm = c.get("p_holm")  # absent when every seed's difference is the same: no t-test
    if holm is None:
        say = "the same difference in every seed (no test)"
    elif holm < 0.05:
        say = "established (Holm p < 0.05)"
    elif low > 0 or high < 0:
        say = "the interval excludes zero, but not after correcting for the number of comparisons"
    else:
        say = "not distinguishable from zero"
    p = "p n/a" if holm is None else f"Holm p = {holm:.3f}"
    return (f"{c['treatment']} − {c['control']}: {c['mean']:+.2f} points [{low:+.2f}, {high:+.2f}], "
            f"n = {len(c['seeds'])}, {p}: {say}")


for c in summary["comparisons"]:
    print(verdict(c))
    print(f"    ({c['differs']})")
links = [comparisons[pair] for pair in ablate.DECOMPOSITION if pair in comparisons]
if len(links) == 3 and ("released", "all-static") in comparisons:
    total = comparisons[("released", "all-static")]
    common = sorted(set.intersection(*(set(c["seeds"]) for c in links)) & set(total["seeds"]))
    by_seed = {c["control"]: dict(zip(c["seeds"], c["diff_points"])) for c in links}
    sums = [sum(by_seed[c["control"]][s] for c in links) for s in common]
    print("\nthe three links add up to the total, seed by seed:",
          all(abs(x - dict(zip(total["seeds"], total["diff_points"]))[s]) < 1e-6 for x, s in zip(sums, common)))

# %% [markdown]
# All comparisons the study makes, in one forest plot (each seed's difference as a small dot):

# %%
if summary["comparisons"]:
    ablate.plot_comparisons(summary["comparisons"], "every comparison of the controlled study (test accuracy)")
    plt.tight_layout()
    plt.show()

# %% [markdown]
# How to read an interval: with five seeds, the 95% interval of a mean difference is about 1.2 standard deviations
# of the per-seed differences wide on each side; a difference whose interval includes zero is **not established**
# (which is not the same as "no effect"), and the Holm p-value is the one to quote when a comparison is picked out
# of the list. With fewer seeds than planned the intervals are wider; section 5 says how many each variant has.
# The correction runs over the comparisons that have at least two paired seeds so far: the family grows, and the
# corrected p-values with it, as the remaining controls finish.
#
# ## 7. Inside the trained networks
#
# Every run of the study logs, after each epoch, the size of each dynamic block's predictions on 256 validation
# images, and at the end, the validation accuracy with every prediction switched off (`models.predictions_off`)
# and the accuracy on 5,000 training images without augmentation.
#
# **How large do the predictions grow?**

# %%
def released_logs() -> dict[str, dict]:
    """Every finished run of the released network: the sweep's (seed 0, each rate) and the study's (each seed at
    the chosen rate), by run name."""
    names = [ablate.run_name(PRESET, "released", 0, float(lr)) for lr in summary["lr_sweep"]["released"]]
    names += table.get("released", {}).get("runs", [])
    return {name: runlog.read(name) for name in dict.fromkeys(names)}


fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharex=True)
for (name, log), colour in zip(released_logs().items(), plt.cm.viridis_r([0.15, 0.4, 0.6, 0.8, 0.95, 1.0] * 3)):
    label = f"lr {log['config']['lr']:g}, seed {log['seed']}"
    for block, style in zip(log["epochs"][0]["prediction_norms"], ("-", "--")):
        for ax, kind in zip(axes, ("linear", "dwc")):
            ax.plot([e["epoch"] for e in log["epochs"]], [e["prediction_norms"][block][kind] for e in log["epochs"]],
                    style, color=colour, label=f"{label}, block {block}")
axes[0].set_ylabel("‖Ŵ‖ / ‖W0‖ (dynamic linear)")
axes[1].set_ylabel("‖K̂‖ / ‖K0‖ (dynamic DWC)")
for ax in axes:
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
fig.legend(*axes[0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
fig.suptitle("released network: prediction size relative to the static weight after each epoch (256 validation "
             "images)", fontsize=10)
plt.tight_layout()
plt.show()

# %%
for name, log in released_logs().items():
    first, last = log["epochs"][0]["prediction_norms"], log["epochs"][-1]["prediction_norms"]
    print(f"{name}: " + "; ".join(f"block {b}: ‖Ŵ‖/‖W0‖ {first[b]['linear']:.2f} -> {last[b]['linear']:.2f}, "
                                  f"‖K̂‖/‖K0‖ {first[b]['dwc']:.2f} -> {last[b]['dwc']:.2f}" for b in first)
          + " (after epoch 1 -> at the end)")

# %% [markdown]
# Read the two kinds apart: a ratio above 1 means the predicted part is larger than the static weight it is added
# to, so the layer is more dynamic than static.
#
# **Predict first (exercise 1).** The trained released network computes every dynamic block with `W0 + Ŵ` and
# `K0 + K̂`. Switch the predictions off (`models.predictions_off`: `W0` and `K0` alone) and evaluate it again on
# the validation split. By how many points do you expect its accuracy to drop: under 5, 5 to 20, or over 20?

# %% tags=["predict"]
# answered in: Reliance: the predictions switched off
prediction_1 = None  # your guess: "under 5", "5 to 20" or "over 20"

# %% [markdown]
# ### Reliance: the predictions switched off
#
# Every run logs it at the end (`val_acc_predictions_off`). A network that ignores its predictions loses nothing;
# one whose static weights have adapted to the predicted part loses a lot:

# %%
for name, log in released_logs().items():
    print(f"{name}: validation accuracy {log['val_acc']:.2%} -> with predictions off "
          f"{log['val_acc_predictions_off']:.2%} (drop {100 * (log['val_acc'] - log['val_acc_predictions_off']):.1f}"
          " points)")
for name in (n for n in ("zero-init", "predict-dwc-only", "predict-linear-only") if n in table):
    v = table[name]
    drops = [100 * (a - b) for a, b in zip(v["val_acc"], v["val_acc_predictions_off"])]
    print(f"{name}: drop per seed " + ", ".join(f"{d:.1f}" for d in drops) + " points")

# %% [markdown]
# **Fitting or generalising?** If the all-static network is ahead on held-out images, is it because it fits the
# training images better, or because it generalises better from the same fit? The training accuracy here is on
# 5,000 training images, evaluated like the validation split (no augmentation):

# %%
print(f"{'variant':<21}{'train %':>8}{'val %':>7}{'train − val':>12}   (at the family's chosen rate)")
for name, v in table.items():
    tr, va = (100 * sum(v[k]) / len(v[k]) for k in ("train_eval_acc", "val_acc"))
    print(f"{name:<21}{tr:>8.2f}{va:>7.2f}{tr - va:>12.2f}")

# %% [markdown]
# The same question as paired differences, for the study's comparisons: on the left how much better the treatment
# fits the training images, on the right how much larger its train − validation gap is. These are diagnostics, a
# second look at runs already compared, so each panel is its own Holm family:

# %%
fit_table = {n: {"seeds": v["seeds"], "train_eval_acc": v["train_eval_acc"],
                 "train_val_gap": [t - a for t, a in zip(v["train_eval_acc"], v["val_acc"])]}
             for n, v in table.items() if "train_eval_acc" in v}
fit_pairs = [c for c in ablate.COMPARISONS if c[0] in fit_table and c[1] in fit_table]
fit_rows = {m: ablate.compare_paired(fit_table, fit_pairs, metric=m) for m in ("train_eval_acc", "train_val_gap")}
if fit_rows["train_eval_acc"]:
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.55 * len(fit_rows["train_eval_acc"]) + 1.6))
    for ax, (metric, rows), title in zip(axes, fit_rows.items(), ("fit: training accuracy (5,000 training images)",
                                                                  "generalisation: training − validation accuracy")):
        ablate.plot_comparisons(rows, title, ax=ax)
        ax.set_xlabel("difference (points); colour: Holm p < 0.05")
    axes[1].set_yticklabels([])
    plt.tight_layout()
    plt.show()
    for metric, rows in fit_rows.items():
        for c in rows:
            print(f"{metric}, " + verdict(c))

# %% [markdown]
# How to read the pair: a network that is behind on validation because it **fits less** is behind on the left and
# level on the right (an optimisation cost: it has not learned as much in 15 epochs); one that **generalises
# worse** fits as well or better and has the larger gap on the right (overfitting). The first points at a longer
# schedule as the regime where the predicting networks might catch up: section 9's first regime doubles it.

# %% [markdown]
# **Does bf16 change the verdict?** The study trains under bf16 autocast. One seed of the released network and of
# the all-static control is also trained in float32 (`released-fp32`, `all-static-fp32`; same rate, same seed):

# %%
for precision, (a, b) in (("bf16", ("released", "all-static")), ("float32", ("released-fp32", "all-static-fp32"))):
    if a in table and b in table and 0 in table[a]["seeds"] and 0 in table[b]["seeds"]:
        acc = {n: dict(zip(table[n]["seeds"], table[n]["test_acc"]))[0] for n in (a, b)}
        print(f"seed 0, {precision:<7}: released {acc[a]:.2%}, all-static {acc[b]:.2%}, "
              f"gap {100 * (acc[a] - acc[b]):+.2f} points")
    else:
        print(f"seed 0, {precision:<7}: not run yet")

# %% [markdown]
# ## 8. The 2-epoch predictor study, re-read
#
# Before the controlled study, the course ran a cheaper one (`python -m wf_lessons.ablate`, preset `study-cpu`):
# `wf-cifar-study` (patch 4, width 64, four blocks, **half of them dynamic**) for **2 epochs**, 12 variants × 3
# seeds, varying one predictor family at a time, at one learning rate, judged on the test set. Its variants are
# named for what they predict (`predict-dwc-only` has a static linear layer; the old logs call it `linear-static`).
# Re-read with this chapter's statistics, every variant against the all-static network, Holm-corrected over the
# eleven comparisons:

# %%
study = runlog.read(ablate.summary_name("study-cpu"))
pairs = [(name, "all-static", "one predictor family changed") for name in study["variants"] if name != "all-static"]
study_rows = ablate.compare_paired(study["variants"], pairs)
for c in study_rows:
    print(verdict(c))
ablate.plot_comparisons(study_rows, "2-epoch study (wf-cifar-study, half the blocks dynamic, 3 seeds): "
                        "variant − all-static")
plt.tight_layout()
plt.show()

# %% [markdown]
# Three seeds give a t-interval with two degrees of freedom, about 2.5 standard deviations of the per-seed
# differences wide on each side, so only
# large and steady differences survive; the Holm correction over eleven comparisons asks for more. That study
# differs from the controlled one in network (half the blocks dynamic instead of one in three), schedule (2
# epochs) and protocol (test set, one rate), so "ahead after 2 epochs, behind after 15" compared two different
# experiments. The controlled study's short version, `controls-short-cpu` (the same network and protocol, 2
# epochs), is the one that can say whether the ordering flips with training length on one network. Side by side
# below, each panel's colours come from its own Holm family (the short study's comparisons, the long study's) and
# each row says how many paired seeds it has:

# %%
short = runlog.read(ablate.summary_name("controls-short-cpu")) if (
    config.runs_dir() / f"{ablate.summary_name('controls-short-cpu')}.json").exists() else None
if short is None or not short["comparisons"]:
    print("controls-short-cpu: no paired comparison yet (no pair of variants has two common seeds)")
else:
    for c in short["comparisons"]:
        print(verdict(c))
    # the same comparisons after 2 and after 15 epochs, side by side on one scale
    late = {(c["treatment"], c["control"]): c for c in summary["comparisons"]}
    early = [c for c in short["comparisons"] if (c["treatment"], c["control"]) in late]
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.55 * len(early) + 1.6), sharex=True)
    ablate.plot_comparisons(early, "controls-short-cpu: after 2 epochs", ax=axes[0])
    ablate.plot_comparisons([late[(c["treatment"], c["control"])] for c in early], "controls-cpu: after 15 epochs",
                            ax=axes[1])
    axes[1].set_yticklabels([])
    for ax in axes:
        ax.set_xlabel("test accuracy difference (points); colour: Holm p < 0.05")
    plt.tight_layout()
    plt.show()

# %% [markdown]
# A lead that is not established early and a deficit that is established late do not yet show that the effect
# *changes*. That is its own question, with its own test: per seed, a comparison's difference after 15 epochs minus
# its difference after 2 (`ablate.schedule_change`), a paired t-interval, Holm over the comparisons:

# %%
if short is not None and short["comparisons"]:
    for c in ablate.schedule_change(short["variants"], table):
        print("change from 2 to 15 epochs of " + verdict(c))

# %% [markdown]
# ## 9. What the runs can claim, and what would change the verdict
#
# What is measured here, and only here: small WeightFormers (section 2 counts their parameters) on CIFAR-10 at patch 4
# (an 8×8 token grid), trained for 15 epochs on one CPU thread, with a light recipe (crop and flip, label
# smoothing, no mixing), compared by test accuracy over paired seeds. Section 6 prints what the comparisons say.
#
# What would change the verdict, and why each is plausible:
#
# - **A larger token grid.** With 64 tokens, three 3×3 convolutions already cover the image (chapter 06), so a
#   global view is cheap to get without prediction. At patch 2 (a 16×16 grid) the static receptive field no
#   longer covers the image; prediction, whose view is global from the first layer, has more to add.
# - **A longer schedule or a larger model.** Predictors have more parameters to learn; a model that underfits
#   in 15 epochs may not have learned to use them yet. The per-epoch prediction sizes (section 7) show whether
#   they were still growing at the end.
# - **A different start.** `zero-init` against `released` measures whether the released initialisation costs
#   accuracy here.
# - **Stronger augmentation and regularisation**, as in the paper's ImageNet recipe, which change which network
#   overfits first (section 7's fit-or-generalise table says which one does here).
#
# The first two are this study's regimes (`ablate.REGIMES`), each one change from `controls-cpu`, whose learning
# rates they reuse: `controls-long-cpu` trains for 30 epochs, `controls-grid16-cpu` at patch 2 (`wf-cifar-cpu-p2`, a
# 16×16 grid). Each trains `released`, `zero-init` and the best control, seeds 0 1 2, and compares them among
# themselves (Holm over its own three comparisons). The best control is chosen on the **validation** split, never
# the test set: of the decomposition's controls, the one with the best mean final validation accuracy over the
# five seeds (`ablate.best_control`):

# %%
try:
    scores, control = ablate.control_scores(PRESET), ablate.best_control(PRESET)
    print(f"best control on validation: {control} (mean final validation accuracy over seeds 0-4: "
          + ", ".join(f"{n} {100 * acc:.2f}%" for n, acc in scores.items()) + ")")
except ablate.ControlNotChosen as waiting:
    control = None
    print(waiting)


# %% [markdown]
# Their budget, from what the committed runs took on the course's 2-core machine (one thread each, two at a time,
# beside other work; a resumed run's minutes are summed over its segments):

# %%
def mean_minutes(preset: str, variant: str) -> float | None:
    """Mean minutes of the finished runs of ``variant`` in ``preset`` at its family's rate (None: none yet):
    training and every evaluation, summed over a resumed run's segments (``wall_s`` counts the last one only)."""
    logs = ablate.finished_logs(preset, variant, ablate.chosen_lr(preset, variant))
    minutes = [(g["train_s"] + sum(e["eval_s"] for e in g["epochs"]) + g["eval_s"]) / 60 for g in logs]
    return sum(minutes) / len(minutes) if minutes else None


def released_flops(preset: str) -> int:
    """Forward FLOPs of one image through the released network of ``preset``'s model."""
    return bench.forward_flops(build_model(train.PRESETS[preset]["model"]).eval(), torch.zeros(1, 3, 32, 32))


trio = ("released", "zero-init", control or "all-static")  # all-static stands in while the control is not chosen
base = {v: mean_minutes(PRESET, v) for v in trio}
print("controls-cpu, 15 epochs: " + ", ".join(f"{v} {m:.0f} min" for v, m in base.items()) + " per run")
for regime, change in ablate.REGIMES.items():
    measured = {v: mean_minutes(regime, v) for v in trio}
    if all(measured.values()):
        hours, source = 3 * sum(measured.values()) / 60, "measured in this regime"
    else:  # until it has run: controls-cpu's minutes × the ratio of epochs × the ratio of FLOPs per image
        scale = (train.PRESETS[regime]["epochs"] / train.PRESETS[PRESET]["epochs"]
                 * released_flops(regime) / released_flops(PRESET))
        hours = 3 * scale * sum(base.values()) / 60
        source = f"estimated: {scale:.1f} × controls-cpu's minutes, from epochs and FLOPs per image"
    print(f"{regime} ({change}): about {hours:.0f} hours of one thread for 3 seeds × 3 networks ({source})")

# %% [markdown]
# What each regime has found so far (test accuracy, paired by seed; `pending` until two seeds of a pair are in):

# %%
for regime, change in ablate.REGIMES.items():
    path = config.runs_dir() / f"{ablate.summary_name(regime)}.json"
    found = runlog.read(path) if path.exists() else None
    if found is None or not found["comparisons"]:
        print(f"{regime} ({change}): pending; to run it: python -m wf_lessons.ablate --preset {regime}")
        continue
    print(f"{regime} ({change}): " + ", ".join(f"{n} {len(v['seeds'])} seeds, {100 * v['mean']:.2f}%"
                                               for n, v in found["variants"].items()))
    for c in found["comparisons"]:
        print("    " + verdict(c))
    ablate.plot_comparisons(found["comparisons"], f"{regime}: {change}")
    plt.tight_layout()
    plt.show()

# %% [markdown]
# On one GPU the schedule twice as long is one command: `python -m wf_lessons.ablate --preset study-gpu` trains the
# decomposition's four networks and `zero-init`, three seeds each, for 30 epochs at the rates the sweep above chose
# (it measures a few steps first and says how long the runs will take). Its summary, when it has been run:

# %%
gpu_summary = gpu_study.summary()
if gpu_summary is None:
    print(f"GPU study: pending (no GPU has run it yet); to run it: {gpu_study.COMMAND}")
else:
    print(f"GPU study ({gpu_summary['preset']}): {len(gpu_summary['variants'])} variants")
    for c in gpu_summary["comparisons"]:
        print(verdict(c))

# %% [markdown]
# ## Summary
#
# - A control must differ from its treatment in **one** thing. `dynamic_blocks=()` changes structure,
#   initialisation, size, speed and prediction at once; the chain `all-static → slot-static → zero-prediction →
#   released` changes them one at a time, and its links add up to the whole gap, seed by seed.
# - In the released design the DWC prediction starts *larger* than the static kernel; only the linear layer's
#   starts near zero. `prediction_init="zero"` gives a WeightFormer that starts exactly as its static twin.
# - Choices on a validation split, the test set once per run, a learning rate per family, seeds paired by data
#   order, 95% intervals and Holm-corrected p-values (`ablate.compare_paired`): the verdict of section 6 is
#   printed from the committed logs with its conditions.
# - A "why" is a measurement too: whether a network is behind because it fits less or because it generalises
#   worse is a pair of paired differences (training accuracy, train − validation gap), and whether an effect
#   *changes* between two schedules is its own paired test (`ablate.schedule_change`), not two verdicts read side
#   by side.
# - Small models on small images cannot confirm or refute an ImageNet claim; they answer a narrower question,
#   with numbers you can reproduce, and say what would change the answer.
#
# ## Exercises
#
# Each exercise has a cell that computes the answer (a stub with a hint in the student copy, `chapters/student/`)
# and a cell that checks it with `wf_lessons.exercises.ch08.check_exercise`.
#
# 1. **Predict, then measure** (you wrote your prediction before "Reliance"; the check says how it fared).
#    From the run log of the released network trained at the CPU recipe's rate (`ablate.run_name(PRESET,
#    "released", 0, 3e-3)`), compute the drop in validation accuracy, in points, when its predictions are off.
# 2. **Build the statistics.** For chapter 07's `cpu` preset (3 seeds, `train-wf-cifar-cpu-cpu-seed<k>` and
#    `train-wf-cifar-cpu-all-static-cpu-seed<k>`), compute the 95% confidence interval of the mean paired
#    difference WeightFormer minus all-static network, in points, with `scipy.stats` — a `(low, high)` tuple.
# 3. **Build a zero start.** Write `zero_start(layer)` that makes a `BilateralDynLinear`'s prediction `Ŵ` exactly
#    zero for every input while its gradient stays non-zero (chapter 02's layer: which one tensor to zero?).
# 4. **Count a predictor's cost.** How many parameters does the `bilateral` dynamic-linear predictor add to
#    `wf-cifar-cpu`, compared with the same model whose dynamic blocks use `linear_predictor="static"`?

# %%
from wf_lessons.exercises import ch08

# %% tags=["solution"]
# hint: runlog.read(name) gives the log; its "val_acc" and "val_acc_predictions_off" are fractions
log = runlog.read(ablate.run_name(PRESET, "released", 0, 3e-3))
answer_1 = 100 * (log["val_acc"] - log["val_acc_predictions_off"])
print(f"{answer_1:.2f} points")

# %% tags=["nbval-check-output"]
ch08.check_prediction(1, prediction_1)
ch08.check_exercise(1, answer_1)

# %% tags=["solution", "build"]
# hint: scipy.stats.ttest_1samp(differences, 0).confidence_interval(0.95) (or ttest_rel on the two lists)
from scipy import stats

diffs = [100 * (runlog.read(f"train-wf-cifar-cpu-cpu-seed{s}")["test_acc"]
                - runlog.read(f"train-wf-cifar-cpu-all-static-cpu-seed{s}")["test_acc"]) for s in range(3)]
interval = stats.ttest_1samp(diffs, 0).confidence_interval(0.95)
answer_2 = (interval.low, interval.high)
print(f"[{answer_2[0]:+.2f}, {answer_2[1]:+.2f}] points")

# %% tags=["nbval-check-output"]
ch08.check_exercise(2, answer_2)

# %% tags=["solution", "build"]
# hint: Ŵ is built from Kᵀ·V; V = SiLU(U_v)·W2. Zero W2 in place, under torch.no_grad()
def zero_start(layer):
    with torch.no_grad():
        layer.w2.zero_()
    return layer


answer_3 = zero_start

# %% tags=["nbval-check-output"]
ch08.check_exercise(3, answer_3)

# %% tags=["solution"]
# hint: count_parameters(build_model("wf-cifar-cpu", linear_predictor=...)) for "bilateral" and "static"
answer_4 = count_parameters(build_model("wf-cifar-cpu")) - count_parameters(
    build_model("wf-cifar-cpu", linear_predictor="static"))
print(f"{answer_4:,} parameters")

# %% tags=["nbval-check-output"]
ch08.check_exercise(4, answer_4)

# %% [markdown]
# ## References
#
# - R. He, D. Han, G. Huang. *Linear-Time Global Visual Modeling without Explicit Attention*. arXiv 2605.01711
#   (2026); reference code github.com/LeapLabTHU/WeightFormer. ImageNet results read from its Fig. 1; the
#   course's notes: [paper_notes.md](paper_notes.md).
# - A. Trockman, J. Z. Kolter. *Patches Are All You Need?* (ConvMixer: depthwise convs and MLPs alone).
#   arXiv 2201.09792.
# - X. Bouthillier et al. *Accounting for Variance in Machine Learning Benchmarks*. MLSys 2021, arXiv 2103.03098
#   (seeds, paired comparisons).
# - S. Holm. *A Simple Sequentially Rejective Multiple Test Procedure*. Scandinavian Journal of Statistics 6 (1979)
#   (the correction used here).
# - J. Demšar. *Statistical Comparisons of Classifiers over Multiple Data Sets*. JMLR 7 (2006)
#   (paired tests and corrections in ML).
# - A. Krizhevsky. *Learning Multiple Layers of Features from Tiny Images* (CIFAR-10), 2009.
# - SciPy (`scipy.stats.ttest_1samp`, `confidence_interval`), statsmodels (`multipletests(method="holm")`).

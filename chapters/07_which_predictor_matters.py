# %% [markdown]
# # 07 · Which predictor matters? A controlled study on CIFAR-10
#
# Chapters 02 and 03 built every weight predictor; chapter 05 showed that each one lets a token see the whole
# image; chapter 06 trained a WeightFormer. None of that says whether **predicting weights helps**. A WeightFormer
# is also a stack of 3×3 depthwise convolutions and MLPs, which is a good image model on its own (ConvMixer). So
# the question of this chapter is narrow and answerable: *with the same network, the same recipe, the same data
# order and the same seeds, does replacing static weights by predicted ones raise test accuracy, and which
# predictor does it best?*
#
# In this chapter you will
#
# 1. state what the paper claims and what it measured (ImageNet, not CIFAR-10);
# 2. read the course's longest CPU runs: a WeightFormer, its all-static control and a same-size DeiT;
# 3. see how the predictor study is designed (one family varied at a time, three seeds each) and run two of its
#    variants live for a few steps;
# 4. read the study's committed results: accuracy per variant with every seed, the gain over the static control
#    with its spread, accuracy against FLOPs and against measured speed;
# 5. decide, honestly, what these runs can and cannot say about the paper's claim.
#
# Everything reusable lives in `wf_lessons.ablate` (the grid, its command, the summary and `compare`) and
# `wf_lessons.pretrained` (the trained models). The runs are commands; their logs are committed under
# `data/runs/`, and this chapter reads them. Quick mode only shortens the live demonstration.

# %%
import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import MaxNLocator

from wf_lessons import ablate, config, pretrained, runlog, train
from wf_lessons.models import build_model, count_parameters

QUICK = config.quick()
print(f"quick mode: {QUICK}; device: {config.device()}")

# %% [markdown]
# ## 1. The claim, and what it was measured on
#
# The paper trains WeightFormer on ImageNet-1K at three sizes and compares it with DeiT (softmax attention) and
# Vim (a state-space model) of similar size. Its Fig. 1 gives top-1 accuracy; **read from the figure** (so to about
# ±0.1 points), WeightFormer reaches about 76.3 / 81.3 / 83.4 % (tiny / small / base) against DeiT's 72.2 / 79.8 /
# 81.8 % and Vim's 76.1 / 80.3 / 81.9 % ([paper notes](paper_notes.md), "Results"). The released models combine
# the `bilateral` dynamic linear layer and the `adaptive` dynamic depthwise convolution. **The paper reports no
# CIFAR-10 result**: every CIFAR-10 number below is the course's own, from its own commands.
#
# Two things the paper's comparison cannot separate, and this chapter can: how much of WeightFormer's accuracy
# comes from its static skeleton (3×3 depthwise convs and MLPs) rather than from the predicted weights; and which
# of the predictor designs it names (chapters 02 and 03; most are the course's reconstructions) matters.
#
# ## 2. The longest CPU runs: WeightFormer, its static control, DeiT
#
# The `cpu` preset (chapter 06) is the longest training a learner would run on a laptop: 15 epochs on the whole
# training set, one thread each, so that two models train side by side on two cores. It trained three models:
# `wf-cifar-cpu` (patch 4, width 64, six blocks, blocks 1 and 4 dynamic), **the same network with every block
# static** (`dynamic_blocks=()`), and `deit-cifar-cpu`, a DeiT of about the same size; seed 0 of each is the model
# `wf_lessons.pretrained` ships. The cell reads every seed whose log is committed.

# %%
CPU_RUNS = {"WeightFormer": "train-wf-cifar-cpu-cpu-seed*",
            "all-static control": "train-wf-cifar-cpu-all-static-cpu-seed*",
            "DeiT": "train-deit-cifar-cpu-cpu-seed*"}
cpu_logs = {label: sorted((runlog.read(p) for p in config.runs_dir().glob(f"{pattern}.json")),
                          key=lambda log: log["seed"]) for label, pattern in CPU_RUNS.items()}
print(f"{'model':<20}{'seed':>5}{'params':>9}{'MFLOPs':>8}{'epochs':>7}{'test acc':>10}{'wall min':>9}  bf16")
for label, logs in cpu_logs.items():
    for log in logs:
        wall = (log["process_wall_s"] or log["wall_s"]) / 60
        print(f"{label:<20}{log['seed']:>5}{log['parameters']:>9,}{log['flops_per_image'] / 1e6:>8.1f}"
              f"{log['epochs_done']:>7}{log['test_acc']:>10.2%}{wall:>9.1f}  {log['bf16']}")
for label, logs in cpu_logs.items():
    for log in logs:
        print(f"  {label}, seed {log['seed']}: {log['command']}\n    commit {log['git_commit']}"
              + (f", local changes to {', '.join(log['git_dirty'])}" if log.get("git_dirty") else "")
              + f"; {log['device']}; started {log['started']}")

# %% [markdown]
# The test accuracy is on all 10,000 test images, without test-time augmentation; the per-epoch points below are
# on 1,000 of them. The wall time is end to end (Python start to the final evaluation) on a 2-core machine that was
# rarely quiet: the seed-0 WeightFormer and DeiT trained side by side while the course's other work (tests,
# notebook renders) ran too, and the other runs beside the study's runs, beside each other or beside other work
# (seed 2). So do not compare the models' times; read the time axis as "what this machine gave". Section 4
# compares speeds measured in like conditions.

# %%
train.plot_curves(cpu_logs, "the cpu preset: 15 epochs, one thread each",
                  colours=("tab:green", "0.4", "tab:purple"), ylabel="test accuracy (1,000 images)")
plt.show()

# %%
def accuracy(label: str) -> dict[int, float]:
    """Test accuracy per seed of one of the three models."""
    return {log["seed"]: log["test_acc"] for log in cpu_logs[label]}


wf, static, deit = (accuracy(k) for k in CPU_RUNS)
for other, name in ((static, "all-static control"), (deit, "DeiT")):
    paired = [f"seed {s}: {100 * (wf[s] - other[s]):+.2f}" for s in sorted(wf) if s in other]
    print(f"WeightFormer - {name}: " + ", ".join(paired) + " points")
print(f"extra parameters of the two dynamic blocks: "
      f"{cpu_logs['WeightFormer'][0]['parameters'] - cpu_logs['all-static control'][0]['parameters']:,}")

# %% [markdown]
# Three seeds per model are few draws, but enough for the chapter's rule (section 3): a difference counts when
# every seed of one model beats every seed of the other. Section 5 applies it to the final accuracies. **When does
# the gap open?** The logs hold every epoch's accuracy (on 1,000 test images), so the same comparison can be made
# after each epoch of the same runs: per seed (the same seed means the same batches), and by the rule.

# %%
def per_epoch(label: str) -> dict[int, list[float]]:
    """Per seed, the test accuracy (1,000 images) after each epoch, in points."""
    return {log["seed"]: [100 * e["test_acc"] for e in log["epochs"]] for log in cpu_logs[label]}


curves_wf, curves_static = per_epoch("WeightFormer"), per_epoch("all-static control")
seeds = sorted(set(curves_wf) & set(curves_static))
epochs = range(1, min(len(curves_wf[s]) for s in seeds) + 1)
gaps = {s: [curves_wf[s][e - 1] - curves_static[s][e - 1] for e in epochs] for s in seeds}
mean_gap = {e: sum(gaps[s][e - 1] for s in seeds) / len(seeds) for e in epochs}
real = {e: ablate.beyond_spread([curves_wf[s][e - 1] for s in seeds], [curves_static[s][e - 1] for s in seeds])
        for e in epochs}
print(f"{'epoch':>5}  {'WeightFormer - control, per seed (points)':<42}{'mean':>7}  real?")
for e in epochs:
    per_seed = ", ".join(f"{gaps[s][e - 1]:+.1f}" for s in seeds)
    print(f"{e:>5}  {per_seed:<42}{mean_gap[e]:>+7.2f}  {'yes' if real[e] else 'no'}")
# from which epoch on is every later epoch's difference real, and in the same direction?
settled = next((e for e in epochs if all(real[f] and (mean_gap[f] > 0) == (mean_gap[e] > 0) for f in epochs
                                          if f >= e)), None)
if settled is None:
    print("\nthe gap never settles beyond the seed spread")
else:
    leader = "the WeightFormer" if mean_gap[settled] > 0 else "the all-static control"
    print(f"\nfrom epoch {settled} to the end, {leader} is ahead beyond the seed spread; before that, "
          f"{sum(real[e] for e in epochs if e < settled)} of {settled - 1} epochs show a real difference")

fig, ax = plt.subplots(figsize=(6, 3))
for i, s in enumerate(seeds):
    ax.plot(list(epochs), gaps[s], "os^dv"[i % 5], color="tab:green", ms=4, alpha=0.6, label=f"seed {s}")
ax.plot(list(epochs), list(mean_gap.values()), "-", color="tab:green", label="mean")
ax.axhline(0, color="0.3", lw=0.8)
ax.set_xlabel("epoch")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.set_ylabel("WeightFormer - control (points)")
ax.set_title("the cpu preset: the gap to the all-static control, epoch by epoch")
ax.grid(alpha=0.3)
ax.legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# Read it with the study of section 4 in mind: there, a whole two-epoch schedule (warm-up and decay to zero
# within two epochs) on a network with half its blocks dynamic. Here, the first epochs of a fifteen-epoch
# schedule on a network with one block in three dynamic, so the early epochs of the two are not the same
# experiment. These runs tell us the *size* and the direction of the effect at this scale after a longer
# training; the study asks the same question for each predictor, after a short one.
#
# ## 3. The study's design
#
# **One network.** The study uses `wf-cifar-study`: patch 4, width 64, four blocks, of which **blocks 1 and 3 are
# dynamic**, half of the network. The reference rule makes one block in three dynamic; with half, a predictor has
# more room to matter (or to hurt), which is what a study of predictors needs, while the model stays small enough
# to train 36 times on a CPU.
#
# **One family at a time.** Every dynamic block has two predicted layers, the first MLP linear (chapter 02) and the
# depthwise conv (chapter 03). Each variant changes *one* of them from the released pair (`bilateral` +
# `adaptive`), so a difference can be attributed:
#
# - `all-static`: the control, every block static;
# - `linear-<p>`: the linear layer uses predictor `p`, the DWC stays `adaptive`;
# - `dwc-<p>`: the DWC uses predictor `p`, the linear layer stays `bilateral`;
# - `released`: `bilateral` + `adaptive`, where the two families meet;
# - `deit`: a DeiT of about the same size, for scale.
#
# **Everything else fixed.** The same recipe (`study-cpu`: 2 epochs, batch 128, AdamW at 3e-3, label smoothing,
# crop and flip), the same data order and augmentation draws (the loader is seeded per epoch from the run's
# seed), and the same three seeds (0, 1, 2) for every variant: so seed 0 of every variant sees exactly the same
# batches. Parameters and FLOPs differ, because predictors have weights of their own; the table reports both.
#
# **Why seeds.** Two runs of the same network with different seeds do not reach the same accuracy: the
# initialisation and the data order are random (section 4 shows by how much). A difference between variants means something only if it is
# larger than that. The chapter's rule: a difference is **real** when every seed of one variant beats every seed
# of the other (their ranges do not overlap). With three seeds this is a strict test; it can miss a small true
# effect, but it does not call noise an effect.

# %% tags=["nbval-check-output"]
grid = ablate.variants("study-cpu")
for name, (model, overrides) in grid.items():
    print(f"{name:<17}{model:<16}{overrides}")
print(f"{len(grid)} variants x 3 seeds = {3 * len(grid)} runs; recipe study-cpu:",
      {k: v for k, v in ablate.PRESETS["study-cpu"].items() if k in ("epochs", "batch_size", "lr")})

# %% [markdown]
# The whole grid is one resumable command (finished runs are skipped, an interrupted one resumes from its
# checkpoint, and two copies can share the grid, one per core):
#
# ```
# python -m wf_lessons.ablate                       # every variant, seeds 0 1 2
# python -m wf_lessons.ablate --variants all-static released --seeds 0
# python -m wf_lessons.ablate --list                # what is done, partial, to do
# ```
#
# Each run is an ordinary training run of chapter 06; `ablate.config` gives its configuration. Here two variants
# train live for a few steps, from the same seed on the same batches, to show that nothing else differs (in quick
# mode 30 steps on a slice of the training set: the point is the mechanics, not the accuracy):

# %%
import tempfile

from wf_lessons.data import cifar10

short = ({"epochs": 1, "steps_per_epoch": 30, "train_per_class": 400, "eval_per_class": 20} if QUICK
         else {"epochs": 1, "steps_per_epoch": 200, "eval_per_class": 100})
live = {}
with tempfile.TemporaryDirectory() as folder:
    data = (cifar10("train", per_class=short.get("train_per_class")), cifar10("test", per_class=100))
    for variant in ("all-static", "released"):
        cfg = ablate.config("study-cpu", variant, 0, run_name=f"live-{variant}", checkpoint_dir=folder,
                            write_log=False, progress=False, device="cpu", **short)
        live[variant] = train.train(cfg, data)
for variant, log in live.items():
    e = log["epochs"][-1]
    print(f"{variant:<11} {log['parameters']:>8,} parameters, {e['epoch']} epoch of {log['data']['steps_per_epoch']}"
          f" steps: train loss {e['train_loss']:.3f}, test accuracy {log['test_acc']:.1%} on {log['test_images']}")

# %% [markdown]
# ## 4. The results
#
# `python -m wf_lessons.ablate` ends by writing `data/runs/ablation-cpu.json`: per variant the seeds, the test
# accuracy of each seed (all 10,000 test images), their mean and standard deviation, parameters, FLOPs and the
# measured training speed. Every run's own log is there too (`ablation-study-cpu-<variant>-seed<k>.json`).

# %%
summary = runlog.read(ablate.summary_name("study-cpu"))
table = summary["variants"]
print(f"summary of commit {summary['git_commit']}; {summary['note']}\n")
ablate.print_summary(summary)
missing = [name for name in grid if name not in table or len(table[name]["seeds"]) < 3]
print("\nvariants with fewer than 3 finished seeds:", ", ".join(missing) or "none")

# %% [markdown]
# Every seed as a dot, the mean as a bar; the families in colour, the control and DeiT in grey:

# %%
order = list(table)
colour = {n: ("tab:blue" if n.startswith("linear-") else "tab:orange" if n.startswith("dwc-") else
              "tab:green" if n == "released" else "0.5") for n in order}
fig, ax = plt.subplots(figsize=(10, 3.6))
for x, name in enumerate(order):
    v = table[name]
    ax.bar(x, 100 * v["mean"], color=colour[name], alpha=0.35, width=0.7)
    ax.plot([x] * len(v["test_acc"]), [100 * a for a in v["test_acc"]], "o", color=colour[name], ms=5)
low = min(min(v["test_acc"]) for v in table.values()) * 100
high = max(max(v["test_acc"]) for v in table.values()) * 100
ax.set_ylim(low - 1.5, high + 1)
ax.axhline(100 * table["all-static"]["mean"], color="0.3", lw=1, ls=":", label="all-static mean")
ax.set_xticks(range(len(order)), order, rotation=35, ha="right", fontsize=9)
ax.set_ylabel("test accuracy (%)")
ax.set_title("the study: every seed (dots) and the mean (bars); blue: linear family, orange: DWC family")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# **Dynamic minus static.** For each variant, its accuracy minus the all-static control's, per seed (the same
# seed means the same batches, so these are paired differences) and for the means. A variant is marked `real`
# by the rule of section 3:

# %%
rows = {name: ablate.compare(summary, name) for name in order if name != "all-static"}
print(f"{'variant':<17}{'mean Δ (points)':>16}   per seed                 real?")
for name, r in rows.items():
    seeds = ", ".join(f"{d:+.2f}" for d in r["paired_points"])
    print(f"{name:<17}{r['diff_points']:>+16.2f}   {seeds:<24} {'yes' if r['real'] else 'no'}")

fig, ax = plt.subplots(figsize=(10, 3.2))
for x, (name, r) in enumerate(rows.items()):
    ax.plot([x] * len(r["paired_points"]), r["paired_points"], "o", color=colour[name], ms=5)
    ax.plot(x, r["diff_points"], "_", color="black", ms=18, mew=2)
ax.axhline(0, color="0.3", lw=1)
ax.set_xticks(range(len(rows)), list(rows), rotation=35, ha="right", fontsize=9)
ax.set_ylabel("accuracy - all-static (points)")
ax.set_title("gain over the static control: per seed (dots) and mean (bar)")
plt.tight_layout()
plt.show()

# %% [markdown]
# **Cost.** Predicted weights are not free: the predictors add parameters and FLOPs, and the per-sample
# convolutions and matrices are slower to run than static ones. Accuracy against forward FLOPs per image, and
# against the training throughput each run measured (images per second on one thread; the runs shared the machine
# two at a time, so the speeds are comparable to each other but not a benchmark):

# %%
LABELLED = ("all-static", "released", "linear-static", "dwc-static", "deit")
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
for name in order:
    v = table[name]
    for ax, x in ((ax1, v["flops_per_image"] / 1e6), (ax2, v["images_per_s"])):
        ax.errorbar(x, 100 * v["mean"], yerr=100 * v["std"], fmt="o", color=colour[name], capsize=3)
        if name in LABELLED:  # the others sit in one cluster: blue linear family, orange DWC family
            ax.annotate(name, (x, 100 * v["mean"]), textcoords="offset points", xytext=(4, 3), fontsize=8)
ax1.set_xlabel("forward MFLOPs per image")
ax2.set_xlabel("training images / s (one thread)")
for ax in (ax1, ax2):
    ax.set_ylabel("test accuracy (%), mean ± std")
    ax.grid(alpha=0.3)
plt.suptitle("what the accuracy costs (better: up and left on the left, up and right on the right); "
             "unlabelled: blue linear family, orange DWC family", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 5. What this can and cannot tell
#
# First the findings, stated by code from the tables above (so that they always match the committed logs):

# %%
gains = [n for n, r in rows.items() if r["real"] and r["diff_points"] > 0]
losses = [n for n, r in rows.items() if r["real"] and r["diff_points"] < 0]
r = rows["released"]
print(f"study (2 epochs, 3 seeds): released - all-static = {r['diff_points']:+.2f} points, "
      + ("a real difference" if r["real"] else "not distinguishable from seed noise"))
print("  variants really better than the all-static control:", ", ".join(gains) or "none")
print("  variants really worse than the all-static control: ", ", ".join(losses) or "none")
speed = table["all-static"]["images_per_s"] / table["released"]["images_per_s"]
print(f"  the all-static control trained {speed:.1f}x as many images per second as the released pair")
paired = [100 * (wf[s] - static[s]) for s in sorted(wf) if s in static]
real_cpu = ablate.beyond_spread(list(wf.values()), list(static.values()))  # the same rule as the study's
print(f"cpu preset (15 epochs, {len(wf)} seeds): WeightFormer - all-static = {sum(paired) / len(paired):+.2f} points "
      f"(per seed: {', '.join(f'{d:+.2f}' for d in paired)}), "
      + ("a real difference" if real_cpu else "not distinguishable from seed noise"))

# %% [markdown]
# How to read them:
#
# - **A difference counts only when it beats the seed spread.** The `real?` column applies the rule of section 3.
#   Where it says `no`, the honest statement is "not distinguishable at three seeds", not "no effect", and not
#   "a small gain".
# - **The control is the right baseline.** The gap between WeightFormer and DeiT mixes two things: predicted
#   weights, and a convolutional skeleton that suits 32×32 images. The gap to the all-static control isolates the
#   first.
# - **Two epochs measure early learning, not final accuracy.** The study's budget (about two minutes per run on
#   one thread) makes 36 runs possible on a CPU; it favours whatever learns fastest in the first passes over the
#   data. The `cpu` preset's runs (section 2; 15 epochs, three seeds) show whether the gap persists with longer
#   training: their line above says which way it goes and whether it beats the seed spread.
# - **Tiny models, tiny images.** At patch 4 a CIFAR-10 image is an 8×8 token grid, and four 3×3 convolutions
#   already cover it (chapter 05): the global view that predicted weights add is much less needed than on a
#   14×14 ImageNet grid, and the models here are tens of times smaller than WFM-T (chapter 04 counts both).
# - **So this does not test the paper's ImageNet claim**, in either direction. It tests something narrower: on
#   small CIFAR-10 models trained briefly, does a predicted weight beat a static one of the same network? The
#   tables answer that question for this scale.
#
# ## 6. On a GPU
#
# The study's GPU version (the `gpu` preset's models and recipe, shortened so that each batch of variants fits in
# one 10-minute command) has **not been run**: no GPU was available to the sessions that built the course, and no
# GPU number appears anywhere in it. The grid and the command are the same (`--preset` selects the budget); when
# the GPU logs exist, this chapter will read them like the CPU ones.
#
# ## Summary
#
# - The paper's evidence is ImageNet (Fig. 1, read from the figure); it reports nothing on CIFAR-10.
# - To ask whether predicting weights helps, compare a WeightFormer with **the same network made static**, not
#   only with DeiT: `dynamic_blocks=()`.
# - The study varies one predictor family at a time, holds model, recipe, data order and seeds fixed, and runs
#   three seeds per variant (`python -m wf_lessons.ablate`, resumable, `data/runs/ablation-cpu.json`).
# - Call a difference real only when it exceeds the seed spread (`ablate.compare`); report the cost (parameters,
#   FLOPs, measured speed) beside the accuracy.
# - Small models on small images, trained briefly, cannot confirm or refute an ImageNet result; they answer a
#   narrower question, with numbers you can reproduce.
#
# ## Exercises
#
# Each exercise has a cell that computes the answer (a stub with a hint in the student copy, `chapters/student/`)
# and a cell that checks it with `wf_lessons.exercises.ch07.check_exercise`.
#
# 1. **Predict, then read.** Before looking at section 4: do you expect the `released` WeightFormer to beat the
#    all-static control after two epochs, and by how much? Then compute, from the summary, the difference of the
#    mean accuracies in points (released minus all-static).
# 2. Is that difference real by the chapter's rule? (`True` or `False`; work it out from the seeds' accuracies.)
# 3. **Change a predictor, predict, measure.** Swap the `bilateral` linear predictor of `wf-cifar-study` for
#    `"static"`. Say first what you expect to lose (which tensors of chapter 02's layer disappear?), then count:
#    how many parameters does `bilateral` add to the model?
# 4. **Change the budget, predict, measure.** Does the gain over the static control grow or shrink when training
#    runs 15 epochs instead of 2 (and on a network with one dynamic block in three instead of one in two)?
#    Predict, then compute the gain in points of the `cpu` preset's WeightFormer over its all-static control
#    (seed 0).

# %%
from wf_lessons.exercises import ch07

# %% tags=["solution"]
# hint: summary["variants"][name]["mean"] holds each variant's mean accuracy (a fraction); ablate.compare does it too
answer_1 = 100 * (table["released"]["mean"] - table["all-static"]["mean"])
print(f"{answer_1:+.2f} points")

# %% tags=["nbval-check-output"]
ch07.check_exercise(1, answer_1)

# %% tags=["solution"]
# hint: real when min(accuracies of one) > max(accuracies of the other), either way round
a, b = table["released"]["test_acc"], table["all-static"]["test_acc"]
answer_2 = min(a) > max(b) or max(a) < min(b)

# %% tags=["nbval-check-output"]
ch07.check_exercise(2, answer_2)

# %% tags=["solution"]
# hint: count_parameters(build_model("wf-cifar-study", linear_predictor=...)) for "bilateral" and "static"
answer_3 = count_parameters(build_model("wf-cifar-study")) - count_parameters(
    build_model("wf-cifar-study", linear_predictor="static"))
print(f"{answer_3:,} parameters")

# %% tags=["nbval-check-output"]
ch07.check_exercise(3, answer_3)

# %% tags=["solution"]
# hint: accuracy(label) of section 2 gives each model's test accuracy per seed; answer in points, seed 0
answer_4 = 100 * (accuracy("WeightFormer")[0] - accuracy("all-static control")[0])
print(f"{answer_4:+.2f} points")

# %% tags=["nbval-check-output"]
ch07.check_exercise(4, answer_4)

# %% [markdown]
# The shipped models are there for your own experiments: `pretrained.load("wf-cifar-cpu")` gives the trained
# WeightFormer in eval mode, and `python -m wf_lessons.pretrained check` re-evaluates all three on the test set.

# %% tags=["nbval-check-output"]
for name in pretrained.NAMES:
    model = pretrained.load(name)
    meta = pretrained.manifest(name)
    print(f"{name:<26}{count_parameters(model):>9,} parameters, test accuracy {meta['test_acc']:.2%} "
          f"(from {meta['run_log']})")
with torch.no_grad():
    print("logits of one black image:", tuple(pretrained.load("wf-cifar-cpu")(torch.zeros(1, 3, 32, 32)).shape))

# %% [markdown]
# ## References
#
# - R. He, D. Han, G. Huang. *Linear-Time Global Visual Modeling without Explicit Attention*. arXiv 2605.01711
#   (2026); reference code github.com/LeapLabTHU/WeightFormer. ImageNet results read from its Fig. 1; the
#   course's notes: [paper_notes.md](paper_notes.md).
# - H. Touvron et al. *Training data-efficient image transformers & distillation through attention* (DeiT).
#   ICML 2021, arXiv 2012.12877.
# - A. Trockman, J. Z. Kolter. *Patches Are All You Need?* (ConvMixer: depthwise convs and MLPs alone).
#   arXiv 2201.09792.
# - L. Zhu et al. *Vision Mamba* (Vim). ICML 2024, arXiv 2401.09417 (the paper's third comparison).
# - X. Bouthillier et al. *Accounting for Variance in Machine Learning Benchmarks*. MLSys 2021, arXiv 2103.03098
#   (why several seeds).
# - A. Krizhevsky. *Learning Multiple Layers of Features from Tiny Images* (CIFAR-10), 2009.
# - PyTorch: `torch.utils.flop_counter.FlopCounterMode` (FLOPs), `torch.autocast` (bf16 on the CPU).

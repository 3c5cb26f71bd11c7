# %% [markdown]
# # 06 · Effective receptive fields: does a predicted weight see the whole image?
#
# [Open in Colab](https://colab.research.google.com/github/wf-lessons/wf-lessons/blob/main/chapters/06_effective_receptive_fields.ipynb) (its first code cell installs the course there)
#
# A WeightFormer has no attention. Its only spatial operation is a 3×3 depthwise convolution per block, so an
# *ordinary* network built like it sees, after `depth` blocks, a square of `2·depth + 1` tokens and nothing more.
# The paper's claim is that predicting weights from the whole image changes that: the predicted weight is a
# summary of the entire context, so every output token depends on every pixel. Its Fig. 3 shows it with
# **effective receptive fields** (ERF): how strongly each input pixel moves the central output token, for DeiT,
# the static model and every predictor, before and after training.
#
# In this chapter you will
#
# 1. compute an ERF map exactly as the reference code does, inline on a toy model, then with the package;
# 2. work out the theoretical receptive field of the all-static model pixel by pixel, and see that its ERF is
#    *exactly* zero outside it;
# 3. reproduce Fig. 3 in miniature on real CIFAR-10 images, upsampled so that the token grid is large: the ViT,
#    the static model, each dynamic-linear predictor and each dynamic-DWC predictor, at initialisation and after
#    training;
# 4. turn the picture into one number per map, the share of gradient mass outside the static field, and ask what
#    that number does and does not prove.
#
# **Which definitions are the paper's.** The ERF method is the reference code's ([paper notes](paper_notes.md),
# "Figures"). `bilateral` (linear)
# and `adaptive` (DWC) are the paper's released layers; the other predictors (`gap`, `linear`, `nonlinear`, `deep`;
# `gap`, `amp_dir`, `conv`) are the course's reconstruction of strategies the paper only names (chapters 02 and
# 03). Pairing each predictor with the *static* version of the other layer, so that one predictor is measured at a
# time, is this chapter's choice, not the paper's. The outside-share number is the course's addition.
#
# Everything reusable lives in `wf_lessons.erf`. Symbols follow the course's [notation table](paper_notes.md#notation)
# (p the patch size, an h×w token grid for an H×W image, W0 + Ŵ and K0 + K̂ the dynamic layers' weights).

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

from wf_lessons import config, erf
from wf_lessons.data import CLASSES, cifar10, normalize
from wf_lessons.models import WeightFormer, build_model, count_parameters
from wf_lessons.notebooks import show_source

QUICK = config.quick()
DEVICE = config.device()
# the family of the course's shipped trained models (wf_lessons.pretrained): patch 4, width 64, depth 6
WF_NAME, VIT_NAME = "wf-cifar-cpu", "deit-cifar-cpu"
if QUICK:  # a 20×20 token grid, 10 images
    ERF_SIZE, PER_CLASS = 80, 1
else:  # a 32×32 token grid, 50 images (as many as the reference averages)
    ERF_SIZE, PER_CLASS = 128, 5
print(f"quick mode: {QUICK}; device: {DEVICE}; models {WF_NAME}, {VIT_NAME}; images {ERF_SIZE}×{ERF_SIZE} px")

# %% [markdown]
# ## 1. The method, step by step
#
# The reference code (`erf.py` of the official repository; [paper notes](paper_notes.md), "Figures") measures the ERF of a model on a batch of
# images like this:
#
# 1. forward the images to the **last feature map**, tokens on their grid: `F` of shape `(B, C, h, w)`;
# 2. take the **central output position** `(h // 2, w // 2)`, apply ReLU, and sum over the channels: one score per
#    image;
# 3. back-propagate the score to the **input pixels**: a gradient `(B, 3, H, W)`;
# 4. apply ReLU to the gradient, sum over the batch and the RGB channels, and average over the images: the raw
#    map `(H, W)`;
# 5. for display only: `map^0.2 / max`.
#
# Every model of the course has `forward_features(images) -> (B, C, H/p, W/p)`, the feature map after the final
# LayerNorm. Here are the steps inline, on a tiny seeded WeightFormer and two random 16×16 images:

# %% tags=["nbval-check-output"]
torch.manual_seed(0)
toy = WeightFormer(img_size=16, patch_size=2, num_classes=10, embed_dim=16, depth=3).eval()
x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)).requires_grad_(True)

features = toy.forward_features(x)  # (B, C, h, w)
h, w = features.shape[-2:]
centre = (h // 2, w // 2)  # on an even grid: the lower-right of the four middle tokens
score = features[:, :, centre[0], centre[1]].relu().sum()  # ReLU, sum over channels (and the batch)
(grad,) = torch.autograd.grad(score, x)  # (B, 3, H, W)
raw_inline = grad.relu().sum(dim=(0, 1)) / x.shape[0]  # ReLU, sum over batch and RGB, mean over images

raw_package = erf.effective_receptive_field(toy, x)
print("features", tuple(features.shape), "| centre token", centre, "| gradient", tuple(grad.shape))
print("raw map", tuple(raw_package.shape))
print("inline and package agree, max |Δ| < 1e-6:", bool((raw_inline - raw_package).abs().max() < 1e-6))

# %% [markdown]
# The package version adds what a real measurement needs: checks on the input, images processed in chunks (each
# image's score depends on that image only, so chunking changes nothing but memory), evaluation mode (no
# drop-path) and the model's own modes restored afterwards.

# %%
show_source(erf.effective_receptive_field)

# %% [markdown]
# **The display transform is kept apart.** The raw map is what we measure; `display_map` is what the paper
# shows, `x^0.2 / max`. The power 0.2 lifts tiny values enormously: a pixel whose gradient is `1e-10` of the
# maximum is drawn at `(1e-10)^0.2 = 1e-2` of full brightness. Keep this in mind when looking at the pictures.

# %% tags=["nbval-check-output"]
for ratio in (1.0, 1e-2, 1e-5, 1e-10, 1e-20):
    shown = erf.display_map(torch.tensor([[ratio, 1.0]]))[0, 0]
    print(f"raw value {ratio:>7.0e} of the max -> displayed at {shown:.4f} of full brightness")

# %% [markdown]
# ## 2. The theoretical receptive field of the static model
#
# In the all-static model (every block static, `dynamic_blocks=()`), only two layers mix neighbouring positions:
# the patch embedding (a p×p patch per token) and the 3×3 depthwise conv of each block (padding 1). Everything
# else (LayerNorm, the MLP) acts on each token alone. So:
#
# - after `depth` blocks, the central token `(ci, cj)` has seen tokens `ci - depth … ci + depth`: each block
#   widens the field by one token on each side, 2 tokens in all;
# - token `i` covers pixels `i·p … (i + 1)·p - 1`;
# - clipped to the image, the field is the half-open pixel box
#   rows `[max(0, (ci - depth)·p), min(H, (ci + depth + 1)·p))`, and the same for columns.
#
# On an even grid the centre `(h // 2, w // 2)` is the lower-right of the four middle tokens. The box is
# symmetric about that token, so it leaves one token more of the image uncovered at the top and left than at the
# bottom and right (and reaches the bottom and right edges one block earlier).

# %%
show_source(erf.theoretical_rf_box)

# %% tags=["nbval-check-output"]
for name in ("wf-cifar", "wf-cifar-quick", "wf-cifar-cpu"):
    model = build_model(name, dynamic_blocks=())
    for size in (32, 80, 128):
        box = erf.theoretical_rf_box(model, (size, size))
        print(f"{name:>15} (depth {len(model.blocks):>2}, patch {model.patch_size}) at {size:>3} px: {box}, "
              f"{box.size[0]}×{box.size[1]} px")

# %% [markdown]
# At 32 px the course's `wf-cifar` field already covers the whole image: on CIFAR-10's own resolution a static
# WeightFormer of that depth is global anyway. This is why the images are upsampled in this chapter: on a large
# grid, the field of the stacked convs is a box in the middle and the question "does anything reach outside it?"
# has an answer we can see.
#
# Now the measurement: on a tiny seeded static model, the raw map must be **exactly zero** outside the box, and
# non-zero everywhere inside it (the box is not too large).

# %% tags=["nbval-check-output"]
torch.manual_seed(0)
tiny_static = WeightFormer(img_size=32, patch_size=2, num_classes=10, embed_dim=16, depth=3, dynamic_blocks=())
images_toy = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(2))
raw_static = erf.effective_receptive_field(tiny_static, images_toy)
box = erf.theoretical_rf_box(tiny_static, (32, 32))
inside = box.mask((32, 32))
print("box", box)
print("exactly zero outside:", bool((raw_static[~inside] == 0).all()))
print("non-zero at every pixel inside:", bool((raw_static[inside] > 0).all()))
print("outside share:", erf.outside_share(raw_static, tiny_static))

# %% [markdown]
# ## 3. Real images, upsampled
#
# The paper uses ImageNet images at the models' own resolution; we have CIFAR-10 at 32×32. To get a grid large
# enough to see where the field ends, we upsample (bilinear) real test images after normalising them. WeightFormer
# works at any size that is a multiple of its patch; the ViT resizes its learned position embedding to the new
# grid (bicubic, as DeiT does at higher resolution). One test image of each class (quick mode) or five (full
# run); the first five:

# %%
images_u8, labels = cifar10("test", per_class=PER_CLASS)
images = F.interpolate(normalize(images_u8), size=ERF_SIZE, mode="bilinear", align_corners=False)  # (N, 3, S, S)
print("images", tuple(images.shape), "from", tuple(images_u8.shape))

fig, axes = plt.subplots(1, 5, figsize=(8, 1.9))
for ax, image, label in zip(axes, images_u8, labels):
    ax.imshow(image.permute(1, 2, 0))  # (3, 32, 32) -> (32, 32, 3)
    ax.set_title(CLASSES[label], fontsize=8)
    ax.axis("off")
plt.show()

# %% [markdown]
# **Predict first (exercise 6).** Before you read section 4: at initialisation, which of the two released dynamic
# layers puts the larger share of the ERF's mass outside the static field: the dynamic linear layer (`bilateral`,
# with static depthwise convs) or the dynamic depthwise convolution (`adaptive`, with static linear layers), or do
# they reach about as far (within a factor of 10)? Think back to chapters 02 and 03: how large is each layer's
# prediction next to its static weight when the network is built? Write your guess in the cell below; section 4
# measures it for every predictor, and exercise 6 on small models.

# %% tags=["predict"]
# answered in: 4. Fig. 3 at initialisation
prediction_6 = None  # your guess: "linear", "dwc" or "about the same"

# %% [markdown]
# ## 4. Fig. 3 at initialisation
#
# The columns of the paper's figure, as `wf_lessons.erf.figure3_models` lists them: the ViT baseline, the static
# model, each dynamic-linear predictor (with static depthwise convs) and each dynamic-DWC predictor (with static
# linear layers). All WeightFormers have the reference pattern of dynamic blocks (block i is dynamic when
# `(i + 2) % 3 == 0`: blocks 1 and 4 of these six) and are built from the same seed. One column is not in the
# paper's figure: `released`, the pair the reference code ships (`bilateral` + `adaptive`), because that is the
# model the course has trained.

# %%
ZOO = erf.figure3_models(WF_NAME, VIT_NAME) | {"released": (WF_NAME, {})}


def build(label):
    """A freshly initialised model of one column (same seed for every column)."""
    name, overrides = ZOO[label]
    torch.manual_seed(0)
    return build_model(name, **overrides)


initial_models = {label: build(label).to(DEVICE) for label in ZOO}
for label, (name, overrides) in ZOO.items():
    print(f"{label:>14}: {name} {overrides}, {count_parameters(initial_models[label]):,} parameters")

# %%
raw_maps = {"at initialisation": {}}
for label, model in initial_models.items():
    raw_maps["at initialisation"][label] = erf.effective_receptive_field(model, images)
boxes = {label: erf.theoretical_rf_box(model, (ERF_SIZE, ERF_SIZE)) for label, model in initial_models.items()}
shares = {row: {label: erf.outside_share(m, initial_models[label]) for label, m in maps.items()}
          for row, maps in raw_maps.items()}
for label, share in shares["at initialisation"].items():
    print(f"{label:>14}: share of the ERF mass outside the static field {share:.3g}")

# %%
erf.plot_erf_grid(raw_maps, shares, boxes)
plt.show()

# %% [markdown]
# **What the figure shows.** The static model is light blue outside its box: not small, exactly zero. Every
# predictor, linear or DWC, lights up the whole image already at initialisation, and so does the ViT. But look at
# the numbers printed on the panels: the *linear* predictors put only a tiny share of the mass outside the box,
# the *DWC* predictors a share orders of magnitude larger. The `x^0.2` display makes both look like a "global
# background". Why so different? Compare, in the first dynamic block (block 1), the size of the predicted part
# with the static part it is added to (mean column norm of the linear weight, mean kernel norm of the DWC, on two
# of the images):

# %%
def first_dynamic_layer_sizes(model, layer_name, images):
    """Norm of the predicted part against the static part in block 1's linear1 or dwc, for a batch of images."""
    block = model.blocks[1]
    captured = {}
    layer = getattr(block, layer_name)
    handle = layer.register_forward_hook(lambda module, args, output: captured.update(args=args))
    with torch.no_grad():
        model.forward_features(images)
    handle.remove()
    if layer_name == "linear1":
        x, hw = captured["args"]
        dynamic = layer.dynamic_weight(x, hw).norm(dim=1).mean()  # mean column norm of Ŵ (B, C, D)
        static = layer.static_weight().norm(dim=0).mean()  # mean column norm of W0 (C, D)
    else:
        (x,) = captured["args"]
        dynamic = layer.dynamic_kernels(x).flatten(2).norm(dim=2).mean()  # mean kernel norm (B, C, 3, 3)
        static = layer.static_kernel.flatten(1).norm(dim=1).mean()  # mean kernel norm of K0 (C, 1, 3, 3)
    return dynamic.item(), static.item()


for label in [label for label in ZOO if label.startswith(("lin ", "dwc "))]:
    layer_name = "linear1" if label.startswith("lin ") else "dwc"
    dynamic, static = first_dynamic_layer_sizes(initial_models[label], layer_name, images[:2].to(DEVICE))
    print(f"{label:>14}: predicted part {dynamic:.2e}, static part {static:.2e}, ratio {dynamic / static:.1e}")

# %% [markdown]
# At initialisation every dynamic linear layer's prediction is orders of magnitude smaller than its static
# weight: the generator's weights are all trunc-normal with std 0.02, and the prediction is a product of several
# of them (chapter 02; `deep` multiplies the most, and starts the smallest). These networks start as static
# ConvNet/MLPs and have to *learn* to use the global path. The dynamic DWC layers are different: the 1×1
# convolutions of `adaptive`, `amp_dir` and `conv` keep PyTorch's default initialisation, and their normalised
# prediction is not small next to the static kernel `K0` (trunc-normal, std 0.02): compare the ratios. `gap`'s
# predictor is made of `nn.Linear` layers, which get the trunc-normal initialisation, and its ratio is the
# smallest of the four. So from the first step a sizeable part of each DWC kernel is predicted from the whole
# image, and the whole image reaches every token through it.
#
# ## 5. After training
#
# Fig. 3's second row shows the same models after training. The course ships three trained models with the package
# (`wf_lessons.pretrained`, chapter 08 tells how they were made): the `released` WeightFormer, its all-static
# control and the same-size DeiT, each trained for 15 epochs on the whole CIFAR-10 training set on one CPU thread
# (the `cpu` preset of `wf_lessons.train`). They load in a second; nothing is trained here. The other columns of
# section 4 have no trained model, so the figure below shows these three only, before and after training.

# %%
from wf_lessons import pretrained

SHIPPED = {"static": "wf-cifar-cpu-all-static", "released": "wf-cifar-cpu", "ViT": "deit-cifar-cpu"}
trained_models = {label: pretrained.load(name, device=DEVICE) for label, name in SHIPPED.items()}
for label, name in SHIPPED.items():
    meta = pretrained.manifest(name)
    print(f"{label:>9}: {name}, test accuracy {meta['test_acc']:.1%} on {meta['test_images']:,} images "
          f"(run log {meta['run_log']})")

# %%
raw_maps["after training"] = {label: erf.effective_receptive_field(model, images)
                              for label, model in trained_models.items()}
shares["after training"] = {label: erf.outside_share(m, trained_models[label])
                            for label, m in raw_maps["after training"].items()}
pairs = {row: {label: maps[label] for label in trained_models} for row, maps in raw_maps.items()}  # both rows
erf.plot_erf_grid(pairs, shares, boxes)
plt.show()

# %% [markdown]
# In the paper's Fig. 3 the Adaptive and Amp-Dir maps (and the pooling grid of Bilateral) show **3×3 grid lines in
# the before-training row**; after training they have almost disappeared. The DWC predictors pool the token grid
# with `AdaptiveAvgPool2d(3)`, whose bins overlap when the grid side is not a multiple of 3 (chapter 03): the
# shared rows and columns feed two bins, hence two taps of every kernel, and at initialisation, when the predicted
# part of each kernel is large (section 4), that structure shows through. Training makes the maps smooth around a
# local peak. On this chapter's grid the shared lines fall here (look for them in the `dwc adaptive` and
# `dwc amp_dir` panels of section 4's figure):

# %%
from wf_lessons.dynamic_dwconv import adaptive_pool_bins

patch = initial_models["static"].patch_size
side = ERF_SIZE // patch
bins = adaptive_pool_bins(side, 3)
shared = sorted({t for (_, end), (start, _) in zip(bins, bins[1:]) for t in range(start, end)})
print(f"{side}×{side} tokens; bins {bins}; shared token rows/columns {shared}; "
      f"pixels {[(t * patch, (t + 1) * patch - 1) for t in shared]}")

# %% [markdown]
# ## 6. One number per map
#
# The pictures are made to be looked at; the claim deserves a measurement. For each map, the share of its mass
# outside the theoretical field of the static model (the dashed box), before and after training, as dots on a log
# axis (the shares span many decades; an exact zero is drawn hollow at the left edge and labelled `exactly 0`):

# %%
fig = erf.plot_outside_shares(shares)
plt.show()
print(f"{'':>14}  {'at init':>10}  {'trained':>10}  {'trained / init':>14}")
for label in trained_models:
    before, after = shares["at initialisation"][label], shares["after training"][label]
    ratio = f"{after / before:14.3g}" if before > 0 else f"{'-':>14}"
    print(f"{label:>14}  {before:10.3g}  {after:10.3g}  {ratio}")
grew = [label for label in trained_models if shares["after training"][label] > shares["at initialisation"][label]]
shrank = [label for label in trained_models if shares["after training"][label] < shares["at initialisation"][label]]
print("share grew during training:  ", ", ".join(grew) or "none")
print("share shrank during training:", ", ".join(shrank) or "none")

# %% [markdown]
# **What this proves.** Two things, exactly. The static model's field ends at the box: its share is zero, not
# merely small, because no layer of it connects a pixel outside the box to the central token. And every predictor
# breaks that wall from the first step: its share is strictly positive, so the central token's output depends on
# pixels the stacked 3×3 convolutions cannot reach. This is the structural claim of the paper's Fig. 3, and it
# holds for every predictor, the course's reconstructions included.
#
# **What it does not prove.**
#
# - *Non-zero is not the same as useful.* The linear predictors start with a share of the order printed above: a
#   gradient that exists, yet is far too small to matter for the prediction. Under `x^0.2` it still paints the
#   whole panel (section 1: a value at 1e-10 of the maximum is drawn at 1% brightness). Read the panels together
#   with the numbers.
# - *Sensitivity is not use.* The ERF is the gradient of one token at one point, for a few images: it says the
#   output would move if far pixels moved, not that the model's accuracy relies on far pixels. Whether global
#   context helps is a question for accuracy (chapters 07 and 08), not for this figure.
# - *Half the gradient is thrown away.* The reference method keeps only the positive part of the gradient (a ReLU
#   per pixel, colour channel and image, before the sum over colours and the mean over images). Where the gradient
#   is negative, brightening the pixel *lowers* the central output, and that adds nothing to the map: a region whose
#   gradient is negative in every image looks "unseen" although the output depends on it. (The score is one-sided
#   too: only the positive channels of the central token enter it.)
# - *The share depends on the set-up.* On CIFAR-10's own 32×32 images the static `wf-cifar` field already covers
#   the whole image (section 2); the upsampled images enlarge the grid to make the question visible, and the
#   models were trained at 32×32, so this is also a change of resolution for them. A larger image gives a larger
#   outside region, hence a larger share, for the same model.
# - *Three trained models are not a figure.* Only the static, released and ViT columns have a trained model, each
#   from one run (seed 0) of 15 epochs at 32×32; how each single predictor's map changes with training (the paper
#   reports a local peak on a global background) would need a trained model per column. The lists printed above
#   say which shares moved which way for these three, nothing more.
#
# The ViT's field is global by construction (every token attends to every token), so its positive share needs no
# prediction at all; its interesting feature is the opposite: at initialisation most of its mass sits on the
# central patch, carried by the residual stream.

# %% [markdown]
# ## Summary
#
# **Main result:** the all-static model's effective receptive field is exactly zero outside the theoretical field of
# its stacked 3×3 convolutions, while every predictor, and the ViT, reaches outside it already at initialisation;
# how far differs by orders of magnitude (the dynamic depthwise convolutions start mostly predicted, the dynamic
# linear layers almost static), which the `x^0.2` display hides.
#
# - The reference ERF: the channel sum of the ReLU of the central output token of the last feature map,
#   back-propagated to the pixels; ReLU of the gradient, summed over RGB, averaged over images
#   (`erf.effective_receptive_field`). The display `x^0.2 / max` is separate (`erf.display_map`) and lifts tiny
#   values to visible ones.
# - The all-static model's field is a box of `(2·depth + 1)·p` pixels around the central token (clipped to the
#   image; on an even grid the centre token sits one token past the middle): `erf.theoretical_rf_box`. Its ERF
#   is exactly zero outside it and non-zero inside.
# - Every predictor, linear or DWC, puts gradient mass outside that box from initialisation on; a dynamic block
#   with static predictors does not (LayerNorm is per token). `erf.outside_share` turns this into one number.
# - The numbers differ by orders of magnitude between predictors at initialisation: the dynamic linear layers
#   start almost static, the dynamic DWC layers start mostly predicted. The `x^0.2` display hides this.
# - Non-zero is not useful, and sensitivity is not use: the ERF shows that global paths exist, not that the model
#   needs them. Accuracy, in chapters 07 and 08, answers that.
#
# ## Exercises
#
# Each exercise has a cell that computes the answer (a stub with a hint in the student copy, `chapters/student/`)
# and a cell that checks it with `wf_lessons.exercises.ch06.check_exercise`.
#
# 1. The all-static `wf-cifar` model (depth 13, patch 2) on 128×128 images: how many pixels wide is the
#    theoretical receptive field of the central output token? (Pencil and paper first.)
# 2. Same patch and image size: what is the smallest depth whose theoretical field covers the whole image? Mind
#    the centre convention on the even 64×64 grid.
# 3. **Change the predictors, predict, measure.** Build a WeightFormer whose dynamic blocks use
#    `linear_predictor="static"` and `dwc_predictor="static"`. First say, in words, whether its raw map can be
#    non-zero outside the theoretical field (which layers of such a block mix tokens?). Then measure with
#    `erf.effective_receptive_field` and `erf.outside_share`: is the raw map exactly zero outside the field
#    (`True` or `False`)?
# 4. Under the `x^0.2 / max` display, at what fraction of full brightness is a pixel whose raw value is 1e-10 of
#    the maximum drawn? (A float.)
# 5. **Build it.** Write `erf_map(model, images)`, the raw ERF map `(H, W)` of section 1 for a batch of float
#    images `(B, 3, H, W)`, without `erf.effective_receptive_field`: the channel sum of the ReLU of the central
#    token `(h // 2, w // 2)` of `model.forward_features`, back-propagated to the pixels (`torch.autograd.grad`),
#    ReLU of the gradient, summed over RGB and averaged over the images. The checker compares it with the package
#    on small random models and says which step differs.
# 6. **Predicted before section 4, now measured.** You wrote your guess in `prediction_6` before section 4. Measure
#    it on small models: build two WeightFormers `WeightFormer(img_size=32, patch_size=2, embed_dim=16, depth=3)`
#    with the seed set to 0 before each, one with `linear_predictor="bilateral", dwc_predictor="static"`, one with
#    `linear_predictor="static", dwc_predictor="adaptive"`, and give the ratio of their outside shares (the DWC
#    model's over the linear model's) on the random images `images_toy` of section 2.

# %%
from wf_lessons.exercises import ch06

# %% tags=["solution"]
# hint: erf.theoretical_rf_box(model, (128, 128)) of build_model("wf-cifar", dynamic_blocks=()); or count tokens
# 64×64 tokens, centre token 32: tokens 32 - 13 = 19 to 32 + 13 = 45, that is 27 tokens of 2 pixels.
static_wf = build_model("wf-cifar", dynamic_blocks=())
answer_1 = erf.theoretical_rf_box(static_wf, (128, 128)).size[0]

# %% tags=["nbval-check-output"]
ch06.check_exercise(1, answer_1)

# %% tags=["solution"]
# hint: each static block widens the box by one token on each side; the centre of the 64-token grid is token 32
# The box needs 32 - depth <= 0 (top) and 32 + depth >= 63 (bottom): depth 32; towards the bottom-right 31 would
# be enough, because the centre of an even grid sits one token past the middle.
ci = 64 // 2  # central token of the 64×64 grid
answer_2 = max(ci - 0, (64 - 1) - ci)  # reach row 0 above and row 63 below
deep_static = WeightFormer(img_size=128, patch_size=2, embed_dim=8, depth=answer_2, dynamic_blocks=())
print("depth", answer_2, "box", erf.theoretical_rf_box(deep_static, (128, 128)))

# %% tags=["nbval-check-output"]
ch06.check_exercise(2, answer_2)

# %% tags=["solution"]
# hint: build it small (embed_dim 16, depth 3), then erf.outside_share(erf.effective_receptive_field(m, images_toy), m)
# Prediction: exactly zero. LayerNorm normalises each token alone, and static linear layers and static 3×3 convs
# are the layers of the static model: only a predictor makes a block global.
torch.manual_seed(0)
both_static = WeightFormer(img_size=32, patch_size=2, num_classes=10, embed_dim=16, depth=3,
                           linear_predictor="static", dwc_predictor="static")
raw = erf.effective_receptive_field(both_static, images_toy)
answer_3 = erf.outside_share(raw, both_static) == 0.0

# %% tags=["nbval-check-output"]
ch06.check_exercise(3, answer_3)

# %% tags=["solution"]
# hint: the display is (x / max) ** 0.2; erf.display_map does it
answer_4 = erf.display_map(torch.tensor([[1e-10, 1.0]]))[0, 0].item()  # (1e-10)^0.2 = 1e-2

# %% tags=["nbval-check-output"]
ch06.check_exercise(4, answer_4)

# %% tags=["solution", "build"]
# hint: x = images.detach().requires_grad_(True); F = model.forward_features(x); score = F[:, :, h // 2, w // 2]...
def erf_map(model, images):
    x = images.detach().clone().requires_grad_(True)  # (B, 3, H, W): the pixels we differentiate by
    features = model.forward_features(x)  # (B, C, h, w)
    h, w = features.shape[-2:]
    score = features[:, :, h // 2, w // 2].relu().sum()  # ReLU, sum over channels (and images)
    (grad,) = torch.autograd.grad(score, x)  # (B, 3, H, W)
    return grad.relu().sum(dim=(0, 1)) / images.shape[0]  # ReLU, sum over images and RGB, mean over images


answer_5 = erf_map

# %% tags=["nbval-check-output"]
ch06.check_exercise(5, answer_5)

# %% tags=["solution"]
# hint: erf.outside_share(erf.effective_receptive_field(model, images_toy), model) for each of the two models
toy_shares = {}
for layer_kind, predictors in (("linear", {"linear_predictor": "bilateral", "dwc_predictor": "static"}),
                               ("dwc", {"linear_predictor": "static", "dwc_predictor": "adaptive"})):
    torch.manual_seed(0)
    model = WeightFormer(img_size=32, patch_size=2, embed_dim=16, depth=3, **predictors)
    toy_shares[layer_kind] = erf.outside_share(erf.effective_receptive_field(model, images_toy), model)
answer_6 = toy_shares["dwc"] / toy_shares["linear"]
print({kind: f"{share:.2e}" for kind, share in toy_shares.items()}, f"ratio {answer_6:.2e}")

# %% tags=["nbval-check-output"]
ch06.check_prediction(6, prediction_6)
ch06.check_exercise(6, answer_6)

# %% [markdown]
# ## References
#
# - R. He, D. Han, G. Huang. *Linear-Time Global Visual Modeling without Explicit Attention*. arXiv 2605.01711
#   (2026), Fig. 3 (effective receptive fields before and after training); reference code
#   github.com/LeapLabTHU/WeightFormer (`erf.py`). The course's notes: [paper_notes.md](paper_notes.md).
# - W. Luo, Y. Li, R. Urtasun, R. Zemel. *Understanding the Effective Receptive Field in Deep Convolutional Neural
#   Networks*. NeurIPS 2016, arXiv 1701.04128.
# - X. Ding et al. *Scaling Up Your Kernels to 31x31: Revisiting Large Kernel Design in CNNs* (RepLKNet). CVPR
#   2022, arXiv 2203.06717 (ERF maps used to compare architectures).
# - H. Touvron et al. *Training data-efficient image transformers & distillation through attention* (DeiT).
#   ICML 2021, arXiv 2012.12877.
# - A. Krizhevsky. *Learning Multiple Layers of Features from Tiny Images* (CIFAR-10), 2009.
# - PyTorch: `torch.autograd.grad` / `Tensor.backward` (gradients with respect to the input image),
#   `torch.nn.AdaptiveAvgPool2d`; matplotlib's `Figure.colorbar`.

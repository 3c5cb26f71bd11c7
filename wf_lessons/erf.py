"""Effective receptive fields (ERF): which input pixels move the central output token, and by how much.

The method follows the reference code (``erf.py`` of LeapLabTHU/WeightFormer; ``chapters/paper_notes.md``,
"Figures"), for any model with a
``forward_features(images) -> (B, C, H/p, W/p)`` method (WeightFormer with any predictors, the all-static model,
the ViT baseline)::

    F      = model.forward_features(images)              (B, C, h, w)   the last feature map, tokens on their grid
    s      = Σ_c ReLU(F[:, c, h // 2, w // 2])           one number per image: the central output position
    G      = ∂(Σ_b s_b) / ∂ images                       (B, 3, H, W)
    map    = mean over images of Σ_rgb ReLU(G)           (H, W)          the raw map (:func:`effective_receptive_field`)
    shown  = map^0.2 / max(map^0.2)                      (H, W)          the paper's display (:func:`display_map`)

**Centre convention.** The central output position is the token at index ``(h // 2, w // 2)``: on an even grid
(the usual case) that is the lower-right of the four middle tokens: a field symmetric about it leaves one token
more of the image uncovered at the top and left than at the bottom and right. Each image's score only depends on
that image (no layer mixes samples), so processing the images in chunks gives the same map as processing them one
at a time.

**The theoretical receptive field** (:func:`theoretical_rf_box`) of the all-static model: a stack of ``depth``
blocks, each with a 3×3 depthwise conv (padding 1) and otherwise per-token layers (LayerNorm, MLP), on top of a
p×p patch embedding. Each block widens the field by one token on each side, so the central token at
``(ci, cj)`` sees tokens ``ci - depth .. ci + depth`` (clipped to the grid), and token ``i`` covers pixels
``i·p .. (i + 1)·p - 1``. The pixel box is therefore rows ``[max(0, (ci - depth)·p), min(H, (ci + depth + 1)·p))``
(half-open), and the same for columns. The all-static model's raw map is exactly zero outside it.

:func:`outside_share` measures the claim of the paper's Fig. 3 with one number: the share of the raw map's mass
outside that box. :func:`plot_erf_grid` and :func:`plot_outside_shares` draw the figure and the bar chart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from wf_lessons.checks import check_positive
from wf_lessons.dynamic_dwconv import DWC_PREDICTORS
from wf_lessons.dynamic_linear import LINEAR_PREDICTORS

__all__ = [
    "RFBox",
    "central_token",
    "display_map",
    "effective_receptive_field",
    "erf_colormap",
    "figure3_models",
    "find_checkpoints",
    "outside_share",
    "plot_erf_grid",
    "plot_outside_shares",
    "theoretical_rf_box",
]

DISPLAY_POWER = 0.2  # the paper's display transform: map ** 0.2 / max


class RFBox(NamedTuple):
    """A pixel box, half-open: rows ``top .. bottom - 1``, columns ``left .. right - 1``."""

    top: int
    bottom: int
    left: int
    right: int

    def mask(self, image_hw: Sequence[int]) -> Tensor:
        """Boolean ``(H, W)`` mask, True inside the box."""
        h, w = image_hw
        rows = torch.arange(h)
        cols = torch.arange(w)
        inside_rows = (rows >= self.top) & (rows < self.bottom)  # (H,)
        inside_cols = (cols >= self.left) & (cols < self.right)  # (W,)
        return inside_rows[:, None] & inside_cols[None, :]  # (H, W)

    @property
    def size(self) -> tuple[int, int]:
        """Height and width of the box in pixels."""
        return self.bottom - self.top, self.right - self.left


# ---------------------------------------------------------------------------------------------- checks
def _patch_size(model: Any) -> int:
    patch = getattr(model, "patch_size", None)
    if isinstance(patch, bool) or not isinstance(patch, int) or patch < 1:
        raise TypeError(
            f"expected a model with an int attribute patch_size (WeightFormer, ViT), "
            f"got {type(model).__name__} with patch_size={patch!r}"
        )
    return patch


def _depth(model: Any) -> int:
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise TypeError(f"expected a model with a list of blocks (WeightFormer, ViT), got {type(model).__name__}")
    return len(blocks)


def _in_channels(model: nn.Module) -> int | None:
    """Channels the model's patch embedding expects, when it can be read."""
    proj = getattr(getattr(model, "patch_embed", None), "proj", None)
    return getattr(proj, "in_channels", None)


def _check_inputs(model: object, images: object) -> int:
    """Validate a model and an image batch for :func:`effective_receptive_field`; return the patch size."""
    if not isinstance(model, nn.Module) or not callable(getattr(model, "forward_features", None)):
        raise TypeError(
            f"expected a model with a forward_features(images) -> (B, C, H/p, W/p) method (WeightFormer, ViT), "
            f"got {type(model).__name__}"
        )
    patch = _patch_size(model)
    if not isinstance(images, Tensor):
        raise TypeError(f"expected images as a torch.Tensor (B, 3, H, W), got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"expected a 4-D image batch (B, 3, H, W), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(
            f"expected a floating-point image batch (gradients need floats), got dtype {images.dtype}; "
            f"convert uint8 images with wf_lessons.data.normalize"
        )
    channels = _in_channels(model)
    if channels is not None and images.shape[1] != channels:
        raise ValueError(
            f"the model expects {channels} channels, got images of shape {tuple(images.shape)} "
            f"({images.shape[1]} channels)"
        )
    if images.shape[0] < 1:
        raise ValueError("expected at least one image, got an empty batch")
    h, w = images.shape[-2:]
    if h % patch or w % patch:
        raise ValueError(f"image size {h}x{w} is not a multiple of the model's patch size {patch}")
    return patch


@contextmanager
def _eval_mode(model: nn.Module):
    """Evaluation mode (no drop-path) for the duration, then each module's own mode back."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.train(training)


# ---------------------------------------------------------------------------------------------- the map
def central_token(grid_hw: Sequence[int]) -> tuple[int, int]:
    """The central output position of an ``(h, w)`` token grid: ``(h // 2, w // 2)`` (lower-right middle when even)."""
    h, w = grid_hw
    return h // 2, w // 2


def effective_receptive_field(model: nn.Module, images: Tensor, batch_size: int = 8) -> Tensor:
    """The raw ERF map ``(H, W)`` of a model on float images ``(B, 3, H, W)`` (already normalised).

    For each image: the channel sum of the ReLU of the central output position ``(h // 2, w // 2)`` of
    ``model.forward_features``, back-propagated to the pixels; ReLU of that gradient, summed over RGB; then the
    mean over the images. Images go through in chunks of ``batch_size`` on the model's device, in evaluation mode
    (the model's modes are restored afterwards; no parameter gradient is touched). Returns float32 on the CPU.
    Use :func:`display_map` for the paper's ``x^0.2 / max`` display.
    """
    _check_inputs(model, images)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    total = torch.zeros(images.shape[-2:], dtype=torch.float64, device=device)  # (H, W)
    with _eval_mode(model), torch.enable_grad():
        for chunk in images.split(batch_size):
            x = chunk.detach().to(device=device, dtype=torch.float32).requires_grad_(True)  # (b, 3, H, W)
            features = model.forward_features(x)  # (b, C, h, w)
            if features.ndim != 4:
                raise ValueError(
                    f"forward_features must return a feature map (B, C, h, w), got shape {tuple(features.shape)}"
                )
            ci, cj = central_token(features.shape[-2:])
            score = features[:, :, ci, cj].relu().sum()  # ReLU, then sum over channels (and the chunk)
            (grad,) = torch.autograd.grad(score, x)  # (b, 3, H, W)
            total += grad.relu().sum(dim=(0, 1)).double()  # ReLU, sum over the chunk and RGB -> (H, W)
    return (total / images.shape[0]).float().cpu()


def display_map(raw_map: Tensor, power: float = DISPLAY_POWER) -> Tensor:
    """The paper's display transform, ``raw^power / max(raw^power)``, values in [0, 1]: ``(H, W)`` -> ``(H, W)``.

    The power 0.2 lifts tiny values a lot: a pixel at 1e-10 of the maximum is shown at 1e-2 of full brightness.
    ``power`` must be > 0 (a negative power would invert the map, 0 would light every pixel alike).
    """
    raw_map = _check_map(raw_map)
    check_positive("power", power)
    shown = raw_map.clamp_min(0) ** power
    peak = shown.max()
    if peak <= 0:
        raise ValueError("the map is zero everywhere: nothing to display")
    return shown / peak


def _check_map(raw_map: object) -> Tensor:
    if not isinstance(raw_map, Tensor):
        raise TypeError(f"expected a raw ERF map as a torch.Tensor (H, W), got {type(raw_map).__name__}")
    if raw_map.ndim != 2:
        raise ValueError(f"expected a 2-D raw ERF map (H, W), got shape {tuple(raw_map.shape)}")
    if not torch.isfinite(raw_map).all():
        raise ValueError(
            "the raw ERF map holds NaN or infinite values: the model's weights (or the images) are not finite"
        )
    return raw_map


# ---------------------------------------------------------------------------------------------- the measure
def theoretical_rf_box(model: Any, image_hw: Sequence[int]) -> RFBox:
    """Pixel box of the theoretical receptive field of the central output token of the all-static model with the
    same depth and patch size as ``model``, on images of size ``image_hw = (H, W)``.

    Every block widens the field by one token on each side (a 3×3 depthwise conv); token ``i`` covers pixels
    ``i·p .. (i + 1)·p - 1``; the box is clipped to the image. For the ViT it is the box of a static WeightFormer of
    its depth and patch, the yardstick of the paper's Fig. 3.
    """
    patch, depth = _patch_size(model), _depth(model)
    if (
        isinstance(image_hw, (str, bytes))
        or not isinstance(image_hw, Sequence)
        or len(image_hw) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in image_hw)
    ):
        raise ValueError(f"image_hw must be a pair of positive ints (H, W), got {image_hw!r}")
    h, w = image_hw
    if h % patch or w % patch:
        raise ValueError(f"image size {h}x{w} is not a multiple of the model's patch size {patch}")
    ci, cj = central_token((h // patch, w // patch))
    return RFBox(
        top=max(0, (ci - depth) * patch),
        bottom=min(h, (ci + depth + 1) * patch),
        left=max(0, (cj - depth) * patch),
        right=min(w, (cj + depth + 1) * patch),
    )


def outside_share(raw_map: Tensor, model_or_rf: Any) -> float:
    """Share of the raw map's mass outside the theoretical receptive field, in [0, 1].

    ``model_or_rf`` is a model (the box comes from :func:`theoretical_rf_box` for the map's size) or an
    :class:`RFBox` / ``(top, bottom, left, right)`` tuple. 0 means every bit of gradient lies inside the field
    of the stacked 3×3 convs (the all-static model, exactly); it says nothing about whether the mass outside is
    large enough to matter.
    """
    raw_map = _check_map(raw_map)
    if isinstance(model_or_rf, nn.Module):
        box = theoretical_rf_box(model_or_rf, tuple(raw_map.shape))
    elif isinstance(model_or_rf, tuple) and len(model_or_rf) == 4 and all(isinstance(v, int) for v in model_or_rf):
        box = RFBox(*model_or_rf)
        if not (0 <= box.top <= box.bottom and 0 <= box.left <= box.right):
            raise ValueError(
                f"the box must have 0 <= top <= bottom and 0 <= left <= right (half-open pixel ranges), got {box}"
            )
    else:
        raise TypeError(f"expected a model or an RFBox (top, bottom, left, right), got {model_or_rf!r}")
    if (raw_map < 0).any():
        raise ValueError("a raw ERF map is non-negative (ReLU of the gradient); got negative values")
    total = raw_map.double().sum()
    if total <= 0:
        raise ValueError("the map is zero everywhere: its mass has no share outside anything")
    outside = raw_map.double()[~box.mask(raw_map.shape)].sum()
    return float(outside / total)


# ---------------------------------------------------------------------------------------------- the zoo
def figure3_models(wf: str = "wf-cifar", vit: str = "deit-cifar") -> dict[str, tuple[str, dict[str, Any]]]:
    """The columns of the paper's Fig. 3 as ``{label: (build_model name, overrides)}``.

    ``ViT``; ``static`` (every block static); ``lin <p>`` for each dynamic-linear predictor with static depthwise
    convs; ``dwc <p>`` for each dynamic-DWC predictor with static linear layers. Pairing each predictor with the
    static version of the other layer isolates it (the course's choice): any mass outside the static field then
    comes from that one predictor.
    """
    models: dict[str, tuple[str, dict[str, Any]]] = {"ViT": (vit, {}), "static": (wf, {"dynamic_blocks": ()})}
    for p in LINEAR_PREDICTORS:
        if p != "static":
            models[f"lin {p}"] = (wf, {"linear_predictor": p, "dwc_predictor": "static"})
    for p in DWC_PREDICTORS:
        if p != "static":
            models[f"dwc {p}"] = (wf, {"linear_predictor": "static", "dwc_predictor": p})
    return models


def _architecture(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides that fix the architecture: drop-path (a training setting) left out, sequences as tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items() if k != "drop_path"}


def find_checkpoints(
    models: Mapping[str, tuple[str, Mapping[str, Any]]], folder: str | Path | None = None
) -> dict[str, dict[str, Any]]:
    """Training checkpoints (``wf_lessons.train``, e.g. from chapters 07 and 08) of the given models.

    ``models`` is ``{label: (model name, overrides)}`` as :func:`figure3_models` returns; a checkpoint matches a
    label when its model name is the same and its overrides are too, drop-path aside (it does not change the
    architecture). ``folder`` defaults to ``<data folder>/checkpoints``. Returns ``{label: {"path", "epoch",
    "epochs", "test_acc", "run_name"}}`` for the labels that have one; when several match, a finished run beats an
    unfinished one, then a run evaluated on more test images beats one evaluated on fewer (a toy run's score on a
    handful of images says little), then the higher test accuracy of the last epoch wins (then more epochs done,
    then the newest file), whatever the seeds or recipes. Unreadable, foreign or corrupted files (weights that fail
    the checkpoint's digest or are not finite) are skipped.
    """
    from wf_lessons import config
    from wf_lessons.train import load_checkpoint  # imported here: the training module is heavy

    folder = Path(folder) if folder is not None else config.checkpoints_dir()
    wanted = {label: (name, _architecture(overrides)) for label, (name, overrides) in models.items()}
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.pt")) if folder.is_dir() else []:
        try:
            ckpt = load_checkpoint(path)
            key = (ckpt["model_name"], _architecture(ckpt["model_overrides"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        for label, spec in wanted.items():
            if spec != key:
                continue
            last = (ckpt.get("history") or [{}])[-1]
            entry = {
                "path": path,
                "epoch": int(ckpt.get("epoch", 0)),
                "epochs": ckpt.get("config", {}).get("epochs"),
                "eval_images": last.get("eval_images") or 0,
                "test_acc": last.get("test_acc"),
                "run_name": path.stem,
                "mtime": path.stat().st_mtime,
            }
            best = found.get(label)
            if best is None or _rank(entry) > _rank(best):
                found[label] = entry
    return {label: {k: v for k, v in e.items() if k not in ("mtime", "eval_images")} for label, e in found.items()}


def _rank(entry: dict[str, Any]) -> tuple:
    """How :func:`find_checkpoints` orders candidates: finished, evaluated on more images, more accurate, longer,
    newer."""
    return (entry["epoch"] == entry["epochs"], entry["eval_images"], entry["test_acc"] or 0.0, entry["epoch"],
            entry["mtime"])


# ---------------------------------------------------------------------------------------------- plots
ZERO_COLOUR = "#9ecae1"  # exact zeros: light blue, apart from the grey scale


def erf_colormap(name: str = "Greys"):
    """A sequential colormap read as intensity (light = low, dark = high) with exact zeros drawn light blue (pass
    zeros as masked values). The reference code uses ``RdYlGn``; a sequential map makes "more" unambiguous."""
    import matplotlib as mpl

    return mpl.colormaps[name].with_extremes(bad=ZERO_COLOUR)


def plot_erf_grid(
    maps: Mapping[str, Mapping[str, Tensor]],
    shares: Mapping[str, Mapping[str, float]] | None = None,
    boxes: Mapping[str, RFBox] | None = None,
    panel_size: float = 1.9,
    cmap: str = "Greys",
    columns: int = 6,
):
    """A compact grid like the paper's Fig. 3: for each entry of ``maps`` (a row label such as "at initialisation"
    or "after training"), its models' panels in order, at most ``columns`` to a line (a row with more models wraps
    onto further lines). ``maps[row][model]`` is a raw map ``(H, W)``; each panel shows :func:`display_map` of it
    (light = low, exact zeros light blue) under the model's name, and the row label stands beside the first panel of
    each line. Only maps that exist are drawn: a row with fewer models leaves the rest of its line blank, never an
    empty panel. One colour bar for all panels. ``shares[row][model]`` (optional) is printed on the panel;
    ``boxes[model]`` (optional) is drawn as a dashed red outline (the theoretical receptive field). Returns the
    matplotlib Figure, ``panel_size`` inches per panel (6 columns of 1.9 inches fit a notebook's width).
    """
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Rectangle

    rows = list(maps)
    if not rows or not any(maps[row] for row in rows):
        raise ValueError("maps is empty: expected {row label: {model name: raw map (H, W)}}")
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ValueError(f"columns must be a positive int, got {columns!r}")
    width = min(columns, max(len(maps[row]) for row in rows))
    lines = [(row, list(maps[row])[start : start + width]) for row in rows
             for start in range(0, len(maps[row]), width)]  # (row label, the models on this line)
    fig, axes = plt.subplots(len(lines), width, figsize=(panel_size * width + 1.1, (panel_size + 0.25) * len(lines)),
                             squeeze=False, layout="constrained")
    colormap = erf_colormap(cmap)
    image = None
    for i, (row, names) in enumerate(lines):
        for j, ax in enumerate(axes[i]):
            if j >= len(names):
                ax.remove()  # blank space at the end of a short line, not an empty panel
                continue
            name = names[j]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(name, fontsize=10)
            if j == 0:
                ax.set_ylabel(row, fontsize=10)
            shown = display_map(maps[row][name]).numpy()
            image = ax.imshow(np.ma.masked_equal(shown, 0.0), cmap=colormap, vmin=0, vmax=1, interpolation="nearest")
            if boxes is not None and name in boxes:
                b = boxes[name]
                ax.add_patch(
                    Rectangle(
                        (b.left - 0.5, b.top - 0.5), b.right - b.left, b.bottom - b.top,
                        fill=False, edgecolor="tab:red", linestyle="--", linewidth=1.2,
                    )
                )
            if shares is not None and name in shares.get(row, {}):
                ax.text(
                    0.03, 0.03, f"out {_format_share(shares[row][name])}", transform=ax.transAxes, fontsize=7,
                    color="white", bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "linewidth": 0},
                )
    bar = fig.colorbar(image, ax=[ax for ax in fig.axes if ax.images], shrink=0.9, aspect=12 * len(lines))
    bar.set_label("x^0.2 / max  (exact 0: light blue)", fontsize=9)
    return fig


def _format_share(share: float) -> str:
    if share == 0:
        return "0 (exact)"
    return f"{share:.1%}" if share >= 1e-3 else f"{share:.1e}"


def plot_outside_shares(shares: Mapping[str, Mapping[str, float]], floor: float = 1e-12):
    """A dot plot of the outside-RF share per model: one row per model, one marker per row of ``shares`` (e.g.
    before / after training), on a log axis (shares span many decades; a dot's position, unlike a bar's length on a
    log axis, does not depend on where the axis starts). Exact zeros are drawn as hollow markers at ``floor`` and
    labelled ``exactly 0``. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    rows = list(shares)
    if not rows:
        raise ValueError("shares is empty: expected {row label: {model name: share}}")
    columns = list(dict.fromkeys(name for row in rows for name in shares[row]))
    markers = "os^Dv"
    fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(columns) + 1.6))
    for k, row in enumerate(rows):
        colour = f"C{k}"
        ys = [len(columns) - 1 - j + (k - (len(rows) - 1) / 2) * 0.2 for j, name in enumerate(columns)
              if name in shares[row]]
        values = [shares[row][name] for name in columns if name in shares[row]]
        zero = [v == 0 for v in values]
        ax.scatter([max(v, floor) for v in values], ys, marker=markers[k % len(markers)], s=36, label=row,
                   facecolors=["none" if z else colour for z in zero], edgecolors=colour)
    for j, name in enumerate(columns):  # one label per model with any exact zero
        if any(shares[row].get(name) == 0 for row in rows):
            ax.annotate("exactly 0", (floor, len(columns) - 1 - j), xytext=(8, 0), textcoords="offset points",
                        va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(floor / 3, 1.5)
    ax.set_yticks(range(len(columns)), columns[::-1], fontsize=8)
    ax.set_ylim(-0.6, len(columns) - 0.4)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("share of ERF mass outside the static model's field (log scale)")
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(rows), frameon=False)
    fig.tight_layout()
    return fig

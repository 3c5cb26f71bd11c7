"""Schematic figures of the course, drawn with matplotlib (boxes, arrows and text; no data, nothing computed).

Every function returns the :class:`matplotlib.figure.Figure` it drew on. Pass ``ax`` to draw into an axes of your
own; otherwise a new figure sized for a notebook (about 10 inches wide) is created with pyplot, so ``plt.show()``
displays it (end the line with ``;`` or assign the result to avoid showing it twice).

One colour code in every figure (see :data:`COLOURS`): blue for data (tokens, feature maps, activations), green for
static weights (learned, the same for every input), orange for predicted weights (computed from the input) and the
layers that use them, white for parameter-free operations (pooling, normalisation, activations, sums).

- :func:`attention_as_mlp` — softmax attention for one query as a two-layer MLP whose weights ``Kᵀ`` and ``V`` are
  predicted from the input (hidden unit j = token j), with the heads and the output projection ``W_O``.
- :func:`dynamic_linear` — a dynamic linear layer: pool -> predict (low rank) -> normalise -> add the static
  weight -> apply one ``C×D`` weight to every token.
- :func:`dynamic_dwconv` — a dynamic depthwise convolution: adaptive pool to 3×3 -> predict a 3×3 kernel per
  channel -> normalise -> add the static kernel -> one grouped convolution per sample.
- :func:`weightformer_block` — one WeightFormer block, static or dynamic, in the reference code's order (the
  dynamic block overwrites its residual stream with ``norm1(x)``); :func:`weightformer_blocks` draws both.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Patch

__all__ = [
    "COLOURS",
    "attention_as_mlp",
    "dynamic_dwconv",
    "dynamic_linear",
    "weightformer_block",
    "weightformer_blocks",
]

#: kind -> (face colour, edge colour). The same four kinds in every figure.
COLOURS: dict[str, tuple[str, str]] = {
    "data": ("#d6e6f5", "#2f6aa3"),
    "static": ("#d5ebcf", "#3d7f2f"),
    "predicted": ("#fbd9bb", "#c0560e"),
    "op": ("#ffffff", "#5a5a5a"),
}
LEGEND_LABELS = {
    "data": "data (tokens, maps)",
    "static": "static weight (learned, fixed)",
    "predicted": "predicted weight (from the input)",
    "op": "operation (no weights)",
}
ARROW = "#333333"
EMPHASIS = "#b3261e"  # the one thing a figure wants you to notice
FONT = 10


def _axes(ax: Axes | None, size: tuple[float, float], xlim: float, ylim: float) -> Axes:
    """A blank axes with data units of about one inch, ``(0, xlim) × (0, ylim)``, no frame."""
    if ax is None:
        fig = plt.figure(figsize=size)
        ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, xlim)
    ax.set_ylim(0, ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def _box(
    ax: Axes,
    x: float,
    y: float,
    w: float,
    h: float,
    text: str,
    kind: str = "op",
    fontsize: float = FONT,
    edge: str | None = None,
    **text_kw,
) -> tuple[float, float, float, float]:
    """A rounded box with lower-left corner ``(x, y)`` and centred text; returns ``(x, y, w, h)``."""
    face, default_edge = COLOURS[kind]
    lw = 1.3 if edge is None else 2.2
    ax.add_patch(
        FancyBboxPatch(
            (x, y), w, h, boxstyle="round,pad=0,rounding_size=0.08", fc=face, ec=edge or default_edge, lw=lw, zorder=2
        )
    )
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize, zorder=3, **text_kw)
    return (x, y, w, h)


def _arrow(
    ax: Axes,
    start: tuple[float, float],
    end: tuple[float, float],
    colour: str = ARROW,
    linestyle: str = "-",
    lw: float = 1.3,
    head: bool = True,
) -> None:
    """A straight arrow from ``start`` to ``end`` (a plain line when ``head`` is false)."""
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>" if head else "-",
            mutation_scale=12,
            color=colour,
            lw=lw,
            linestyle=linestyle,
            shrinkA=0,
            shrinkB=0,
            zorder=1,
        )
    )


def _path(ax: Axes, points: Sequence[tuple[float, float]], colour: str = ARROW, linestyle: str = "-") -> None:
    """A polyline through ``points`` with an arrow head on its last segment."""
    for a, b in zip(points[:-2], points[1:-1]):
        ax.plot([a[0], b[0]], [a[1], b[1]], color=colour, lw=1.3, linestyle=linestyle, zorder=1)
    _arrow(ax, points[-2], points[-1], colour=colour, linestyle=linestyle)


def _plus(ax: Axes, x: float, y: float, r: float = 0.16) -> None:
    """A summing node ⊕ centred at ``(x, y)``."""
    face, edge = COLOURS["op"]
    ax.add_patch(Circle((x, y), r, fc=face, ec=edge, lw=1.3, zorder=2))
    ax.text(x, y, "+", ha="center", va="center", fontsize=FONT + 2, zorder=3)


def _grid(ax: Axes, x: float, y: float, size: float, kind: str, n: int = 3) -> None:
    """A small ``n×n`` grid glyph (a pooled map or a kernel) with lower-left corner ``(x, y)``."""
    face, edge = COLOURS[kind]
    step = size / n
    for i in range(n):
        for j in range(n):
            ax.add_patch(plt.Rectangle((x + i * step, y + j * step), step, step, fc=face, ec=edge, lw=0.9, zorder=2))


def _legend(ax: Axes, kinds: Sequence[str], anchor: tuple[float, float], ncol: int | None = None) -> None:
    handles = [Patch(facecolor=COLOURS[k][0], edgecolor=COLOURS[k][1], label=LEGEND_LABELS[k]) for k in kinds]
    ax.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=anchor,
        bbox_transform=ax.transAxes,
        ncol=ncol or len(kinds),
        frameon=False,
        fontsize=FONT - 1,
        handlelength=1.4,
        columnspacing=1.4,
    )


def _title(ax: Axes, x: float, y: float, text: str) -> None:
    ax.text(x, y, text, ha="center", va="center", fontsize=FONT + 2, fontweight="bold")


# ----------------------------------------------------------------------------------------------------------------
# attention as an MLP


def attention_as_mlp(ax: Axes | None = None) -> Figure:
    """Softmax attention for one query ``q_i`` drawn as a two-layer MLP whose weights are predicted from ``X``.

    The input layer holds the ``d`` entries of ``q_i = x_i W_Q``; the first layer's weight is ``W1 = Kᵀ`` (d×N), so
    there are N hidden units and hidden unit j is token j; the activation is ``softmax(· / √d)`` over them; the
    second layer's weight is ``W2 = V`` (N×d). ``K = X W_K`` and ``V = X W_V`` are computed from the input tokens
    ``X`` (N×C) by static projections, so the MLP's weights change with every input and grow with N. With h heads
    the same picture repeats h times on slices of width ``d = C/h``; the heads' outputs are concatenated and mixed by
    the static output projection ``W_O``.
    """
    ax = _axes(ax, (10, 6.6), 10, 6.6)
    _title(ax, 5, 6.35, "Softmax attention for one query = a two-layer MLP with predicted weights")

    # the input tokens and the three static projections
    _box(ax, 0.15, 1.75, 1.2, 1.3, "X\nN tokens\n× C", "data")
    _box(ax, 1.75, 2.05, 0.75, 0.5, r"$W_Q$", "static")
    _arrow(ax, (1.35, 2.3), (1.75, 2.3))
    _box(ax, 1.75, 4.05, 0.75, 0.5, r"$W_K$", "static")
    _box(ax, 1.75, 5.05, 0.75, 0.5, r"$W_V$", "static")
    ax.plot([0.75, 0.75], [3.05, 5.3], color=ARROW, lw=1.3, zorder=1)
    _arrow(ax, (0.75, 4.3), (1.75, 4.3))
    _arrow(ax, (0.75, 5.3), (1.75, 5.3))

    # the predicted weights
    _box(ax, 3.0, 3.95, 2.3, 0.7, r"$K = X\,W_K$   (N × d)" "\n" r"1st layer: $W_1 = K^{\top}$", "predicted")
    _arrow(ax, (2.5, 4.3), (3.0, 4.3))
    _box(ax, 6.0, 3.95, 2.3, 0.7, r"$V = X\,W_V$   (N × d)" "\n" r"2nd layer: $W_2 = V$", "predicted")
    _path(ax, [(2.5, 5.3), (7.15, 5.3), (7.15, 4.65)])

    # the MLP: d inputs -> N hidden units (one per token) -> d outputs
    x_in, x_hid, x_out, r = 3.35, 5.65, 7.95, 0.16
    ins = [1.55, 2.3, 3.05]
    hidden = [3.3, 2.7, 2.1, 1.5, 0.9]  # top to bottom; the fourth is "⋮"
    hidden_labels = ["1", "2", "3", "⋮", "N"]
    pred_edge = COLOURS["predicted"][1]
    for yi in ins:
        for yh, lab in zip(hidden, hidden_labels):
            if lab != "⋮":
                ax.plot([x_in, x_hid], [yi, yh], color=pred_edge, lw=0.7, alpha=0.7, zorder=1)
    for yh, lab in zip(hidden, hidden_labels):
        if lab != "⋮":
            for yo in ins:
                ax.plot([x_hid, x_out], [yh, yo], color=pred_edge, lw=0.7, alpha=0.7, zorder=1)
    face, edge = COLOURS["data"]
    for yi in ins:
        ax.add_patch(Circle((x_in, yi), r, fc=face, ec=edge, lw=1.2, zorder=2))
        ax.add_patch(Circle((x_out, yi), r, fc=face, ec=edge, lw=1.2, zorder=2))
    for yh, lab in zip(hidden, hidden_labels):
        if lab == "⋮":
            ax.text(x_hid, yh, "⋮", ha="center", va="center", fontsize=FONT + 2)
        else:
            ax.add_patch(Circle((x_hid, yh), r + 0.02, fc="#ffffff", ec=COLOURS["op"][1], lw=1.2, zorder=2))
            ax.text(x_hid, yh, lab, ha="center", va="center", fontsize=FONT - 1, zorder=3)
    _arrow(ax, (2.5, 2.3), (x_in - r, 2.3))
    _arrow(ax, (4.15, 3.95), (4.15, 3.05), colour=pred_edge, linestyle="--")
    _arrow(ax, (7.15, 3.95), (7.15, 3.05), colour=pred_edge, linestyle="--")
    ax.text(x_in, 1.15, r"$q_i = x_i W_Q$" "\n(d inputs)", ha="center", va="top", fontsize=FONT - 1)
    hidden_text = "N hidden units:\nunit j = token j\n" r"softmax$(\cdot\,/\sqrt{d})$"
    ax.text(x_hid, 0.6, hidden_text, ha="center", va="top", fontsize=FONT - 1)
    ax.text(x_out, 1.15, r"$o_i$" "\n(d outputs)", ha="center", va="top", fontsize=FONT - 1)

    # heads and output projection
    _box(ax, 8.5, 2.0, 1.4, 0.6, "concat h heads\n(h · d = C)", "op", fontsize=FONT - 1)
    _arrow(ax, (x_out + r, 2.3), (8.5, 2.3))
    _box(ax, 8.75, 1.1, 0.9, 0.5, r"$W_O$", "static")
    _arrow(ax, (9.2, 2.0), (9.2, 1.6))
    _box(ax, 8.75, 0.2, 0.9, 0.5, r"$y_i$  (C)", "data")
    _arrow(ax, (9.2, 1.1), (9.2, 0.7))
    ax.text(
        9.2,
        3.55,
        "× h heads:\nthe MLP repeats\non slices of\n" r"$W_Q, W_K, W_V$" "\nof width d = C/h",
        ha="center",
        va="center",
        fontsize=FONT - 1,
        style="italic",
    )
    _legend(ax, ["data", "static", "predicted", "op"], (0.5, 0.885))
    return ax.figure


# ----------------------------------------------------------------------------------------------------------------
# dynamic layers


def dynamic_linear(ax: Axes | None = None) -> Figure:
    """A dynamic linear layer ``C -> D``: one weight per image, predicted from its tokens, applied to every token.

    The tokens ``X`` (N×C) are average-pooled 2×2 on their grid (N' = N/4 tokens); a low-rank generator predicts
    ``D(X) = Kᵀ V · C^-0.5 / N`` from them (K: N'×C and V: N'×D, each through a bottleneck of width C/r or D/r);
    each column is normalised to norm below 1, ``Ŵ = D / (‖D‖ + 1)``; the static weight is added, ``W = W0 + Ŵ``;
    and ``Y = X W + b`` multiplies every token by that one ``C×D`` matrix, whose size does not depend on N.
    """
    ax = _axes(ax, (10, 4.4), 10, 4.4)
    _title(ax, 5, 4.15, "Dynamic linear layer: predict one C×D weight per image, apply it to every token")
    y_top, y_bot, h = 2.55, 0.85, 0.8

    _box(ax, 0.15, y_bot, 1.25, h, "X\nN tokens × C", "data")
    # the prediction path (top row)
    _path(ax, [(0.775, y_bot + h), (0.775, y_top + h / 2), (1.25, y_top + h / 2)])
    _box(ax, 1.25, y_top, 1.35, h, "avg-pool 2×2\nN' = N/4 tokens", "op")
    _arrow(ax, (2.6, y_top + h / 2), (2.95, y_top + h / 2))
    predict = "predict, low rank:\n" r"$D = K^{\top} V \cdot C^{-1/2} / N$" "\nK: N'×C,  V: N'×D"
    _box(ax, 2.95, y_top, 2.05, h, predict, "predicted", fontsize=FONT - 1)
    _arrow(ax, (5.0, y_top + h / 2), (5.35, y_top + h / 2))
    _box(ax, 5.35, y_top, 1.75, h, r"normalise columns" "\n" r"$\hat{W} = D\,/\,(\|D\| + 1)$", "op", fontsize=FONT - 1)
    _arrow(ax, (7.1, y_top + h / 2), (7.5, y_top + h / 2))
    _plus(ax, 7.66, y_top + h / 2)
    _box(ax, 8.2, y_top + 0.1, 1.6, h - 0.2, r"static $W_0$  (C×D)", "static", fontsize=FONT - 1)
    _arrow(ax, (8.2, y_top + h / 2), (7.82, y_top + h / 2))
    # W = W0 + Ŵ goes down into the layer
    _arrow(ax, (7.66, y_top + h / 2 - 0.16), (7.66, y_bot + h + 0.05))
    ax.text(7.75, (y_top + y_bot + h) / 2, r"$W = W_0 + \hat{W}$" "\nC×D, whatever N is", ha="left", va="center",
            fontsize=FONT - 1, color=EMPHASIS)
    # the main path (bottom row)
    _arrow(ax, (1.4, y_bot + h / 2), (6.7, y_bot + h / 2))
    _box(ax, 6.7, y_bot, 1.9, h, "Y = X W + b\nfor every token", "predicted")
    _arrow(ax, (8.6, y_bot + h / 2), (8.9, y_bot + h / 2))
    _box(ax, 8.9, y_bot, 0.95, h, "Y\nN × D", "data")
    _legend(ax, ["data", "static", "predicted", "op"], (0.5, 0.0))
    return ax.figure


def dynamic_dwconv(ax: Axes | None = None) -> Figure:
    """A dynamic depthwise 3×3 convolution: one kernel per image and channel, predicted from the whole image.

    The feature map ``X`` (C×H×W) is adaptive-average-pooled to 3×3 regions; a small predictor (1×1 conv -> GELU ->
    1×1 conv, in the released layer) turns the pooled map into a 3×3 kernel per channel, tap (i, j) from region
    (i, j); each channel's kernel is normalised, ``D / (‖D‖_F + 1)``; the static kernel ``K0`` is added; and one
    grouped convolution (``groups = B·C``) applies each sample's own kernels to its own map.
    """
    ax = _axes(ax, (10, 4.6), 10, 4.6)
    _title(ax, 5, 4.35, "Dynamic depthwise conv: predict a 3×3 kernel per channel and image")
    y_top, y_bot, h = 2.6, 0.85, 0.85

    _box(ax, 0.15, y_bot, 1.3, h, "X\nC × H × W", "data")
    _path(ax, [(0.8, y_bot + h), (0.8, y_top + h / 2), (1.2, y_top + h / 2)])
    _box(ax, 1.2, y_top, 1.5, h, "adaptive\navg-pool to 3×3", "op")
    _arrow(ax, (2.7, y_top + h / 2), (2.95, y_top + h / 2))
    _grid(ax, 2.95, y_top + 0.15, 0.55, "data")
    ax.text(3.225, y_top - 0.05, "C × 3 × 3", ha="center", va="top", fontsize=FONT - 2)
    _arrow(ax, (3.5, y_top + h / 2), (3.75, y_top + h / 2))
    _box(ax, 3.75, y_top, 1.75, h, "predict per channel:\n1×1 conv → GELU\n→ 1×1 conv", "predicted",
         fontsize=FONT - 1)
    _arrow(ax, (5.5, y_top + h / 2), (5.75, y_top + h / 2))
    _box(ax, 5.75, y_top, 1.55, h, r"normalise" "\n" r"$D\,/\,(\|D\|_F + 1)$", "op", fontsize=FONT - 1)
    _arrow(ax, (7.3, y_top + h / 2), (7.6, y_top + h / 2))
    _plus(ax, 7.76, y_top + h / 2)
    _grid(ax, 8.5, y_top + 0.15, 0.55, "static")
    ax.text(9.1, y_top + h / 2, r"$K_0$", ha="left", va="center", fontsize=FONT)
    _arrow(ax, (8.5, y_top + h / 2), (7.92, y_top + h / 2))
    ax.text(8.775, y_top - 0.05, "static kernel", ha="center", va="top", fontsize=FONT - 2)
    _arrow(ax, (7.76, y_top + h / 2 - 0.16), (7.76, y_bot + h + 0.05))
    kernel = r"$K_b = K_0 + \hat{D}_b$" "\nC × 3 × 3 per sample"
    ax.text(7.85, (y_top + y_bot + h) / 2 + 0.05, kernel, ha="left", va="center", fontsize=FONT - 1, color=EMPHASIS)
    ax.text(4.6, y_top - 0.1, "tap (i, j) comes from region (i, j)", ha="center", va="top", fontsize=FONT - 2,
            style="italic")
    _arrow(ax, (1.45, y_bot + h / 2), (6.7, y_bot + h / 2))
    _box(ax, 6.7, y_bot, 2.1, h, "grouped conv\ngroups = B·C, padding 1", "predicted", fontsize=FONT - 1)
    _arrow(ax, (8.8, y_bot + h / 2), (9.0, y_bot + h / 2))
    _box(ax, 9.0, y_bot, 0.9, h, "Y\nC×H×W", "data")
    _legend(ax, ["data", "static", "predicted", "op"], (0.5, 0.0))
    return ax.figure


# ----------------------------------------------------------------------------------------------------------------
# the WeightFormer block


def weightformer_block(dynamic: bool = True, ax: Axes | None = None) -> Figure:
    """One WeightFormer block on tokens ``x`` (N×C), in the order of the reference code (``models.WeightFormerBlock``).

    Dynamic block (``dynamic=True``)::

        x = norm1(x)                                  # overwrites the residual stream: not a pre-norm on a branch
        x = x + DynamicDWConv(x)                      # no norm before the DWC
        x = x + DropPath(linear2(GELU(DynamicLinear_C→4C(norm2(x)))))

    Static block: ``x = x + DWConv3×3(x)`` (no norm before it), then ``x + DropPath(linear2(GELU(linear1(norm2(x)))))``
    with a plain ``linear1``. The residual stream runs down the left; the branches are drawn on the right.
    """
    ax = _axes(ax, (5, 7.6), 5, 7.6)
    kind_layer = "predicted" if dynamic else "static"
    _title(ax, 2.5, 7.35, "dynamic block" if dynamic else "static block")
    xs = 0.9  # the residual stream
    stream = COLOURS["data"][1]
    _box(ax, xs - 0.6, 6.45, 1.2, 0.5, "x  (N × C)", "data")
    y = 6.45
    if dynamic:
        _box(ax, xs - 0.6, 5.55, 1.2, 0.5, "norm1", "op", edge=EMPHASIS)
        _arrow(ax, (xs, 6.45), (xs, 6.05), colour=stream)
        ax.text(1.75, 5.8, "x = norm1(x): overwrites\nthe residual stream\n(not a pre-norm on a branch)",
                ha="left", va="center", fontsize=FONT - 1, color=EMPHASIS)
        y = 5.55
    else:
        ax.text(1.75, 5.8, "no norm before the DWC", ha="left", va="center", fontsize=FONT - 1, color=EMPHASIS)
    # DWC branch
    y_plus1 = 4.15
    ax.plot([xs, xs], [y, y_plus1 + 0.16], color=stream, lw=1.6, zorder=1)
    y_branch1 = 4.95
    _path(ax, [(xs, y_branch1), (2.0, y_branch1), (2.0, 4.8)], colour=stream)
    dwc_text = "dynamic DWC 3×3\n(chapter 03)" if dynamic else "DWConv 3×3\n(static)"
    _box(ax, 1.25, 4.3, 1.5, 0.5, dwc_text, kind_layer, fontsize=FONT - 1)
    _path(ax, [(2.0, 4.3), (2.0, y_plus1), (xs + 0.16, y_plus1)], colour=stream)
    _plus(ax, xs, y_plus1)
    ax.text(2.9, 4.55, "x = x + DWC(x)", ha="left", va="center", fontsize=FONT - 1)
    # MLP branch
    y_plus2 = 0.95
    ax.plot([xs, xs], [y_plus1 - 0.16, y_plus2 + 0.16], color=stream, lw=1.6, zorder=1)
    y_branch2 = 3.75
    _path(ax, [(xs, y_branch2), (2.0, y_branch2), (2.0, 3.55)], colour=stream)
    bw, bx = 1.5, 1.25
    _box(ax, bx, 3.1, bw, 0.45, "norm2", "op")
    _arrow(ax, (2.0, 3.1), (2.0, 2.85))
    lin1 = "dynamic linear\nC → 4C (ch. 02)" if dynamic else "linear1\nC → 4C"
    _box(ax, bx, 2.35, bw, 0.5, lin1, kind_layer, fontsize=FONT - 1)
    _arrow(ax, (2.0, 2.35), (2.0, 2.15))
    _box(ax, bx, 1.8, bw, 0.35, "GELU", "op", fontsize=FONT - 1)
    _arrow(ax, (2.0, 1.8), (2.0, 1.6))
    _box(ax, bx, 1.15, bw, 0.45, "linear2  4C → C", "static", fontsize=FONT - 1)
    _path(ax, [(2.0, 1.15), (2.0, y_plus2), (xs + 0.16, y_plus2)], colour=stream)
    _plus(ax, xs, y_plus2)
    ax.text(2.9, 2.4, "x = x + drop-path(\n  linear2(GELU(\n  linear1(norm2(x)))))", ha="left", va="center",
            fontsize=FONT - 1)
    _arrow(ax, (xs, y_plus2 - 0.16), (xs, 0.55), colour=stream)
    _box(ax, xs - 0.6, 0.05, 1.2, 0.5, "x  (N × C)", "data")
    return ax.figure


def weightformer_blocks() -> Figure:
    """The static and the dynamic WeightFormer block side by side (see :func:`weightformer_block`).

    The reference model makes every third block dynamic (0-indexed blocks 1, 4, 7, ...); the rest are static.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 8.1), gridspec_kw={"wspace": 0.04})
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.07)
    weightformer_block(dynamic=False, ax=left)
    weightformer_block(dynamic=True, ax=right)
    _legend(left, ["data", "static", "predicted", "op"], (1.02, -0.075))
    return fig

"""Dynamic depthwise convolutions: a 3x3 depthwise kernel per image, predicted from the whole image.

Every layer here follows the shared template of WeightFormer's dynamic layers (chapters/paper_notes.md,
"The shared template" and "The released dynamic depthwise convolution")::

    K_b = K0 + D_b / (||D_b||_F + 1)      per sample b and channel c: D_b = G(X_b) is the prediction, (C, k, k)
    Y_b = depthwise_conv(X_b, K_b, bias b, padding k // 2)

so the dynamic part of every kernel has Frobenius norm below 1, and the layer costs O(H W C k^2) for the
convolution plus a prediction whose matmuls and convolutions do not grow with H x W.

Predictors (``DWC_PREDICTORS``, name -> class; build one by name with ``build_dynamic_dwconv(dim, predictor=name)``,
or with its class, e.g. ``AdaptiveDWConv(dim)``):

- ``static``   ``nn.Conv2d(C, C, k, padding=k // 2, groups=C)``: one kernel for every image (state-dict keys
  ``weight, bias``, exactly those of that ``nn.Conv2d``).
- ``adaptive`` the released layer (reference class ``DynCnn``), exactly: ``AdaptiveAvgPool2d(k)`` -> 1x1 conv with
  bias -> GELU -> 1x1 conv without bias, so tap (i, j) comes from image region (i, j); keys
  ``w, b, wfm.0.weight, wfm.0.bias, wfm.2.weight``.
- ``gap``      the course's reconstruction: the kernel from the global average only,
  ``GAP(X) -> Linear(C, C/4) -> GELU -> Linear(C/4, k^2 C)``; keys ``w, b, wfm.0.*, wfm.2.*``.
- ``amp_dir``  the course's reconstruction: direction = the adaptive prediction scaled to unit norm per channel,
  amplitude = ``sigmoid(Linear(C, C)(GAP(X)))`` in (0, 1) per channel; keys as ``adaptive`` plus ``amp.*``.
- ``conv``     the course's reconstruction: like ``adaptive`` but the predictor is a depthwise 3x3 conv (padding 1)
  -> GELU -> 1x1 conv over the pooled k x k map, so each tap also sees neighbouring regions; keys as ``adaptive``.

Per-image convolution. The layer applies a different kernel to every image with ONE grouped convolution
(``groups = B * C``, the reference code's formulation). :func:`per_sample_depthwise_conv` also implements three
alternatives (a loop over the batch, nine shifted multiply-adds, unfold + einsum), all mathematically equal;
``python -m wf_lessons.bench dwconv [--threads N] [--device cuda]`` (:func:`wf_lessons.bench.dwconv_benchmark`) times
them side by side and writes the run log ``data/runs/bench-dwconv-<device>.json``. On the course's CPU machine that
log shows the grouped conv fastest with the backward pass at every size; training needs the backward
pass, and the grouped conv is the reference's own formulation, so the layer keeps it. The forward-only race
against the loop over the batch is close and changes from run to run on a busy machine.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from wf_lessons.checks import check_int

__all__ = [
    "CONV_METHODS",
    "DWC_PREDICTORS",
    "PARAMETER_FORMULAS",
    "AdaptiveDWConv",
    "AmpDirDWConv",
    "ConvDWConv",
    "DynamicDWConv",
    "GapDWConv",
    "StaticDWConv",
    "adaptive_pool_bins",
    "build_dynamic_dwconv",
    "flop_counts",
    "normalize_kernels",
    "parameter_count",
    "per_sample_depthwise_conv",
    "tap_sources",
]

Tensor = torch.Tensor


# ------------------------------------------------------------------------------------------------- helpers
def adaptive_pool_bins(size: int, bins: int = 3) -> list[tuple[int, int]]:
    """The input rows (or columns) ``[start, end)`` that ``nn.AdaptiveAvgPool2d(bins)`` averages into each bin.

    PyTorch's rule: ``start = floor(i * size / bins)``, ``end = ceil((i + 1) * size / bins)``. When ``size`` is not a
    multiple of ``bins`` neighbouring bins share a row: for ``size=32`` the bins are ``[(0, 11), (10, 22), (21, 32)]``.
    """
    check_int("size", size)
    check_int("bins", bins)
    return [((i * size) // bins, -((-(i + 1) * size) // bins)) for i in range(bins)]


def normalize_kernels(raw: Tensor) -> Tensor:
    """The template's normalisation ``D / (||D||_F + 1)`` per kernel: ``(..., k, k)`` -> same shape, norms < 1."""
    return raw / (raw.norm(dim=(-2, -1), keepdim=True) + 1.0)


CONV_METHODS = ("grouped", "per_sample", "shift_add", "unfold")


def per_sample_depthwise_conv(
    x: Tensor, kernels: Tensor, bias: Tensor | None = None, method: str = "grouped"
) -> Tensor:
    """Depthwise convolution with a different kernel for every image, zero padding ``k // 2``.

    ``x``: ``(B, C, H, W)``; ``kernels``: ``(B, C, k, k)`` (k odd); ``bias``: ``(C,)`` or None -> ``(B, C, H, W)``.
    ``method`` picks one of four equal formulations (:data:`CONV_METHODS`): ``"grouped"`` (one convolution with
    ``groups = B * C``, as the reference code), ``"per_sample"`` (a loop over the batch, ``groups = C``),
    ``"shift_add"`` (k^2 shifted multiply-adds), ``"unfold"`` (im2col + einsum).
    """
    if x.dim() != 4 or kernels.dim() != 4 or kernels.shape[:2] != x.shape[:2]:
        raise ValueError(
            f"expected x (B, C, H, W) and kernels (B, C, k, k) with the same B and C, "
            f"got {tuple(x.shape)} and {tuple(kernels.shape)}"
        )
    k = kernels.shape[-1]
    if kernels.shape[-2] != k or k % 2 == 0:
        raise ValueError(f"kernels must be square with an odd size, got {tuple(kernels.shape[-2:])}")
    if bias is not None and tuple(bias.shape) != (x.shape[1],):
        raise ValueError(
            f"bias must hold one value per channel, shape (C,) = ({x.shape[1]},), got shape {tuple(bias.shape)}"
        )
    B, C, H, W = x.shape
    pad = k // 2
    if method == "grouped":
        y = F.conv2d(
            x.reshape(1, B * C, H, W),  # the batch folded into channels: one group per (sample, channel)
            kernels.reshape(B * C, 1, k, k),
            None if bias is None else bias.repeat(B),
            padding=pad,
            groups=B * C,
        )
        return y.reshape(B, C, H, W)
    if method == "per_sample":
        return torch.cat(
            [F.conv2d(x[i : i + 1], kernels[i].unsqueeze(1), bias, padding=pad, groups=C) for i in range(B)]
        )
    if method == "shift_add":
        padded = F.pad(x, (pad, pad, pad, pad))  # (B, C, H + 2p, W + 2p)
        y = x.new_zeros(B, C, H, W) if bias is None else bias.view(1, C, 1, 1).expand(B, C, H, W).clone()
        for i in range(k):
            for j in range(k):
                y = y + padded[:, :, i : i + H, j : j + W] * kernels[:, :, i, j, None, None]
        return y
    if method == "unfold":
        patches = F.unfold(x, k, padding=pad).view(B, C, k * k, H * W)  # (B, C k^2, H W) -> (B, C, k^2, H W)
        y = torch.einsum("bctn,bct->bcn", patches, kernels.reshape(B, C, k * k))
        if bias is not None:
            y = y + bias.view(1, C, 1)
        return y.view(B, C, H, W)
    raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(CONV_METHODS)}")


# ------------------------------------------------------------------------------------------------- layers
def build_dynamic_dwconv(dim: int, kernel_size: int = 3, predictor: str = "adaptive") -> DynamicDWConv:
    """A dynamic depthwise convolution ``(B, dim, H, W) -> same`` with the predictor named ``predictor`` (a key of
    :data:`DWC_PREDICTORS`): ``DWC_PREDICTORS[predictor](dim, kernel_size)``. Raises ``ValueError`` for an unknown
    name, listing the valid ones."""
    return _predictor_class(predictor)(dim, kernel_size)


def _predictor_class(name: object) -> type[DynamicDWConv]:
    if not isinstance(name, str) or name not in DWC_PREDICTORS:
        raise ValueError(f"unknown predictor {name!r}; valid predictors: {', '.join(DWC_PREDICTORS)}")
    return DWC_PREDICTORS[name]


class DynamicDWConv(nn.Module):
    """A depthwise k x k convolution whose kernels may be predicted from the input: ``(B, C, H, W) -> same``.

    The base class of every predictor: build a layer with its class, e.g. ``AdaptiveDWConv(192)``, or by name with
    :func:`build_dynamic_dwconv` (``build_dynamic_dwconv(dim, kernel_size=3, predictor="adaptive")``); every class of
    :data:`DWC_PREDICTORS` is a subclass (so ``isinstance(layer, DynamicDWConv)`` holds). Any ``H, W >= 1`` works.

    Kernels of each image, all ``(B, C, k, k)``: :meth:`raw_kernels` (the predictor's output ``D``),
    :meth:`dynamic_kernels` (``D / (||D||_F + 1)``, norm < 1 per sample and channel), :meth:`predicted_kernels`
    (``K0 + dynamic``: the kernels the forward pass applies).
    """

    #: The predictor's name in :data:`DWC_PREDICTORS` (set by each subclass).
    predictor = ""

    def __init__(self, dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        if type(self) is DynamicDWConv:
            raise TypeError("DynamicDWConv is the base class of the predictors: build a layer by name with "
                            "build_dynamic_dwconv(dim, kernel_size=3, predictor='adaptive'), or with a predictor's "
                            f"class, e.g. AdaptiveDWConv(dim); predictors: {', '.join(DWC_PREDICTORS)}")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive int (the channel count C), got {dim!r}")
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}")
        self.dim, self.kernel_size = dim, kernel_size
        #: False forces the predicted part to zero in the forward pass: the static kernel K0 alone (chapter 08)
        self.predicting = True

    def extra_repr(self) -> str:
        return f"dim={self.dim}, kernel_size={self.kernel_size}, predictor={self.predictor!r}"

    # -- the static part K0 (C, 1, k, k) and bias (C,); subclasses name them as their state dict needs
    @property
    def static_kernel(self) -> Tensor:
        return self.w

    @property
    def static_bias(self) -> Tensor:
        return self.b

    # -- what each predictor defines
    def _raw(self, x: Tensor) -> Tensor:
        """The prediction D: ``(B, C, H, W) -> (B, C, k, k)`` (no input checks)."""
        raise NotImplementedError

    def _dynamic(self, x: Tensor) -> Tensor:
        """The dynamic part added to K0: ``(B, C, H, W) -> (B, C, k, k)``; by default the template's normalisation."""
        return normalize_kernels(self._raw(x))

    # -- public API
    def _check(self, x: object) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor (B, C, H, W), got {type(x).__name__}")
        if x.dim() != 4:
            raise ValueError(f"expected a 4-D input (B, C, H, W), got shape {tuple(x.shape)} ({x.dim()}-D)")
        if x.shape[1] != self.dim:
            raise ValueError(f"expected {self.dim} channels (B, {self.dim}, H, W), got shape {tuple(x.shape)}")
        if min(x.shape) < 1:
            raise ValueError(f"expected B, H, W >= 1, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"expected a floating-point input, got dtype {x.dtype}")

    def raw_kernels(self, x: Tensor) -> Tensor:
        """The predictor's output D for each image, before normalisation: ``(B, C, H, W) -> (B, C, k, k)``."""
        self._check(x)
        return self._raw(x)

    def dynamic_kernels(self, x: Tensor) -> Tensor:
        """The dynamic part of each image's kernels (Frobenius norm < 1 per channel): ``-> (B, C, k, k)``."""
        self._check(x)
        return self._dynamic(x)

    def predicted_kernels(self, x: Tensor) -> Tensor:
        """The kernels applied to each image, ``K0 + dynamic``: ``(B, C, H, W) -> (B, C, k, k)``."""
        self._check(x)
        static = self.static_kernel.squeeze(1)  # (C, k, k)
        if not self.predicting:
            return static.expand(x.shape[0], *static.shape)
        return self._dynamic(x) + static  # (B, C, k, k) + (C, k, k)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``: one grouped conv (groups = B * C) with each image's kernels."""
        self._check(x)
        if not self.predicting:  # the static kernel K0 for every image: one ordinary depthwise conv
            return F.conv2d(x, self.static_kernel, self.static_bias, padding=self.kernel_size // 2, groups=self.dim)
        return per_sample_depthwise_conv(x, self._dynamic(x) + self.static_kernel.squeeze(1), self.static_bias)

    def zero_init_prediction(self) -> None:
        """Make the predicted part exactly zero for every input while it can still learn (chapter 08): the
        predictor's last layer is zeroed, so its output is zero and its gradient (through the non-zero hidden
        activations) is not."""
        last = getattr(self, "wfm", None)
        if self.predictor in ("static", "amp_dir") or not isinstance(last, nn.Sequential):
            why = "predicts nothing" if self.predictor == "static" else "normalises the direction of a zero prediction"
            raise ValueError(f"zero_init_prediction: the {self.predictor!r} predictor {why}; it works for adaptive, "
                             "gap and conv")
        with torch.no_grad():
            for p in last[-1].parameters():
                p.zero_()


class _WithStaticKernel(DynamicDWConv):
    """Holds ``w`` (C, 1, k, k) and ``b`` (C,) initialised as the reference (trunc-normal, std 0.02)."""

    def __init__(self, dim: int, kernel_size: int = 3) -> None:
        super().__init__(dim, kernel_size)
        # randn first, trunc-normal after the predictor is built: the reference's order of random draws
        self.w = nn.Parameter(torch.randn(dim, 1, kernel_size, kernel_size))
        self.b = nn.Parameter(torch.randn(dim))
        self._build_predictor()
        nn.init.trunc_normal_(self.w, std=0.02)
        nn.init.trunc_normal_(self.b, std=0.02)

    def _build_predictor(self) -> None:
        raise NotImplementedError


class StaticDWConv(DynamicDWConv):
    """``static``: ``nn.Conv2d(C, C, k, padding=k // 2, groups=C)``, same init and state-dict keys ``weight, bias``."""

    predictor = "static"

    def __init__(self, dim: int, kernel_size: int = 3) -> None:
        super().__init__(dim, kernel_size)
        conv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)  # PyTorch's default init
        self.weight, self.bias = conv.weight, conv.bias

    @property
    def static_kernel(self) -> Tensor:
        return self.weight

    @property
    def static_bias(self) -> Tensor:
        return self.bias

    def _raw(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], self.dim, self.kernel_size, self.kernel_size)

    _dynamic = _raw

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        return F.conv2d(x, self.weight, self.bias, padding=self.kernel_size // 2, groups=self.dim)


class AdaptiveDWConv(_WithStaticKernel):
    """``adaptive`` (the released layer, reference ``DynCnn``): tap (i, j) of each kernel from region (i, j).

    ``P = AdaptiveAvgPool2d(k)(X)`` (B, C, k, k); ``D = Conv1x1_noBias(GELU(Conv1x1(P)))`` (B, C, k, k).
    """

    predictor = "adaptive"

    def _build_predictor(self) -> None:
        self.pool = nn.AdaptiveAvgPool2d(self.kernel_size)
        self.wfm = nn.Sequential(
            nn.Conv2d(self.dim, self.dim, 1), nn.GELU(), nn.Conv2d(self.dim, self.dim, 1, bias=False)
        )

    def _raw(self, x: Tensor) -> Tensor:
        return self.wfm(self.pool(x))  # (B, C, H, W) -> (B, C, k, k) -> (B, C, k, k)


class GapDWConv(_WithStaticKernel):
    """``gap`` (the course's reconstruction): every tap from one global vector, the channel means of X.

    ``D = Linear(h, k^2 C)(GELU(Linear(C, h)(GAP(X))))`` reshaped to (B, C, k, k), with ``h = max(1, C // 4)``.
    """

    predictor = "gap"

    def _build_predictor(self) -> None:
        hidden = max(1, self.dim // 4)
        self.wfm = nn.Sequential(
            nn.Linear(self.dim, hidden), nn.GELU(), nn.Linear(hidden, self.dim * self.kernel_size**2)
        )

    def _raw(self, x: Tensor) -> Tensor:
        k = self.kernel_size
        return self.wfm(x.mean(dim=(2, 3))).view(x.shape[0], self.dim, k, k)  # (B, C) -> (B, C k^2) -> (B, C, k, k)


class AmpDirDWConv(AdaptiveDWConv):
    """``amp_dir`` (the course's reconstruction): amplitude and direction predicted separately.

    Direction: the adaptive prediction scaled to unit Frobenius norm per channel (from region (i, j) for tap (i, j));
    amplitude: ``a = sigmoid(Linear(C, C)(GAP(X)))`` in (0, 1), one per channel. Dynamic part ``a * direction``,
    so its norm is ``a < 1`` (in float32 the sigmoid rounds to 1.0 once its input exceeds about 16.6).
    """

    predictor = "amp_dir"

    def _build_predictor(self) -> None:
        super()._build_predictor()
        self.amp = nn.Linear(self.dim, self.dim)

    def amplitudes(self, x: Tensor) -> Tensor:
        """The per-channel amplitude of each image's dynamic kernel: ``(B, C, H, W) -> (B, C)``, in (0, 1)."""
        self._check(x)
        return self._amplitudes(x)

    def _amplitudes(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.amp(x.mean(dim=(2, 3))))  # (B, C) -> (B, C)

    def _dynamic(self, x: Tensor) -> Tensor:
        raw = self._raw(x)
        direction = F.normalize(raw.flatten(2), dim=-1).view_as(raw)  # unit norm per (sample, channel)
        return self._amplitudes(x)[:, :, None, None] * direction


class ConvDWConv(AdaptiveDWConv):
    """``conv`` (the course's reconstruction): tap (i, j) from region (i, j) and its neighbouring regions.

    ``D = Conv1x1_noBias(GELU(DepthwiseConv3x3(P, padding 1)))`` over the pooled map ``P`` (B, C, k, k).
    """

    predictor = "conv"

    def _build_predictor(self) -> None:
        self.pool = nn.AdaptiveAvgPool2d(self.kernel_size)
        self.wfm = nn.Sequential(
            nn.Conv2d(self.dim, self.dim, 3, padding=1, groups=self.dim),
            nn.GELU(),
            nn.Conv2d(self.dim, self.dim, 1, bias=False),
        )


#: Every predictor, by name, in the order the course introduces them.
DWC_PREDICTORS: dict[str, type[DynamicDWConv]] = {
    "static": StaticDWConv,
    "gap": GapDWConv,
    "adaptive": AdaptiveDWConv,
    "amp_dir": AmpDirDWConv,
    "conv": ConvDWConv,
}

#: Parameter counts at k = 3 as formulas in C (``gap``'s assumes C divisible by 4).
PARAMETER_FORMULAS = {
    "static": "10C",
    "gap": "2.5C² + 19.25C",
    "adaptive": "2C² + 11C",
    "amp_dir": "3C² + 12C",
    "conv": "C² + 20C",
}


def parameter_count(predictor: str, dim: int, kernel_size: int = 3) -> int:
    """The closed-form parameter count of a layer (counted by hand, checked against the modules in the tests)."""
    _predictor_class(predictor)
    check_int("dim", dim)
    check_int("kernel_size", kernel_size)
    c, t = dim, kernel_size**2  # channels, taps per kernel
    static = t * c + c  # K0 and bias
    hidden = max(1, c // 4)
    return {
        "static": static,
        "gap": static + (c * hidden + hidden) + (hidden * t * c + t * c),
        "adaptive": static + (c * c + c) + c * c,
        "amp_dir": static + (c * c + c) + c * c + (c * c + c),
        "conv": static + (9 * c + c) + c * c,
    }[predictor]


def tap_sources(layer: DynamicDWConv, size: tuple[int, int], tap: tuple[int, int], seed: int = 0) -> Tensor:
    """Which input pixels tap ``(i, j)`` of the raw prediction ``D`` reads: ``(H, W)`` map, |gradient| summed.

    The gradient of ``D[:, :, i, j].sum()`` with respect to a random input ``(1, C, H, W)`` (seeded), absolute
    value summed over channels. Zero means "this pixel does not influence that tap" (for ``static``: everywhere).
    ``size`` is ``(H, W)``, positive ints; ``tap`` is ``(i, j)`` with ``0 <= i, j < kernel_size`` (no wrap-around).
    """
    k = layer.kernel_size
    if not _is_int_pair(size, low=1):
        raise ValueError(f"size must be a pair of positive ints (H, W), got {size!r}")
    if not _is_int_pair(tap, low=0) or max(tap) >= k:
        raise ValueError(f"tap must be a pair (i, j) of ints in 0..{k - 1} (the kernel is {k}x{k}), got {tap!r}")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, layer.dim, *size, generator=gen, requires_grad=True)
    raw = layer.raw_kernels(x)
    if not raw.requires_grad:  # static: no prediction, nothing is read
        return torch.zeros(size)
    (grad,) = torch.autograd.grad(raw[:, :, tap[0], tap[1]].sum(), x)
    return grad.abs().sum(dim=(0, 1))  # (1, C, H, W) -> (H, W)


def _is_int_pair(value: object, low: int) -> bool:
    return (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in value)
    )


def flop_counts(layer: DynamicDWConv, x: Tensor) -> dict[str, int]:
    """FLOPs counted by ``FlopCounterMode`` (matmuls and convolutions; pooling and norms are not counted).

    Returns ``prediction`` (computing the dynamic kernels), ``convolution`` (the rest of the forward pass) and
    ``total`` (the forward pass), for the whole batch ``x`` (B, C, H, W).
    """
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            layer.dynamic_kernels(x)
        prediction = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter:
            layer(x)
        total = counter.get_total_flops()
    return {"prediction": prediction, "convolution": total - prediction, "total": total}

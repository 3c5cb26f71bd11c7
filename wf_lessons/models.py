"""WeightFormer, its DeiT-style attention baseline, and the named configurations of the course.

``WeightFormer`` follows the reference code (``model/wfm.py`` of LeapLabTHU/WeightFormer;
``chapters/paper_notes.md``, "The architecture") exactly
when configured like it, quirks included:

- patch embedding (a conv with kernel = stride = patch) -> LayerNorm ``init_norm`` -> blocks -> LayerNorm
  ``norm`` -> mean over tokens -> linear head; no position embedding, no class token, no dropout;
- block ``i`` is *dynamic* when ``(i + 2) % 3 == 0`` (0-indexed blocks 1, 4, 7, ...), *static* otherwise;
- a dynamic block first **overwrites** the residual stream with ``norm1(x)`` (not a pre-norm on a branch), then
  adds a dynamic depthwise conv and a dynamic-linear MLP; a static block adds a plain depthwise 3×3 conv (no norm
  before it) and a plain MLP;
- drop-path acts on the MLP branch only, with a linear ramp over depth; every LayerNorm has eps 1e-6.

Its state-dict keys are those of the reference code, so :func:`load_reference_state_dict` loads the authors'
ImageNet checkpoints. Unlike the reference, non-square images work: the token grid is passed to every layer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import StochasticDepth

from wf_lessons.attention import softmax_attention
from wf_lessons.checks import check_fraction, check_int, check_positive
from wf_lessons.dynamic_dwconv import DWC_PREDICTORS, DynamicDWConv, build_dynamic_dwconv
from wf_lessons.dynamic_linear import LINEAR_PREDICTORS, DynamicLinear, build_dynamic_linear

LN_EPS = 1e-6


#: ``predict`` values of :class:`WeightFormer`: which predictions the forward pass computes (the others are zero).
PREDICT = ("all", "linear", "dwc", "none")
#: ``prediction_init`` values of :class:`WeightFormer`: the reference initialisation, or every prediction zero.
PREDICTION_INITS = ("reference", "zero")


def reference_dynamic_blocks(depth: int) -> tuple[int, ...]:
    """Indices of the dynamic blocks in the reference model: ``i`` with ``(i + 2) % 3 == 0``."""
    return tuple(i for i in range(depth) if (i + 2) % 3 == 0)


def drop_path_rates(drop_path: float, depth: int) -> list[float]:
    """Per-block drop-path rates ramping linearly from 0 to ``drop_path`` (plain floats: works on the meta device)."""
    return [drop_path * i / max(depth - 1, 1) for i in range(depth)]


def _check_architecture(
    img_size: int, patch_size: int, in_chans: int, num_classes: int, embed_dim: int, depth: int, mlp_ratio: float,
    drop_path: float,
) -> None:
    """The checks both models share, so that a bad setting fails when the model is built, naming the argument."""
    for name, value in (("img_size", img_size), ("patch_size", patch_size), ("in_chans", in_chans),
                        ("num_classes", num_classes), ("embed_dim", embed_dim)):
        check_int(name, value)
    check_int("depth", depth, low=0)  # 0: the stem, final norm and head alone (chapter 04 counts them so)
    if int(embed_dim * check_positive("mlp_ratio", mlp_ratio)) < 1:
        raise ValueError(f"mlp_ratio={mlp_ratio} leaves no hidden unit at embed_dim={embed_dim}")
    check_fraction("drop_path", drop_path)


def _check_predictor(name: str, value: object, valid: Mapping[str, Any]) -> None:
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {sorted(valid)}")


def _check_dynamic_blocks(dynamic_blocks: object, depth: int) -> tuple[int, ...]:
    """The indices of the dynamic blocks, checked: distinct ints in ``0..depth - 1``."""
    if isinstance(dynamic_blocks, (tuple, list, range)):
        blocks = tuple(dynamic_blocks)
        if all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < depth for i in blocks):
            if len(set(blocks)) == len(blocks):
                return blocks
    raise ValueError(
        f"dynamic_blocks must be a tuple or list of distinct block indices in 0..{depth - 1}, got {dynamic_blocks!r}"
    )


def _init_weights(module: nn.Module) -> None:
    """The reference initialisation: Linear weights trunc-normal(0.02) with zero bias; LayerNorm 1 and 0."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class PatchEmbed(nn.Module):
    """Non-overlapping p×p patches to tokens: images ``(B, 3, H, W)`` -> tokens ``(B, N, C)``, grid ``(H/p, W/p)``."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size, self.in_chans = patch_size, in_chans
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: Tensor) -> tuple[Tensor, tuple[int, int]]:
        if images.ndim != 4 or images.shape[1] != self.in_chans:
            raise ValueError(f"expected images (B, {self.in_chans}, H, W), got shape {tuple(images.shape)}")
        if not images.is_floating_point():  # a dtype test: free, no look at the values (no device sync)
            raise ValueError(f"expected float images (B, {self.in_chans}, H, W), standardised by "
                             f"wf_lessons.data.normalize; got {images.dtype} images: pass data.normalize(images)"
                             + (" (cifar10() returns uint8 images, 0..255)" if images.dtype == torch.uint8 else ""))
        h, w = images.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"image size {h}x{w} is not a multiple of the patch size {self.patch_size}")
        x = self.proj(images)  # (B, C, H/p, W/p)
        return x.flatten(2).transpose(1, 2), (x.shape[2], x.shape[3])  # (B, N, C)


def _tokens_to_map(x: Tensor, hw: tuple[int, int]) -> Tensor:
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *hw)  # (B, N, C) -> (B, C, H, W)


class WeightFormerBlock(nn.Module):
    """One block of the reference model, static or dynamic. Tokens ``(B, N, C)`` on an ``hw`` grid -> same shape.

    State-dict keys follow the reference: ``norm1`` (dynamic only), ``dwc``, ``norm2``, ``linear1``, ``linear2``.
    """

    def __init__(
        self,
        dim: int,
        mlp_ratio: float = 4.0,
        dynamic: bool = False,
        linear_predictor: str = "bilateral",
        dwc_predictor: str = "adaptive",
        drop_path: float = 0.0,
        rate: int = 4,
    ) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.dynamic = dynamic
        if dynamic:
            self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
            self.dwc = build_dynamic_dwconv(dim, kernel_size=3, predictor=dwc_predictor)
            self.linear1 = build_dynamic_linear(dim, hidden, predictor=linear_predictor, rate=rate)
        else:
            self.dwc = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim)
            self.linear1 = nn.Linear(dim, hidden)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.linear2 = nn.Linear(hidden, dim)
        self.drop_path = StochasticDepth(drop_path, mode="row")

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        if self.dynamic:
            x = self.norm1(x)  # the reference overwrites the residual stream here
        x = x + self.dwc(_tokens_to_map(x, hw)).flatten(2).transpose(1, 2)
        h = self.norm2(x)
        h = self.linear1(h, hw) if self.dynamic else self.linear1(h)
        return x + self.drop_path(self.linear2(F.gelu(h)))


class WeightFormer(nn.Module):
    """The WeightFormer classifier: images ``(B, in_chans, H, W)`` -> logits ``(B, num_classes)``.

    ``dynamic_blocks`` lists the indices of the dynamic blocks (default: the reference pattern,
    :func:`reference_dynamic_blocks`); ``()`` gives the all-static ConvNet/MLP baseline. ``linear_predictor`` and
    ``dwc_predictor`` pick the weight predictors of the dynamic blocks (chapters 02 and 03). ``img_size`` is only
    the size the model is built for; any size that is a multiple of ``patch_size`` works.

    Chapter 08's controls (the course's own, not the reference's): ``predict`` says which predictions the forward
    pass computes, ``"all"`` (the reference), ``"linear"`` or ``"dwc"`` (the other kind forced to zero) or
    ``"none"`` (every ``Ŵ`` and ``K̂`` zero), leaving structure, initialisation and parameters as they are;
    ``prediction_init="zero"`` starts every prediction at exactly zero (the network then computes its
    ``predict="none"`` twin) and lets it learn from there.
    """

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 192,
        depth: int = 17,
        mlp_ratio: float = 4.0,
        linear_predictor: str = "bilateral",
        dwc_predictor: str = "adaptive",
        dynamic_blocks: Sequence[int] | None = None,
        drop_path: float = 0.0,
        predict: str = "all",
        prediction_init: str = "reference",
    ) -> None:
        super().__init__()
        _check_architecture(img_size, patch_size, in_chans, num_classes, embed_dim, depth, mlp_ratio, drop_path)
        if predict not in PREDICT:
            raise ValueError(f"unknown predict {predict!r}; valid: {list(PREDICT)}")
        if prediction_init not in PREDICTION_INITS:
            raise ValueError(f"unknown prediction_init {prediction_init!r}; valid: {list(PREDICTION_INITS)}")
        _check_predictor("linear_predictor", linear_predictor, LINEAR_PREDICTORS)
        _check_predictor("dwc_predictor", dwc_predictor, DWC_PREDICTORS)
        dynamic = reference_dynamic_blocks(depth) if dynamic_blocks is None else _check_dynamic_blocks(
            dynamic_blocks, depth
        )
        self.img_size, self.patch_size, self.num_classes = img_size, patch_size, num_classes
        self.dynamic_blocks = dynamic
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.init_norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        rates = drop_path_rates(drop_path, depth)
        self.blocks = nn.ModuleList(
            WeightFormerBlock(embed_dim, mlp_ratio, i in dynamic, linear_predictor, dwc_predictor, rates[i])
            for i in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.head = nn.Linear(embed_dim, num_classes)
        self.apply(_init_weights)
        for layer in dynamic_layers(self):
            layer.predicting = predict in ("all", "linear" if isinstance(layer, DynamicLinear) else "dwc")
            if prediction_init == "zero":  # after _init_weights, which re-draws every nn.Linear
                layer.zero_init_prediction()

    def forward_features(self, images: Tensor) -> Tensor:
        """The last feature map, after the final LayerNorm: ``(B, C, H/p, W/p)``."""
        x, hw = self.patch_embed(images)
        x = self.init_norm(x)
        for block in self.blocks:
            x = block(x, hw)
        return _tokens_to_map(self.norm(x), hw)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.forward_features(images).mean(dim=(2, 3)))


class Attention(nn.Module):
    """Multi-head softmax self-attention: ``(B, N, C)`` -> ``(B, N, C)``.

    ``backend="fused"`` calls ``scaled_dot_product_attention`` (flash or memory-efficient kernels where available);
    ``backend="math"`` computes the explicit N×N matrix (:func:`wf_lessons.attention.softmax_attention`).
    """

    BACKENDS = ("fused", "math")

    def __init__(self, dim: int, num_heads: int, backend: str = "fused") -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.backend = num_heads, backend
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        if value not in self.BACKENDS:
            raise ValueError(f"unknown attention backend {value!r}; valid: {self.BACKENDS}")
        self._backend = value

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, h, N, d)
        if self.backend == "fused":
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            out = softmax_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))  # (B, h, N, d) -> (B, N, C)


class ViTBlock(nn.Module):
    """Pre-norm transformer block (DeiT): attention and MLP branches, drop-path on both. ``(B, N, C)``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float, backend: str) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads, backend)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = StochasticDepth(drop_path, mode="row")

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class ViT(nn.Module):
    """The DeiT-style softmax-attention baseline, with WeightFormer's stem and pooled head.

    Patch embedding -> + learned position embedding -> pre-norm transformer blocks -> LayerNorm -> mean over
    tokens -> linear head. No class token, so the head is the same as WeightFormer's. Images of another size than
    ``img_size`` get the position embedding resized bicubically to their grid (as DeiT does at higher resolution).
    ``attn_backend`` is ``"fused"`` or ``"math"`` (see :class:`Attention`); change it later with
    :meth:`set_attn_backend`.
    """

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        attn_backend: str = "fused",
    ) -> None:
        super().__init__()
        _check_architecture(img_size, patch_size, in_chans, num_classes, embed_dim, depth, mlp_ratio, drop_path)
        if img_size % patch_size:  # the position embedding is learned on the img_size / patch_size grid
            raise ValueError(
                f"img_size must be a multiple of patch_size={patch_size} (at least one whole patch), got {img_size}"
            )
        if embed_dim % check_int("num_heads", num_heads):
            raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        self.img_size, self.patch_size, self.num_classes = img_size, patch_size, num_classes
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.grid = (img_size // patch_size, img_size // patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        rates = drop_path_rates(drop_path, depth)
        self.blocks = nn.ModuleList(
            ViTBlock(embed_dim, num_heads, mlp_ratio, rates[i], attn_backend) for i in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.head = nn.Linear(embed_dim, num_classes)
        self.apply(_init_weights)

    @property
    def attn_backend(self) -> str:
        """The attention backend of the blocks: ``"fused"`` or ``"math"``."""
        return self.blocks[0].attn.backend

    def set_attn_backend(self, backend: str) -> ViT:
        """Switch every block to the ``"fused"`` or ``"math"`` attention backend; returns the model."""
        for block in self.blocks:
            block.attn.backend = backend
        return self

    def position_embedding(self, hw: tuple[int, int]) -> Tensor:
        """The learned position embedding ``(1, N, C)`` for an ``hw`` token grid (resized when needed)."""
        if tuple(hw) == self.grid:
            return self.pos_embed
        grid = _tokens_to_map(self.pos_embed, self.grid)  # (1, C, H0, W0)
        resized = F.interpolate(grid, size=hw, mode="bicubic", align_corners=False)
        return resized.flatten(2).transpose(1, 2)

    def forward_features(self, images: Tensor) -> Tensor:
        """The last feature map, after the final LayerNorm: ``(B, C, H/p, W/p)``."""
        x, hw = self.patch_embed(images)
        x = x + self.position_embedding(hw)
        for block in self.blocks:
            x = block(x)
        return _tokens_to_map(self.norm(x), hw)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.forward_features(images).mean(dim=(2, 3)))


# ------------------------------------------------------------------------------------------ named models
CIFAR = {"img_size": 32, "patch_size": 2, "num_classes": 10}
#: name -> (class, keyword arguments). ``wf-cifar``'s depth 13 gives ≈5.0M parameters at width 192 and 256
#: tokens; ``deit-cifar`` takes depth 11 (with 3 heads of 64) to match it within 1%.
CONFIGS: dict[str, tuple[type[nn.Module], dict[str, Any]]] = {
    "wfm-t": (WeightFormer, {"embed_dim": 192, "depth": 17}),
    "wfm-s": (WeightFormer, {"embed_dim": 384, "depth": 17, "drop_path": 0.2}),
    "wfm-b": (WeightFormer, {"img_size": 448, "embed_dim": 384, "depth": 17, "drop_path": 0.2}),
    "deit-t": (ViT, {"embed_dim": 192, "depth": 12, "num_heads": 3}),
    "deit-s": (ViT, {"embed_dim": 384, "depth": 12, "num_heads": 6}),
    "deit-b": (ViT, {"embed_dim": 768, "depth": 12, "num_heads": 12}),
    "wf-cifar": (WeightFormer, {**CIFAR, "embed_dim": 192, "depth": 13}),
    "deit-cifar": (ViT, {**CIFAR, "embed_dim": 192, "depth": 11, "num_heads": 3}),
    # quick mode: the same architectures, small enough to train on two CPU cores in a few minutes
    "wf-cifar-quick": (WeightFormer, {**CIFAR, "patch_size": 4, "embed_dim": 96, "depth": 5}),
    "deit-cifar-quick": (ViT, {**CIFAR, "patch_size": 4, "embed_dim": 96, "depth": 4, "num_heads": 3}),
    # the quick-cpu training preset (wf_lessons.train): a few epochs of real CIFAR-10 on two CPU cores. Explicit
    # ("math") attention: at 64 tokens it is faster on a CPU than the fused kernel, most of all under bf16
    "wf-cifar-tiny": (WeightFormer, {**CIFAR, "patch_size": 4, "embed_dim": 64, "depth": 4}),
    "deit-cifar-tiny": (ViT, {**CIFAR, "patch_size": 4, "embed_dim": 64, "depth": 4, "num_heads": 2,
                              "attn_backend": "math"}),
    # the cpu training preset: the longest run a learner makes on a laptop CPU (blocks 1 and 4 dynamic); its DeiT
    # takes depth 5 to match the parameter count within 5%
    "wf-cifar-cpu": (WeightFormer, {**CIFAR, "patch_size": 4, "embed_dim": 64, "depth": 6}),
    # the same network on a 16×16 token grid (patch 2): chapter 08's regime where 3×3 convolutions no longer see
    # the whole image
    "wf-cifar-cpu-p2": (WeightFormer, {**CIFAR, "embed_dim": 64, "depth": 6}),
    "deit-cifar-cpu": (ViT, {**CIFAR, "patch_size": 4, "embed_dim": 64, "depth": 5, "num_heads": 2,
                             "attn_backend": "math"}),
    # the predictor study (wf_lessons.ablate): half the blocks dynamic, so that the predictor can matter
    "wf-cifar-study": (WeightFormer, {**CIFAR, "patch_size": 4, "embed_dim": 64, "depth": 4,
                                      "dynamic_blocks": (1, 3)}),
}
MODEL_NAMES = tuple(CONFIGS)


def build_model(name: str, **overrides: Any) -> nn.Module:
    """A model from :data:`CONFIGS` by name, with keyword overrides (e.g. ``drop_path=0.1``, ``num_classes=100``)."""
    if not isinstance(name, str) or name not in CONFIGS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODEL_NAMES)}")
    cls, kwargs = CONFIGS[name]
    try:
        return cls(**{**kwargs, **overrides})
    except TypeError as error:
        raise TypeError(f"bad override for {name!r} ({cls.__name__}): {error}") from None


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ------------------------------------------------------------------------------- reference checkpoints
def load_reference_state_dict(model: nn.Module, state_dict: Mapping[str, Any]) -> nn.Module:
    """Load a checkpoint saved by the official WeightFormer code into ``model``; returns the model.

    The layout is described in ``chapters/paper_notes.md``, "Checkpoint layout".

    Accepts the bare state dict or the ``{"model": state_dict, ...}`` wrapper the reference training saves. The
    course's module layout mirrors the reference, so keys map one to one; anything missing, unexpected or of the
    wrong shape raises a ``ValueError`` listing every offending key (nothing is loaded then). So does a checkpoint
    holding NaN or infinite values, and a model whose predictors are not the released ones (``bilateral`` and
    ``adaptive``): the ``linear``, ``nonlinear`` and ``gap`` linear predictors have the same keys and shapes as
    ``bilateral``, and would take its weights into layers that compute something else.
    """
    if isinstance(state_dict, Mapping) and "model" in state_dict and isinstance(state_dict["model"], Mapping):
        state_dict = state_dict["model"]
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"expected a state dict (a mapping of names to tensors), got {type(state_dict).__name__}")
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))

    def shape(value: Any) -> tuple[int, ...] | str:
        return tuple(value.shape) if isinstance(value, Tensor) else f"a {type(value).__name__}, not a tensor"

    misshaped = sorted(
        f"{k}: checkpoint {shape(state_dict[k])}, model {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if shape(state_dict[k]) != tuple(own[k].shape)
    )
    if missing or unexpected or misshaped:
        lines = [f"the checkpoint does not fit this {type(model).__name__}:"]
        for title, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped)):
            if keys:
                lines.append(f"  {title} ({len(keys)}): " + ", ".join(keys[:20]) + (" ..." if len(keys) > 20 else ""))
        lines.append("  (the reference checkpoints need linear_predictor='bilateral', dwc_predictor='adaptive' and the "
                     "reference dynamic_blocks)")
        raise ValueError("\n".join(lines))
    released = {DynamicLinear: ("linear_predictor", "bilateral"), DynamicDWConv: ("dwc_predictor", "adaptive")}
    others = sorted({f"{kind}={layer.predictor!r}" for layer in dynamic_layers(model)
                     for base, (kind, name) in released.items() if isinstance(layer, base) and layer.predictor != name})
    if others:
        raise ValueError(f"the reference checkpoints are of the released predictors (linear_predictor='bilateral', "
                         f"dwc_predictor='adaptive'), but this {type(model).__name__} has {', '.join(others)}: its "
                         "keys and shapes fit, what its layers compute does not; build the model with the released "
                         "predictors (nothing was loaded)")
    bad = sorted(k for k, v in state_dict.items() if v.is_floating_point() and not torch.isfinite(v).all())
    if bad:
        raise ValueError(f"the checkpoint holds NaN or infinite values ({len(bad)} tensor{'s' * (len(bad) > 1)}): "
                         f"{', '.join(bad[:20])}{' ...' if len(bad) > 20 else ''}; nothing was loaded")
    model.load_state_dict(state_dict, strict=True)
    return model


def dynamic_layers(model: nn.Module) -> list[DynamicLinear | DynamicDWConv]:
    """Every dynamic linear layer and dynamic depthwise conv of ``model`` (static slots included), in order."""
    return [m for m in model.modules() if isinstance(m, (DynamicLinear, DynamicDWConv))]


@contextlib.contextmanager
def predictions_off(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the ``with`` block every prediction of ``model`` is forced to zero (``predicting = False`` on each
    dynamic layer); on leaving, each layer gets its own setting back. For "how much does a trained model rely on
    its predictions?" (chapter 08)."""
    layers = dynamic_layers(model)
    before = [layer.predicting for layer in layers]
    try:
        for layer in layers:
            layer.predicting = False
        yield model
    finally:
        for layer, setting in zip(layers, before):
            layer.predicting = setting


def predicted_weights(model: WeightFormer, images: Tensor) -> dict[int, dict[str, Tensor]]:
    """For each dynamic block ``i``: ``{"linear": (B, C, 4C) weight W0 + Ŵ, "dwc": (B, C, k, k) kernels}``.

    Runs the model once, capturing each dynamic layer's input with forward hooks. Only a WeightFormer predicts
    weights: any other model raises ``TypeError``. A layer whose ``predicting`` is off gives its static weight.
    """
    if not isinstance(model, WeightFormer):
        raise TypeError(
            f"predicted_weights needs a WeightFormer (its dynamic blocks predict weights), got {type(model).__name__}"
        )
    inputs: dict[int, dict[str, tuple[Tensor, ...]]] = {}
    hooks: list[Any] = []

    def capture(i: int, kind: str) -> Callable[..., None]:
        def hook(_module: nn.Module, args: tuple[Tensor, ...]) -> None:
            inputs.setdefault(i, {})[kind] = args

        return hook

    for i, block in enumerate(model.blocks):
        if block.dynamic:
            hooks.append(block.linear1.register_forward_pre_hook(capture(i, "linear")))
            hooks.append(block.dwc.register_forward_pre_hook(capture(i, "dwc")))
    try:
        with torch.no_grad():
            model(images)
    finally:
        for h in hooks:
            h.remove()
    with torch.no_grad():
        return {
            i: {
                "linear": model.blocks[i].linear1.predicted_weight(*inputs[i]["linear"]),
                "dwc": model.blocks[i].dwc.predicted_kernels(*inputs[i]["dwc"]),
            }
            for i in sorted(inputs)
        }


def prediction_norm_ratios(model: WeightFormer, images: Tensor) -> dict[int, dict[str, float]]:
    """How large the predictions are next to the static weights, per dynamic block ``i``:
    ``{"linear": mean_b ‖Ŵ_b‖ / ‖W0‖, "dwc": mean_b ‖K̂_b‖ / ‖K0‖}`` (Frobenius norms, mean over the images
    ``(B, 3, H, W)``). 0 where a slot is static or its prediction is off; in eval mode, float32."""
    was_training = model.training
    model.eval()
    try:
        weights = predicted_weights(model, images)
    finally:
        model.train(was_training)
    ratios = {}
    with torch.no_grad():
        for i, w in weights.items():
            block = model.blocks[i]
            w0, k0 = block.linear1.static_weight(), block.dwc.static_kernel.squeeze(1)  # (C, D), (C, k, k)
            ratios[i] = {"linear": ((w["linear"] - w0).flatten(1).norm(dim=1) / w0.norm()).mean().item(),
                         "dwc": ((w["dwc"] - k0).flatten(1).norm(dim=1) / k0.norm()).mean().item()}
    return ratios


__all__ = [
    "CONFIGS",
    "MODEL_NAMES",
    "PREDICT",
    "PREDICTION_INITS",
    "ViT",
    "WeightFormer",
    "WeightFormerBlock",
    "build_model",
    "count_parameters",
    "dynamic_layers",
    "load_reference_state_dict",
    "predicted_weights",
    "prediction_norm_ratios",
    "predictions_off",
    "reference_dynamic_blocks",
]

"""Stronger training augmentations, as batched tensor ops on the batch's device (no per-image Python).

Each acts on a whole batch of normalised images ``(B, 3, H, W)`` (what :class:`wf_lessons.data.DeviceLoader`
yields) and is switched on by its own setting of :class:`BatchAugment`:

- :func:`rand_augment`: a RandAugment-style policy (Cubuk et al. 2020, as in DeiT/timm ``rand-m9-mstd0.5``): every
  image gets ``num_ops`` operations drawn at random from :data:`RAND_AUGMENT_OPS`, each at a magnitude drawn around
  ``magnitude`` (0..10). Batched: every operation is computed for the whole batch and kept where chosen. It has
  no ``equalize``/``invert`` (histogram equalisation does not batch cheaply);
- :func:`random_erasing`: each image, with probability ``p``, gets one rectangle replaced by Gaussian noise
  (Zhong et al. 2020; timm's ``mode="pixel"``);
- :func:`mixup` / :func:`cutmix` / :func:`mix`: pairs each image with another of the batch (the batch reversed)
  and blends images and labels (Zhang et al. 2018; Yun et al. 2019); labels become probabilities ``(B, K)``.

Randomness comes from two seeded sources passed in: a ``torch.Generator`` on the batch's device for per-image
draws, and a ``random.Random`` for per-batch scalars (the mixing coefficient), so nothing waits for the device and
a run is reproducible epoch by epoch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from wf_lessons.data import MEAN, STD

__all__ = [
    "RAND_AUGMENT_OPS",
    "BatchAugment",
    "cutmix",
    "from_unit",
    "mix",
    "mixup",
    "one_hot",
    "rand_augment",
    "random_erasing",
    "to_unit",
]


# --------------------------------------------------------------------------------------------- helpers
def _stats(x: Tensor) -> tuple[Tensor, Tensor]:
    mean = torch.tensor(MEAN, device=x.device, dtype=x.dtype)[:, None, None]
    std = torch.tensor(STD, device=x.device, dtype=x.dtype)[:, None, None]
    return mean, std


def to_unit(images: Tensor) -> Tensor:
    """Undo the CIFAR-10 normalisation: normalised ``(B, 3, H, W)`` -> pixel values in [0, 1] (same shape)."""
    mean, std = _stats(images)
    return images * std + mean


def from_unit(images: Tensor) -> Tensor:
    """Pixel values in [0, 1] ``(B, 3, H, W)`` -> normalised with CIFAR-10's mean and std (same shape)."""
    mean, std = _stats(images)
    return (images - mean) / std


def one_hot(labels: Tensor, num_classes: int) -> Tensor:
    """int64 labels ``(B,)`` -> float one-hot targets ``(B, K)``; float targets ``(B, K)`` pass through."""
    if labels.is_floating_point():
        if labels.ndim != 2 or labels.shape[1] != num_classes:
            raise ValueError(f"float targets must be (B, {num_classes}), got {tuple(labels.shape)}")
        return labels
    return F.one_hot(labels, num_classes).float()


def _check_images(images: Tensor) -> None:
    if not isinstance(images, Tensor) or images.ndim != 4 or not images.is_floating_point():
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"expected a float batch of images (B, C, H, W), got {got}")


def _check_probability(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")


# ------------------------------------------------------------------------------------------ mixing
def mixup(images: Tensor, targets: Tensor, lam: float) -> tuple[Tensor, Tensor]:
    """Blend each image with its partner in the reversed batch: ``lam·x + (1 - lam)·x.flip(0)``, same for targets.

    ``images`` ``(B, C, H, W)``, ``targets`` ``(B, K)`` probabilities -> same shapes; rows of targets still sum to 1.
    """
    return lam * images + (1 - lam) * images.flip(0), lam * targets + (1 - lam) * targets.flip(0)


def cutmix(images: Tensor, targets: Tensor, lam: float, rng: random.Random) -> tuple[Tensor, Tensor]:
    """Paste one box of each partner image (reversed batch) into each image; targets mixed by the kept area.

    The box covers about ``1 - lam`` of the image (centre uniform, clipped at the borders, as in CutMix); the target
    weight is the area actually kept. ``(B, C, H, W)``, ``(B, K)`` -> same shapes.
    """
    h, w = images.shape[-2:]
    cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
    cy, cx = rng.randrange(h), rng.randrange(w)
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
    mixed = images.clone()
    mixed[:, :, top:bottom, left:right] = images.flip(0)[:, :, top:bottom, left:right]
    kept = 1 - (bottom - top) * (right - left) / (h * w)
    return mixed, kept * targets + (1 - kept) * targets.flip(0)


#: The largest Beta(alpha, alpha) parameter accepted for mixup and CutMix: beyond it the mixing coefficient is 0.5
#: to within a few per cent anyway, and Python's Beta sampler does not return for huge or infinite alphas.
MAX_MIX_ALPHA = 100.0


def _check_alphas(mixup_alpha: float, cutmix_alpha: float) -> None:
    for name, alpha in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)):
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= MAX_MIX_ALPHA:
            raise ValueError(f"the {name} alpha must be a number in [0, {MAX_MIX_ALPHA:g}] (0: off), got {alpha!r}")


def mix(
    images: Tensor,
    targets: Tensor,
    rng: random.Random,
    mixup_alpha: float = 0.0,
    cutmix_alpha: float = 0.0,
    prob: float = 1.0,
    switch_prob: float = 0.5,
) -> tuple[Tensor, Tensor]:
    """Mixup or CutMix on a batch (timm's ``Mixup``, batch mode): with probability ``prob`` mix the batch.

    When both alphas are positive, CutMix is picked with probability ``switch_prob``. The coefficient ``lam`` is
    drawn from ``Beta(alpha, alpha)``. ``images`` ``(B, C, H, W)``; ``targets`` ``(B, K)`` probabilities.
    """
    _check_alphas(mixup_alpha, cutmix_alpha)
    _check_probability("prob", prob)
    if (mixup_alpha == 0 and cutmix_alpha == 0) or rng.random() >= prob:
        return images, targets
    use_cutmix = cutmix_alpha > 0 and (mixup_alpha == 0 or rng.random() < switch_prob)
    alpha = cutmix_alpha if use_cutmix else mixup_alpha
    lam = rng.betavariate(alpha, alpha)
    return cutmix(images, targets, lam, rng) if use_cutmix else mixup(images, targets, lam)


# ----------------------------------------------------------------------------------------- erasing
def random_erasing(
    images: Tensor,
    p: float,
    generator: torch.Generator | None = None,
    scale: tuple[float, float] = (0.02, 1 / 3),
    ratio: tuple[float, float] = (0.3, 3.3),
) -> Tensor:
    """With probability ``p`` per image, replace one random rectangle by standard-normal noise.

    The rectangle covers a fraction of the image drawn from ``scale`` with an aspect ratio drawn log-uniformly from
    ``ratio`` (clipped to the image). Noise N(0, 1) is what normalised pixels look like on average.
    ``(B, C, H, W)`` -> same shape and dtype.
    """
    _check_images(images)
    _check_probability("p", p)
    if p == 0:
        return images
    b, c, h, w = images.shape
    dev = images.device
    u = torch.rand(5, b, generator=generator, device=dev)  # apply?, area, log-ratio, top, left
    area = (scale[0] + (scale[1] - scale[0]) * u[1]) * h * w
    aspect = torch.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[2])
    eh = torch.sqrt(area * aspect).round().clamp(1, h)
    ew = torch.sqrt(area / aspect).round().clamp(1, w)
    top = (u[3] * (h - eh + 1)).floor()
    left = (u[4] * (w - ew + 1)).floor()
    rows = torch.arange(h, device=dev)[None, :, None]  # (1, H, 1)
    cols = torch.arange(w, device=dev)[None, None, :]  # (1, 1, W)
    inside = (
        (rows >= top[:, None, None]) & (rows < (top + eh)[:, None, None])
        & (cols >= left[:, None, None]) & (cols < (left + ew)[:, None, None])
    )  # (B, H, W)
    erase = (inside & (u[0] < p)[:, None, None])[:, None]  # (B, 1, H, W)
    noise = torch.randn(images.shape, generator=generator, device=dev, dtype=images.dtype)
    return torch.where(erase, noise, images)


# ------------------------------------------------------------------------------------ RandAugment
def _blend(image: Tensor, degenerate: Tensor, factor: Tensor) -> Tensor:
    """PIL's ImageEnhance: ``degenerate + factor·(image − degenerate)``, clipped to [0, 1]; factor ``(B,)``."""
    return (degenerate + factor[:, None, None, None] * (image - degenerate)).clamp(0, 1)


def _gray(x: Tensor) -> Tensor:
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).expand_as(x)  # (B, 1, H, W) -> (B, 3, H, W)


def _affine(x: Tensor, theta: Tensor) -> Tensor:
    """Warp each image by its 2×3 affine ``theta`` ``(B, 2, 3)`` (normalised coordinates); fill with mean grey."""
    fill = torch.tensor(MEAN, device=x.device, dtype=x.dtype)[:, None, None]
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill


def _eye(f: Tensor) -> Tensor:
    theta = torch.zeros(f.shape[0], 2, 3, device=f.device, dtype=f.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    return theta


def _rotate(x: Tensor, f: Tensor) -> Tensor:
    angle = f * math.radians(30)
    theta = _eye(f)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle), -torch.sin(angle)
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle), torch.cos(angle)
    return _affine(x, theta)


def _shear(axis: int) -> Callable[[Tensor, Tensor], Tensor]:
    def op(x: Tensor, f: Tensor) -> Tensor:
        theta = _eye(f)
        theta[:, axis, 1 - axis] = 0.3 * f
        return _affine(x, theta)

    return op


def _translate(axis: int) -> Callable[[Tensor, Tensor], Tensor]:
    def op(x: Tensor, f: Tensor) -> Tensor:
        theta = _eye(f)
        theta[:, axis, 2] = 2 * 0.45 * f  # up to 45% of the side (normalised coordinates span 2)
        return _affine(x, theta)

    return op


def _sharpness(x: Tensor, f: Tensor) -> Tensor:
    kernel = torch.tensor([[1.0, 1, 1], [1, 5, 1], [1, 1, 1]], device=x.device, dtype=x.dtype) / 13
    smooth = F.conv2d(x, kernel.expand(x.shape[1], 1, 3, 3), padding=1, groups=x.shape[1])
    smooth[..., 0, :], smooth[..., -1, :] = x[..., 0, :], x[..., -1, :]  # PIL keeps the border pixels
    smooth[..., :, 0], smooth[..., :, -1] = x[..., :, 0], x[..., :, -1]
    return _blend(x, smooth, 1 + 0.9 * f)


def _autocontrast(x: Tensor, f: Tensor) -> Tensor:
    low = x.amin(dim=(2, 3), keepdim=True)
    high = x.amax(dim=(2, 3), keepdim=True)
    scaled = (x - low) / (high - low).clamp_min(1e-3)
    return torch.where(high - low > 1e-3, scaled, x)


def _posterize(x: Tensor, f: Tensor) -> Tensor:
    bits = (8 - (4 * f.abs()).round()).clamp(4, 8)  # keep 4..8 bits
    levels = (2**bits)[:, None, None, None]
    return torch.floor(x * 255 / (256 / levels)) * (256 / levels) / 255


def _solarize(x: Tensor, f: Tensor) -> Tensor:
    threshold = (1 - f.abs())[:, None, None, None]
    return torch.where(x >= threshold, 1 - x, x)


#: name -> op(images in [0, 1] ``(B, 3, H, W)``, signed strength ``f`` ``(B,)`` in [-1, 1]) -> images in [0, 1].
#: Maximum strengths follow timm's RandAugment: rotate 30°, shear 0.3, translate 45%, enhance factors 1 ± 0.9.
RAND_AUGMENT_OPS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "identity": lambda x, f: x,
    "autocontrast": _autocontrast,
    "brightness": lambda x, f: _blend(x, torch.zeros_like(x), 1 + 0.9 * f),
    "color": lambda x, f: _blend(x, _gray(x), 1 + 0.9 * f),
    "contrast": lambda x, f: _blend(x, _gray(x).mean(dim=(1, 2, 3), keepdim=True).expand_as(x), 1 + 0.9 * f),
    "sharpness": _sharpness,
    "posterize": _posterize,
    "solarize": _solarize,
    "rotate": _rotate,
    "shear_x": _shear(0),
    "shear_y": _shear(1),
    "translate_x": _translate(0),
    "translate_y": _translate(1),
}


def _check_rand_augment(
    num_ops: int, magnitude: float, magnitude_std: float, ops: tuple[str, ...] | None
) -> tuple[str, ...]:
    ops = tuple(RAND_AUGMENT_OPS) if ops is None else tuple(ops)
    unknown = [name for name in ops if name not in RAND_AUGMENT_OPS]
    if unknown or not ops:
        raise ValueError(f"unknown RandAugment ops {unknown or ops}; valid: {list(RAND_AUGMENT_OPS)}")
    if isinstance(num_ops, bool) or not isinstance(num_ops, int) or num_ops < 0:
        raise ValueError(f"num_ops must be a non-negative int, got {num_ops!r}")
    if not 0 <= magnitude <= 10:
        raise ValueError(f"magnitude must be in [0, 10], got {magnitude!r}")
    if magnitude_std < 0:
        raise ValueError(f"magnitude_std must be >= 0, got {magnitude_std!r}")
    return ops


def rand_augment(
    images: Tensor,
    num_ops: int = 2,
    magnitude: float = 9.0,
    magnitude_std: float = 0.5,
    generator: torch.Generator | None = None,
    ops: tuple[str, ...] | None = None,
) -> Tensor:
    """RandAugment on a normalised batch ``(B, 3, H, W)`` -> same shape, as batched tensor ops.

    For each of ``num_ops`` rounds every image draws one operation uniformly from ``ops`` (default: all of
    :data:`RAND_AUGMENT_OPS`) and a strength ``N(magnitude, magnitude_std)`` clipped to [0, 10], with a random
    sign for the signed operations. Every operation runs on the whole batch and is kept where it was drawn.
    """
    _check_images(images)
    ops = _check_rand_augment(num_ops, magnitude, magnitude_std, ops)
    if num_ops == 0:
        return images
    b, dev = images.shape[0], images.device
    x = to_unit(images)
    for _ in range(num_ops):
        choice = torch.randint(len(ops), (b,), generator=generator, device=dev)
        strength = (magnitude + magnitude_std * torch.randn(b, generator=generator, device=dev)).clamp(0, 10) / 10
        sign = torch.where(torch.rand(b, generator=generator, device=dev) < 0.5, -1.0, 1.0)
        f = (strength * sign).to(x.dtype)
        out = x
        for i, name in enumerate(ops):
            out = torch.where((choice == i)[:, None, None, None], RAND_AUGMENT_OPS[name](x, f), out)
        x = out
    return from_unit(x)


# ------------------------------------------------------------------------------------- the pipeline
@dataclass(frozen=True)
class BatchAugment:
    """The switchable stronger augmentations, applied in timm's order: RandAugment, erasing, then mixing.

    ``randaugment_ops`` = 0, ``erasing`` = 0 and both alphas 0 switch each part off. Call it with a normalised
    batch ``(B, 3, H, W)``, int64 labels ``(B,)``, a device generator and a ``random.Random``; it returns the
    batch and either the labels (no mixing) or probabilities ``(B, num_classes)`` (mixing on).
    """

    randaugment_ops: int = 0
    randaugment_magnitude: float = 9.0
    randaugment_std: float = 0.5
    erasing: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    mix_prob: float = 1.0
    num_classes: int = 10

    def __post_init__(self) -> None:
        _check_rand_augment(self.randaugment_ops, self.randaugment_magnitude, self.randaugment_std, None)
        _check_probability("erasing", self.erasing)
        _check_probability("mix_prob", self.mix_prob)
        _check_alphas(self.mixup, self.cutmix)

    @property
    def mixing(self) -> bool:
        return (self.mixup > 0 or self.cutmix > 0) and self.mix_prob > 0

    def __call__(
        self, images: Tensor, labels: Tensor, generator: torch.Generator, rng: random.Random
    ) -> tuple[Tensor, Tensor]:
        images = rand_augment(
            images, self.randaugment_ops, self.randaugment_magnitude, self.randaugment_std, generator
        )
        images = random_erasing(images, self.erasing, generator)
        if not self.mixing:
            return images, labels
        return mix(images, one_hot(labels, self.num_classes), rng, self.mixup, self.cutmix, self.mix_prob)

import math
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wf_lessons import augment
from wf_lessons.augment import RAND_AUGMENT_OPS, BatchAugment


def _batch(b: int = 8, size: int = 16, seed: int = 0) -> torch.Tensor:
    """A normalised batch (B, 3, size, size) made from uniform pixels in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    return augment.from_unit(torch.rand(b, 3, size, size, generator=g))


def test_unit_and_normalised_round_trip():
    x = _batch()
    assert torch.allclose(augment.from_unit(augment.to_unit(x)), x, atol=1e-5)
    assert 0 <= augment.to_unit(x).min() and augment.to_unit(x).max() <= 1 + 1e-5


def test_one_hot_and_passthrough():
    t = augment.one_hot(torch.tensor([2, 0]), 3)
    assert t.tolist() == [[0, 0, 1], [1, 0, 0]] and t.dtype == torch.float32
    assert augment.one_hot(t, 3) is t
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        augment.one_hot(t, 4)


@settings(max_examples=20, deadline=None)
@given(lam=st.floats(0, 1), seed=st.integers(0, 1000))
def test_mixup_blends_images_and_labels_that_still_sum_to_one(lam, seed):
    x = _batch(6, 8, seed)
    t = augment.one_hot(torch.randint(0, 10, (6,), generator=torch.Generator().manual_seed(seed)), 10)
    mixed, targets = augment.mixup(x, t, lam)
    assert mixed.shape == x.shape and mixed.dtype == x.dtype and targets.shape == (6, 10)
    assert torch.allclose(targets.sum(1), torch.ones(6))
    assert torch.allclose(mixed[0], lam * x[0] + (1 - lam) * x[-1], atol=1e-6)  # partner: the reversed batch


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1000))
def test_cutmix_pastes_a_box_and_weights_labels_by_area(seed):
    x = _batch(4, 16, seed)
    t = augment.one_hot(torch.tensor([0, 1, 2, 3]), 10)
    mixed, targets = augment.cutmix(x, t, 0.6, random.Random(seed))
    assert mixed.shape == x.shape and torch.allclose(targets.sum(1), torch.ones(4))
    from_partner = (mixed[0] == x[-1]).all(0) & (mixed[0] != x[0]).any(0)  # (H, W) pixels taken from image 3
    kept_fraction = 1 - from_partner.float().mean().item()
    assert targets[0, 0].item() == pytest.approx(kept_fraction, abs=1e-6)
    assert targets[0, 3].item() == pytest.approx(1 - kept_fraction, abs=1e-6)
    rows, cols = torch.nonzero(from_partner, as_tuple=True)
    if rows.numel():  # the pasted pixels form one rectangle
        assert from_partner[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()


def test_mix_switches_off_and_is_reproducible():
    x, t = _batch(), augment.one_hot(torch.arange(8) % 10, 10)
    assert augment.mix(x, t, random.Random(0)) == (x, t)  # both alphas 0: off
    assert augment.mix(x, t, random.Random(0), mixup_alpha=0.8, prob=0.0) == (x, t)
    a = augment.mix(x, t, random.Random(5), mixup_alpha=0.8, cutmix_alpha=1.0)
    b = augment.mix(x, t, random.Random(5), mixup_alpha=0.8, cutmix_alpha=1.0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[1], t)
    for bad in (-1, math.inf, 1e308, math.nan):  # huge alphas would never return from the Beta sampler
        with pytest.raises(ValueError, match=r"the mixup alpha must be a number in \[0, 100\]"):
            augment.mix(x, t, random.Random(0), mixup_alpha=bad)
    with pytest.raises(ValueError, match="the cutmix alpha"):
        augment.BatchAugment(cutmix=math.inf)


def test_random_erasing_erases_one_rectangle_per_chosen_image():
    x = _batch(16, 16)
    g = torch.Generator().manual_seed(0)
    out = augment.random_erasing(x, 1.0, g)
    assert out.shape == x.shape and out.dtype == x.dtype
    for i in range(16):
        changed = (out[i] != x[i]).any(0)  # (H, W)
        rows, cols = torch.nonzero(changed, as_tuple=True)
        assert rows.numel() > 0, f"image {i} was not erased"
        box = changed[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.float().mean() > 0.9  # a rectangle (noise may equal a pixel only by chance)
        assert changed.float().mean() <= 1 / 3 + 0.1
    assert torch.equal(augment.random_erasing(x, 0.0, g), x)


def test_random_erasing_probability_is_respected():
    x = _batch(400, 8)
    out = augment.random_erasing(x, 0.25, torch.Generator().manual_seed(1))
    erased = (out != x).flatten(1).any(1).float().mean().item()
    assert 0.17 < erased < 0.33
    with pytest.raises(ValueError, match=r"probability in \[0, 1\]"):
        augment.random_erasing(x, 1.5)


@pytest.mark.parametrize("name", list(RAND_AUGMENT_OPS))
def test_every_rand_augment_op_keeps_shape_and_range(name):
    x = augment.to_unit(_batch(4, 16))
    f = torch.tensor([-1.0, -0.3, 0.5, 1.0])
    out = RAND_AUGMENT_OPS[name](x, f)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= -1e-5 and out.max() <= 1 + 1e-5


def test_rand_augment_ops_do_what_they_claim():
    x = augment.to_unit(_batch(2, 16))
    ones = torch.ones(2)
    assert torch.allclose(RAND_AUGMENT_OPS["brightness"](x, -ones), 0.1 * x, atol=1e-6)
    assert torch.allclose(RAND_AUGMENT_OPS["solarize"](x, ones), 1 - x)  # threshold 0: every pixel inverted
    two_pixels = (2 * 2 / 16) / (2 * 0.45)  # strength f moves by 0.45·f of the side; the side spans 2
    shifted = RAND_AUGMENT_OPS["translate_x"](x, torch.full((2,), two_pixels))
    assert torch.allclose(shifted[..., :-2], x[..., 2:], atol=1e-5)  # content moved 2 pixels left
    assert torch.allclose(shifted[..., -2:], torch.tensor(augment.MEAN)[:, None, None].expand(2, 3, 16, 2))
    gray = RAND_AUGMENT_OPS["color"](x, -ones / 0.9)  # factor 0: grayscale
    assert torch.allclose(gray[:, 0], gray[:, 1], atol=1e-6) and torch.allclose(gray[:, 1], gray[:, 2], atol=1e-6)
    assert (RAND_AUGMENT_OPS["posterize"](x, ones) * 255 % 16).abs().max() < 1e-3  # 4 bits left


def test_rand_augment_batch():
    x = _batch(32, 16)
    g = torch.Generator().manual_seed(0)
    out = augment.rand_augment(x, 2, 9.0, generator=g)
    assert out.shape == x.shape and out.dtype == x.dtype and torch.isfinite(out).all()
    assert (out != x).flatten(1).any(1).float().mean() > 0.5  # most images changed
    assert torch.equal(augment.rand_augment(x, 0), x)
    assert torch.allclose(augment.rand_augment(x, 2, ops=("identity",), generator=g), x, atol=1e-5)
    with pytest.raises(ValueError, match="unknown RandAugment ops"):
        augment.rand_augment(x, 2, ops=("equalise",))
    with pytest.raises(ValueError, match=r"magnitude must be in \[0, 10\]"):
        augment.rand_augment(x, 2, 11.0)


def test_batch_augment_pipeline():
    x, labels = _batch(8), torch.arange(8)
    g, rng = torch.Generator().manual_seed(0), random.Random(0)
    images, targets = BatchAugment()(x, labels, g, rng)
    assert torch.equal(images, x) and targets is labels  # everything off by default
    policy = BatchAugment(randaugment_ops=2, erasing=0.5, mixup=0.8, cutmix=1.0)
    before = torch.get_rng_state()
    images, targets = policy(x, labels, g, rng)
    assert torch.equal(torch.get_rng_state(), before)  # only the given generators are used (exact resume)
    assert images.shape == x.shape and targets.shape == (8, 10) and torch.allclose(targets.sum(1), torch.ones(8))
    with pytest.raises(ValueError, match="erasing must be a probability"):
        BatchAugment(erasing=2.0)
    with pytest.raises(ValueError, match="num_ops must be a non-negative int"):
        BatchAugment(randaugment_ops=-1)

import pytest
import torch
import torch.nn.functional as F

from wf_lessons.dynamic_dwconv import DWC_PREDICTORS
from wf_lessons.dynamic_linear import LINEAR_PREDICTORS
from wf_lessons.models import (
    MODEL_NAMES,
    ViT,
    WeightFormer,
    build_model,
    count_parameters,
    load_reference_state_dict,
    predicted_weights,
    reference_dynamic_blocks,
)

SMALL = {"img_size": 16, "patch_size": 4, "num_classes": 7, "embed_dim": 16, "depth": 5}


def _randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter a random value large enough that the dynamic paths matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model


@pytest.mark.parametrize(
    ("name", "expected"), [("wfm-t", 7_074_184), ("wfm-s", 27_492_136), ("wfm-b", 27_492_136)]
)
def test_reference_parameter_counts(name, expected):
    assert count_parameters(build_model(name)) == expected


def test_cifar_models_are_the_same_size():
    wf, deit = count_parameters(build_model("wf-cifar")), count_parameters(build_model("deit-cifar"))
    assert 4.8e6 < wf < 5.2e6 and abs(wf - deit) / wf < 0.02


def test_reference_dynamic_pattern():
    assert reference_dynamic_blocks(17) == (1, 4, 7, 10, 13, 16)
    model = WeightFormer(**SMALL)
    assert [b.dynamic for b in model.blocks] == [False, True, False, False, True]
    assert not any(b.dynamic for b in WeightFormer(**SMALL, dynamic_blocks=()).blocks)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_named_model_classifies_cifar_or_imagenet_shapes(name):
    model = build_model(name)
    size = model.img_size if model.img_size <= 64 else 2 * model.patch_size
    assert model(torch.randn(2, 3, size, size)).shape == (2, model.num_classes)


@pytest.mark.parametrize("cls", [WeightFormer, ViT])
def test_non_square_images(cls):
    kwargs = {**SMALL, "depth": 2} | ({"num_heads": 2} if cls is ViT else {})
    model = cls(**kwargs).eval()
    x = torch.randn(3, 3, 12, 20)
    assert model.forward_features(x).shape == (3, 16, 3, 5)
    assert model(x).shape == (3, 7)


@pytest.mark.parametrize("linear", list(LINEAR_PREDICTORS))
@pytest.mark.parametrize("dwc", list(DWC_PREDICTORS))
def test_any_predictor_plugs_in(linear, dwc):
    model = WeightFormer(**SMALL, linear_predictor=linear, dwc_predictor=dwc)
    out = model(torch.randn(2, 3, 16, 16))
    out.sum().backward()
    assert out.shape == (2, 7)
    assert all(p.grad is not None for p in model.parameters())


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="valid names"):
        build_model("wfm-xl")
    with pytest.raises(ValueError, match="linear_predictor.*valid"):
        WeightFormer(**SMALL, linear_predictor="attention")
    with pytest.raises(ValueError, match="dwc_predictor.*valid"):
        WeightFormer(**SMALL, dwc_predictor="big")
    with pytest.raises(ValueError, match="dynamic_blocks"):
        WeightFormer(**SMALL, dynamic_blocks=(5,))
    with pytest.raises(ValueError, match="multiple of the patch size"):
        WeightFormer(**SMALL)(torch.randn(1, 3, 18, 16))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        WeightFormer(**SMALL)(torch.randn(1, 1, 16, 16))
    with pytest.raises(ValueError, match="backend"):
        ViT(**SMALL, num_heads=2).set_attn_backend("flash")


def test_vit_backends_agree():
    model = _randomize(ViT(**SMALL, num_heads=2)).eval()
    x = torch.randn(2, 3, 16, 16)
    fused = model(x)
    assert torch.allclose(model.set_attn_backend("math")(x), fused, atol=1e-5)


def test_drop_path_only_in_training_and_only_on_the_mlp_branch():
    model = WeightFormer(**SMALL, drop_path=0.5)
    assert [round(b.drop_path.p, 3) for b in model.blocks] == [0.0, 0.125, 0.25, 0.375, 0.5]
    x = torch.randn(2, 3, 16, 16)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


# ---------------------------------------------------------------- the reference model, transcribed from the paper notes
def _reference_forward(sd: dict, images: torch.Tensor, patch: int, depth: int) -> torch.Tensor:
    """The reference WeightFormer forward, from chapters/paper_notes.md, on a raw state dict (no course modules)."""
    ln = lambda x, name: F.layer_norm(x, x.shape[-1:], sd[f"{name}.weight"], sd[f"{name}.bias"], eps=1e-6)
    x = F.conv2d(images, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=patch)
    b, c, h, w = x.shape
    x = ln(x.flatten(2).transpose(1, 2), "init_norm")
    to_map = lambda t: t.transpose(1, 2).reshape(b, c, h, w)
    for i in range(depth):
        p = f"blocks.{i}."
        if (i + 2) % 3 == 0:
            x = ln(x, p + "norm1")
            m = to_map(x)
            pooled = F.adaptive_avg_pool2d(m, 3)
            k = F.conv2d(F.gelu(F.conv2d(pooled, sd[p + "dwc.wfm.0.weight"], sd[p + "dwc.wfm.0.bias"])),
                         sd[p + "dwc.wfm.2.weight"])
            k = k / (k.flatten(2).norm(dim=-1)[..., None, None] + 1)  # (B, C, 3, 3)
            kernel = (sd[p + "dwc.w"][None] + k[:, :, None]).reshape(b * c, 1, 3, 3)
            y = F.conv2d(m.reshape(1, b * c, h, w), kernel, sd[p + "dwc.b"].repeat(b), padding=1, groups=b * c)
            x = x + y.reshape(b, c, h * w).transpose(1, 2)
            t = ln(x, p + "norm2")
            pt = F.avg_pool2d(to_map(t), 2).flatten(2).transpose(1, 2)  # (B, N', C)
            uv = pt @ sd[p + "linear1.wfm.weight"].t() + sd[p + "linear1.wfm.bias"]
            u, v = uv.split([c // 4, 4 * c // 4], dim=-1)
            kf, vf = F.silu(u) @ sd[p + "linear1.w1"], F.silu(v) @ sd[p + "linear1.w2"]
            dyn = kf.transpose(1, 2) @ vf * c**-0.5 / (h * w)  # (B, C, 4C)
            dyn = dyn / (dyn.norm(dim=1, keepdim=True) + 1)
            hidden = torch.bmm(t, sd[p + "linear1.w"] + dyn) + sd[p + "linear1.b"]
        else:
            y = F.conv2d(to_map(x), sd[p + "dwc.weight"], sd[p + "dwc.bias"], padding=1, groups=c)
            x = x + y.flatten(2).transpose(1, 2)
            hidden = F.linear(ln(x, p + "norm2"), sd[p + "linear1.weight"], sd[p + "linear1.bias"])
        x = x + F.linear(F.gelu(hidden), sd[p + "linear2.weight"], sd[p + "linear2.bias"])
    return F.linear(ln(x, "norm").mean(1), sd["head.weight"], sd["head.bias"])


def _reference_layout(c: int, depth: int, patch: int, classes: int) -> dict[str, tuple[int, ...]]:
    """Key -> shape of an official checkpoint (chapters/paper_notes.md, "Checkpoint layout"), not from the model."""
    layout = {
        "patch_embed.proj.weight": (c, 3, patch, patch), "patch_embed.proj.bias": (c,),
        "init_norm.weight": (c,), "init_norm.bias": (c,), "norm.weight": (c,), "norm.bias": (c,),
        "head.weight": (classes, c), "head.bias": (classes,),
    }
    for i in range(depth):
        p = f"blocks.{i}."
        layout |= {p + "norm2.weight": (c,), p + "norm2.bias": (c,),
                   p + "linear2.weight": (c, 4 * c), p + "linear2.bias": (c,)}
        if (i + 2) % 3 == 0:
            layout |= {
                p + "norm1.weight": (c,), p + "norm1.bias": (c,),
                p + "linear1.w": (c, 4 * c), p + "linear1.b": (4 * c,),
                p + "linear1.wfm.weight": (c // 4 + c, c), p + "linear1.wfm.bias": (c // 4 + c,),
                p + "linear1.w1": (c // 4, c), p + "linear1.w2": (c, 4 * c),
                p + "dwc.w": (c, 1, 3, 3), p + "dwc.b": (c,),
                p + "dwc.wfm.0.weight": (c, c, 1, 1), p + "dwc.wfm.0.bias": (c,), p + "dwc.wfm.2.weight": (c, c, 1, 1),
            }
        else:
            layout |= {p + "linear1.weight": (4 * c, c), p + "linear1.bias": (4 * c,),
                       p + "dwc.weight": (c, 1, 3, 3), p + "dwc.bias": (c,)}
    return layout


def _reference_checkpoint(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    layout = _reference_layout(SMALL["embed_dim"], SMALL["depth"], SMALL["patch_size"], SMALL["num_classes"])
    return {k: torch.randn(shape, generator=g) * 0.3 for k, shape in layout.items()}


def test_model_equals_the_reference_transcription():
    checkpoint = _reference_checkpoint()
    model = load_reference_state_dict(WeightFormer(**SMALL), {"model": checkpoint, "epoch": 299}).eval()
    images = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    expected = _reference_forward(checkpoint, images, SMALL["patch_size"], SMALL["depth"])
    assert torch.allclose(model(images), expected, atol=1e-5), (model(images) - expected).abs().max()


def test_round_trip_keeps_outputs():
    model = _randomize(WeightFormer(**SMALL)).eval()
    images = torch.randn(2, 3, 16, 16)
    saved = {"model": {k: v.clone() for k, v in model.state_dict().items()}}
    loaded = load_reference_state_dict(WeightFormer(**SMALL), saved).eval()
    assert torch.equal(loaded(images), model(images))


def test_mismatched_checkpoints_list_every_offending_key():
    checkpoint = _reference_checkpoint()
    del checkpoint["blocks.1.linear1.w1"]
    checkpoint["blocks.0.extra"] = torch.zeros(1)
    checkpoint["head.weight"] = torch.zeros(1000, 16)
    with pytest.raises(ValueError) as error:
        load_reference_state_dict(WeightFormer(**SMALL), checkpoint)
    message = str(error.value)
    assert "missing (1): blocks.1.linear1.w1" in message
    assert "unexpected (1): blocks.0.extra" in message
    assert "head.weight: checkpoint (1000, 16), model (7, 16)" in message
    with pytest.raises(ValueError, match="missing"):  # another predictor has other parameters
        load_reference_state_dict(WeightFormer(**SMALL, linear_predictor="deep"), _reference_checkpoint())
    with pytest.raises(TypeError, match="state dict"):
        load_reference_state_dict(WeightFormer(**SMALL), [1, 2])


def test_predicted_weights_differ_between_images():
    model = _randomize(WeightFormer(**SMALL)).eval()
    weights = predicted_weights(model, torch.randn(2, 3, 16, 16))
    assert sorted(weights) == [1, 4]
    linear, dwc = weights[1]["linear"], weights[1]["dwc"]
    assert linear.shape == (2, 16, 64) and dwc.shape == (2, 16, 3, 3)
    assert not torch.allclose(linear[0], linear[1]) and not torch.allclose(dwc[0], dwc[1])

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from wf_lessons import erf
from wf_lessons.dynamic_dwconv import DWC_PREDICTORS
from wf_lessons.dynamic_linear import LINEAR_PREDICTORS
from wf_lessons.models import ViT, WeightFormer

TINY = {"img_size": 16, "patch_size": 2, "num_classes": 10, "embed_dim": 16, "depth": 3}


def _images(n: int, h: int, w: int | None = None, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, h, w or h, generator=torch.Generator().manual_seed(seed))


def _model(seed: int = 0, **kwargs) -> WeightFormer:
    torch.manual_seed(seed)
    return WeightFormer(**{**TINY, **kwargs})


# ------------------------------------------------------------------------------------------ the static model
@settings(max_examples=25, deadline=None)
@given(
    depth=st.integers(1, 4),
    patch=st.integers(1, 3),
    grid=st.tuples(st.integers(1, 11), st.integers(1, 11)),
    seed=st.integers(0, 2**16),
)
def test_static_map_is_zero_exactly_outside_the_theoretical_box_and_nonzero_inside(depth, patch, grid, seed):
    model = _model(seed, patch_size=patch, depth=depth, embed_dim=8, dynamic_blocks=())
    hw = (grid[0] * patch, grid[1] * patch)
    raw = erf.effective_receptive_field(model, _images(8, *hw, seed=seed))
    inside = erf.theoretical_rf_box(model, hw).mask(hw)
    assert raw.shape == hw
    assert (raw[~inside] == 0).all()
    assert (raw[inside] > 0).all()


def test_static_box_on_an_even_grid_leaves_one_token_more_uncovered_at_the_top_left():
    model = _model(depth=2, dynamic_blocks=())
    box = erf.theoretical_rf_box(model, (24, 24))  # 12×12 tokens: centre token 6, tokens 4..8
    assert box == erf.RFBox(8, 18, 8, 18) and box.size == (10, 10)
    assert (box.top, 24 - box.bottom) == (8, 6)


def test_box_of_the_course_model_and_clipping():
    class Stub:
        patch_size, blocks = 2, [None] * 13

    assert erf.theoretical_rf_box(Stub(), (128, 128)) == (38, 92, 38, 92)
    # 16×32 tokens, centre (8, 16): rows 8 - 13 < 0 and 8 + 13 > 15 are clipped, columns 3..29 are not
    assert erf.theoretical_rf_box(Stub(), (32, 64)) == (0, 32, 6, 60)


def test_dynamic_blocks_with_static_predictors_stay_local():
    model = _model(linear_predictor="static", dwc_predictor="static")
    assert model.dynamic_blocks  # the blocks are dynamic, their predictors are not
    raw = erf.effective_receptive_field(model, _images(4, 20))
    assert erf.outside_share(raw, model) == 0.0


# ------------------------------------------------------------------------------------------ dynamic and ViT
DYNAMIC = [{"linear_predictor": p, "dwc_predictor": "static"} for p in LINEAR_PREDICTORS if p != "static"] + [
    {"linear_predictor": "static", "dwc_predictor": p} for p in DWC_PREDICTORS if p != "static"
]


@pytest.mark.parametrize("predictors", DYNAMIC, ids=[f"{d['linear_predictor']}+{d['dwc_predictor']}" for d in DYNAMIC])
def test_every_dynamic_predictor_reaches_outside_the_static_field_at_initialisation(predictors):
    model = _model(**predictors)
    raw = erf.effective_receptive_field(model, _images(4, 24))
    outside = ~erf.theoretical_rf_box(model, (24, 24)).mask((24, 24))
    assert outside.any() and raw[outside].sum() > 0
    assert erf.outside_share(raw, model) > 0


def test_vit_map_is_nonzero_everywhere():
    torch.manual_seed(0)
    model = ViT(**{**TINY, "depth": 2}, num_heads=2)
    raw = erf.effective_receptive_field(model, _images(8, 24))  # another size than img_size: resized positions
    assert raw.shape == (24, 24) and (raw > 0).all()
    assert 0 < erf.outside_share(raw, model) < 1


# ------------------------------------------------------------------------------------------ the method itself
class Identity(nn.Module):
    """forward_features = the image itself (patch 1, 3 channels): the map is known in closed form."""

    patch_size = 1
    blocks = ()

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return images * 1.0  # a module without parameters: the map is computed on the CPU


def test_centre_relu_channel_sum_and_mean_over_images():
    images = torch.zeros(4, 3, 6, 5)
    images[:, :, 3, 2] = torch.tensor([[1.0, 1, 1], [1, -1, 1], [-1, -1, -1], [2, 0.5, -3]])  # centre (6//2, 5//2)
    images[:, :, 0, 0] = 5.0  # far from the centre: no gradient
    raw = erf.effective_receptive_field(Identity(), images, batch_size=3)
    expected = torch.zeros(6, 5)
    expected[3, 2] = (3 + 2 + 0 + 2) / 4  # positive channels at the centre, averaged over the 4 images
    assert torch.equal(raw, expected)


def test_chunks_do_not_change_the_map_and_modes_and_grads_are_untouched():
    model = _model(drop_path=0.5).train()
    images = _images(5, 16)
    one, chunked = (erf.effective_receptive_field(model, images, batch_size=b) for b in (1, 2))
    assert torch.allclose(one, chunked, rtol=1e-5, atol=1e-9)
    assert model.training and all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


def test_display_map():
    raw = torch.tensor([[0.0, 1e-10], [0.5, 1.0]])
    shown = erf.display_map(raw)
    assert shown.max() == 1 and shown[0, 0] == 0
    assert torch.isclose(shown[0, 1], torch.tensor(0.01), rtol=1e-4)
    assert torch.isclose(shown[1, 0], torch.tensor(0.5**0.2))


def test_outside_share_of_a_known_map():
    raw = torch.ones(8, 8)
    assert erf.outside_share(raw, erf.RFBox(0, 4, 0, 4)) == pytest.approx(0.75)
    assert erf.outside_share(raw, (0, 8, 0, 8)) == 0.0


# ------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("images", "error", "match"),
    [
        ([[1.0]], TypeError, "torch.Tensor"),
        (torch.zeros(3, 16, 16), ValueError, "4-D"),
        (torch.zeros(1, 3, 16, 16, dtype=torch.uint8), TypeError, "floating-point.*normalize"),
        (torch.zeros(1, 4, 16, 16), ValueError, "expects 3 channels"),
        (torch.zeros(1, 3, 15, 16), ValueError, "15x16 is not a multiple of the model's patch size 2"),
        (torch.zeros(0, 3, 16, 16), ValueError, "at least one image"),
    ],
)
def test_bad_images_are_rejected_clearly(images, error, match):
    with pytest.raises(error, match=match):
        erf.effective_receptive_field(_model(), images)


def test_bad_models_and_maps_are_rejected_clearly():
    with pytest.raises(TypeError, match="forward_features"):
        erf.effective_receptive_field(nn.Linear(3, 3), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="batch_size"):
        erf.effective_receptive_field(_model(), torch.zeros(1, 3, 8, 8), batch_size=0)
    with pytest.raises(ValueError, match="2-D"):
        erf.outside_share(torch.ones(1, 8, 8), erf.RFBox(0, 4, 0, 4))
    with pytest.raises(ValueError, match="zero everywhere"):
        erf.outside_share(torch.zeros(8, 8), erf.RFBox(0, 4, 0, 4))
    with pytest.raises(TypeError, match="RFBox"):
        erf.outside_share(torch.ones(8, 8), "centre")
    with pytest.raises(ValueError, match="not a multiple"):
        erf.theoretical_rf_box(_model(), (15, 16))
    with pytest.raises(ValueError, match="zero everywhere"):
        erf.display_map(torch.zeros(4, 4))


# ------------------------------------------------------------------------------------------ plots, exercises
def test_plot_helpers_draw_every_panel_with_its_share():
    matplotlib.use("Agg")
    maps = {"init": {"a": torch.rand(8, 8), "b": torch.rand(8, 8)}, "trained": {"a": torch.rand(8, 8)}}
    shares = {"init": {"a": 0.0, "b": 0.25}, "trained": {"a": 1e-7}}
    fig = erf.plot_erf_grid(maps, shares, boxes={"a": erf.RFBox(2, 6, 2, 6)})
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    *panels, bar = fig.axes  # a, b on the first line, a on the second (no empty panel for b), then the colour bar
    assert len(panels) == 3 and all(ax.images for ax in panels)
    assert [ax.get_title() for ax in panels] == ["a", "b", "a"]
    assert [ax.get_ylabel() for ax in panels] == ["init", "", "trained"]
    assert sorted(texts) == ["out 0 (exact)", "out 1.0e-07", "out 25.0%"]
    assert bar.get_ylabel().startswith("x^0.2 / max")
    assert len(panels[0].patches) == 1 and not panels[1].patches  # the box of "a" only
    plt.close(fig)
    fig = erf.plot_outside_shares(shares)
    ax = fig.axes[0]
    dots = [c.get_offsets() for c in ax.collections]  # one scatter per row of shares: (share, y) per model
    assert [len(d) for d in dots] == [2, 1]
    assert dots[0][:, 0].tolist() == [1e-12, 0.25] and dots[1][:, 0].tolist() == [1e-7]  # a zero sits at the floor
    assert [t.get_text() for t in ax.texts] == ["exactly 0"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "a"]  # the first model on top
    assert ax.get_xscale() == "log" and not ax.patches  # dots, not bars
    plt.close(fig)


def test_erf_grid_wraps_long_rows_and_stays_within_the_notebook_width():
    matplotlib.use("Agg")
    names = [f"model {i}" for i in range(12)]
    fig = erf.plot_erf_grid({"at initialisation": {n: torch.rand(8, 8) for n in names}})
    *panels, _ = fig.axes
    assert len(panels) == 12  # two full lines of six
    assert [ax.get_ylabel() for ax in panels if ax.get_ylabel()] == ["at initialisation"] * 2
    assert fig.get_size_inches()[0] <= 14  # inches, at 100 dpi at most 1,400 px as the notebook renders it
    plt.close(fig)
    fig = erf.plot_erf_grid({"row": {n: torch.rand(8, 8) for n in names[:7]}}, columns=3)
    assert len([ax for ax in fig.axes if ax.images]) == 7 and len(fig.axes) == 8  # 3 + 3 + 1 panels, the colour bar
    plt.close(fig)
    with pytest.raises(ValueError, match="columns"):
        erf.plot_erf_grid({"row": {"a": torch.rand(8, 8)}}, columns=0)
    with pytest.raises(ValueError, match="maps is empty"):
        erf.plot_erf_grid({"row": {}})


def test_figure3_models_cover_every_predictor_once_and_build():
    zoo = erf.figure3_models("wf-cifar-quick", "deit-cifar-quick")
    assert len(zoo) == 2 + (len(LINEAR_PREDICTORS) - 1) + (len(DWC_PREDICTORS) - 1)
    linear = {o["linear_predictor"] for n, o in zoo.values() if o.get("dwc_predictor") == "static"}
    dwc = {o["dwc_predictor"] for n, o in zoo.values() if o.get("linear_predictor") == "static"}
    assert linear == set(LINEAR_PREDICTORS) - {"static"} and dwc == set(DWC_PREDICTORS) - {"static"}
    assert zoo["static"] == ("wf-cifar-quick", {"dynamic_blocks": ()}) and zoo["ViT"][0] == "deit-cifar-quick"


def test_find_checkpoints_matches_name_and_architecture_and_prefers_the_best_finished_run(tmp_path):
    from wf_lessons.train.checkpoint import save_checkpoint

    def save(name, model, overrides, epoch, epochs=10, acc=0.5, weight=1.0, images=1000):
        save_checkpoint(tmp_path / f"{name}.pt", {
            "model_name": model, "model_overrides": overrides, "epoch": epoch, "config": {"epochs": epochs},
            "model": {"w": torch.full((2,), weight)}, "rng": {}, "train_s": 0.0, "steps_per_epoch": 1,
            "optimizer": {"state": {0: {"step": torch.tensor(float(epoch))}}}, "scheduler": {"last_epoch": epoch},
            "history": [{"epoch": i + 1, "test_acc": acc, "eval_images": images} for i in range(epoch)]})

    save("static-short", "wf-cifar", {"dynamic_blocks": []}, 2)
    save("static-long", "wf-cifar", {"dynamic_blocks": (), "drop_path": 0.1}, 9)  # drop-path: same architecture
    save("gap-quick", "wf-cifar-quick", {"linear_predictor": "gap", "dwc_predictor": "static"}, 5)  # other model
    save("default", "wf-cifar", {}, 5)  # the released model: no column of the figure
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    found = erf.find_checkpoints(erf.figure3_models(), tmp_path)
    assert list(found) == ["static"]
    assert found["static"]["path"].name == "static-long.pt" and found["static"]["epoch"] == 9
    save("static-done-good", "wf-cifar", {"dynamic_blocks": ()}, 3, epochs=3, acc=0.7)  # finished beats unfinished
    save("static-done-poor", "wf-cifar", {"dynamic_blocks": ()}, 6, epochs=6, acc=0.1)  # longer, but worse
    save("static-nan", "wf-cifar", {"dynamic_blocks": ()}, 8, epochs=8, acc=0.9, weight=float("nan"))  # skipped
    save("static-toy", "wf-cifar", {"dynamic_blocks": ()}, 1, epochs=1, acc=1.0, images=10)  # few images
    found = erf.find_checkpoints(erf.figure3_models(), tmp_path)
    assert found["static"]["run_name"] == "static-done-good" and found["static"]["test_acc"] == 0.7
    assert erf.find_checkpoints(erf.figure3_models(), tmp_path / "absent") == {}

"""The schematic figures render (Agg), carry the texts they are meant to show, and no two texts overlap."""

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from wf_lessons import diagrams  # noqa: E402

FIGURES = {
    "attention_as_mlp": (diagrams.attention_as_mlp, ["unit j = token j", "K^{\\top}", "W_2 = V", "W_O", "h heads"]),
    "dynamic_linear": (diagrams.dynamic_linear, ["avg-pool 2×2", "low rank", "normalise", "W_0", "every token"]),
    "dynamic_dwconv": (diagrams.dynamic_dwconv, ["avg-pool to 3×3", "per channel", "normalise", "K_0", "groups = B·C"]),
    "static_block": (lambda: diagrams.weightformer_block(dynamic=False), ["no norm before the DWC", "linear1", "GELU"]),
    "dynamic_block": (
        lambda: diagrams.weightformer_block(dynamic=True),
        ["x = norm1(x): overwrites", "residual stream", "dynamic DWC", "dynamic linear", "norm2"],
    ),
    "both_blocks": (diagrams.weightformer_blocks, ["static block", "dynamic block", "overwrites"]),
}


def texts(fig: Figure) -> list[matplotlib.text.Text]:
    """Every visible, non-empty text of a figure (box labels, notes, titles, legend entries)."""
    found = fig.findobj(lambda a: isinstance(a, matplotlib.text.Text) and a.get_visible() and a.get_text().strip())
    return list(found)


@pytest.fixture(params=sorted(FIGURES))
def figure(request):
    draw, expected = FIGURES[request.param]
    fig = draw()
    yield fig, expected
    plt.close(fig)


def test_renders_with_expected_texts(figure):
    fig, expected = figure
    assert isinstance(fig, Figure)
    fig.canvas.draw()
    joined = "\n".join(t.get_text() for t in texts(fig))
    missing = [e for e in expected if e not in joined]
    assert missing == [], f"texts not in the figure: {missing}"


def test_no_overlapping_texts_and_all_inside(figure):
    fig, _ = figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts(fig)]
    overlapping = [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2) if ba.overlaps(bb)]
    assert overlapping == []
    canvas = fig.bbox
    outside = [t for t, bb in boxes if bb.x0 < canvas.x0 or bb.y0 < canvas.y0 or bb.x1 > canvas.x1 or bb.y1 > canvas.y1]
    assert outside == []


def test_draws_into_a_given_axes():
    fig, ax = plt.subplots(figsize=(10, 5))
    try:
        assert diagrams.dynamic_linear(ax=ax) is fig
        assert ax.texts, "nothing was drawn into the given axes"
    finally:
        plt.close(fig)


def test_one_colour_per_kind():
    faces = [face for face, _ in diagrams.COLOURS.values()]
    assert len(set(faces)) == len(faces) and set(diagrams.COLOURS) == {"data", "static", "predicted", "op"}

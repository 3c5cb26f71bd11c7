"""wf_lessons.interactive: a figure drawn once as a static output, then redrawn by its controls."""

import ipywidgets as widgets
import pytest

from wf_lessons.interactive import FIRST_STATE_NOTE, figure_controls


def test_first_state_is_drawn_at_once_and_each_change_redraws():
    calls = []
    image = widgets.Dropdown(options=[("cat", 3), ("ship", 8)], value=3)
    block = widgets.IntSlider(value=1, min=1, max=4)
    box = figure_controls(lambda index, block: calls.append((index, block)), {"index": image, "block": block},
                          display=False)
    assert calls == [(3, 1)]  # the static picture, before any interaction
    controls, area = box.children
    assert list(controls.children) == [image, block]
    assert area.outputs == ({"name": "stdout", "output_type": "stream", "text": FIRST_STATE_NOTE + "\n"},)
    image.value = 8
    block.value = 4
    assert calls == [(3, 1), (8, 1), (8, 4)]


def test_displayed_box_is_not_returned():
    assert figure_controls(lambda x: None, {"x": widgets.IntSlider(value=0)}) is None


def test_controls_must_be_value_widgets():
    with pytest.raises(ValueError, match="at least one control"):
        figure_controls(lambda: None, {})
    with pytest.raises(TypeError, match="control 'x' must be an ipywidgets value widget, got int"):
        figure_controls(lambda x: None, {"x": 3})

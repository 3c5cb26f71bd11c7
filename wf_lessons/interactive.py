"""Interactive figures that also leave a static picture in the stored notebook.

A widget's own output lives in the notebook's widget state, which GitHub and most static renderings do not show:
a reader of the committed notebook would see the controls' text fallback and no figure. :func:`figure_controls`
therefore draws the first state as an ordinary cell output (a PNG stored with the notebook), then shows the controls
with an output area under them; in a live kernel every change of a control redraws the figure there::

    figure_controls(show_kernels, {"name": widgets.Dropdown(options=[...]), "channel": widgets.IntSlider(...)})

``draw(**values)`` draws one figure with matplotlib and shows it (``plt.show()``), as any plotting cell does; it
receives each control's ``value`` under the control's key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["FIRST_STATE_NOTE", "figure_controls"]

FIRST_STATE_NOTE = ("The figure above is the first state of these controls (also in static copies of the notebook); "
                    "in JupyterLab, change a control to redraw it here.")


def figure_controls(draw: Callable[..., Any], controls: Mapping[str, Any], *, display: bool = True):
    """Draw ``draw(**values)`` once as a static cell output, then the controls and an output area that redraws it.

    ``controls`` maps ``draw``'s keyword arguments to ipywidgets value widgets (``Dropdown``, ``IntSlider``, ...).
    The output area starts with :data:`FIRST_STATE_NOTE` (so it is never empty) and shows the redrawn figure after
    each change. The ``VBox`` of controls and output area is displayed; with ``display=False`` it is returned instead
    (for a caller that places it itself).
    """
    import ipywidgets as widgets
    from IPython.display import display as show

    if not controls:
        raise ValueError("figure_controls needs at least one control")
    for name, control in controls.items():
        if not hasattr(control, "value") or not hasattr(control, "observe"):
            raise TypeError(f"control {name!r} must be an ipywidgets value widget, got {type(control).__name__}")

    def values() -> dict[str, Any]:
        return {name: control.value for name, control in controls.items()}

    draw(**values())  # the static picture: an ordinary output of the cell, stored in the notebook
    area = widgets.Output()
    area.append_stdout(FIRST_STATE_NOTE + "\n")

    def redraw(_change: object = None) -> None:
        with area:
            area.clear_output(wait=True)
            draw(**values())

    for control in controls.values():
        control.observe(redraw, names="value")
    box = widgets.VBox([widgets.HBox(list(controls.values())), area])
    if not display:
        return box
    show(box)
    return None

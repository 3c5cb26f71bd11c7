"""The public names of the package, as an API reference will list them: every module has a docstring, and every
name a module exports (``__all__``, which every module declares: the reference lists those names) exists and, when
it is a function or a class, has a docstring.
"""

import importlib
import inspect
import pkgutil

import pytest

import wf_lessons

MODULES = ["wf_lessons"] + sorted(
    m.name for m in pkgutil.walk_packages(wf_lessons.__path__, "wf_lessons.") if not m.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_module_has_a_docstring_and_its_exports_exist(name):
    module = importlib.import_module(name)
    assert (module.__doc__ or "").strip(), f"{name} has no module docstring"
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} declares no __all__: list its public names"
    assert len(set(exported)) == len(exported), f"{name}.__all__ lists a name twice"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what the module does not have: {missing}"
    defined = {n: getattr(module, n) for n in exported}
    undocumented = [n for n, obj in defined.items()
                    if (inspect.isfunction(obj) or inspect.isclass(obj)) and not (obj.__doc__ or "").strip()]
    assert not undocumented, f"exported from {name} without a docstring: {undocumented}"

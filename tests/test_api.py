"""The public API: every name in ``harmonize.__all__`` resolves, has a runnable example, and
``import harmonize`` stays light."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys

import pytest

import harmonize

HEAVY = ("pandas", "torch", "faiss", "sklearn", "transformers", "sentence_transformers", "scipy")


def test_all_names_are_unique_and_listed_for_lazy_import():
    assert len(set(harmonize.__all__)) == len(harmonize.__all__)
    assert set(harmonize.__all__) == set(harmonize._ENTRY_POINTS)


@pytest.mark.parametrize("name", harmonize.__all__)
def test_every_public_name_resolves_to_its_module(name):
    value = getattr(harmonize, name)
    module = importlib.import_module(harmonize._ENTRY_POINTS[name])
    assert value is getattr(module, name)
    assert value.__module__ == module.__name__  # defined there, not re-exported from elsewhere
    assert name in dir(harmonize)


@pytest.mark.parametrize("name", harmonize.__all__)
def test_every_public_name_has_a_docstring_example(name):
    doc = inspect.getdoc(getattr(harmonize, name)) or ""
    assert doc.strip(), f"{name} has no docstring"
    assert ">>> " in doc, f"{name}'s docstring has no >>> example"
    lines = [line.strip() for line in doc.splitlines() if line.strip().startswith(">>>")]
    assert not all(line.startswith(">>> #") for line in lines), f"{name}'s example is commented out"


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'no_such_thing'"):
        harmonize.no_such_thing  # noqa: B018


def test_module_docstring_has_the_whole_flow():
    doc = harmonize.__doc__
    for step in ("Workspace(", "add_site(", "build_site_index(", "map_sites("):
        assert f"harmonize.{step}" in doc


def test_import_harmonize_loads_no_heavy_library():
    code = (
        "import json, sys; import harmonize; harmonize.__all__; dir(harmonize); "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []

"""An extension that fails to load is reported, and everything else keeps working."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from legion.dsl.errors import ValidationFailed
from legion.dsl.validate import load_chain
from legion.engine.errors import ExtensionError
from legion.engine.registry import Registry


def _dist(root: Path, name: str, entry: str, module: str, source: str) -> None:
    info = root / f"{name.replace('-', '_')}-0.1.dist-info"  # as pip names it
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[legion.extensions]\n{entry} = {module}:extension\n")
    (root / f"{module}.py").write_text(source)


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[Path]:
    _dist(tmp_path, "lex-shaky", "shaky", "shaky_ext", "import not_installed_anywhere\n")
    _dist(tmp_path, "lex-oops", "oops", "oops_ext", "extension = 42\n")
    _dist(tmp_path, "lex-fine", "fine", "fine_ext",
          "import sys\nfrom legion.sdk import Extension\n"
          "def hello(name: str) -> str:\n    return 'hi ' + name\n"
          "extension = Extension('fine', runners=[sys.modules[__name__]])\n")
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in ("shaky_ext", "oops_ext", "fine_ext"):
        sys.modules.pop(name, None)


def test_broken_extensions_are_kept_aside(installed: Path) -> None:
    registry = Registry.discover()
    assert {"core", "http", "fine"} <= set(registry.extensions), {k: v.error for k, v in registry.broken.items()}
    assert set(registry.broken) == {"shaky", "oops"}
    shaky = registry.broken["shaky"]
    assert shaky.error == "ModuleNotFoundError: No module named 'not_installed_anywhere'"
    assert "install the missing module 'not_installed_anywhere'" in shaky.hint
    assert "import not_installed_anywhere" in shaky.traceback
    assert registry.broken["oops"].error == "entry point oops_ext:extension is a int, not a legion.sdk.Extension"
    assert registry.function("fine.fine_ext.hello").spec.param_names == ["name"]


def test_only_chains_that_use_a_broken_extension_fail_validation(installed: Path) -> None:
    catalog = Registry.discover().catalog()
    load_chain("ok.yaml", text="chain: ok\nsteps:\n  a: {run: core.util.echo, with: {message: hi}}\n", functions=catalog)
    with pytest.raises(ValidationFailed) as info:
        load_chain("bad.yaml", text="chain: bad\nsteps:\n  a: {run: shaky.desk.open}\n", functions=catalog)
    message = info.value.issues[0].message
    assert message.startswith("'shaky.desk.open' cannot be used: its extension 'shaky' failed to load (ModuleNotFoundError")


def test_calling_a_function_of_a_broken_extension_names_it(installed: Path) -> None:
    with pytest.raises(ExtensionError, match="extension 'shaky' failed to load"):
        Registry.discover().function("shaky.desk.open")

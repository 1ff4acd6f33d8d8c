"""`legion lex create NAME`: a new extension package, ready to `pip install -e`.

The package registers itself in the `legion.extensions` entry-point group, has one runner
with a typed function, a chain that uses it, a rehearsal of that chain, and a test.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

from legion.engine.errors import BadInput, Conflict

NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def _files(name: str) -> dict[str, str]:
    package = f"legion_{name}"
    schema = Path(str(resources.files("legion.schemas"))) / "chain.schema.json"
    return {
        "pyproject.toml": f'''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "lex-{name.replace('_', '-')}"
version = "0.1.0"
description = "Legion extension {name}"
requires-python = ">=3.11"
dependencies = ["legion"]

[project.optional-dependencies]
test = ["pytest>=8.0"]

[project.entry-points."legion.extensions"]
{name} = "{package}:extension"

[tool.setuptools.packages.find]
include = ["{package}*"]
''',
        f"{package}/__init__.py": f'''"""The {name} extension."""

from legion.sdk import Extension
from {package}.runners import greeting

extension = Extension("{name}", runners=[greeting], description="What {name} does, in one line")
''',
        f"{package}/runners/__init__.py": '"""Runners: modules of plain functions; their type hints are their argument schema."""\n',
        f"{package}/runners/greeting.py": f'''"""Greetings. Every public function here is callable as {name}.greeting.<function>."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from legion.sdk import Context, StepError, function


@function(timeout="10s")
def hello(name: str, punctuation: Annotated[str, Field(max_length=3)] = "!", *, ctx: Context | None = None) -> dict[str, str]:
    """Greet someone by name.

    Args:
        name: who to greet
        punctuation: what ends the greeting (at most three characters)
    """
    if not name.strip():
        raise StepError("name is empty", type="InvalidName")
    if ctx is not None:
        ctx.log.info("greeting %s", name)
    return {{"greeting": f"Hello, {{name}}{{punctuation}}"}}
''',
        "chains/hello.yaml": f'''# yaml-language-server: $schema={schema}
chain: {name.replace('_', '-')}-hello
description: Greets the input name with {name}.greeting.hello
input:
  type: object
  required: [name]
  properties: {{name: {{type: string}}}}
steps:
  greet:
    run: {name}.greeting.hello
    with: {{name: "{{{{ input.name }}}}"}}
output:
  greeting: "{{{{ result.greeting }}}}"
''',
        "chains/hello.test.yaml": '''rehearsal: hello
chain: hello.yaml
input: {name: Ada}
expect:
  status: succeeded
  sequence: [greet]
  output: {greeting: "Hello, Ada!"}
''',
        "tests/test_greeting.py": f'''import pytest

from legion.sdk import StepError
from {package}.runners.greeting import hello


def test_hello() -> None:
    assert hello("Ada") == {{"greeting": "Hello, Ada!"}}


def test_empty_name_fails_the_step() -> None:
    with pytest.raises(StepError):
        hello("  ")
''',
        "README.md": f'''# lex-{name.replace('_', '-')}

A Legion extension.

    pip install -e .
    legion lex list                         # shows {name}.greeting.hello
    legion task run {name}.greeting.hello name=Ada
    legion chain test chains/
''',
    }


def create_extension(name: str, where: Path) -> dict[str, Any]:
    if not NAME.match(name):
        raise BadInput(f"extension name {name!r}: use lowercase letters, digits and _ , starting with a letter (e.g. tickets)")
    root = where / f"lex-{name.replace('_', '-')}"
    if root.exists():
        raise Conflict(f"{root} already exists; choose another name or folder (--path)")
    files = _files(name)
    created = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        created.append(path)
    return {"root": root, "files": created}

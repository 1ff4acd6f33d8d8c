"""One secret-token key per deployment: LEGION_SECRET_TOKEN_KEY (a value or a reference), else
a key generated into LEGION_HOME by the first process that needs it and read by every other."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from legion.dsl import tokens
from legion.dsl.budget import step_binding
from legion.engine.errors import ConfigError
from legion.engine.secrets import KEY_FILE, EmbeddedSecrets, Resolver, SecretError, deployment_token_key

# Renders a token for step run r/1 with the deployment's key of LEGION_HOME, in a process of its own.
MAKE = ("import os; from legion.dsl import tokens; from legion.engine.secrets import deployment_token_key; "
        "tokens.use_key(deployment_token_key); print(tokens.make_token('api#token', 'r/1'))")


@pytest.fixture(autouse=True)
def restore_key() -> Iterator[None]:
    """The process's key as it was: tokens other tests made at import keep verifying."""
    before = tokens._key, tokens._key_source
    yield
    tokens._key, tokens._key_source = before


def made_elsewhere(home: Path, **env: str) -> str:
    full = dict(os.environ, LEGION_HOME=str(home), **env)
    if "LEGION_SECRET_TOKEN_KEY" not in env:
        full.pop("LEGION_SECRET_TOKEN_KEY", None)
    return subprocess.run([sys.executable, "-c", MAKE], env=full, capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def test_a_token_made_in_one_process_resolves_in_another_of_the_same_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    token = made_elsewhere(home)
    key_file = home / KEY_FILE
    assert key_file.is_file() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert made_elsewhere(home) == token  # a second process reads the same key
    tokens.use_key(lambda: deployment_token_key({"LEGION_HOME": str(home)}))
    store = EmbeddedSecrets(home)
    store.write("api", "token", "s3cr3t-value")
    assert Resolver(store).resolve({"a": token}, step_binding("r", 1)) == {"a": "s3cr3t-value"}
    assert made_elsewhere(tmp_path / "other-home") != token  # another deployment, another key


def test_the_first_processes_agree_on_one_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with ThreadPoolExecutor(6) as pool:
        made = set(pool.map(lambda _: made_elsewhere(home), range(6)))
    assert len(made) == 1


def test_the_setting_may_be_a_value_or_a_reference(tmp_path: Path) -> None:
    home = tmp_path / "home"
    by_value = made_elsewhere(home, LEGION_SECRET_TOKEN_KEY="shared-key")
    assert made_elsewhere(home, LEGION_SECRET_TOKEN_KEY="env://KEY_VAR", KEY_VAR="shared-key") == by_value
    EmbeddedSecrets(home).write("legion", "token-key", "shared-key")
    assert made_elsewhere(home, LEGION_SECRET_TOKEN_KEY="vault://legion#token-key") == by_value
    assert not (home / KEY_FILE).exists()  # the setting is used: no key is made


def test_a_key_that_cannot_be_read_fails_the_step_run_not_the_worker(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / KEY_FILE).write_text("")
    with pytest.raises(ConfigError, match="is empty: remove it"):
        deployment_token_key({"LEGION_HOME": str(home)})
    tokens.use_key(lambda: deployment_token_key({"LEGION_HOME": str(home)}))
    with pytest.raises(SecretError, match="cannot be checked.*is empty"):
        Resolver(EmbeddedSecrets(home)).resolve({"a": "«secret:api#token|" + "0" * 24 + "»"}, "r/1")
    with pytest.raises(ConfigError, match="LEGION_SECRET_TOKEN_KEY=env://NOPE"):
        deployment_token_key({"LEGION_HOME": str(home), "LEGION_SECRET_TOKEN_KEY": "env://NOPE"})

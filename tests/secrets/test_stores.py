"""The embedded store, store selection, and settings that are secret references."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from legion.engine.errors import ConfigError, NotFound, ServiceUnavailable
from legion.engine.secrets import MASKER, EmbeddedSecrets, VaultSecrets, store_from_env
from legion.engine.settings import Settings


def test_the_embedded_file_is_private_and_replaced_whole(tmp_path: Path) -> None:
    store = EmbeddedSecrets(tmp_path / "home")
    store.write("api", "token", "one")
    store.write("/api/", "other", {"nested": [1]})  # the same path: slashes around it do not count
    file = tmp_path / "home" / "secrets.json"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert json.loads(file.read_text()) == {"api": {"other": {"nested": [1]}, "token": "one"}}
    inode = file.stat().st_ino
    store.write("db", "password", "two")
    assert file.stat().st_ino != inode  # a new file renamed over the old one, never rewritten in place
    assert not [p for p in file.parent.iterdir() if p.name.endswith(".tmp")]
    assert store.list() == {"api": ["other", "token"], "db": ["password"]}
    assert store.read("api") == {"other": {"nested": [1]}, "token": "one"}
    assert store.get("api#token") == "one"


def test_embedded_delete_a_key_then_the_path(tmp_path: Path) -> None:
    store = EmbeddedSecrets(tmp_path)
    store.write("api", "a", "1")
    store.write("api", "b", "2")
    store.delete("api", "a")
    assert store.list() == {"api": ["b"]}
    with pytest.raises(NotFound, match="no key 'a'"):
        store.delete("api", "a")
    store.delete("api", "b")  # the last key takes the path with it
    assert store.list() == {}
    with pytest.raises(NotFound, match="nothing at path 'api'"):
        store.delete("api")


def test_an_empty_or_broken_embedded_store(tmp_path: Path) -> None:
    store = EmbeddedSecrets(tmp_path)
    assert store.list() == {}
    (tmp_path / "secrets.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        store.get("a#b")
    (tmp_path / "secrets.json").write_text('{"a": 1}')
    with pytest.raises(ConfigError, match="not a mapping"):
        store.list()


def test_the_store_is_vault_when_vault_addr_is_set(tmp_path: Path) -> None:
    embedded = store_from_env({"LEGION_HOME": str(tmp_path)})
    assert isinstance(embedded, EmbeddedSecrets) and embedded.file == tmp_path / "secrets.json"
    vault = store_from_env({"VAULT_ADDR": "http://127.0.0.1:1", "VAULT_TOKEN": "t", "LEGION_VAULT_MOUNT": "kv"})
    assert isinstance(vault, VaultSecrets) and vault.mount == "kv" and vault.addr == "http://127.0.0.1:1"
    assert store_from_env({"VAULT_ADDR": "http://x"}).mount == "secret"  # type: ignore[attr-defined]


def test_settings_read_env_and_vault_references(tmp_path: Path) -> None:
    EmbeddedSecrets(tmp_path).write("legion/db", "url", "postgresql://legion:db-password@127.0.0.1/legion")
    env = {"LEGION_HOME": str(tmp_path), "LEGION_DATABASE_URL": "vault://legion/db#url",
           "LEGION_AMQP_URL": "env://AMQP", "AMQP": "amqp://guest:amqp-password@127.0.0.1/", "LEGION_REDIS_URL": "redis://127.0.0.1"}
    settings = Settings.from_env(env)
    assert settings.database_url == "postgresql://legion:db-password@127.0.0.1/legion"
    assert settings.amqp_url == "amqp://guest:amqp-password@127.0.0.1/"
    assert settings.redis_url == "redis://127.0.0.1"
    # What a setting resolves to is masked from then on, like any secret.
    assert MASKER.text(f"database {settings.database_url}") == "database ***"


def test_settings_without_references_open_no_store(tmp_path: Path) -> None:
    def no_store() -> object:
        raise AssertionError("opened")

    settings = Settings.from_env({"LEGION_HOME": str(tmp_path)}, secrets=no_store)  # type: ignore[arg-type]
    assert settings.database_url == f"sqlite:///{tmp_path / 'legion.db'}" and settings.amqp_url is None


@pytest.mark.parametrize("name, value, message", [
    ("LEGION_DATABASE_URL", "env://NOPE", "LEGION_DATABASE_URL=env://NOPE: the environment variable NOPE is not set"),
    ("LEGION_AMQP_URL", "vault://legion/mq#url", "LEGION_AMQP_URL=vault://legion/mq#url: .*nothing at path 'legion/mq'"),
    ("LEGION_REDIS_URL", "vault://no-key", "LEGION_REDIS_URL=vault://no-key: write vault://path#key"),
    ("LEGION_DATABASE_URL", "vault://legion/db#port", "LEGION_DATABASE_URL=vault://legion/db#port: the secret is a int"),
])
def test_a_setting_that_cannot_be_resolved_is_a_config_error_naming_it(tmp_path: Path, name: str, value: str, message: str) -> None:
    EmbeddedSecrets(tmp_path).write("legion/db", "port", 5432)
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"LEGION_HOME": str(tmp_path), name: value})


def test_a_setting_from_an_unreachable_vault_is_service_unavailable_naming_it(tmp_path: Path) -> None:
    env = {"LEGION_HOME": str(tmp_path), "VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "t",
           "LEGION_DATABASE_URL": "vault://legion/db#url"}
    with pytest.raises(ServiceUnavailable, match=r"LEGION_DATABASE_URL=vault://legion/db#url: .*cannot be reached"):
        Settings.from_env(env)


def test_the_embedded_home_is_created_private(tmp_path: Path) -> None:
    EmbeddedSecrets(tmp_path / "new").write("a", "b", "c")
    assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == 0o700

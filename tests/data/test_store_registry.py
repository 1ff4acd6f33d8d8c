"""The extension registry copy in the database."""

from __future__ import annotations

from typing import Any

import pytest

from legion.engine.data import Store
from legion.engine.errors import BadInput


def ext(name: str, runners: dict[str, list[str]], version: str = "1.0") -> dict[str, Any]:
    return {
        "name": name, "description": f"the {name} extension", "version": version,
        "runners": [
            {
                "name": runner, "module": f"legion.extensions.{name}.runners.{runner}", "queue": f"lex.{name}.{runner}",
                "description": None,
                "functions": [
                    {"name": fn, "ref": f"{name}.{runner}.{fn}", "description": f"{fn}!",
                     "args_schema": {"type": "object", "properties": {"x": {"type": "integer"}}},
                     "actor": {"kind": "system", "scopes": ["a"]}}
                    for fn in fns
                ],
            }
            for runner, fns in runners.items()
        ],
    }


def shape(store: Store, include_inactive: bool = False) -> dict[str, Any]:
    return {
        e["name"]: (e["active"], e["version"], {r["name"]: [f["ref"] for f in r["functions"]] for r in e["runners"]})
        for e in store.list_extensions(include_inactive=include_inactive)
    }


def test_sync_registry_upserts_and_deactivates(store: Store) -> None:
    store.sync_registry([ext("core", {"util": ["echo", "fail"]}), ext("http", {"client": ["get"]})])
    assert shape(store) == {
        "core": (True, "1.0", {"util": ["core.util.echo", "core.util.fail"]}),
        "http": (True, "1.0", {"client": ["http.client.get"]}),
    }
    listed = store.list_extensions()[0]
    fn = listed["runners"][0]["functions"][0]
    assert fn["args_schema"]["properties"]["x"] == {"type": "integer"}
    assert fn["actor"] == {"kind": "system", "scopes": ["a"]}
    assert listed["runners"][0]["queue"] == "lex.core.util"

    # http uninstalled, core upgraded: a function removed, a runner added
    store.sync_registry([ext("core", {"util": ["echo"], "data": ["merge"]}, version="1.1")])
    assert shape(store) == {"core": (True, "1.1", {"data": ["core.data.merge"], "util": ["core.util.echo"]})}
    assert shape(store, include_inactive=True)["http"] == (False, "1.0", {"client": ["http.client.get"]})

    # runner dropped; http reinstalled
    store.sync_registry([ext("core", {"util": ["echo"]}), ext("http", {"client": ["get", "post"]})])
    assert shape(store) == {
        "core": (True, "1.0", {"util": ["core.util.echo"]}),
        "http": (True, "1.0", {"client": ["http.client.get", "http.client.post"]}),
    }


def test_sync_registry_is_idempotent(store: Store) -> None:
    extensions = [ext("core", {"util": ["echo"]})]
    store.sync_registry(extensions)
    first = store.list_extensions()
    store.sync_registry(extensions)
    again = store.list_extensions()
    assert [e["id"] for e in again] == [e["id"] for e in first]
    assert again[0]["runners"][0]["functions"][0]["id"] == first[0]["runners"][0]["functions"][0]["id"]


def test_sync_registry_rejects_nameless_items_atomically(store: Store) -> None:
    store.sync_registry([ext("core", {"util": ["echo"]})])
    with pytest.raises(BadInput, match="without a name"):
        store.sync_registry([ext("http", {"client": ["get"]}), {"description": "?"}])
    assert list(shape(store)) == ["core"]

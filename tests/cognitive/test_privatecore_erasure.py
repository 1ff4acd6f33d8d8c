"""privatecore's cryptographic side: payloads sealed with the agent's own HKDF-derived key
(AES-256-GCM), the erasure of an agent (its key deleted from the secret store, then every
document of it), memory erasure through the memory extension, and the audit log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import types
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import legion.engine.registry as registry_module
from legion import sdk
from legion.engine.agentstate import AgentKeys, AgentStates
from legion.engine.data.store import Store
from legion.engine.registry import Registry
from legion.engine.secrets import store_from_env
from legion.extensions.privatecore import helpers as h
from legion.sdk import Extension, StepError

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('privatecore-erasure')}/state.db"


@pytest.fixture(scope="module")
def store(url: str) -> Iterator[Store]:
    opened = Store(url)
    yield opened
    opened.close()


def fresh_agent() -> str:
    """An agent no other test uses (erasure deletes its key from the process's secret store)."""
    return f"pc-{uuid.uuid4().hex[:12]}"


def call(url: str, function: str, agent: str, now: datetime = T0, **args: Any) -> Any:
    return sdk.call(function if function.count(".") == 2 else f"privatecore.privatecore.{function}", args, now=now,
                    agent=agent, database_url=url)


def seal(url: str, agent: str, plaintext: str) -> dict[str, Any]:
    return dict(call(url, "privatecore.partition_keys.encrypt_for_tenant", agent, plaintext=plaintext))


def unseal(url: str, agent: str, sealed: dict[str, Any], **changes: str) -> str:
    args = {"ciphertext": sealed["ciphertext"], "init_vector": sealed["iv"], "auth_tag": sealed["auth_tag"], **changes}
    return str(call(url, "privatecore.partition_keys.decrypt_for_tenant", agent, **args)["plaintext"])


def hkdf_sha256(key: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869, written out: the reference the extension's key derivation is checked against."""
    prk = hmac.new(salt, key, hashlib.sha256).digest()
    out, block = b"", b""
    for i in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
    return out[:length]


# -- sealed payloads ------------------------------------------------------------------------------------

def test_the_data_key_is_hkdf_sha256_salted_with_the_tenant() -> None:
    master = bytes(range(32))
    assert h.derive_key(master, "ada") == hkdf_sha256(master, hashlib.sha256(b"ada").digest(), b"legion-partition")
    assert h.derive_key(master, "ada") != h.derive_key(master, "bob") and len(h.derive_key(master, "ada")) == 32
    ciphertext, tag = h.encrypt(h.derive_key(master, "ada"), b"\0" * 12, b"hello")
    assert len(tag) == 16 and h.decrypt(h.derive_key(master, "ada"), b"\0" * 12, ciphertext, tag) == b"hello"
    assert h.decrypt(h.derive_key(master, "bob"), b"\0" * 12, ciphertext, tag) is None


def test_a_payload_sealed_for_an_agent_opens_only_for_it(url: str, store: Store) -> None:
    ada, bob = fresh_agent(), fresh_agent()
    assert call(url, "verify_erasure", ada) == {"erased": True, "tenant_id": ada}  # no key yet, and asking makes none
    sealed = seal(url, ada, "the launch code is 1234")
    again = seal(url, ada, "the launch code is 1234")
    assert sealed["tenant_id"] == ada and sealed["iv"] != again["iv"] and sealed["ciphertext"] != again["ciphertext"]
    assert "1234" not in base64.b64decode(sealed["ciphertext"]).decode("latin-1")
    assert unseal(url, ada, sealed) == "the launch code is 1234" == unseal(url, ada, again)
    assert call(url, "verify_erasure", ada)["erased"] is False
    kept = store.state_get(ada, "privatecore", "keys", "master")
    assert kept is not None and "material" not in kept  # the key material itself is sealed with the agent's key
    with pytest.raises(StepError) as no_key:
        unseal(url, bob, sealed)
    assert no_key.value.type == "KeyNotFound"
    seal(url, bob, "bob's own")
    with pytest.raises(StepError) as not_bobs:
        unseal(url, bob, sealed)
    assert not_bobs.value.type == "DecryptionFailed"
    flipped = base64.b64encode(bytes([base64.b64decode(sealed["auth_tag"])[0] ^ 1]) + base64.b64decode(sealed["auth_tag"])[1:])
    with pytest.raises(StepError) as altered:
        unseal(url, ada, sealed, auth_tag=flipped.decode())
    assert altered.value.type == "DecryptionFailed"
    with pytest.raises(StepError) as garbage:
        unseal(url, ada, sealed, init_vector="not base64!")
    assert garbage.value.type == "InvalidArguments"


# -- erasure ----------------------------------------------------------------------------------------------

def copy_rows(store: Store, agent: str) -> dict[tuple[str, str, str], str]:
    kinds = {"privatecore": ("keys", "audit", "meta", "mappings"), "governance": ("open", "closed"),
             "extinction": ("protocol", "history", "archives")}
    return {(ext, kind, key): text for ext, names in kinds.items() for kind in names
            for key, text in store.state_items(agent, ext, kind).items()}


def assert_gone(url: str, store: Store, agent: str, copies: dict[tuple[str, str, str], str], sealed: dict[str, Any]) -> None:
    """Nothing of `agent` is left, and nothing kept of it opens again."""
    assert store.state_count(agent) == 0
    assert f"agents/{agent}" not in store_from_env().list()
    assert call(url, "verify_erasure", agent)["erased"] is True
    with pytest.raises(StepError) as no_key:
        unseal(url, agent, sealed)
    assert no_key.value.type == "KeyNotFound"
    for (extension, kind, key), text in copies.items():  # a backup, put back
        store.state_put(agent, extension, kind, {key: text})
    with pytest.raises(StepError) as unreadable:
        unseal(url, agent, sealed)
    assert "its key is gone" in unreadable.value.message
    for (extension, kind, key) in copies:
        with pytest.raises(StepError, match="its key is gone"):
            if extension == "governance":
                call(url, "governance.governance.get_proposal", agent, proposal_id=key)
            elif extension == "extinction":
                call(url, "extinction.extinction.all_archives" if kind == "archives" else "extinction.extinction.extinction_status",
                     agent)
            elif kind == "audit":
                call(url, "erasure_audit", agent)
            else:
                unseal(url, agent, sealed)
    store.state_clear(agent)


def test_full_erasure_deletes_the_key_then_every_document(url: str, store: Store) -> None:
    agent, bystander = fresh_agent(), fresh_agent()
    sealed = seal(url, agent, "secret")
    call(url, "governance.governance.create_proposal", agent, category="emergency", description="d", proposer="p")
    call(url, "extinction.extinction.escalate", agent, level=1, authority="governance_council", reason="r")
    call(url, "enforce_boundary", agent, text="a@b.co", mode="placeholder", cache_mappings=True)
    other = seal(url, bystander, "still here")
    copies = copy_rows(store, agent)
    count = store.state_count(agent)
    later = T0 + timedelta(days=2)
    with pytest.raises(StepError) as mismatch:
        call(url, "full_erasure", agent, agent_id=bystander)
    assert mismatch.value.type == "AgentMismatch" and store.state_count(agent) == count
    done = call(url, "full_erasure", agent, later, reason="asked to forget")
    assert done == {"erased": True, "agent_id": agent, "documents_erased": count, "key_deleted": True,
                    "erased_at": later.isoformat(), "reason": "asked to forget",
                    "audit": {"action": "full_erasure", "at": later.isoformat(), "count": count, "agent_id": agent}}
    assert len(copies) == count
    assert_gone(url, store, agent, copies, sealed)
    assert unseal(url, bystander, other) == "still here"


TEXTS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)


@settings(max_examples=25, deadline=None)
@given(secrets=st.lists(TEXTS, min_size=1, max_size=4), proposals=st.integers(0, 3), level=st.integers(0, 3))
def test_after_erasure_nothing_of_the_agent_is_readable(url: str, store: Store, secrets: list[str], proposals: int,
                                                        level: int) -> None:
    agent, bystander = fresh_agent(), fresh_agent()
    sealed = [seal(url, agent, text) for text in secrets]
    for i in range(proposals):
        call(url, "governance.governance.create_proposal", agent, category="policy_change", description=f"p{i}", proposer="a")
    authorities = {1: "governance_council", 2: "governance_council", 3: "council_plus_executive"}
    for step in range(1, level + 1):
        call(url, "extinction.extinction.escalate", agent, level=step, authority=authorities[step], reason="r")
    kept = seal(url, bystander, "kept")
    copies = copy_rows(store, agent)
    assert call(url, "full_erasure", agent)["documents_erased"] == len(copies)  # every document was copied
    assert_gone(url, store, agent, copies, sealed[0])
    assert unseal(url, bystander, kept) == "kept"


# -- memory erasure and the audit log -------------------------------------------------------------------

def _fake_memory() -> Extension:
    consolidation = types.ModuleType("consolidation")

    def erase_by_type(type: str) -> dict[str, Any]:
        return {"erased": {"episodic": 3}.get(type, 0), "type": type}

    def erase_by_agent(partition_id: str) -> dict[str, Any]:
        return {"erased": 5, "partition_id": partition_id}

    consolidation.erase_by_type, consolidation.erase_by_agent = erase_by_type, erase_by_agent  # type: ignore[attr-defined]
    consolidation.__all__ = ["erase_by_type", "erase_by_agent"]  # type: ignore[attr-defined]
    return Extension("memory", runners=[consolidation])


@pytest.fixture()
def with_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    found = Registry.discover().extensions
    monkeypatch.setattr(registry_module, "_installed", Registry([found["privatecore"], _fake_memory()]))


@pytest.mark.usefixtures("with_memory")
def test_memory_erasure_goes_through_the_memory_extension_and_is_audited(url: str) -> None:
    agent = fresh_agent()
    assert call(url, "erasure_audit", agent) == {"audit_log": [], "count": 0}
    assert call(url, "erase_by_type", agent, type="episodic") == {"erased": 3, "type": "episodic"}
    later = T0 + timedelta(minutes=1)
    assert call(url, "erase_by_partition", agent, later, partition_id="bob") == {"erased": 5, "partition_id": "bob"}
    assert call(url, "erasure_audit", agent) == {"count": 2, "audit_log": [
        {"action": "erase_by_type", "at": T0.isoformat(), "type": "episodic", "count": 3},
        {"action": "erase_by_partition", "at": later.isoformat(), "partition_id": "bob", "count": 5}]}
    assert call(url, "erasure_audit", fresh_agent())["count"] == 0  # another agent's log is its own
    assert call(url, "prune_audit_log", agent) == {"pruned": 0, "remaining": 2}


def test_erasure_without_a_memory_extension_fails_clearly(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    found = Registry.discover().extensions
    monkeypatch.setattr(registry_module, "_installed", Registry([found["privatecore"]]))
    with pytest.raises(StepError) as missing:
        call(url, "erase_by_type", fresh_agent(), type="episodic")
    assert missing.value.type == "UnknownFunction"


def test_the_audit_log_is_pruned_to_its_newest_1000_entries(url: str, store: Store) -> None:
    agent = fresh_agent()
    states = AgentStates(store, AgentKeys(lambda: store_from_env()))  # the same key store the calls use
    entries = {f"{i:09d}": h.audit_entry("erase_by_type", T0 + timedelta(seconds=i), type="t", count=i) for i in range(1, 1006)}
    states.of(agent, "privatecore").put_many("audit", entries)
    states.of(agent, "privatecore").put("meta", "audit", {"seq": 1005})
    assert call(url, "prune_audit_log", agent) == {"pruned": 5, "remaining": 1000}
    log = call(url, "erasure_audit", agent)["audit_log"]
    assert len(log) == 1000 and log[0]["count"] == 6 and log[-1]["count"] == 1005
    call(url, "full_erasure", agent)
    assert call(url, "erasure_audit", agent)["count"] == 0  # the log goes with the agent: full_erasure returns its entry

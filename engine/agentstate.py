"""What extensions keep for an agent (`ctx.state`), in SQL, sealed with the agent's own key.

Each agent has a random 256-bit key in the secret store (`agents/<name>#key`: Vault, or the
embedded store), made on its first write. Each extension's documents are encrypted with
AES-256-GCM under a key derived from it with HKDF-SHA256 (one per extension), the document's
address (agent, extension, kind, key) bound in as associated data, so a row moved to another
address does not open. Erasing an agent deletes its key first, then its rows: what a backup
kept of them can never be read again.

    state = ctx.state                       # this agent's, for this function's extension
    state.put("traces", trace_id, {...})
    state.get("traces", trace_id)           # -> dict | None
    state.items("traces")                   # -> {key: dict}
    state.update("counters", "seq", lambda d: {"n": (d or {}).get("n", 0) + 1})   # atomic
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from legion.engine.errors import LegionError

DEFAULT_AGENT = "default"  # whose state a function keeps outside an agent's chains
KEY_PATH = "agents/{agent}"
KEY_CACHE_SECONDS = 60.0  # how long a process trusts the key it read (an erasure elsewhere shows after this)
NONCE = 12


class StateStore(Protocol):
    def state_get(self, agent: str, extension: str, kind: str, key: str) -> str | None: ...
    def state_items(self, agent: str, extension: str, kind: str) -> dict[str, str]: ...
    def state_put(self, agent: str, extension: str, kind: str, documents: dict[str, str]) -> None: ...
    def state_delete(self, agent: str, extension: str, kind: str, keys: list[str]) -> int: ...
    def state_update(self, agent: str, extension: str, kind: str, key: str,
                     change: Callable[[str | None], str | None]) -> str | None: ...
    def state_clear(self, agent: str, extension: str | None = None, kind: str | None = None) -> int: ...
    def delete_agent_runs(self, agent: str) -> int: ...
    def mark_agent_erased(self, name: str) -> bool: ...
    def list_agents(self) -> list[dict[str, Any]]: ...


class StateUnreadable(LegionError):
    """A document that does not open: its agent's key is gone (erased) or it was tampered with."""

    code = "state_unreadable"


class AgentKeys:
    """Each agent's key material: in the secret store (`secrets()` opens it on first use), or,
    with none, in this object only (rehearsals: nothing outlives them)."""

    def __init__(self, secrets: Callable[[], Any] | None = None) -> None:
        self._secrets = secrets
        self._lock = threading.Lock()
        self._known: dict[str, tuple[bytes, float]] = {}

    def material(self, agent: str, *, create: bool) -> bytes | None:
        with self._lock:
            known = self._known.get(agent)
            # Read again after a while: another process may have erased the agent (deleted its key).
            if known is not None and (self._secrets is None or time.monotonic() - known[1] < KEY_CACHE_SECONDS):
                return known[0]
            found: bytes | None = None
            if self._secrets is not None:
                store = self._secrets()
                try:
                    text = store.read(KEY_PATH.format(agent=agent)).get("key")
                except LegionError:
                    text = None
                found = base64.b64decode(text) if text else None
                if found is None and create:
                    found = os.urandom(32)
                    store.write(KEY_PATH.format(agent=agent), "key", base64.b64encode(found).decode())
            elif create:
                found = os.urandom(32)
            if found is not None:
                self._known[agent] = (found, time.monotonic())
            else:
                self._known.pop(agent, None)
            return found

    def erase(self, agent: str) -> None:
        with self._lock:
            self._known.pop(agent, None)
            if self._secrets is not None:
                try:
                    self._secrets().delete(KEY_PATH.format(agent=agent))
                except LegionError:
                    pass  # no key: nothing was ever sealed for it


class AgentStates:
    """Hands out `AgentState`s over one store and one key source."""

    def __init__(self, store: StateStore | Callable[[], StateStore], keys: AgentKeys) -> None:
        self._store = store
        self.keys = keys
        self._ciphers: dict[tuple[str, str], tuple[bytes, Any]] = {}
        self._lock = threading.Lock()

    @property
    def store(self) -> StateStore:
        if not hasattr(self._store, "state_get"):  # a factory: the store is opened on first use
            self._store = self._store()
        return self._store  # type: ignore[return-value]

    def of(self, agent: str, extension: str) -> AgentState:
        return AgentState(self, agent, extension)

    def cipher(self, agent: str, extension: str, *, create: bool) -> Any:
        """The agent's cipher for `extension`, derived from its key material; made again when
        the material changed (read afresh now and then: see AgentKeys)."""
        material = self.keys.material(agent, create=create)
        if material is None:
            return None
        with self._lock:
            found = self._ciphers.get((agent, extension))
        if found is not None and found[0] == material:
            return found[1]
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"legion/agent-state/{extension}".encode()).derive(material)
        cipher = AESGCM(key)
        with self._lock:
            self._ciphers[(agent, extension)] = (material, cipher)
        return cipher

    def erase(self, agent: str) -> int:
        """Erase the agent (see `erase_all`): the number of documents deleted."""
        return self.erase_all(agent)[0]

    def erase_all(self, agent: str) -> tuple[int, int]:
        """Delete the agent's key, then every document of it, then the finished runs that were
        for it (their tasks hold what it was told and said), and mark its record erased (if it
        has one): (documents, runs) deleted."""
        self.keys.erase(agent)
        with self._lock:
            for pair in [p for p in self._ciphers if p[0] == agent]:
                del self._ciphers[pair]
        erased = self.store.state_clear(agent)
        deleted = self.store.delete_agent_runs(agent)
        self.store.mark_agent_erased(agent)
        return erased, deleted

    def agents(self) -> list[str]:
        """The names of the agents on record that were not erased."""
        return [a["name"] for a in self.store.list_agents() if a.get("erased_at") is None]


class AgentState:
    """One agent's documents for one extension, by kind and key. Documents are JSON objects."""

    __slots__ = ("_states", "agent", "extension")

    def __init__(self, states: AgentStates, agent: str, extension: str) -> None:
        self._states, self.agent, self.extension = states, agent, extension

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        sealed = self._states.store.state_get(self.agent, self.extension, kind, key)
        return None if sealed is None else self._open(kind, key, sealed)

    def items(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: self._open(kind, k, v) for k, v in self._states.store.state_items(self.agent, self.extension, kind).items()}

    def put(self, kind: str, key: str, document: dict[str, Any]) -> None:
        self.put_many(kind, {key: document})

    def put_many(self, kind: str, documents: dict[str, dict[str, Any]]) -> None:
        """Write several documents of a kind in one transaction."""
        cipher = self._states.cipher(self.agent, self.extension, create=True)
        sealed = {key: self._seal(cipher, kind, key, document) for key, document in documents.items()}
        self._states.store.state_put(self.agent, self.extension, kind, sealed)

    def _seal(self, cipher: Any, kind: str, key: str, document: dict[str, Any]) -> str:
        nonce = os.urandom(NONCE)
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str).encode()
        return base64.b64encode(nonce + cipher.encrypt(nonce, text, self._address(kind, key))).decode()

    def update(self, kind: str, key: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> dict[str, Any] | None:
        """Read-modify-write one document atomically: `change(document or None)` gives the new
        document (None deletes it), with the document locked meanwhile, so two steps updating
        it at once never lose an update (a counter, a running baseline). What was written."""
        cipher = self._states.cipher(self.agent, self.extension, create=True)
        written: list[dict[str, Any] | None] = [None]

        def sealed_change(current: str | None) -> str | None:
            new = change(None if current is None else self._open(kind, key, current))
            written[0] = new
            return None if new is None else self._seal(cipher, kind, key, new)

        self._states.store.state_update(self.agent, self.extension, kind, key, sealed_change)
        return written[0]

    def delete(self, kind: str, *keys: str) -> int:
        return self._states.store.state_delete(self.agent, self.extension, kind, list(keys)) if keys else 0

    def clear(self, kind: str | None = None) -> int:
        """Delete this extension's documents of `kind` (all kinds when None)."""
        return self._states.store.state_clear(self.agent, self.extension, kind)

    def _address(self, kind: str, key: str) -> bytes:
        return f"{self.agent}\x00{self.extension}\x00{kind}\x00{key}".encode()

    def _open(self, kind: str, key: str, sealed: str) -> dict[str, Any]:
        from cryptography.exceptions import InvalidTag

        cipher = self._states.cipher(self.agent, self.extension, create=False)
        raw = base64.b64decode(sealed)
        try:
            if cipher is None:
                raise InvalidTag
            data = json.loads(cipher.decrypt(raw[:NONCE], raw[NONCE:], self._address(kind, key)))
        except InvalidTag:
            raise StateUnreadable(f"the state {self.extension}/{kind}/{key} of agent {self.agent!r} cannot be read: "
                                  "its key is gone (the agent was erased) or the row was altered") from None
        return data  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"AgentState(agent={self.agent!r}, extension={self.extension!r})"

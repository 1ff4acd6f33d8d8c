"""Payloads sealed with the agent's own data key (legion-crypt's PartitionKeys): AES-256-GCM
under a key derived with HKDF-SHA256 (salt SHA256(agent), info "legion-partition") from key
material kept in the agent's state (kind "keys", key "master").

That material is itself sealed with the agent's key in the secret store, so erasing the agent
(`privatecore.privatecore.full_erasure`, `ctx.erase_agent()`) makes every payload sealed here
unreadable for good, wherever a copy of it went. The tenant is the run's agent.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Annotated, Any

from pydantic import Field

from legion.extensions.privatecore import helpers as h
from legion.sdk import Context, StepError

__all__ = ["encrypt_for_tenant", "decrypt_for_tenant"]

B64 = Annotated[str, Field(description="base64")]


def _material(ctx: Context, *, create: bool) -> bytes | None:
    kept = ctx.state.get(h.KEY_KIND, h.MASTER_KEY)
    if kept is not None:
        return base64.b64decode(kept["material"])
    if not create:
        return None
    material = os.urandom(h.KEY_BYTES)
    ctx.state.put(h.KEY_KIND, h.MASTER_KEY, {"material": base64.b64encode(material).decode(), "created_at": ctx.now().isoformat()})
    return material


def _bytes(name: str, value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise StepError(f"{name} is not base64", type="InvalidArguments") from None


def encrypt_for_tenant(ctx: Context, plaintext: Annotated[str, Field(description="what to seal")]) -> dict[str, Any]:
    """Seal `plaintext` for the run's agent: {ciphertext, iv, auth_tag (base64), tenant_id}.
    The agent's data key is made on first use."""
    material = _material(ctx, create=True)
    assert material is not None
    iv = os.urandom(h.IV_BYTES)
    ciphertext, tag = h.encrypt(h.derive_key(material, ctx.agent), iv, plaintext.encode())
    return {"ciphertext": base64.b64encode(ciphertext).decode(), "iv": base64.b64encode(iv).decode(),
            "auth_tag": base64.b64encode(tag).decode(), "tenant_id": ctx.agent}


def decrypt_for_tenant(ctx: Context, ciphertext: B64, init_vector: B64, auth_tag: B64) -> dict[str, Any]:
    """Open what encrypt_for_tenant sealed for the run's agent: {plaintext, tenant_id}. Fails
    with KeyNotFound when the agent has no data key (never made, or erased) and with
    DecryptionFailed when the payload was not sealed with it or was altered."""
    material = _material(ctx, create=False)
    if material is None:
        raise StepError(f"agent {ctx.agent!r} has no data key (none was made, or the agent was erased): the payload cannot "
                        "be opened", type="KeyNotFound")
    opened = h.decrypt(h.derive_key(material, ctx.agent), _bytes("init_vector", init_vector), _bytes("ciphertext", ciphertext),
                       _bytes("auth_tag", auth_tag))
    if opened is None:
        raise StepError(f"the payload was not sealed for agent {ctx.agent!r}, or was altered", type="DecryptionFailed")
    return {"plaintext": opened.decode("utf-8", errors="replace"), "tenant_id": ctx.agent}

"""The privacy boundary and erasure (LegionIO's lex-privatecore runner): outbound text loses
its PII, inbound text is checked for probes, and an agent is erased for good.

State, per agent: kind "audit" (erasure audit entries keyed by sequence number; kind "meta"
key "audit" keeps the counter), kind "mappings" (placeholder/synthetic mappings kept for
`restore_text`, sealed like all agent state, with their expiry). The engine seals every
document with the agent's key; `full_erasure` deletes that key and then every document of
the agent (all extensions'), so nothing of the agent can be read again.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field

from legion.extensions.privatecore import helpers as h
from legion.extensions.privatecore import redactor
from legion.extensions.privatecore.patterns import DEFAULT_ENABLED, PiiType, Validation
from legion.sdk import Context, StepError, function

__all__ = ["enforce_boundary", "check_pii", "detect_probe", "restore_text", "erasure_audit", "prune_audit_log",
           "full_erasure", "verify_erasure", "erase_by_type", "erase_by_partition"]

AUDIT, META, MAPPINGS = "audit", "meta", "mappings"

Text = Annotated[str, Field(description="the text")]
ModeArg = Annotated[redactor.Mode | None, Field(description="redact (default: [REDACTED]), placeholder ([EMAIL_1], "
                                                            "reversible), mask (letters and digits to *), synthetic "
                                                            "(fake values of the same shape, reversible)")]
ServiceUrl = Annotated[str | None, Field(description="a Presidio-compatible NER service (POST {text, language}): "
                                                     "https, or http on this machine")]
Enabled = Annotated[list[PiiType] | None, Field(description="the patterns to look for (default email, phone, ssn, ip)")]
ValidationArg = Annotated[dict[PiiType, Validation] | None,
                          Field(description="per pattern, regex (default) or checksum (credit_card: Luhn, iban: mod-97, "
                                            "btc_address: Base58Check, aadhaar: Verhoeff)")]
NerTimeout = Annotated[float, Field(gt=0, description="seconds to wait for the NER service")]
NerFallbackArg = Annotated[h.NerFallback, Field(description="when the NER service fails: silent or transparent (use the "
                                                            "patterns alone; transparent says so in source) or strict "
                                                            "(fail the step)")]


def _ner(ctx: Context, text: str, service_url: str, timeout: float, fallback: str) -> tuple[list[dict[str, Any]], bool]:
    """The NER service's detections, and whether it failed and the patterns stand alone."""
    if not h.service_url_allowed(service_url):
        raise StepError(f"the NER service must be https (or http on this machine), not {service_url!r}",
                        type="InvalidArguments")
    try:
        answer = ctx.call("http.request.post", {"url": service_url, "json": {"text": text, "language": "en"},
                                                "timeout": timeout})
        if answer.get("status") != 200:
            raise ValueError(f"HTTP {answer.get('status')}")
        entities = answer.get("json")
        if entities is None:
            entities = json.loads(answer.get("text") or "")
        return h.ner_detections(entities, text), False
    except (StepError, ValueError) as exc:
        reason = exc.message if isinstance(exc, StepError) else str(exc)
        if fallback == "strict":
            raise StepError(f"the NER service at {service_url} is unavailable: {reason}", type="NerServiceUnavailable") from exc
        ctx.log.warning("privatecore: NER service unavailable (%s), the patterns stand alone", reason)
        return [], True


def _strip(ctx: Context, text: str, mode: str | None, service_url: str | None, enabled: list[str] | None,
           validation: dict[str, str] | None, ner_timeout: float, ner_fallback: str) -> dict[str, Any]:
    extra, fell_back = _ner(ctx, text, service_url, ner_timeout, ner_fallback) if service_url else ([], False)
    result = redactor.strip_pii(text, mode=mode or redactor.DEFAULT_MODE,  # type: ignore[arg-type]
                                enabled=tuple(enabled) if enabled is not None else DEFAULT_ENABLED,
                                validation=dict(validation or {}), rng=random.SystemRandom(), extra=extra)
    if fell_back and ner_fallback == "transparent":
        result["source"] = "regex_fallback"
    return result


def _safe(detections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Detections as a result shows them: never the matched value."""
    return [{k: v for k, v in d.items() if k != "match"} for d in detections]


def _keep_mapping(ctx: Context, mapping: dict[str, str], ttl: int) -> str:
    now = ctx.now()
    stale = [k for k, m in ctx.state.items(MAPPINGS).items() if h.expired(m["expires_at"], now)]
    if stale:
        ctx.state.delete(MAPPINGS, *stale)
    key = str(uuid.uuid4())
    ctx.state.put(MAPPINGS, key, {"mapping": mapping, "expires_at": now.timestamp() + ttl})
    return key


def enforce_boundary(ctx: Context, text: Text,
                     direction: Annotated[Literal["outbound", "inbound"], Field(description="outbound: strip PII; "
                                                                                "inbound: check for probes")] = "outbound",
                     mode: ModeArg = None, service_url: ServiceUrl = None, enabled: Enabled = None,
                     validation: ValidationArg = None,
                     cache_mappings: Annotated[bool, Field(description="keep the mapping sealed in the agent's state "
                                                                       "and return only its mapping_key")] = False,
                     cache_ttl: Annotated[int, Field(gt=0, description="seconds a kept mapping lasts")] = h.MAPPING_TTL,
                     ner_timeout: NerTimeout = h.NER_TIMEOUT, ner_fallback: NerFallbackArg = "transparent"
                     ) -> dict[str, Any]:
    """Outbound: {original_length, cleaned, pii_found, direction, detections (type, category,
    start, end; never the value), mapping, mapping_key, source}. Inbound: {text, probe,
    direction, action: flag_and_log | allow}."""
    if direction == "inbound":
        probe = h.detect_probe(text)
        if probe:
            ctx.log.warning("privatecore: probe detected in inbound text")
        return {"text": text, "probe": probe, "direction": direction, "action": "flag_and_log" if probe else "allow"}
    result = _strip(ctx, text, mode, service_url, enabled, validation, ner_timeout, ner_fallback)
    pii_found = bool(result["detections"])
    if pii_found:
        ctx.log.warning("privatecore: PII stripped from outbound text (%d)", len(result["detections"]))
    mapping, mapping_key = result["mapping"], None
    if cache_mappings and mapping:
        # The mapping holds the originals: kept sealed in the agent's state, not in the result.
        mapping_key, mapping = _keep_mapping(ctx, mapping, cache_ttl), {}
    return {"original_length": len(text), "cleaned": result["cleaned"], "pii_found": pii_found, "direction": direction,
            "detections": _safe(result["detections"]), "mapping": mapping, "mapping_key": mapping_key,
            "source": result["source"]}


def check_pii(ctx: Context, text: Text, service_url: ServiceUrl = None, enabled: Enabled = None,
              validation: ValidationArg = None, ner_timeout: NerTimeout = h.NER_TIMEOUT,
              ner_fallback: NerFallbackArg = "transparent") -> dict[str, Any]:
    """{contains_pii, stripped, detections} (redact mode)."""
    result = _strip(ctx, text, None, service_url, enabled, validation, ner_timeout, ner_fallback)
    return {"contains_pii": bool(result["detections"]), "stripped": result["cleaned"], "detections": _safe(result["detections"])}


def detect_probe(ctx: Context, text: Text) -> dict[str, Any]:
    """{probe_detected, events}: events holds privatecore.probe_detected ({text_length}) when
    a probe is found (a chain reacts with `on.events: [privatecore.privatecore.detect_probe]`)."""
    probe = h.detect_probe(text)
    if probe:
        ctx.log.warning("privatecore: probe detected")
    events = [{"event": "privatecore.probe_detected", "text_length": len(text), "at": ctx.now().isoformat()}] if probe else []
    return {"probe_detected": probe, "events": events}


def restore_text(ctx: Context, text: Text,
                 mapping: Annotated[dict[str, str] | None, Field(description="the mapping enforce_boundary returned")] = None,
                 mapping_key: Annotated[str | None, Field(description="the mapping_key enforce_boundary returned")] = None
                 ) -> dict[str, Any]:
    """Put back what placeholder or synthetic mode replaced: {restored, success}, or
    {restored: null, success: false, error: no_mapping | mapping_not_found} (a kept mapping
    expires after its ttl, on the run's clock)."""
    if mapping:
        return {"restored": redactor.restore(text, mapping), "success": True}
    if mapping_key:
        kept = ctx.state.get(MAPPINGS, mapping_key)
        if kept is None or h.expired(kept["expires_at"], ctx.now()):
            if kept is not None:
                ctx.state.delete(MAPPINGS, mapping_key)
            return {"restored": None, "success": False, "error": "mapping_not_found"}
        return {"restored": redactor.restore(text, kept["mapping"]), "success": True}
    return {"restored": None, "success": False, "error": "no_mapping"}


def _audit(ctx: Context, entry: dict[str, Any]) -> None:
    seq = int((ctx.state.get(META, "audit") or {}).get("seq", 0)) + 1
    ctx.state.put(AUDIT, f"{seq:09d}", entry)
    ctx.state.put(META, "audit", {"seq": seq})


def erasure_audit(ctx: Context) -> dict[str, Any]:
    """The erasure audit log, oldest first: {audit_log, count}."""
    kept = ctx.state.items(AUDIT)
    log = [kept[k] for k in sorted(kept)]
    return {"audit_log": log, "count": len(log)}


def prune_audit_log(ctx: Context) -> dict[str, Any]:
    """Keep the newest 1000 audit entries (LegionIO's actor runs this hourly): {pruned, remaining}."""
    keys = sorted(ctx.state.items(AUDIT))
    drop = keys[:max(0, len(keys) - h.MAX_AUDIT_LOG_SIZE)]
    if drop:
        ctx.state.delete(AUDIT, *drop)
    return {"pruned": len(drop), "remaining": len(keys) - len(drop)}


@function(expose=False)  # irreversible: off the REST API and the MCP tools (chains and the CLI only)
def full_erasure(ctx: Context,
                 agent_id: Annotated[str | None, Field(description="the agent (default, or 'self': the run's agent)")] = None,
                 reason: Annotated[str | None, Field(description="why (kept in the result)")] = None) -> dict[str, Any]:
    """Erase the run's agent: its key is deleted from the secret store, then every document
    every extension keeps for it. What a backup kept of them can never be read again. Its
    own audit log goes with it, so the audit entry is in the result: {erased, agent_id,
    documents_erased, key_deleted, erased_at, reason, audit}."""
    agent = ctx.agent if agent_id in (None, "", "self") else str(agent_id)
    if agent != ctx.agent:
        raise StepError(f"full_erasure erases the run's own agent ({ctx.agent!r}), not {agent!r}: run it for that agent",
                        type="AgentMismatch")
    count = ctx.erase_agent()
    now = ctx.now()
    ctx.log.warning("privatecore: agent %s erased (%d documents)", agent, count)
    return {"erased": True, "agent_id": agent, "documents_erased": count, "key_deleted": True, "erased_at": now.isoformat(),
            "reason": reason, "audit": h.audit_entry("full_erasure", now, count=count, agent_id=agent)}


def verify_erasure(ctx: Context) -> dict[str, Any]:
    """{erased, tenant_id}: true when privatecore holds no data key for the agent (none was
    made, or it was erased). Reading makes no key."""
    return {"erased": ctx.state.get(h.KEY_KIND, h.MASTER_KEY) is None, "tenant_id": ctx.agent}


def erase_by_type(ctx: Context, type: Annotated[str, Field(description="the memory trace type to erase")]) -> dict[str, Any]:
    """Erase the agent's memory traces of a type (memory.consolidation.erase_by_type), with an
    audit entry: {erased, type}."""
    done = ctx.call("memory.consolidation.erase_by_type", {"type": type})
    count = int(done.get("erased", 0))
    _audit(ctx, h.audit_entry("erase_by_type", ctx.now(), type=type, count=count))
    return {"erased": count, "type": type}


def erase_by_partition(ctx: Context,
                       partition_id: Annotated[str, Field(description="the memory partition (an agent id)")]) -> dict[str, Any]:
    """Erase the memory traces of a partition (memory.consolidation.erase_by_agent), with an
    audit entry: {erased, partition_id}."""
    done = ctx.call("memory.consolidation.erase_by_agent", {"partition_id": partition_id})
    count = int(done.get("erased", 0))
    _audit(ctx, h.audit_entry("erase_by_partition", ctx.now(), partition_id=partition_id, count=count))
    return {"erased": count, "partition_id": partition_id}

"""Redaction (LegionIO's Helpers::Redactor and Boundary#strip_pii): pure functions.

Randomness (synthetic values) comes from a `random.Random` the caller passes; nothing here
reads a clock or keeps state."""

from __future__ import annotations

import random
import re
import string
from typing import Any, Literal

from legion.extensions.privatecore.patterns import ALL_TYPES, detect

Mode = Literal["redact", "placeholder", "mask", "synthetic"]
REDACTION_MARKER = "[REDACTED]"
DEFAULT_MODE: Mode = "redact"
MAX_PASSES = 8  # redaction runs again on its own output until nothing matches (it never needs many)


def _rank(detection: dict[str, Any]) -> tuple[int, int, int]:
    """Which of overlapping detections names the merged span: the longest, then a model's
    (NER) over a pattern's, then the earlier pattern."""
    kind = detection["type"]
    order = ALL_TYPES.index(kind) if kind in ALL_TYPES else len(ALL_TYPES)
    return (-(detection["end"] - detection["start"]), 0 if detection.get("source") == "ner" else 1, order)


def merge_overlaps(text: str, detections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Overlapping detections become one span covering them all, named after the longest
    (LegionIO replaced overlapping spans one after the other, which cut markers apart and left
    pieces of the values in the text)."""
    merged: list[dict[str, Any]] = []
    group: list[dict[str, Any]] = []
    end = -1
    for d in sorted(detections, key=lambda d: (d["start"], -d["end"])):
        if group and d["start"] < end:
            group.append(d)
            end = max(end, d["end"])
            continue
        if group:
            merged.append(_span(text, group, end))
        group, end = [d], d["end"]
    if group:
        merged.append(_span(text, group, end))
    return merged


def _span(text: str, group: list[dict[str, Any]], end: int) -> dict[str, Any]:
    start = group[0]["start"]
    named = min(group, key=_rank)
    return dict(named, start=start, end=end, match=text[start:end])


def mask_value(original: str) -> str:
    return re.sub(r"[0-9]", "*", re.sub(r"[A-Za-z]", "*", original))


def luhn_number(length: int, rng: random.Random) -> str:
    digits = [rng.randint(0, 9) for _ in range(length - 1)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        v = d * 2 if i % 2 == 0 else d
        total += v - 9 if v > 9 else v
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def synthetic_value(kind: str, original: str, rng: random.Random) -> str:
    """A fake value of the same shape (LegionIO's generate_synthetic)."""
    r = rng.randint
    if kind in ("ssn", "itin"):
        return f"{r(100, 999)}-{r(10, 99)}-{r(1000, 9999)}"
    if kind == "phone":
        return f"{r(200, 999)}-{r(200, 999)}-{r(1000, 9999)}"
    if kind == "email":
        return f"user{r(1000, 9999)}@example.net"
    if kind == "credit_card":
        return luhn_number(16, rng)
    if kind == "ip":
        return f"{r(1, 254)}.{r(0, 255)}.{r(0, 255)}.{r(1, 254)}"
    if kind == "aadhaar":
        return f"{r(2000, 9999)} {r(1000, 9999)} {r(1000, 9999)}"
    if kind == "passport":
        return f"{rng.choice(string.ascii_uppercase)}{r(10_000_000, 99_999_999)}"
    if kind == "aws_key":
        return "AKIA" + "".join(rng.choice(string.digits + string.ascii_uppercase) for _ in range(16))
    return "".join(rng.choice("0123456789abcdef") for _ in range(2 * (len(original) // 2)))


def redact(text: str, detections: list[dict[str, Any]], mode: Mode, rng: random.Random,
           counters: dict[str, int] | None = None) -> dict[str, Any]:
    """Replace each (non-overlapping) detection: {cleaned, mapping}. placeholder tags are
    numbered per type in the order the values appear ([EMAIL_1] first); placeholder and
    synthetic map each replacement back to its original."""
    counters = {} if counters is None else counters
    mapping: dict[str, str] = {}
    pieces: list[str] = []
    at = 0
    for d in sorted(detections, key=lambda d: d["start"]):
        original = text[d["start"]:d["end"]]
        if mode == "placeholder":
            counters[d["type"]] = counters.get(d["type"], 0) + 1
            replacement = f"[{d['type'].upper()}_{counters[d['type']]}]"
            mapping[replacement] = original
        elif mode == "mask":
            replacement = mask_value(original)
        elif mode == "synthetic":
            replacement = synthetic_value(d["type"], original, rng)
            for _ in range(16):  # a fake equal to a real value, or to another fake, could not be restored
                if replacement and replacement != original and replacement not in mapping and replacement not in text:
                    break
                replacement = synthetic_value(d["type"], original, rng) or REDACTION_MARKER
            mapping[replacement] = original
        else:
            replacement = REDACTION_MARKER
        pieces += [text[at:d["start"]], replacement]
        at = d["end"]
    pieces.append(text[at:])
    return {"cleaned": "".join(pieces), "mapping": mapping}


def strip_pii(text: str, *, mode: Mode = DEFAULT_MODE, enabled: list[str] | tuple[str, ...], validation: dict[str, str],
              rng: random.Random, extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Detect and replace: {cleaned, mapping, detections, source}. `extra` are detections from
    elsewhere (a NER service) merged with the patterns'. Except in synthetic mode (whose fakes
    match by design), redaction runs again on its own output until no enabled pattern matches
    it: replacing one value can put word boundaries where none were."""
    counters: dict[str, int] = {}
    mapping: dict[str, str] = {}
    reported: list[dict[str, Any]] = []
    current = text
    for number in range(MAX_PASSES):
        found = detect(current, enabled, validation) + (list(extra or []) if number == 0 else [])
        if not found:
            break
        merged = merge_overlaps(current, found)
        done = redact(current, merged, mode, rng, counters)
        mapping.update(done["mapping"])
        reported += merged if number == 0 else [dict(d, **{"pass": number}) for d in merged]
        current = done["cleaned"]
        if mode == "synthetic":
            break
    sources = {d.get("source") for d in reported}
    source = "none" if not reported else "ner_and_regex" if sources >= {"ner", "regex"} else "ner" if "ner" in sources else "regex"
    return {"cleaned": current, "mapping": mapping, "detections": reported, "source": source}


def restore(text: str, mapping: dict[str, str]) -> str:
    """Put the originals back, the latest replacements first (a later pass may have wrapped an
    earlier one)."""
    restored = text
    for replacement, original in reversed(list(mapping.items())):
        restored = restored.replace(replacement, original)
    return restored

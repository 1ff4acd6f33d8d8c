"""The PII patterns (LegionIO's Helpers::Patterns) and their checksums: pure functions.

Patterns are compiled with re.ASCII, so `\\d`, `\\s` and `\\b` mean what they mean in Ruby
(ASCII digits, spaces, word boundaries)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

PiiType = Literal["email", "phone", "ssn", "ip", "credit_card", "dob", "mrn", "passport", "iban", "drivers_license", "url",
                  "btc_address", "eth_address", "itin", "aadhaar", "api_key", "bearer_token", "aws_key"]
Validation = Literal["regex", "checksum"]


@dataclass(frozen=True)
class Pattern:
    regex: re.Pattern[str]
    category: str
    checksum: str | None = None


def _re(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, re.ASCII | flags)


# In LegionIO's order: detections are listed in it, and it breaks ties between equal spans.
PATTERNS: dict[str, Pattern] = {
    "email": Pattern(_re(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Z|a-z]{2,}\b"), "contact"),
    "phone": Pattern(_re(r"\b\d{3}[-.]?\d{3}[-.]?\d{4}\b"), "contact"),
    "ssn": Pattern(_re(r"\b\d{3}-\d{2}-\d{4}\b"), "government_id"),
    "ip": Pattern(_re(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b"), "network"),
    "credit_card": Pattern(_re(r"\b(?:\d[ -]*?){13,19}\b"), "financial", "luhn"),
    "dob": Pattern(_re(r"(?:DOB|date of birth)\s*:\s*(\d{1,4}[-/]\d{1,2}[-/]\d{1,4})", re.IGNORECASE), "personal"),
    "mrn": Pattern(_re(r"(?:MRN|medical record)\s*:\s*(\d{5,15})", re.IGNORECASE), "medical"),
    "passport": Pattern(_re(r"\b[A-Z]\d{8}\b"), "government_id"),
    "iban": Pattern(_re(r"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b"), "financial", "iban"),
    "drivers_license": Pattern(_re(r"\b[A-Z]\d{3}-?\d{4}-?\d{4}\b"), "government_id"),
    "url": Pattern(_re(r"https?://[^\s<>\"{}|\\^`\[\]]+"), "network"),
    "btc_address": Pattern(_re(r"\b[13][a-km-zA-HJ-NP-Z1-9]{25,34}\b"), "crypto", "base58check"),
    "eth_address": Pattern(_re(r"\b0x[0-9a-fA-F]{40}\b"), "crypto"),
    "itin": Pattern(_re(r"\b9\d{2}-[7-9]\d-\d{4}\b"), "government_id"),
    "aadhaar": Pattern(_re(r"\b[2-9]\d{3}\s?\d{4}\s?\d{4}\b"), "government_id", "verhoeff"),
    "api_key": Pattern(_re(r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{20,}\b"), "credential"),
    "bearer_token": Pattern(_re(r"Bearer\s+[A-Za-z0-9\-._~+/]+=*"), "credential"),
    "aws_key": Pattern(_re(r"\bAKIA[0-9A-Z]{16}\b"), "credential"),
}
ALL_TYPES: tuple[str, ...] = tuple(PATTERNS)
DEFAULT_ENABLED: tuple[str, ...] = ("email", "phone", "ssn", "ip")


def detect(text: str, enabled: list[str] | tuple[str, ...] = DEFAULT_ENABLED,
           validation: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every match of the enabled patterns: {type, category, start, end, match, source}. A
    pattern with a capture group (dob, mrn) reports the group, not its label. A pattern whose
    validation is "checksum" keeps only matches whose checksum holds."""
    validation = validation or {}
    found: list[dict[str, Any]] = []
    for kind, pattern in PATTERNS.items():
        if kind not in enabled:
            continue
        for m in pattern.regex.finditer(text):
            group = next((i for i in range(1, (m.re.groups or 0) + 1) if m.group(i) is not None), 0)
            matched = m.group(group)
            if validation.get(kind) == "checksum" and not validate_checksum(kind, matched):
                continue
            found.append({"type": kind, "category": pattern.category, "start": m.start(group), "end": m.end(group),
                          "match": matched, "source": "regex"})
    return found


def validate_checksum(kind: str, match: str) -> bool:
    """The pattern's checksum over the match without spaces and dashes (true for patterns
    that have none)."""
    pattern = PATTERNS.get(kind)
    if pattern is None or pattern.checksum is None:
        return True
    cleaned = re.sub(r"[\s-]", "", match)
    return bool(_VALIDATORS[pattern.checksum](cleaned))


def luhn_valid(number: str) -> bool:
    if not number.isascii() or not number.isdigit():
        return False
    total = 0
    for i, char in enumerate(reversed(number)):
        d = int(char)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    if len(iban) < 5 or not iban.isascii() or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    numeric = "".join(c if c.isdigit() else str(ord(c.upper()) - 55) for c in rearranged)
    return int(numeric) % 97 == 1


VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6), (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4), (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2), (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0), (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5), (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def verhoeff_valid(number: str) -> bool:
    if not number.isascii() or not number.isdigit():
        return False
    c = 0
    for i, char in enumerate(reversed(number)):
        c = VERHOEFF_D[c][VERHOEFF_P[i % 8][int(char)]]
    return c == 0


BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BTC = re.compile(r"[13][a-km-zA-HJ-NP-Z1-9]{25,34}", re.ASCII)


def base58check_valid(address: str) -> bool:
    """Base58 decoded, one zero byte per leading '1', must make 25 bytes whose last four are
    the first four of the double SHA-256 of the rest. (LegionIO padded the number to 25 bytes
    and then added the leading '1's' zero bytes again, so no address starting with '1', the
    common kind, ever passed.)"""
    if not _BTC.fullmatch(address):
        return False
    num = 0
    for char in address:
        num = num * 58 + BASE58_ALPHABET.index(char)
    zeros = len(address) - len(address.lstrip("1"))
    raw = b"\x00" * zeros + num.to_bytes((num.bit_length() + 7) // 8, "big")
    if len(raw) != 25:
        return False
    payload, checksum = raw[:-4], raw[-4:]
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == checksum


_VALIDATORS = {"luhn": luhn_valid, "iban": iban_valid, "verhoeff": verhoeff_valid, "base58check": base58check_valid}

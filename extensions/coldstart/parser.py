"""A partner's notes (CLAUDE.md, MEMORY.md, any markdown) as memory trace candidates: LegionIO's
lex-coldstart Helpers::ClaudeParser, as pure functions of the text and the file's path.

A file is split into sections at `## ` headings; each section's bullets, paragraphs and fenced
code blocks become items; the heading chooses the trace type and the emotional context; the
file's type, name and directory, the heading's slug and the item's `backticked` and **bold**
terms become its domain tags.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any, Literal

FileType = Literal["memory", "claude_md", "markdown"]

# First match wins, in this order (LegionIO's SECTION_TYPE_MAP).
SECTION_TYPE_MAP: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p, re.IGNORECASE), t) for p, t in (
    (r"\bhard rules\b", "firmware"),
    (r"\bidentity auth\b", "identity"),
    (r"\barchitecture\b", "semantic"),
    (r"\bkey concepts?\b|terminology", "semantic"),
    (r"\bproject structure\b", "semantic"),
    (r"\bdigital worker\b", "semantic"),
    (r"\bgotcha|caveat|pitfall|known issue", "procedural"),
    (r"\bcli\b|command|usage", "procedural"),
    (r"\bapi\b|routes?\b|endpoint", "procedural"),
    (r"\bmcp\b", "procedural"),
    (r"\bconfig|settings?\b|scaffold", "procedural"),
    (r"\bskills?\b", "procedural"),
    (r"\bdevelopment|conventions?\b|workflow", "procedural"),
    (r"\brubocop|lint", "procedural"),
    (r"\bdependenc", "semantic"),
    (r"\bfile (map|structure)\b", "semantic"),
    (r"\bwhat is\b", "semantic"),
    (r"\bpurpose\b", "semantic"),
    (r"\bstatus|stub|todo\b", "semantic"),
    (r"\bagentic\b", "semantic"),
    (r"\bjwt\b|auth|crypt|secur", "procedural"),
    (r"\bsinatra\b|rest\b", "procedural"),
    (r"\btransport|rabbitmq|amqp", "semantic"),
))
DEFAULT_TRACE_TYPE = "semantic"

SECTION_VALENCE_MAP: tuple[tuple[re.Pattern[str], dict[str, float]], ...] = tuple((re.compile(p, re.IGNORECASE), v) for p, v in (
    (r"\bgotcha|caveat|pitfall|known issue|error|stub|todo\b", {"valence": -0.4, "intensity": 0.5}),
    (r"\bhard rules?\b", {"valence": 0.0, "intensity": 0.8}),
    (r"\barchitecture\b|design|key concepts?\b", {"valence": 0.3, "intensity": 0.4}),
    (r"\bdependenc|integration|requirements?\b", {"valence": 0.1, "intensity": 0.3}),
))
DEFAULT_VALENCE = {"valence": 0.1, "intensity": 0.3}

DEFAULT_PATTERN = "**/{CLAUDE,MEMORY}.md"
SKIPPED_PARTS = ("/_deprecated/", "/_ignored/", "/z_other/", "_working/", "/test/", "/.terraform/", "/references/")
# Tags that name the file rather than the section (used to group an ingest's items by section).
FILE_TAGS = ("memory", "claude_md", "markdown")

_BULLET = re.compile(r"\A\s*[-*]\s+")
_SUB_BULLET = re.compile(r"\A\s{2,}[-*]\s+")
_CONTINUATION = re.compile(r"\A\s{2,}\S")
_HEADING = re.compile(r"\A##\s+")
_DIR_CONTEXT = re.compile(r"\A(lex-|legion-|Legion|extensions)")


def detect_file_type(file_path: str) -> FileType:
    """memory for a *memory*.md, claude_md for a *claude*.md, else markdown (by the file's name)."""
    name = PurePosixPath(file_path).name.lower()
    if "memory" in name and name.endswith(".md"):
        return "memory"
    if "claude" in name and name.endswith(".md"):
        return "claude_md"
    return "markdown"


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def split_sections(content: str) -> list[dict[str, str]]:
    """Sections at `## ` headings ({heading, heading_slug, body}); text before the first is the
    "preamble"; sections with an empty body are left out."""
    sections: list[dict[str, str]] = []
    current = {"heading": "preamble", "heading_slug": "preamble", "body": ""}
    for line in content.splitlines(keepends=True):
        if _HEADING.match(line):
            if current["body"].strip():
                sections.append(current)
            heading = _HEADING.sub("", line, count=1).strip()
            current = {"heading": heading, "heading_slug": slugify(heading), "body": ""}
        else:
            current["body"] += line
    if current["body"].strip():
        sections.append(current)
    return sections


def extract_items(body: str) -> list[str]:
    """A section's items: each bullet (with its continuation lines), each paragraph, each fenced
    code block whole."""
    items: list[str] = []
    item: str | None = None
    in_code = False
    for line in body.splitlines(keepends=True):
        if line.startswith("```"):
            if in_code:
                items.append((item or "") + line)
                item, in_code = None, False
            else:
                if item and item.strip():
                    items.append(item)
                item, in_code = line, True
            continue
        if in_code:
            item = (item or "") + line
            continue
        if _BULLET.match(line):
            if item and item.strip():
                items.append(item)
            item = _BULLET.sub("", line, count=1).strip()
        elif _SUB_BULLET.match(line) or (item and _CONTINUATION.match(line)):
            item = f"{item or ''} {line.strip()}"
        elif not line.strip():
            if item and item.strip():
                items.append(item)
            item = None
        elif item:
            item += f" {line.strip()}"
        else:
            item = line.strip()
    if item and item.strip():
        items.append(item)
    return [i.strip() for i in items if i.strip()]


def extract_inline_tags(text: str) -> list[str]:
    """`backticked` then **bold** terms, as tags: other characters than letters, digits, _ - .
    made _, lower case, 2 to 60 characters, each once."""
    terms = re.findall(r"`([^`]+)`", text) + re.findall(r"\*\*([^*]+)\*\*", text)
    tags = (re.sub(r"[^a-zA-Z0-9_\-.]", "_", t).lower() for t in terms)
    return list(dict.fromkeys(t for t in tags if 2 <= len(t) <= 60))


def classify_section(heading: str) -> str:
    for pattern, trace_type in SECTION_TYPE_MAP:
        if pattern.search(heading):
            return trace_type
    return DEFAULT_TRACE_TYPE


def classify_valence(heading: str) -> dict[str, float]:
    for pattern, values in SECTION_VALENCE_MAP:
        if pattern.search(heading):
            return values
    return DEFAULT_VALENCE


def extract_dir_context(file_path: str) -> str | None:
    """The nearest directory that names a Legion project (lex-*, legion-*, Legion*, extensions*),
    else the file's own directory; None for a bare file name."""
    parts = file_path.split("/")
    name = PurePosixPath(file_path).name
    for part in reversed(parts):
        if _DIR_CONTEXT.match(part) and part != name:
            return part
    return (parts[-2] or None) if len(parts) >= 2 else None


def skip_path(path: str) -> bool:
    return any(part in path for part in SKIPPED_PARTS)


def parse_text(content: str, file_path: str) -> list[dict[str, Any]]:
    """Trace candidates from a file's text: {trace_type, content_payload, domain_tags, origin,
    confidence, emotional_valence, emotional_intensity, section, source_file}. A MEMORY.md's
    items have origin firmware, others direct_experience; firmware items have confidence 1.0
    and valence 0.0, others confidence 0.7."""
    file_type = detect_file_type(file_path)
    base = [t for t in (file_type, PurePosixPath(file_path).name, extract_dir_context(file_path)) if t]
    candidates = []
    for section in split_sections(content):
        trace_type = classify_section(section["heading"])
        affect = classify_valence(section["heading"])
        tags = [*base, section["heading_slug"]] if section["heading_slug"] else base
        for item in extract_items(section["body"]):
            candidates.append({
                "trace_type": trace_type,
                "content_payload": item.strip(),
                "domain_tags": list(dict.fromkeys([*tags, *extract_inline_tags(item)])),
                "origin": "firmware" if file_type == "memory" else "direct_experience",
                "confidence": 1.0 if trace_type == "firmware" else 0.7,
                "emotional_valence": 0.0 if trace_type == "firmware" else affect["valence"],
                "emotional_intensity": affect["intensity"],
                "section": section["heading_slug"],
                "source_file": file_path,
            })
    return [c for c in candidates if c["content_payload"]]


def expand_braces(pattern: str) -> list[str]:
    """A glob pattern's {a,b} alternatives as separate patterns (Ruby's Dir.glob has them,
    Python's glob does not): "**/{CLAUDE,MEMORY}.md" -> ["**/CLAUDE.md", "**/MEMORY.md"]."""
    found = re.search(r"\{([^{}]*)\}", pattern)
    if found is None:
        return [pattern]
    head, tail = pattern[:found.start()], pattern[found.end():]
    return [p for option in found.group(1).split(",") for p in expand_braces(head + option + tail)]

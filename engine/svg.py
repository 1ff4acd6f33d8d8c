"""A chain drawn as SVG, with no layout engine: steps in columns by their distance from a start
step (breadth first, so loops back do not push anything right), one box per step naming its
function, marked where it is a start, a join, a `for_each` or retried; edges as arrows labelled
with their condition. What `legion chain graph --format svg`, the API and the dashboard show."""

from __future__ import annotations

from collections import deque
from html import escape

from legion.dsl.model import Chain

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 190, 58, 80, 26, 20


def chain_svg(chain: Chain) -> str:
    starts = chain.start_steps()
    level: dict[str, int] = {}
    queue = deque(starts)
    for name in starts:
        level[name] = 0
    while queue:
        name = queue.popleft()
        for edge in chain.steps[name].next:
            for target in edge.do:
                if target in chain.steps and target not in level:
                    level[target] = level[name] + 1
                    queue.append(target)
    for name in chain.steps:  # steps no start reaches (only events, say) go last
        level.setdefault(name, max(level.values(), default=-1) + 1)
    columns: dict[int, list[str]] = {}
    for name in chain.steps:
        columns.setdefault(level[name], []).append(name)
    place = {name: (PAD + col * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y))
             for col, names in columns.items() for row, name in enumerate(names)}
    fail = (PAD + (max(columns) + 1) * (BOX_W + GAP_X), PAD)
    width = fail[0] + 60 + PAD
    height = PAD * 2 + max(len(names) for names in columns.values()) * (BOX_H + GAP_Y)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'font-family="sans-serif" font-size="12" role="img" aria-label="chain {escape(chain.chain)}">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto">'
           '<path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>']
    uses_fail = False
    for name, step in chain.steps.items():
        x, y = place[name]
        for edge in step.next:
            label = edge.when if isinstance(edge.when, str) else str(edge.when).lower()
            for target in edge.do:
                if target == "fail":
                    uses_fail = True
                    tx, ty = fail[0], fail[1] + 20.0
                elif target in place:
                    tx, ty = place[target][0], place[target][1] + BOX_H / 2
                else:
                    continue
                sx, sy = x + BOX_W, y + BOX_H / 2
                back = tx <= x  # a loop back: arc over the boxes
                bend = min(sy, ty) - 30 if back else (sx + tx) / 2
                path = (f"M{sx},{sy} C{sx + 40},{bend} {tx - 40},{bend} {tx},{ty}" if back
                        else f"M{sx},{sy} C{bend},{sy} {bend},{ty} {tx},{ty}")
                out.append(f'<path d="{path}" fill="none" stroke="#555" marker-end="url(#arrow)"/>')
                if label not in ("succeeded", "true"):
                    mx, my = ((sx + tx) / 2, (min(sy, ty) - 34) if back else (sy + ty) / 2 - 4)
                    out.append(f'<text x="{mx}" y="{my}" text-anchor="middle" fill="#333">{escape(label[:40])}</text>')
    for name, step in chain.steps.items():
        x, y = place[name]
        marks = []
        if step.for_each is not None:
            marks.append("for_each" + (f" ×{step.concurrency}" if step.concurrency else ""))
        if step.retry is not None:
            marks.append(f"retry {step.retry.count}")
        if step.join is not None:
            marks.append(f"join: {step.join}")
        stroke = "#1f6feb" if name in starts else "#555"
        out.append(f'<g class="step" data-step="{escape(name)}">')
        out.append(f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="#fff" stroke="{stroke}" '
                   f'stroke-width="{2 if name in starts else 1}"/>')
        if step.join is not None:
            out.append(f'<rect x="{x + 3}" y="{y + 3}" width="{BOX_W - 6}" height="{BOX_H - 6}" rx="4" fill="none" stroke="#555"/>')
        out.append(f'<text x="{x + 10}" y="{y + 18}" font-weight="bold">{escape(name[:26])}</text>')
        out.append(f'<text x="{x + 10}" y="{y + 34}" fill="#555">{escape(step.run[:30])}</text>')
        if marks:
            out.append(f'<text x="{x + 10}" y="{y + 50}" fill="#9a6700">{escape(", ".join(marks))}</text>')
        out.append("</g>")
    if uses_fail:
        out.append(f'<circle cx="{fail[0] + 20}" cy="{fail[1] + 20}" r="20" fill="#ffebe9" stroke="#cf222e"/>'
                   f'<text x="{fail[0] + 20}" y="{fail[1] + 24}" text-anchor="middle" fill="#cf222e">fail</text>')
    out.append("</svg>")
    return "\n".join(out)

"""What the benchmarks share: printing their tables and figures."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable


def rate(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def table(headers: list[str], rows: list[list[str]], left: int = 1) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=False)))

    print("  " + line(headers))
    print("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        print("  " + line(r))


def heading(text: str) -> None:
    print()
    print(text)
    print("=" * len(text))


def run_main(main: Callable[[], int]) -> None:
    """Run a benchmark's `main` and exit with its status; an unexpected error is shown, not
    hidden, and exits non-zero."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:  # noqa: BLE001 -- the last resort: say what broke and exit non-zero
        traceback.print_exc()
        print("\nThe benchmark stopped on an unexpected error (above).", file=sys.stderr)
        sys.exit(1)

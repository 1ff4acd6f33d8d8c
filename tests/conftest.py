"""Where the chain conformance suite is: the shared one beside this checkout when there is one
(the freshest), else the copy kept in tests/conformance (so a checkout anywhere runs it).
Test modules read the path from LEGION_CONFORMANCE."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "conformance"
COPY = ROOT / "tests" / "conformance"

os.environ.setdefault("LEGION_CONFORMANCE", str(SHARED if SHARED.is_dir() else COPY))

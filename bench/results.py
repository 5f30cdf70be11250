"""Where the serve and train benches leave their numbers: JSON with the machine's state."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write(path: str | Path, results: Any) -> None:
    """`results` with the CPU count and load average of the run, as JSON at `path`."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": results, "cpus": os.cpu_count(),
                               "load": os.getloadavg()}, indent=2))

"""Where `mlp`'s start-up goes: the interpreter, the CLI's imports, and the largest of them.

    python -m bench.plan.startup [--repeat 7]

Times, median of --repeat runs each: `python -c pass` (the interpreter alone), `python -c
"import mlp.cli.main"` (the CLI and what it imports at start), and `mlp --version` (the
whole command line up to its first word). Then `python -X importtime` of the CLI, the
top-level imports that cost the most (their cumulative time). `bench/plan/run.py` prints the
same section beside its plans.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = str(ROOT / ".venv" / "bin" / "python")


def _time(cmd: list[str], env: dict[str, str], repeat: int) -> float:
    runs = []
    for _ in range(repeat + 1):  # the first one warms the page cache and the bytecode
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs[1:])


def top_imports(env: dict[str, str], n: int = 8) -> list[tuple[str, float]]:
    """The imports done directly by `import mlp.cli.main` and below, costliest first (ms, cumulative)."""
    proc = subprocess.run([PY, "-X", "importtime", "-c", "import mlp.cli.main"], env=env,
                          capture_output=True, text=True, check=True)
    rows = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip())) // 2
        if depth <= 1:  # the CLI module and what it (or the interpreter) imports itself
            rows.append((name.strip(), int(parts[1]) / 1000))
    return sorted(rows, key=lambda r: -r[1])[:n]


def measure(repeat: int = 7) -> dict[str, object]:
    env = {**os.environ, "NO_COLOR": "1"}
    mlp = str(ROOT / ".venv" / "bin" / "mlp")
    return {"python_s": _time([PY, "-c", "pass"], env, repeat),
            "import_cli_s": _time([PY, "-c", "import mlp.cli.main"], env, repeat),
            "mlp_version_s": _time([mlp, "--version"], env, repeat),
            "top_imports_ms": top_imports(env)}


def table(m: dict[str, object]) -> str:
    lines = ["| start-up | seconds |", "|---|---|",
             f"| `python -c pass` | {m['python_s']:.3f} |",
             f"| `python -c 'import mlp.cli.main'` | {m['import_cli_s']:.3f} |",
             f"| `mlp --version` | {m['mlp_version_s']:.3f} |", "",
             "| import (cumulative) | ms |", "|---|---|"]
    lines += [f"| `{name}` | {ms:.0f} |" for name, ms in m["top_imports_ms"]]  # type: ignore[attr-defined]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.plan.startup")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    print(table(measure(args.repeat)))


if __name__ == "__main__":
    sys.exit(main())

"""The closing lines of an apply: what was built, reused, destroyed, what failed and why."""

from __future__ import annotations

from typing import Any


def print_apply_summary(out: Any, res: Any) -> None:
    if not res.plan.has_changes and not res.failed:
        out.line(res.plan.summary().line(), "green")
        return
    for addr, msg in sorted(res.failed.items()):
        out.line(f"\nError: {addr} failed", "bold red", err=True)
        for ln in msg.splitlines():
            out.line(f"  {ln}", err=True)
    if res.skipped:
        out.line("\nSkipped because something they need failed:", "magenta", err=True)
        for addr, bad in sorted(res.skipped.items()):
            out.line(f"  {addr} (needs {bad})", err=True)
    status = "Apply complete!" if res.ok else "Apply failed."
    line = (f"\n{status} {len(res.built)} built, {len(res.reused)} reused, {len(res.destroyed)} destroyed, "
            f"{len(res.failed)} failed, {len(res.skipped)} skipped in {res.seconds:.1f}s.")
    out.line(line, "bold green" if res.ok else "bold red")
    if not res.ok:
        out.line("Blocks that finished are kept in the state; run `mlp apply` again to continue.", err=True)

"""The closing lines of an apply: what was built, reused, destroyed, what failed and why.

Each failure is shown once, on the block it belongs to; what was skipped because of it is
one line per cause. Tracebacks are never shown here: they are in `mlp logs ADDRESS`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from mlp.plan.model import Action

SHOWN_NAMES = 4  # skipped blocks named per cause; the rest are counted


def print_apply_summary(out: Any, res: Any) -> None:
    if not res.plan.has_changes and not res.failed:
        out.line(res.plan.summary().line(), "green")
        return
    for addr, msg in sorted(res.failed.items()):
        out.line(f"\nError: {addr} failed", "bold red", err=True)
        for ln in msg.splitlines():
            out.line(f"  {ln}", err=True)
    skipped = _skipped(res)
    if skipped:
        out.line("", err=True)
    for cause, addrs in sorted(skipped.items()):
        out.line(_skipped_line(cause, addrs), "magenta", err=True)
    n_skipped = sum(len(v) for v in skipped.values())
    ok = not res.failed and not n_skipped
    lines = [model_line(m) for m in res.models] + [endpoint_line(e) for e in res.endpoints]
    if lines:
        out.line("")
    for text in lines:
        out.line(text)
    status = "Apply complete!" if ok else "Apply failed."
    carried = f", {len(res.carried)} carried over by early cut-off" if res.carried else ""
    copied = f", {len(res.copied)} copied from the old backend" if res.copied else ""
    line = (f"\n{status} {len(res.built)} built{carried}, {len(res.reused)} reused{copied}, "
            f"{len(res.destroyed)} destroyed, "
            f"{len(res.failed)} failed, {n_skipped} skipped in {res.seconds:.1f}s.")
    out.line(line, "bold green" if ok else "bold red")
    if not ok:
        out.line("Blocks that finished are kept in the state; run `mlp apply` again to continue.", err=True)


def model_line(m: Any) -> str:
    """`model.dnn: accuracy 0.9737 (+0.0263 against 0.9474 before), loss 0.09; best epoch 37 of 50`."""
    names = ([m.main] if m.main else []) + sorted(k for k in m.metrics if k != m.main)
    parts = []
    for name in names:
        part = f"{name} {m.metrics[name]:.4g}"
        if name == m.main and m.previous and name in m.previous:
            part += f" ({m.metrics[name] - m.previous[name]:+.4f} against {m.previous[name]:.4g} before)"
        elif name == m.main and m.previous is None:
            part += " (new model)"
        parts.append(part)
    epochs = f"; best epoch {m.best_epoch} of {m.epochs}" if m.best_epoch and m.epochs else ""
    return f"{m.address}: " + ", ".join(parts) + epochs


def endpoint_line(e: Any) -> str:
    return f"{e.address}: {e.url} serves {e.model} ({e.fingerprint[:12]})"


def _skipped(res: Any) -> dict[str, list[str]]:
    """Skipped blocks by the failed block they needed. Blocks the plan had work for that
    the result neither lists as done nor as skipped were left undone by a failure too: they
    are put under it when there is one failure, else under "a block above"."""
    by_cause: dict[str, list[str]] = defaultdict(list)
    for addr, cause in res.skipped.items():
        by_cause[cause].append(addr)
    accounted = set(res.built) | set(res.reused) | set(res.destroyed) | set(res.failed) | set(res.skipped)
    undone = [str(c.address) for c in res.plan.changes
              if c.action not in (Action.NOOP, Action.DESTROY) and str(c.address) not in accounted]
    if undone:
        cause = next(iter(res.failed)) if len(res.failed) == 1 else ""
        by_cause[cause].extend(undone)
    return {cause: sorted(addrs) for cause, addrs in by_cause.items()}


def _skipped_line(cause: str, addrs: list[str]) -> str:
    n = len(addrs)
    names = ", ".join(addrs[:SHOWN_NAMES]) + (f" and {n - SHOWN_NAMES} more" if n > SHOWN_NAMES else "")
    because = f"{cause} failed" if cause else "a block above failed"
    return f"{n} block{'s' if n != 1 else ''} skipped: {because} ({names})"

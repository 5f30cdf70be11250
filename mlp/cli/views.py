"""Human views of state (`mlp show`, `mlp output`)."""

from __future__ import annotations

from typing import Any

from mlp.graph.address import Kind


def _value(rec: dict[str, Any]) -> str:
    m = rec.get("metrics") or {}
    if "value" in m:
        v = m["value"]
        text = f"{v:.6g}" if isinstance(v, float) else str(v)
        return "value " + (text if len(text) <= 60 else text[:57] + "...")
    if "rows" in m:
        return f"{m['rows']} rows"
    if "eval" in m and isinstance(m["eval"], dict):
        return ", ".join(f"{k} {v:.4g}" for k, v in sorted(m["eval"].items()) if isinstance(v, (int, float)))
    if "url" in m:
        return str(m["url"])
    return ""


def render_state(view: Any) -> list[tuple[str, str]]:
    data = view.to_json()
    blocks = data["blocks"]
    if not blocks:
        return [("The state is empty: nothing has been applied yet. Run `mlp apply`.", "")]
    out: list[tuple[str, str]] = [(f'App "{data["app"]}": state serial {data["serial"]}, '
                                   f'lineage {data["lineage"][:8]}', "bold")]
    width = max(len(b["address"]) for b in blocks) + 2
    for kind in Kind:
        group = [b for b in blocks if b["kind"] == kind.value]
        if not group:
            continue
        out.append(("", ""))
        out.append((f"  {kind.value}", "bold"))
        for b in group:
            status = b["status"] + (" (not in app)" if not b["in_app"] else "")
            line = f"  {b['address'].ljust(width)}{status:<10} {b['fingerprint'][:12]}  {_value(b)}"
            out.append((line.rstrip(), "green" if b["status"] == "done" else "red"))
            if b.get("artifact"):
                out.append((f"      artifact: {b['artifact']}", "dim"))
    return out

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


def render_block(view: Any) -> list[tuple[str, str]]:
    """`mlp show ADDRESS`: one block's record, its output and where its log is."""
    rec = view.to_json()
    status = rec["status"] + ("" if rec["in_app"] else " (no longer in the app)")
    out: list[tuple[str, str]] = [(f"{rec['address']}: {status}", "bold")]
    rows = [("fingerprint", rec["fingerprint"]), ("built", rec["updated_at"]),
            ("last run", f"{rec['seconds']:.1f}s" if rec.get("seconds") is not None else ""),
            ("output", _value(rec)), ("artifact", rec.get("artifact") or ""), ("log", rec.get("log") or "")]
    if rec.get("endpoint"):
        rows.append(("endpoint", str(rec["endpoint"].get("url", ""))))
    for key, value in sorted((rec.get("inputs") or {}).items()):
        rows.append(("input", f"{key} {value[:12]}"))
    for name, value in sorted((rec.get("settings") or {}).items()):
        rows.append((f"setting {name}", _short(value)))
    width = max(len(k) for k, v in rows if v) + 2
    out += [(f"  {k:<{width}}{v}", "") for k, v in rows if v]
    metrics = rec.get("metrics") or {}
    for name in ("eval", "train"):
        if isinstance(metrics.get(name), dict) and metrics[name]:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics[name].items()) if isinstance(v, (int, float)))
            out.append((f"  {name + ' metrics':<{width}}{shown}", ""))
    return out


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."

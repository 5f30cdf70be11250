"""The views of a plan. Every view renders the plan's JSON form (`Plan.to_json()`), the
way terraform renders its human plan from the JSON plan, so they cannot disagree."""

from __future__ import annotations

from typing import Any, Mapping

from mlp.graph.address import Kind
from mlp.plan.model import format_seconds

_STYLE = {"create": "green", "rebuild": "yellow", "reuse": "cyan", "copy": "cyan", "update": "yellow",
          "destroy": "red", "no-op": "dim"}
_SYMBOL = {"create": "+", "rebuild": "~", "reuse": "=", "copy": ">", "update": "~", "destroy": "-", "no-op": " "}


def text_lines(plan: Mapping[str, Any], verbose: bool = False) -> list[tuple[str, str]]:
    """(line, style) pairs of the human plan; style is a rich style name or ''."""
    changes = [c for c in plan["changes"] if verbose or c["action"] != "no-op"]
    out: list[tuple[str, str]] = []
    if changes:
        out.append((f'mlp will perform these actions on app "{plan["app"]}":', "bold"))
    width = max((len(c["address"]) for c in changes), default=0) + 2
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for c in changes:
        by_kind.setdefault(c["kind"], []).append(c)
    for kind in Kind:
        group = by_kind.get(kind.value)
        if not group:
            continue
        out.append(("", ""))
        out.append((f"  {kind.value}", "bold"))
        for c in group:
            reason = c["reason"] if c["action"] != "update" else f"update: {c['reason']}"
            fp = ""
            if c["action"] in ("rebuild", "reuse") and c["fingerprint_before"] \
                    and c["fingerprint_before"] != c["fingerprint_after"]:
                fp = f"  ({c['fingerprint_before'][:8]} -> {c['fingerprint_after'][:8]})"
            out.append((f"  {_SYMBOL[c['action']]} {c['address'].ljust(width)}{reason}{fp}{_notes(c)}",
                        _STYLE[c["action"]]))
            for d in c["details"]:
                out.append((f"        {d}", "dim" if c["action"] == "no-op" else ""))
    if changes:
        out.append(("", ""))
    for note in plan.get("notes", ()):
        out += [(note, "yellow"), ("", "")]
    out.append((plan["summary"]["text"], "bold"))
    if plan["summary"].get("detail"):
        out.append((plan["summary"]["detail"], ""))
    return out


def _notes(c: Mapping[str, Any]) -> str:
    """What the plan cannot know yet (early cut-off), and the last run's duration."""
    notes = []
    if c.get("may_skip"):
        notes.append("may be skipped by early cut-off")
    if c.get("estimated_seconds") is not None and c["action"] in ("create", "rebuild", "update"):
        notes.append(f"~{format_seconds(c['estimated_seconds'])}")
    return f"  [{', '.join(notes)}]" if notes else ""


def render_text(plan: Mapping[str, Any], verbose: bool = False) -> str:
    return "\n".join(line for line, _ in text_lines(plan, verbose)) + "\n"


def render_markdown(plan: Mapping[str, Any], verbose: bool = False) -> str:
    """A table for a pull-request comment."""
    changes = [c for c in plan["changes"] if verbose or c["action"] != "no-op"]
    lines = [f'### mlp plan for `{plan["app"]}`', ""]
    if changes:
        lines += ["| | block | action | reason | details |", "|---|---|---|---|---|"]
        for c in changes:
            details = "<br>".join(f"`{d}`" for d in c["details"])
            lines.append(f"| `{_SYMBOL[c['action']]}` | `{c['address']}` | {c['action']} | {c['reason']}"
                         f"{_notes(c)} | {details} |")
        lines.append("")
    for note in plan.get("notes", ()):
        lines += [f"> {note}", ""]
    lines.append(f"**{plan['summary']['text']}**")
    if plan["summary"].get("detail"):
        lines += ["", plan["summary"]["detail"]]
    return "\n".join(lines) + "\n"

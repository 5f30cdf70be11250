"""The plan summary's second line: rebuilds early cut-off may skip, and the estimate."""

from __future__ import annotations

import pytest

from mlp.plan.model import Summary, format_seconds


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0, "0s"), (0.2, "1s"), (12.4, "12s"), (59.6, "1m 00s"), (185, "3m 05s"), (3720, "1h 02m"),
], ids=["zero", "under-a-second", "seconds", "rounds-up-to-a-minute", "minutes", "hours"])
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(("summary", "line"), [
    (Summary(), ""),
    (Summary(reuse=3), ""),
    (Summary(rebuild=2, estimate=15.0), "Estimated time: 15s."),
    (Summary(create=2, rebuild=1, estimate=4.0, unestimated=2),
     "Estimated time: 4s, plus 2 blocks never run before."),
    (Summary(rebuild=14, may_skip=12, estimate=24.0),
     "12 of the rebuilds may be skipped by early cut-off (known after apply). Estimated time: 24s."),
    (Summary(create=5, unestimated=5), ""),
], ids=["nothing", "reuse-only", "estimate", "partly-unknown", "may-skip", "all-new"])
def test_detail_line(summary: Summary, line: str) -> None:
    assert summary.detail_line() == line


def test_a_move_shows_its_copies_its_note_and_survives_a_plan_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mlp.graph.address import Address
    from mlp.plan.model import Action, Change, Plan, Reason
    from mlp.plan.planfile import read_plan, write_plan
    from mlp.plan.render import render_markdown, render_text
    from mlp.state.moves import BackendSpec, Move

    fp = "ab" * 32
    move = Move(BackendSpec("local", {"path": ".mlp"}), BackendSpec("s3", {"bucket": "b", "prefix": "apps/x"}))
    plan = Plan("x", str(tmp_path), (
        Change(Address.parse("model.m"), Action.COPY, Reason.BACKEND_CHANGED, ("copied, not rebuilt",), fp, fp),
        Change(Address.parse("api.a"), Action.REBUILD, Reason.PROVIDER_CHANGED, (), fp, fp)),
        "lineage", 3, "aws", move=move, notes=(move.line(),))
    assert plan.summary().line() == "Plan: 0 to create, 1 to rebuild, 0 to reuse, 1 to copy, 0 to update, 0 to destroy."
    assert Summary(create=1).line() == "Plan: 1 to create, 0 to rebuild, 0 to reuse, 0 to update, 0 to destroy."
    text = render_text(plan.to_json())
    assert "  > model.m  backend_changed\n        copied, not rebuilt\n" in text
    assert 'The backend changed: backend "local" (.mlp) -> backend "s3" (b/apps/x).\n\nPlan:' in text
    assert '> The backend changed: backend "local" (.mlp) -> backend "s3" (b/apps/x).' in render_markdown(plan.to_json())
    write_plan(plan, tmp_path / "p.json")
    again = read_plan(tmp_path / "p.json")
    assert (again.move, again.notes, again.summary().copy) == (move, plan.notes, 1)

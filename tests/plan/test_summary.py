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

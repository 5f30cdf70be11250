"""examples/ci: the GitHub Actions workflow plans on pull requests (posting the Markdown plan)
and applies the saved plan on merge, with commands and flags the CLI really has."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from .conftest import REPO, run_mlp

WORKFLOW = REPO / "examples" / "ci" / "mlp.yml"


def _runs(job: dict) -> list[str]:
    return [line.strip() for step in job["steps"] if "run" in step for line in step["run"].splitlines()
            if line.strip().startswith("mlp ")]


def test_the_workflow_plans_on_pull_requests_and_applies_the_saved_plan_on_merge(tmp_path: Path) -> None:
    doc = yaml.safe_load(WORKFLOW.read_text())
    on = doc[True] if True in doc else doc["on"]  # YAML 1.1 reads the key `on` as true
    assert set(on) == {"pull_request", "push"} and on["push"]["branches"] == ["main"]
    plan, apply = doc["jobs"]["plan"], doc["jobs"]["apply"]
    assert plan["if"] == "github.event_name == 'pull_request'" and apply["if"] == "github.event_name == 'push'"
    assert _runs(plan) == ['mlp -C "$APP_DIR" plan --out plan.json',
                           'mlp -C "$APP_DIR" plan --format markdown > plan.md']
    assert _runs(apply)[-1] == 'mlp -C "$APP_DIR" apply plan.json'
    assert any("sticky-pull-request-comment" in str(s.get("uses", "")) for s in plan["steps"])
    assert doc["env"]["MLP_IN_AUTOMATION"] == "1"
    for line in _runs(plan) + _runs(apply):  # every flag is one the command takes
        words = shlex.split(line.split(">")[0])
        command = words[3]
        helptext = run_mlp(command, "--help", cwd=tmp_path).stdout
        for flag in (w for w in words[4:] if w.startswith("--")):
            assert re.search(rf"{flag}\b", helptext), f"mlp {command} has no {flag}"

"""Golden plans: an app, the state it is planned against, and the plan mlp must show.

Each case is a folder `tests/golden/<case>/`:

    *.hcl, data/, code/    the app as it is planned
    before/                the files as they were when the state was recorded
    case.json              prior_state: record a state first; cached: blocks whose planned
                           artifact is already in the store; plan: targets and sample;
                           refresh: plan with refresh (the default is --refresh=false: a
                           golden's apis have no server); deleted: blocks whose artifact is
                           deleted from the store before planning
    state.json             the recorded state            } normalised (<APP>, <LINEAGE>,
    plan.txt, plan.json    the human plan and its JSON   } <TIME>); rewritten only by
                                                           `pytest --update-goldens`

The state is made without applying (see conftest.state_from): the app is copied, `before/`
laid over it, the state recorded from that version, then the app's own files put back, the
way a user edits an app in place, and the real `mlp.api.plan` runs. Besides the golden
text, each case pins the action and reason of the blocks it is about, so that a wrong plan
cannot be blessed by `--update-goldens` unnoticed.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from mlp import api
from mlp.errors import PlanFileError, UsageError
from mlp.plan.model import Action, Plan
from mlp.plan.planfile import read_plan, write_plan
from mlp.plan.render import render_text

from .conftest import (
    GOLDEN,
    analysed,
    backend,
    block_record,
    check_golden,
    commit_artifact,
    copy_app,
    normalise,
    record_state,
)

NOT_APP = ("before", "case.json", "state.json", "plan.txt", "plan.json")


@dataclass(frozen=True)
class Case:
    name: str
    prior_state: bool = False
    cached: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    sample: int | None = None
    refresh: bool = False
    deleted: tuple[str, ...] = ()

    @property
    def dir(self) -> Path:
        return GOLDEN / self.name

    @classmethod
    def load(cls, name: str) -> Case:
        spec = json.loads((GOLDEN / name / "case.json").read_text())
        plan = spec.get("plan", {})
        return cls(name, bool(spec.get("prior_state")), tuple(spec.get("cached", ())),
                   tuple(plan.get("targets", ())), plan.get("sample"), bool(spec.get("refresh")),
                   tuple(spec.get("deleted", ())))


@dataclass(frozen=True)
class Expect:
    """What a case is about: (action, reason) per address, and details that must appear."""

    changes: dict[str, tuple[str, str]]
    details: dict[str, list[str]] = field(default_factory=dict)
    absent: tuple[str, ...] = ()
    summary: str = ""


DOWNSTREAM_OF_AMOUNT = ("aggregate.amount_mean", "aggregate.amount_stddev", "transformed_column.amount_norm",
                        "transformed_column.amount_capped", "model.returns", "api.returns")

EXPECT: dict[str, Expect] = {
    "new_app": Expect(
        {"source.orders": ("create", "new"), "model.returns": ("create", "new"), "api.returns": ("create", "new")},
        summary="Plan: 14 to create, 0 to rebuild, 0 to reuse, 0 to update, 0 to destroy."),
    "unchanged_app": Expect({"model.returns": ("no-op", "unchanged")},
                            summary="No changes. The app matches its state."),
    "hyperparameter_change": Expect(
        {"model.returns": ("rebuild", "config_changed"), "api.returns": ("rebuild", "upstream_changed"),
         "transformed_column.amount_norm": ("no-op", "unchanged")},
        {"model.returns": ["hparams.hidden_units: [16, 8] -> [32, 16]"],
         "api.returns": ["model.returns (config_changed)"]},
        summary="Plan: 0 to create, 2 to rebuild, 0 to reuse, 0 to update, 0 to destroy."),
    "data_change": Expect(
        {"source.orders": ("rebuild", "data_changed"), "raw_column.amount": ("rebuild", "upstream_changed"),
         "aggregate.country_vocab": ("rebuild", "upstream_changed"), "model.returns": ("rebuild", "upstream_changed")},
        {"raw_column.amount": ["source.orders (data_changed)"]},
        summary="Plan: 0 to create, 14 to rebuild, 0 to reuse, 0 to update, 0 to destroy."),
    "custom_code_change": Expect(
        {"transformed_column.amount_capped": ("rebuild", "code_changed"),
         "model.returns": ("rebuild", "upstream_changed"), "transformed_column.amount_norm": ("no-op", "unchanged")},
        {"model.returns": ["transformed_column.amount_capped (code_changed)"]},
        summary="Plan: 0 to create, 3 to rebuild, 0 to reuse, 0 to update, 0 to destroy."),
    "removed_block": Expect(
        {"aggregate.items_max": ("destroy", "removed"), "model.returns": ("no-op", "unchanged")},
        summary="Plan: 0 to create, 0 to rebuild, 0 to reuse, 0 to update, 1 to destroy."),
    "reverted_change_cache_hit": Expect(
        {"model.returns": ("reuse", "cache_hit"), "api.returns": ("rebuild", "upstream_changed")},
        {"model.returns": ["hparams.hidden_units: [32, 16] -> [16, 8]"],
         "api.returns": ["model.returns (cache_hit)"]},
        summary="Plan: 0 to create, 1 to rebuild, 1 to reuse, 0 to update, 0 to destroy."),
    "target": Expect(
        {"model.returns": ("create", "new"), "aggregate.amount_mean": ("create", "new")},
        absent=("aggregate.items_max", "api.returns"),
        summary="Plan: 12 to create, 0 to rebuild, 0 to reuse, 0 to update, 0 to destroy."),
    "replica_update": Expect(
        {"api.returns": ("update", "config_changed"), "model.returns": ("no-op", "unchanged")},
        {"api.returns": ["replicas: 1 -> 3"]},
        summary="Plan: 0 to create, 0 to rebuild, 0 to reuse, 1 to update, 0 to destroy."),
    "refresh": Expect(
        {"aggregate.amount_mean": ("rebuild", "artifact_missing"), "api.returns": ("update", "not_running"),
         "transformed_column.amount_norm": ("no-op", "unchanged"), "model.returns": ("no-op", "unchanged")},
        {"api.returns": ["the state records no running server for it"]},
        summary="Plan: 0 to create, 1 to rebuild, 0 to reuse, 1 to update, 0 to destroy."),
    "sample_change": Expect(
        {"source.orders": ("rebuild", "sample_changed"), "raw_column.items": ("rebuild", "upstream_changed")},
        {"source.orders": ["sample: 0 -> 50"], "raw_column.items": ["source.orders (sample_changed)"]},
        summary="Plan: 0 to create, 14 to rebuild, 0 to reuse, 0 to update, 0 to destroy."),
}


def prepare(case: Case, app: Path) -> str | None:
    """The case's app in `app`, with its prior state recorded; returns the state's lineage."""
    copy_app(case.dir, app, ignore=NOT_APP)
    before = case.dir / "before"
    if not case.prior_state:
        return None
    if before.is_dir():
        shutil.copytree(before, app, dirs_exist_ok=True)
    state = record_state(analysed(app))
    if before.is_dir():  # the edit: the app's own version of each file comes back in place
        for f in before.rglob("*"):
            if f.is_file():
                shutil.copyfile(case.dir / f.relative_to(before), app / f.relative_to(before))
    return state.lineage


def dumps(doc: Any) -> str:
    return json.dumps(doc, indent=2) + "\n"


@pytest.mark.parametrize("name", list(EXPECT))
def test_golden_plan(name: str, tmp_path: Path, update_goldens: bool) -> None:
    case = Case.load(name)
    app = tmp_path / "app"
    lineage = prepare(case, app)
    if case.prior_state:
        stored = backend(app).read_state()
        check_golden(case.dir / "state.json", normalise(dumps(stored.to_json()), app, lineage), update_goldens)
    if case.cached:  # artifacts an earlier apply left for the fingerprints about to be planned
        planned_fps = {str(a): fp.value for a, fp in analysed(app, case.sample).fingerprints.items()}
        for address in case.cached:
            commit_artifact(app, planned_fps[address])

    for address in case.deleted:
        rec = backend(app).read_state().blocks[address]
        assert rec.artifact is not None
        backend(app).artifacts().delete(rec.artifact)
    planned = api.plan(app, targets=case.targets, sample=case.sample, refresh=case.refresh).plan
    doc = planned.to_json()
    lineage = lineage or planned.lineage
    check_golden(case.dir / "plan.txt", normalise(render_text(doc), app, lineage), update_goldens)
    check_golden(case.dir / "plan.json", normalise(dumps(doc), app, lineage), update_goldens)

    expect = EXPECT[name]
    got = {c["address"]: c for c in doc["changes"]}
    assert {a: (got[a]["action"], got[a]["reason"]) for a in expect.changes if a in got} == expect.changes
    for address, details in expect.details.items():
        assert set(details) <= set(got[address]["details"]), got[address]["details"]
    assert not set(expect.absent) & set(got)
    assert doc["summary"]["text"] == expect.summary


def test_every_golden_case_is_run() -> None:
    on_disk = {d.name for d in GOLDEN.iterdir() if (d / "case.json").exists()}
    assert on_disk == set(EXPECT) | {"stale_plan_file"}


def test_plan_json_round_trips_through_a_plan_file(tmp_path: Path) -> None:
    case = Case.load("hyperparameter_change")
    prepare(case, tmp_path / "app")
    planned = api.plan(tmp_path / "app").plan
    write_plan(planned, tmp_path / "plan.json")
    assert read_plan(tmp_path / "plan.json") == planned


# -- stale plan files ---------------------------------------------------------------------------


@pytest.fixture
def applied(monkeypatch: pytest.MonkeyPatch) -> list[Plan]:
    """The plans apply would run: the engine is replaced, so nothing is built."""
    import mlp.engine.apply

    calls: list[Plan] = []

    def fake_apply_plan(analysis: Any, plan: Plan, *args: Any) -> str:
        calls.append(plan)
        return "applied"

    monkeypatch.setattr(mlp.engine.apply, "apply_plan", fake_apply_plan)
    return calls


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def scale_api(app: Path) -> None:
    edit(app / "model.hcl", "replicas = 1", "replicas = 2")


def move_state(app: Path) -> None:
    backend(app).record_block(block_record(analysed(app), "aggregate.items_max"))


def move_data(app: Path) -> None:
    edit(app / "data" / "orders.csv", "80.0,3,de,1", "85.0,3,de,0")


def move_code(app: Path) -> None:
    edit(app / "code" / "winsorize.py", "clip(upper=", "clip(lower=0, upper=")


def move_config(app: Path) -> None:
    edit(app / "model.hcl", "hidden_units = [16, 8]", "hidden_units = [32, 16]")


def rescale_api(app: Path) -> None:
    edit(app / "model.hcl", "replicas = 2", "replicas = 3")  # outside the fingerprint


def move_state_and_data(app: Path) -> None:
    move_state(app)
    move_data(app)


STALE = "Since the plan was made, "


@pytest.mark.parametrize(("move", "detail"), [
    pytest.param(move_state, STALE + "the state changed since (serial 1 -> 2).", id="state"),
    pytest.param(move_data, STALE + "the data of source.orders changed.", id="data"),
    pytest.param(move_code, STALE + "the code of transformer.winsorize changed.", id="code"),
    pytest.param(move_config, "The app's configuration changed since the plan was made: api.returns, model.returns.",
                 id="config"),
    pytest.param(rescale_api, "The app's configuration changed since the plan was made: api.returns.",
                 id="replicas"),
    pytest.param(move_state_and_data,
                 STALE + "the state changed since (serial 1 -> 2); the data of source.orders changed.",
                 id="state_and_data"),
])
def test_stale_plan_file(move: Callable[[Path], None], detail: str, tmp_path: Path, applied: list[Plan]) -> None:
    app = copy_app(GOLDEN / "stale_plan_file", tmp_path / "app", ignore=NOT_APP)
    record_state(analysed(app))
    scale_api(app)  # something to do, so that the saved plan is not empty
    write_plan(api.plan(app).plan, tmp_path / "saved.plan")
    move(app)
    with pytest.raises(PlanFileError) as err:
        api.apply(app, plan_file=tmp_path / "saved.plan")
    assert (err.value.summary, err.value.detail, err.value.hint) == (
        "The saved plan is stale", detail, "Make a new plan with: mlp plan --out FILE")
    assert applied == []
    assert backend(app).current_lock() is None


def test_stale_plan_file_of_another_state(tmp_path: Path, applied: list[Plan]) -> None:
    app = copy_app(GOLDEN / "stale_plan_file", tmp_path / "app", ignore=NOT_APP)
    old = record_state(analysed(app))
    write_plan(api.plan(app).plan, tmp_path / "saved.plan")
    shutil.rmtree(app / ".mlp")
    new = record_state(analysed(app))
    with pytest.raises(PlanFileError) as err:
        api.apply(app, plan_file=tmp_path / "saved.plan")
    assert err.value.detail == f"{STALE}the state is a different one (lineage {old.lineage[:8]} -> {new.lineage[:8]})."
    assert applied == []


@pytest.mark.parametrize("prior_state", [True, False], ids=["recorded_state", "empty_state"])
def test_fresh_plan_file_is_applied_as_saved(prior_state: bool, tmp_path: Path, applied: list[Plan]) -> None:
    app = copy_app(GOLDEN / "stale_plan_file", tmp_path / "app", ignore=NOT_APP)
    if prior_state:
        record_state(analysed(app))
        scale_api(app)
    saved = api.plan(app).plan
    write_plan(saved, tmp_path / "saved.plan")
    assert api.apply(app, plan_file=tmp_path / "saved.plan") == "applied"  # type: ignore[comparison-overlap]
    assert applied == [saved]


# -- planner edges --------------------------------------------------------------------------------


def test_unknown_target_suggests_the_closest_block(tmp_path: Path) -> None:
    app = copy_app(GOLDEN / "target", tmp_path / "app", ignore=NOT_APP)
    with pytest.raises(UsageError) as err:
        api.plan(app, targets=["model.return"])
    assert (err.value.summary, err.value.detail, err.value.hint) == (
        "--target model.return: no such block", "The app and its state have no block model.return.",
        'Did you mean "model.returns"?')


def test_a_block_recorded_as_failed_is_planned_again(tmp_path: Path) -> None:
    """State records may say "failed" (SPEC §5, BlockRecord.status): such a block has no
    artifact, so a plan that calls it unchanged would never retry it."""
    app = copy_app(GOLDEN / "unchanged_app", tmp_path / "app", ignore=NOT_APP)
    analysis = analysed(app)
    record_state(analysis)
    failed = dataclasses.replace(block_record(analysis, "model.returns"), status="failed", artifact=None)
    backend(app).record_block(failed)
    planned = api.plan(app).plan
    change = next(c for c in planned.changes if str(c.address) == "model.returns")
    assert change.action is not Action.NOOP, change
    assert planned.has_changes

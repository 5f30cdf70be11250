"""A data unit run as its job, `python -m runtime.data JOB.json` in another process (the
command a driver pod runs), records what the in-process apply records: the same blocks,
fingerprints, digests, artifacts and metrics, and the same one failure of a broken custom
transformer, replayed into the apply that holds the lock."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mlp import api
from mlp.engine.datarun import DataRun
from mlp.plan.planfile import write_plan
from mlp.providers import registry
from mlp.providers.local import LocalProvider
from mlp.providers.localjobs import run_data_job
from mlp.state.local import LocalBackend

pytestmark = pytest.mark.slow

APP = """
provider "local" {
  spark_master = "local[1]"
}

source "s" {
  format = "csv"
  path   = "data/s.csv"
}

raw_column "x" { type = "FLOAT" }
raw_column "colour" { type = "STRING" }

aggregate "mean" {
  aggregator = "mean"
  input      = raw_column.x
}

aggregate "stddev" {
  aggregator = "stddev"
  input      = raw_column.x
}

aggregate "colours" {
  aggregator = "index_string"
  input      = raw_column.colour
}

transformed_column "x_norm" {
  transformer = "normalize"
  inputs      = { column = raw_column.x, mean = aggregate.mean, stddev = aggregate.stddev }
}

transformed_column "colour_id" {
  transformer = "index_string"
  inputs      = { column = raw_column.colour, vocabulary = aggregate.colours }
}

transformer "broken" {
  path        = "code/broken.py"
  output_type = "FLOAT"
}

transformed_column "bad" {
  transformer = transformer.broken
  inputs      = { column = raw_column.x }
}
"""
CSV = "x,colour\n" + "".join(f"{i * 0.5},{('red', 'green', 'blue')[i % 3]}\n" for i in range(30))
BROKEN = "def transform(inputs, args):\n    return inputs['column'] / 0 + undefined_name\n"


class _JobProvider(LocalProvider):
    """The local provider, but running data units the way a cluster provider does: as the
    unit's DataJob in another process, its events replayed here."""

    def run_data(self, run: DataRun) -> None:
        folder = Path(run.ctx.analysis.app.dir) / ".jobs"
        folder.mkdir(exist_ok=True)
        plan_file = folder / "plan.json"
        write_plan(run.ctx.plan, plan_file)
        job = run.job(plan_file, "local[1]")
        job_file = folder / f"{run.unit.name.replace(':', '_')}.json"
        job_file.write_text(json.dumps(job.to_json()))
        run_data_job(run, job_file, run.ctx.job_log(run.unit.blocks[0]))


def _app(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "code").mkdir()
    (root / "app.hcl").write_text(APP)
    (root / "data" / "s.csv").write_text(CSV)
    (root / "code" / "broken.py").write_text(BROKEN)
    return root


def _records(app: Path) -> dict[str, tuple[Any, ...]]:
    state = LocalBackend(app / ".mlp").read_state()
    return {a: (r.fingerprint, r.digest, r.artifact, json.dumps(r.metrics, sort_keys=True))
            for a, r in state.blocks.items()}


def test_the_data_job_in_another_process_records_what_the_in_process_apply_records(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = _app(tmp_path / "here")
    there = tmp_path / "there"
    shutil.copytree(here, there)
    local = api.apply(here)
    assert set(local.failed) == {"transformed_column.bad"} and not local.skipped

    monkeypatch.setattr(registry, "load_provider", lambda config, app=None: _JobProvider())
    job = api.apply(there)
    assert job.failed.keys() == local.failed.keys()
    assert job.failed["transformed_column.bad"] == local.failed["transformed_column.bad"]
    assert "code/broken.py:2" in job.failed["transformed_column.bad"]
    assert set(job.built) == set(local.built)
    assert _records(there) == _records(here)
    log = (there / ".mlp" / "logs" / "source.s.log").read_text()
    assert "ingest csv data/s.csv (2 raw columns)" in log and "sample: " in log

    again = api.plan(there).plan  # what the job recorded is the state: only the failed block is left
    assert [str(c.address) for c in again.changes if c.action.runs] == ["transformed_column.bad"]

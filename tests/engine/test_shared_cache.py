"""A cache a team shares: state, artifacts and logs in an S3 backend (moto's real server).

After an apply on one machine (one app folder, one local cache), a fresh clone of the app
elsewhere (another folder, an empty cache) plans "No changes"; there, a hyperparameter change
retrains after pulling the data artifacts it needs from the bucket, and starts no Spark
session (checked in a fresh process, where nothing else could have started one)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from mlp import api
from mlp.state.backends import open_backend
from mlp.state.backends.remote import LOCK
from tests.state.conftest import BUCKET, Server

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _clone(dest: Path, server: Server, prefix: str) -> Path:
    shutil.copytree(ROOT / "examples" / "iris", dest, ignore=shutil.ignore_patterns(".mlp"))
    (dest / "backend.hcl").write_text(
        f'backend "s3" {{\n  bucket   = "{BUCKET}"\n  prefix   = "{prefix}"\n'
        f'  region   = "us-east-1"\n  endpoint = "{server.endpoint}"\n}}\n')
    return dest


def _apply_in_a_fresh_process(app: Path, **kw: object) -> dict[str, object]:
    script = ("import json, sys\nfrom pathlib import Path\nfrom mlp import api\n"
              "pulled = set()\n"
              "api.on_transfer(lambda p: pulled.add(p.key) if p.finished and p.direction.value == 'download' else None)\n"
              f"r = api.apply(Path(sys.argv[1]), **{kw!r})\n"
              "print(json.dumps({'built': list(r.built), 'reused': list(r.reused), 'failed': r.failed,"
              " 'spark_started': r.spark_started, 'pulled': sorted(pulled)}))\n")
    proc = subprocess.run([sys.executable, "-c", script, str(app)], capture_output=True, text=True, timeout=900,
                          cwd=ROOT, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_a_fresh_clone_plans_no_changes_and_retrains_without_spark(tmp_path: Path, moto_server: Server) -> None:
    prefix = f"teams/{uuid.uuid4().hex[:8]}/iris"
    first = _clone(tmp_path / "laptop-a" / "iris", moto_server, prefix)
    try:
        done = api.apply(first, variables={"epochs": "8"})
        assert done.ok and "model.dnn" in done.built

        second = _clone(tmp_path / "laptop-b" / "iris", moto_server, prefix)
        assert not (second / ".mlp").exists()
        again = api.plan(second, variables={"epochs": "8"}).plan
        assert not again.has_changes, [(str(c.address), c.action.value) for c in again.changes if c.action.runs]

        model = second / "model.hcl"
        model.write_text(model.read_text().replace("hidden_units = [16, 8]", "hidden_units = [12]", 1))
        plan = api.plan(second, variables={"epochs": "8"}, targets=["model.dnn"]).plan
        assert [str(c.address) for c in plan.changes if c.action.runs] == ["model.dnn"]
        result = _apply_in_a_fresh_process(second, variables={"epochs": "8"}, targets=["model.dnn"])
        assert result["built"] == ["model.dnn"] and not result["failed"], result
        assert result["spark_started"] is False, result  # the training table came from the bucket
        assert len(result["pulled"]) >= 2, result  # the training tables, reported to the progress hook
        cached = list((second / ".mlp" / "cache").rglob("*.parquet"))
        assert cached, "the data artifacts were pulled into this clone's cache"

        backend = open_backend(tmp_path / "elsewhere", "s3", {"bucket": BUCKET, "prefix": prefix,
                                                              "endpoint": moto_server.endpoint})
        assert "ingest csv" in backend.logs().read("source.iris")  # the first machine's log, from the bucket
        assert "train:" in backend.logs().read("model.dnn")
        assert "ingest csv" in api.logs(second, "source.iris").read_text()  # `mlp logs` in the clone
    finally:
        api.destroy(first)


def test_two_applies_against_one_s3_backend_one_fails_naming_the_holder(tmp_path: Path,
                                                                         moto_server: Server) -> None:
    """Two real `mlp apply` processes on two clones of the app: the second stops at the lock,
    naming the first, and the state the first leaves is whole."""
    import time

    from mlp.state.backends import open_store

    prefix = f"teams/{uuid.uuid4().hex[:8]}/iris"
    first, second = (_clone(tmp_path / m / "iris", moto_server, prefix) for m in ("a", "b"))
    cli = [sys.executable, "-m", "mlp"]
    env = {**os.environ, "MLP_IN_AUTOMATION": "1", "NO_COLOR": "1"}
    running = subprocess.Popen([*cli, "-C", str(first), "apply", "--auto-approve", "--var", "epochs=3",
                                "--target", "model.dnn"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    store = open_store("s3", {"bucket": BUCKET, "prefix": prefix, "endpoint": moto_server.endpoint}, os.environ)
    try:
        deadline = time.monotonic() + 120
        while store.get(LOCK) is None and running.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.get(LOCK) is not None, "the first apply took the lock"
        blocked = subprocess.run([*cli, "-C", str(second), "apply", "--auto-approve", "--var", "epochs=3"],
                                 cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert blocked.returncode != 0
        assert "The state is locked" in blocked.stdout + blocked.stderr
        assert "running `mlp apply`" in blocked.stdout + blocked.stderr
        out, _ = running.communicate(timeout=600)
        assert running.returncode == 0, out
    finally:
        if running.poll() is None:
            running.kill()
    state = open_backend(tmp_path / "elsewhere", "s3", {"bucket": BUCKET, "prefix": prefix,
                                                        "endpoint": moto_server.endpoint}).read_state()
    assert state.blocks["model.dnn"].status == "done" and store.get(LOCK) is None


def test_plan_shows_the_providers_infrastructure_beside_the_blocks(tmp_path: Path, moto_server: Server) -> None:
    """A kubernetes app's plan has an infrastructure section; with no reachable cluster it
    says why instead of failing, and the blocks are planned all the same."""
    app = _clone(tmp_path / "k8s" / "iris", moto_server, f"teams/{uuid.uuid4().hex[:8]}/iris")
    hcl = app / "app.hcl"
    text = hcl.read_text()
    start = text.index('provider "local"')
    end = text.index("}", start) + 1
    hcl.write_text(text[:start] + 'provider "kubernetes" {\n  kubeconfig = "missing-kubeconfig"\n'
                   '  image      = "example/mlp-runtime:1"\n}' + text[end:])
    proc = subprocess.run([sys.executable, "-m", "mlp", "-C", str(app), "plan", "--no-color"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MLP_IN_AUTOMATION": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "17 to create" in proc.stdout or "to create" in proc.stdout
    section = proc.stdout[proc.stdout.index("Infrastructure (kubernetes):"):]
    assert "missing-kubeconfig" in section, section
    as_json = subprocess.run([sys.executable, "-m", "mlp", "-C", str(app), "plan", "--json"], cwd=ROOT,
                             capture_output=True, text=True, timeout=300, env={**os.environ, "MLP_IN_AUTOMATION": "1"})
    assert "missing-kubeconfig" in json.loads(as_json.stdout)["infrastructure"]["note"]

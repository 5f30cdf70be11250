"""Moving an app between clouds without recomputing it: examples/iris applied with the local
provider and a local backend, then its blocks switched to `provider "aws"` and an s3
backend (a real moto server). The plan offers to copy every built output from the old
backend; apply moves the state, copies the artifacts, runs no data or training job and
deploys the api on the cluster (the Pulumi and Kubernetes calls go to the recording seams).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from mlp import api
from mlp.plan.model import Action, Reason
from mlp.state.backend import artifact_key
from mlp.state.moves import MEMORY
from mlp_aws.provider import AwsProvider
from mlp_cloud.provider import Seams
from mlp_cloud.recording import RecordingDriver
from mlp_cloud.testing import bind_plugin
from mlp_kubernetes.recording import RecordingKubeApi
from mlp_kubernetes.runs import Clock

REPO = Path(__file__).resolve().parents[3]
STACK = {"cluster": "mlp-iris", "context": "mlp-iris", "kubeconfig": '{"kind": "Config"}\n',
         "bucket": "iris-data", "registry": "123456789012.dkr.ecr.us-east-1.amazonaws.com/iris",
         "namespace": "default", "identity": "arn:aws:iam::123456789012:role/iris-workload",
         "identity_annotation": "eks.amazonaws.com/role-arn"}  # what an up of the stack gives

pytestmark = pytest.mark.slow

NOW = Clock(timeout=0.0, interval=0.0, sleep=lambda s: None)


def _to_aws(app: Path, endpoint: str) -> None:
    hcl = app / "app.hcl"
    text, n = re.subn(r'provider "local" \{[^}]*\}', 'provider "aws" {\n  region = "us-east-1"\n}\n\n'
                      f'backend "s3" {{\n  bucket   = "mlp-state"\n  prefix   = "moved/iris"\n'
                      f'  endpoint = "{endpoint}"\n}}', hcl.read_text())
    assert n == 1
    hcl.write_text(text)


@pytest.fixture
def applied_locally(tmp_path: Path) -> Any:
    from mlp.providers import Endpoint, provider_for

    app = tmp_path / "iris"
    shutil.copytree(REPO / "examples" / "iris", app, ignore=shutil.ignore_patterns(".mlp"))
    first = api.apply(app)
    assert first.ok, first.failed
    local = Endpoint.from_json(api.show(app).outputs["api.iris"])
    yield app, local
    if local is not None:  # stopped by the move; still running if the test failed before it
        provider_for("local").stop_api(local, str(tmp_path / "stop.log"))


def test_a_move_from_local_to_aws_copies_every_output_and_recomputes_nothing(
        applied_locally: Any, moto_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlp.providers import ApiStatus, provider_for

    app, local = applied_locally
    old_state = api.show(app)
    built = {b["address"]: b["fingerprint"] for b in old_state.blocks}
    assert json.loads((app / MEMORY).read_text())["kind"] == "local"
    _to_aws(app, moto_server.endpoint)
    kube = RecordingKubeApi()
    driver = RecordingDriver(outputs=STACK)
    seams = Seams(driver, kube, None, NOW, lambda: "/usr/local/bin/pulumi")
    bind_plugin(monkeypatch, "aws", lambda block, app=None: AwsProvider(block, app, seams))

    planned = api.plan(app).plan
    by_action: dict[Action, set[str]] = {}
    for c in planned.changes:
        by_action.setdefault(c.action, set()).add(str(c.address))
    outputs = {a for a in built if not a.startswith("api.")}
    assert by_action.get(Action.COPY) == outputs
    assert by_action.get(Action.REBUILD) == {"api.iris"}
    assert planned.change(next(c.address for c in planned.changes if str(c.address) == "api.iris")).reason \
        is Reason.PROVIDER_CHANGED
    assert not by_action.get(Action.CREATE)
    assert planned.summary().copy == len(outputs)
    assert f"{len(outputs)} to copy" in planned.summary().line()
    assert planned.move is not None and planned.move.new.kind == "s3"
    assert any(n.startswith('The backend changed: backend "local"') for n in planned.notes)

    result = api.apply(app)
    assert result.ok, result.failed
    assert set(result.copied) == outputs
    assert result.built == ("api.iris",)  # the api deployed on the cluster; nothing else ran
    writes = [str(c) for c in kube.writes()]
    assert not [w for w in writes if "Job/" in w], writes  # no data unit, no training Job
    assert "create Deployment/iris-api-iris" in writes

    moved = api.show(app)
    assert moved.lineage == old_state.lineage
    after = {b["address"]: b["fingerprint"] for b in moved.blocks}
    assert {a: after[a] for a in outputs} == {a: built[a] for a in outputs}
    store = api.backend_for(api.validate(app).checked).artifacts()
    assert [a for a in sorted(outputs) if not store.has(artifact_key(built[a]))] == []
    assert moved.outputs["api.iris"]["url"].endswith(".svc.cluster.local:80")
    # what serves is what the state says: the local server was stopped when the api moved
    assert provider_for("local").api_health(local, built["model.dnn"]).status is ApiStatus.DOWN
    assert json.loads((app / MEMORY).read_text())["kind"] == "s3"

    again = api.plan(app).plan  # moved: the next plan starts from the new backend
    assert again.move is None and not again.summary().copy

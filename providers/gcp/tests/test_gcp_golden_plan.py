"""Golden plans of examples/iris under `provider "gcp"`, its state in Cloud Storage
(gcp-storage-emulator on 127.0.0.1): `mlp plan` as it prints without a terminal, against
golden/ (MLP_UPDATE_GOLDENS=1 rewrites them).

- golden/plan.txt: the real `mlp` command on this machine, without the Pulumi CLI: every
  data and model change, and the note that the infrastructure preview needs the CLI;
- golden/plan-previewed.txt: the same plan with the stack's first preview answered by the
  `RecordingDriver`: every resource the program declares (run under Pulumi's mocks), to create.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_gcp_program import COMPUTED, INVOKES

from mlp.config.blocks import App
from mlp_cloud.driver import NEEDS_CLI, Operation, pulumi_cli
from mlp_cloud.recording import Call, RecordingDriver
from mlp_cloud.testing import (
    backend_block,
    bind_first_preview,
    check_golden,
    mlp_in_process,
    normalise,
    run_mlp,
    with_backend,
)

GOLDEN = Path(__file__).resolve().parent / "golden"
SUMMARY = "Plan: 17 to create, 0 to rebuild, 0 to reuse, 0 to update, 0 to destroy."
STACK = Call(Operation.PREVIEW, "iris-gcp", "gs://mlp-state/apps/iris/pulumi",
             {"gcp:project": "ml-platform-123", "gcp:region": "europe-west1"})


@pytest.fixture
def app(iris: Path, gcs_emulator: Any) -> Path:
    """examples/iris under the gcp block, its gcs backend on the emulator."""
    settings = {"bucket": "mlp-state", "prefix": "apps/iris", "endpoint": gcs_emulator.endpoint}
    return with_backend(iris, backend_block("gcs", settings))


@pytest.fixture
def recorded(app: Path, loaded: Callable[[Path], App], monkeypatch: pytest.MonkeyPatch) -> RecordingDriver:
    """The gcp plugin, as mlp finds it, previewing through a RecordingDriver that answers the
    stack's first preview: the program's resources, all to create."""
    from mlp_gcp.provider import GcpProvider

    driver: RecordingDriver = bind_first_preview(monkeypatch, GcpProvider, loaded(app), COMPUTED, INVOKES)
    return driver


def test_the_plan_without_the_pulumi_cli_says_how_to_install_it(app: Path, gcs_emulator: Any,
                                                                 update_goldens: bool) -> None:
    assert pulumi_cli() is None, "this golden is the plan of a machine without the Pulumi CLI"
    done = run_mlp(app, "plan", environ=dict(gcs_emulator.environ))
    assert (done.returncode, done.stderr) == (0, "")
    check_golden(GOLDEN / "plan.txt", normalise(done.stdout, app, gcs_emulator.endpoint), update_goldens)
    lines = done.stdout.splitlines()
    assert SUMMARY in lines and "  + model.dnn                             new" in lines
    assert lines[-2:] == ["Infrastructure (gcp):", f"  {NEEDS_CLI}"]


def test_the_plan_with_a_preview_lists_the_stacks_resources(app: Path, gcs_emulator: Any, recorded: RecordingDriver,
                                                            update_goldens: bool) -> None:
    code, out, err = mlp_in_process(app, "plan")
    assert (code, err) == (0, "")
    check_golden(GOLDEN / "plan-previewed.txt", normalise(out, app, gcs_emulator.endpoint), update_goldens)
    assert recorded.calls == [STACK, Call(Operation.OUTPUTS, STACK.stack, STACK.backend_url, STACK.config)]
    lines = out.splitlines()
    assert SUMMARY in lines
    infra = lines[lines.index("Infrastructure (gcp):") + 1:-1]
    assert lines[-1].startswith(f"Infrastructure: {len(infra)} to create, 0 to update")
    assert {"  + gcp:container/cluster:Cluster::iris-cluster  (new)",
            "  + gcp:container/nodePool:NodePool::iris-cpu  (new)",
            "  + gcp:storage/bucket:Bucket::iris-data  (new)", "  + mlp:gcp:Cluster::iris  (new)"} <= set(infra)
    assert len(infra) == len(recorded.events) - 1  # one line per resource step; the summary is none
    assert NEEDS_CLI not in out

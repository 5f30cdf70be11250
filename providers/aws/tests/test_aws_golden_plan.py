"""Golden plans of examples/iris under `provider "aws"`, its state in S3 (moto's server on
127.0.0.1): `mlp plan` as it prints without a terminal, against golden/ (MLP_UPDATE_GOLDENS=1
rewrites them).

- golden/plan.txt: the real `mlp` command on this machine, without the Pulumi CLI: every
  data and model change, and the note that the infrastructure preview needs the CLI;
- golden/plan-previewed.txt: the same plan with the stack's first preview answered by the
  `RecordingDriver`: every resource the program declares (run under Pulumi's mocks), to create;
- golden/plan.md: that plan as `--format markdown`, the pull-request comment of examples/ci.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from test_aws_program import COMPUTED, INVOKES

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


@pytest.fixture
def app(iris: Path, moto_server: Any) -> Path:
    """examples/iris under the aws block, its s3 backend on moto's server."""
    settings = {"bucket": "mlp-state", "prefix": "apps/iris", "region": "eu-west-1", "endpoint": moto_server.endpoint}
    return with_backend(iris, backend_block("s3", settings))


@pytest.fixture
def recorded(app: Path, loaded: Callable[[Path], App], monkeypatch: pytest.MonkeyPatch) -> RecordingDriver:
    """The aws plugin, as mlp finds it, previewing through a RecordingDriver that answers the
    stack's first preview: the program's resources, all to create."""
    from mlp_aws.provider import AwsProvider

    driver: RecordingDriver = bind_first_preview(monkeypatch, AwsProvider, loaded(app), COMPUTED, INVOKES)
    return driver


def test_the_plan_without_the_pulumi_cli_says_how_to_install_it(app: Path, moto_server: Any,
                                                                 update_goldens: bool) -> None:
    assert pulumi_cli() is None, "this golden is the plan of a machine without the Pulumi CLI"
    done = run_mlp(app, "plan", environ=dict(moto_server.environ))
    assert (done.returncode, done.stderr) == (0, "")
    check_golden(GOLDEN / "plan.txt", normalise(done.stdout, app, moto_server.endpoint), update_goldens)
    lines = done.stdout.splitlines()
    assert SUMMARY in lines and "  + model.dnn                             new" in lines
    assert lines[-2:] == ["Infrastructure (aws):", f"  {NEEDS_CLI}"]


def test_the_plan_with_a_preview_lists_the_stacks_resources(app: Path, moto_server: Any, recorded: RecordingDriver,
                                                            update_goldens: bool) -> None:
    code, out, err = mlp_in_process(app, "plan")
    assert (code, err) == (0, "")
    check_golden(GOLDEN / "plan-previewed.txt", normalise(out, app, moto_server.endpoint), update_goldens)
    url = "s3://mlp-state/apps/iris/pulumi?" + urlencode(
        {"region": "eu-west-1", "endpoint": moto_server.endpoint, "s3ForcePathStyle": "true"})
    assert recorded.calls == [Call(Operation.PREVIEW, "iris-aws", url, {"aws:region": "eu-west-1"}),
                              Call(Operation.OUTPUTS, "iris-aws", url, {"aws:region": "eu-west-1"})]
    lines = out.splitlines()
    assert SUMMARY in lines
    infra = lines[lines.index("Infrastructure (aws):") + 1:-1]
    assert lines[-1].startswith(f"Infrastructure: {len(infra)} to create, 0 to update")
    assert {"  + aws:eks/cluster:Cluster::iris-cluster  (new)", "  + aws:eks/nodeGroup:NodeGroup::iris-cpu  (new)",
            "  + aws:s3/bucket:Bucket::iris-data  (new)", "  + mlp:aws:Cluster::iris  (new)"} <= set(infra)
    assert len(infra) == len(recorded.events) - 1  # one line per resource step; the summary is none
    assert NEEDS_CLI not in out


def test_the_markdown_plan_is_the_pull_request_comment(app: Path, moto_server: Any, recorded: RecordingDriver,
                                                       update_goldens: bool) -> None:
    code, out, err = mlp_in_process(app, "plan", "--format", "markdown")
    assert (code, err) == (0, "")
    check_golden(GOLDEN / "plan.md", normalise(out, app, moto_server.endpoint), update_goldens)
    assert out.startswith("### mlp plan for `iris`\n")
    assert f"**{SUMMARY}**" in out.splitlines()
    assert "| create | `aws:eks/cluster:Cluster::iris-cluster` | new |" in out.splitlines()


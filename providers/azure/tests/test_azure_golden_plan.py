"""Golden plans of examples/iris under `provider "azure"`, its state in Blob Storage
(azurite on 127.0.0.1): `mlp plan` as it prints without a terminal, against golden/
(MLP_UPDATE_GOLDENS=1 rewrites them).

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
from test_azure_program import COMPUTED, INVOKES

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
ACCOUNT = "devstoreaccount1"  # azurite's
STACK = Call(Operation.PREVIEW, "iris-azure", f"azblob://mlp-state/apps/iris/pulumi?storage_account={ACCOUNT}",
             {"azure-native:location": "westeurope"})


@pytest.fixture
def app(iris: Path, azurite: Any) -> Path:
    """examples/iris under the azure block, its azurerm backend on azurite."""
    settings = {"account": ACCOUNT, "container": "mlp-state", "prefix": "apps/iris", "endpoint": azurite.endpoint}
    return with_backend(iris, backend_block("azurerm", settings))


@pytest.fixture
def recorded(app: Path, loaded: Callable[[Path], App], monkeypatch: pytest.MonkeyPatch) -> RecordingDriver:
    """The azure plugin, as mlp finds it, previewing through a RecordingDriver that answers the
    stack's first preview: the program's resources, all to create."""
    from mlp_azure.provider import AzureProvider

    driver: RecordingDriver = bind_first_preview(monkeypatch, AzureProvider, loaded(app), COMPUTED, INVOKES)
    return driver


def test_the_plan_without_the_pulumi_cli_says_how_to_install_it(app: Path, azurite: Any,
                                                                 update_goldens: bool) -> None:
    assert pulumi_cli() is None, "this golden is the plan of a machine without the Pulumi CLI"
    done = run_mlp(app, "plan", environ=dict(azurite.environ))
    assert (done.returncode, done.stderr) == (0, "")
    check_golden(GOLDEN / "plan.txt", normalise(done.stdout, app, azurite.endpoint), update_goldens)
    lines = done.stdout.splitlines()
    assert SUMMARY in lines and "  + model.dnn                             new" in lines
    assert lines[-2:] == ["Infrastructure (azure):", f"  {NEEDS_CLI}"]


def test_the_plan_with_a_preview_lists_the_stacks_resources(app: Path, azurite: Any, recorded: RecordingDriver,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            update_goldens: bool) -> None:
    for name, value in azurite.environ:
        monkeypatch.setenv(name, value)
    code, out, err = mlp_in_process(app, "plan")
    assert (code, err) == (0, "")
    check_golden(GOLDEN / "plan-previewed.txt", normalise(out, app, azurite.endpoint), update_goldens)
    assert recorded.calls == [STACK, Call(Operation.OUTPUTS, STACK.stack, STACK.backend_url, STACK.config)]
    lines = out.splitlines()
    assert SUMMARY in lines
    infra = lines[lines.index("Infrastructure (azure):") + 1:-1]
    assert lines[-1].startswith(f"Infrastructure: {len(infra)} to create, 0 to update")
    assert {"  + azure-native:containerservice:ManagedCluster::iris-aks  (new)",
            "  + azure-native:storage:BlobContainer::iris-data  (new)", "  + mlp:azure:Cluster::iris  (new)"} \
        <= set(infra)
    assert len(infra) == len(recorded.events) - 1  # one line per resource step; the summary is none
    assert NEEDS_CLI not in out

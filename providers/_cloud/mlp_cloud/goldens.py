"""The golden plans every cloud provider's tests check: `mlp plan` of examples/iris under
the cloud's block, its state on a real object-storage server (tests/state/conftest.py), as
it prints without a terminal, against the plugin's tests/golden/ (MLP_UPDATE_GOLDENS=1
rewrites them).

- golden/plan.txt: the real `mlp` command on this machine, without the Pulumi CLI: every
  data and model change, and the note that the infrastructure preview needs the CLI;
- golden/plan-previewed.txt: the same plan with the stack's first preview answered by the
  `RecordingDriver`: every resource the program declares (run under Pulumi's mocks), to create;
- golden/plan.md, for a plugin that imports `test_the_markdown_plan_is_the_pull_request_comment`
  by name: that plan as `--format markdown`, the pull-request comment of examples/ci.

A plugin's test module imports these tests (`from mlp_cloud.goldens import *`) and gives the
`golden` fixture, a `GoldenCase`: the provider class, its backend and the server fixture
that backs it, the stack it expects and resources its preview must list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote_plus

import pytest

from mlp.config.blocks import App
from mlp_cloud.driver import NEEDS_CLI, Operation, pulumi_cli
from mlp_cloud.provider import CloudProvider
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

if TYPE_CHECKING:
    from mlp_cloud.mocks import Computed

__all__ = [
    "app",
    "golden_server",
    "recorded",
    "test_the_plan_without_the_pulumi_cli_says_how_to_install_it",
    "test_the_plan_with_a_preview_lists_the_stacks_resources",
]

SUMMARY = "Plan: 17 to create, 0 to rebuild, 0 to reuse, 0 to update, 0 to destroy."
MODEL = "  + model.dnn                             new"


class ObjectServer(Protocol):
    """A server of tests/state/conftest.py: its base URL and its clients' environment."""

    @property
    def endpoint(self) -> str: ...

    @property
    def environ(self) -> tuple[tuple[str, str], ...]: ...


@dataclass(frozen=True)
class GoldenCase:
    """One cloud's side of the golden plans."""

    provider: type[CloudProvider]
    golden: Path                        # the plugin's tests/golden/
    backend: str                        # the backend block's kind: s3, gcs, azurerm
    server: str                         # the fixture of the server it is kept on (tests/state/conftest.py)
    settings: Mapping[str, str]         # the backend block's settings but `endpoint`, the server's
    stack: Call                         # the preview's call; `{endpoint}` in its URL: the server's, URL-encoded
    resources: frozenset[str]           # addresses the first preview creates, among others
    # the program's mocks (mlp_cloud.mocks): its computed outputs and answered invokes
    computed: Computed | None = None
    invokes: Mapping[str, Mapping[str, Any]] | None = None

    @property
    def kind(self) -> str:
        return self.provider.cloud.kind

    def calls(self, endpoint: str) -> list[Call]:
        """What the plan asks of Pulumi: the stack's preview, then its outputs."""
        preview = replace(self.stack, backend_url=self.stack.backend_url.format(endpoint=quote_plus(endpoint)))
        return [preview, replace(preview, operation=Operation.OUTPUTS)]


@pytest.fixture
def golden_server(golden: GoldenCase, request: pytest.FixtureRequest) -> ObjectServer:
    """The real server the case's backend is kept on."""
    server: ObjectServer = request.getfixturevalue(golden.server)
    return server


@pytest.fixture
def app(iris: Path, golden: GoldenCase, golden_server: ObjectServer) -> Path:
    """examples/iris under the cloud's block, its backend on the server."""
    settings = {**golden.settings, "endpoint": golden_server.endpoint}
    return with_backend(iris, backend_block(golden.backend, settings))


@pytest.fixture
def recorded(app: Path, golden: GoldenCase, loaded: Callable[[Path], App],
             monkeypatch: pytest.MonkeyPatch) -> RecordingDriver:
    """The plugin, as mlp finds it, previewing through a RecordingDriver that answers the
    stack's first preview: the program's resources, all to create."""
    driver: RecordingDriver = bind_first_preview(monkeypatch, golden.provider, loaded(app), golden.computed,
                                                 golden.invokes)
    return driver


def _plan_in_process(app: Path, server: ObjectServer, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    """`mlp plan ARGS...` in this process, with the server's environment; its stdout."""
    for name, value in server.environ:
        monkeypatch.setenv(name, value)
    code, out, err = mlp_in_process(app, "plan", *args)
    assert (code, err) == (0, "")
    return out


def test_the_plan_without_the_pulumi_cli_says_how_to_install_it(app: Path, golden: GoldenCase,
                                                                 golden_server: ObjectServer,
                                                                 update_goldens: bool) -> None:
    assert pulumi_cli() is None, "this golden is the plan of a machine without the Pulumi CLI"
    done = run_mlp(app, "plan", environ=dict(golden_server.environ))
    assert (done.returncode, done.stderr) == (0, "")
    check_golden(golden.golden / "plan.txt", normalise(done.stdout, app, golden_server.endpoint), update_goldens)
    lines = done.stdout.splitlines()
    assert SUMMARY in lines and MODEL in lines
    assert lines[-2:] == [f"Infrastructure ({golden.kind}):", f"  {NEEDS_CLI}"]


def test_the_plan_with_a_preview_lists_the_stacks_resources(app: Path, golden: GoldenCase,
                                                            golden_server: ObjectServer, recorded: RecordingDriver,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            update_goldens: bool) -> None:
    out = _plan_in_process(app, golden_server, monkeypatch)
    check_golden(golden.golden / "plan-previewed.txt", normalise(out, app, golden_server.endpoint), update_goldens)
    assert recorded.calls == golden.calls(golden_server.endpoint)
    lines = out.splitlines()
    assert SUMMARY in lines
    infra = lines[lines.index(f"Infrastructure ({golden.kind}):") + 1:-1]
    assert lines[-1].startswith(f"Infrastructure: {len(infra)} to create, 0 to update")
    assert {f"  + {address}  (new)" for address in golden.resources} <= set(infra)
    assert len(infra) == len(recorded.events) - 1  # one line per resource step; the summary is none
    assert NEEDS_CLI not in out


def test_the_markdown_plan_is_the_pull_request_comment(app: Path, golden: GoldenCase, golden_server: ObjectServer,
                                                       recorded: RecordingDriver, monkeypatch: pytest.MonkeyPatch,
                                                       update_goldens: bool) -> None:
    out = _plan_in_process(app, golden_server, monkeypatch, "--format", "markdown")
    check_golden(golden.golden / "plan.md", normalise(out, app, golden_server.endpoint), update_goldens)
    assert out.startswith("### mlp plan for `iris`\n")
    lines = out.splitlines()
    assert f"**{SUMMARY}**" in lines
    assert {f"| create | `{address}` | new |" for address in golden.resources} <= set(lines)

"""`AutomationDriver`: the `PulumiDriver` on Pulumi's Automation API (`pulumi.automation`).

Each call opens the stack in a local workspace (`StackRef.work_dir`) whose project names the
app's backend as its state backend, so nothing is kept on this machine that CI would lose:
the workspace folder holds only Pulumi's settings files. The provider packages' plugins are
installed at the versions of the Python packages (`StackRef.plugins`), as `pulumi
plugin install` would. Each operation's output goes to `<work_dir>/<operation>.log`.

A missing CLI (the Automation API runs `pulumi` and raises FileNotFoundError) is the
install message; Pulumi's own errors are a `PulumiError` with its message and the log.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlp_cloud.driver import Operation, Program, PulumiError, Step, cli_missing
from mlp_cloud.events import steps_of
from mlp_cloud.stack import StackRef

SECRETS_PROVIDER = "passphrase"  # PULUMI_CONFIG_PASSPHRASE encrypts the stack's secrets
VERBS = {Operation.PREVIEW: "preview", Operation.UP: "apply", Operation.DESTROY: "destroy",
         Operation.OUTPUTS: "read its stack"}


class AutomationDriver:
    def __init__(self, kind: str, plugins: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self.plugins = dict(plugins or {})  # plugin name -> the Python package it comes with

    def preview(self, stack: StackRef, program: Program) -> tuple[Step, ...]:
        events: list[Any] = []
        with self._stack(stack, program, Operation.PREVIEW, create=True) as (s, log):
            s.preview(on_event=events.append, on_output=log)
        return steps_of(events)

    def up(self, stack: StackRef, program: Program) -> Mapping[str, str]:
        with self._stack(stack, program, Operation.UP, create=True) as (s, log):
            result = s.up(on_output=log)
            return _values(result.outputs)

    def destroy(self, stack: StackRef, program: Program) -> None:
        with self._stack(stack, program, Operation.DESTROY, create=False) as (s, log):
            if s is not None:
                s.destroy(on_output=log)

    def outputs(self, stack: StackRef) -> Mapping[str, str]:
        with self._stack(stack, None, Operation.OUTPUTS, create=False) as (s, _):
            return {} if s is None else _values(s.outputs())

    @contextmanager
    def _stack(self, ref: StackRef, program: Program | None, op: Operation,
               create: bool) -> Iterator[tuple[Any, Callable[[str], None]]]:
        """The stack (None when it does not exist and `create` is false), and where the
        operation's output goes; Pulumi's errors become PulumiError."""
        from pulumi import automation as auto

        Path(ref.work_dir).mkdir(parents=True, exist_ok=True)
        log_path = Path(ref.work_dir) / f"{op.value}.log"
        with log_path.open("w", encoding="utf-8") as log_file:
            def log(line: str) -> None:
                log_file.write(line if line.endswith("\n") else line + "\n")

            try:
                stack = self._open(auto, ref, program, create)
                yield stack, log
            except FileNotFoundError:
                raise cli_missing(self.kind, VERBS[op]) from None
            except auto.errors.ConcurrentUpdateError as e:
                raise PulumiError(f"The stack {ref.name} is being updated by another run", _tail(e),
                                  "Wait for it to finish; if none is running: pulumi cancel") from None
            except auto.errors.CommandError as e:
                raise PulumiError(f"Pulumi's {op.value} of the stack {ref.name} failed", _tail(e),
                                  f"See {log_path}") from None

    def _open(self, auto: Any, ref: StackRef, program: Program | None, create: bool) -> Any:
        opts = auto.LocalWorkspaceOptions(
            work_dir=ref.work_dir, secrets_provider=SECRETS_PROVIDER,
            project_settings=auto.ProjectSettings(name=ref.project, runtime="python",
                                                  backend=auto.ProjectBackend(url=ref.backend_url)))
        if not create:
            try:
                stack = auto.select_stack(stack_name=ref.name, project_name=ref.project,
                                          program=program or (lambda: None), opts=opts)
            except auto.errors.StackNotFoundError:
                return None
        else:
            stack = auto.create_or_select_stack(stack_name=ref.name, project_name=ref.project,
                                                program=program, opts=opts)
        for name, package in sorted(self.plugins.items()):
            stack.workspace.install_plugin(name, "v" + _version(package))
        stack.set_all_config({k: auto.ConfigValue(v) for k, v in ref.config.items()})
        return stack


def _values(outputs: Mapping[str, Any]) -> dict[str, str]:
    """The stack's outputs as strings (secrets are given in the clear by the Automation API:
    they go to the Kubernetes layer, never into mlp's state)."""
    out = {}
    for name, item in sorted(outputs.items()):
        value = getattr(item, "value", item)
        out[name] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return out


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _tail(e: Exception, lines: int = 20) -> str:
    text = str(e).strip().splitlines()
    return "\n".join(text[-lines:])

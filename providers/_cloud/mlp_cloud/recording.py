"""`RecordingDriver`: a `PulumiDriver` that records what would be sent to Pulumi and answers
from a script, for tests and for reviewing what an apply would ask of Pulumi.

Each call is a `Call`: the operation, the stack's name, its backend URL and its config.
`preview` answers the scripted engine events (Pulumi's own `EngineEvent`s, e.g. read with
`EngineEvent.from_json` from the JSON lines of a real run's event log) through the same
`steps_of` the Automation API driver uses; `up` answers the scripted outputs and makes the
stack exist, `destroy` removes it. The program is kept, not run: tests run programs under
Pulumi's mocks (`mlp_cloud.mocks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlp_cloud.driver import Operation, Program, Step
from mlp_cloud.events import steps_of
from mlp_cloud.stack import StackRef


@dataclass(frozen=True)
class Call:
    operation: Operation
    stack: str
    backend_url: str
    config: Mapping[str, str] = field(default_factory=dict)


class RecordingDriver:
    def __init__(self, events: Iterable[Any] = (), outputs: Mapping[str, str] | None = None,
                 exists: bool = False) -> None:
        self.events = list(events)
        self.scripted_outputs = dict(outputs or {})
        self.exists = exists            # does the stack hold an up's outputs yet?
        self.calls: list[Call] = []
        self.programs: list[Program] = []

    def preview(self, stack: StackRef, program: Program) -> tuple[Step, ...]:
        self._record(Operation.PREVIEW, stack, program)
        return steps_of(self.events)

    def up(self, stack: StackRef, program: Program) -> Mapping[str, str]:
        self._record(Operation.UP, stack, program)
        self.exists = True
        return dict(self.scripted_outputs)

    def destroy(self, stack: StackRef, program: Program) -> None:
        self._record(Operation.DESTROY, stack, program)
        self.exists = False

    def outputs(self, stack: StackRef) -> Mapping[str, str]:
        self._record(Operation.OUTPUTS, stack, None)
        return dict(self.scripted_outputs) if self.exists else {}

    @property
    def operations(self) -> list[Operation]:
        return [c.operation for c in self.calls]

    def _record(self, op: Operation, stack: StackRef, program: Program | None) -> None:
        self.calls.append(Call(op, stack.name, stack.backend_url, dict(stack.config)))
        if program is not None:
            self.programs.append(program)

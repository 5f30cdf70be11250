"""For tests: a Pulumi program run under `pulumi.runtime.set_mocks`, every resource recorded.

    run = run_program(program, computed)
    run.one("aws:eks/nodeGroup:NodeGroup", "iris-cpu").inputs["scalingConfig"]["maxSize"]
    run.outputs["bucket"]

The real Pulumi SDK and the real provider packages' resource classes register their
resources with a mock engine that answers each with its inputs, a few computed properties
the test gives per type (`computed`: an EKS cluster's endpoint...), an id, a `name` and, for
AWS types, an `arn`. Invokes answer from `invokes` by token. Nothing leaves the process.
This module imports Pulumi: only tests import it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

Computed = Mapping[str, Callable[[str, Mapping[str, Any]], Mapping[str, Any]]]


@dataclass(frozen=True)
class Registered:
    type: str
    name: str
    inputs: Mapping[str, Any]
    parent: str = ""


@dataclass
class ProgramRun:
    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    invokes: list[str] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> Registered:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        assert len(found) == 1, f"{len(found)} {type_} named {name}: {[r.name for r in self.resources]}"
        return found[0]

    @property
    def types(self) -> set[str]:
        return {r.type for r in self.resources}


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, run: ProgramRun, computed: Computed, invokes: Mapping[str, Mapping[str, Any]]) -> None:
        self.run = run
        self.computed = computed
        self.invoke_answers = invokes

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        self.run.resources.append(Registered(args.typ, args.name, dict(args.inputs)))
        state: dict[str, Any] = {"name": args.name, **args.inputs}
        if args.typ.startswith("aws:"):
            state.setdefault("arn", f"arn:aws:mock:::{args.typ.split(':')[1]}/{args.name}")
        extra = self.computed.get(args.typ)
        if extra is not None:
            state.update(extra(args.name, args.inputs))
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        self.run.invokes.append(args.token)
        return dict(self.invoke_answers.get(args.token, {})), []


def run_program(program: Callable[[], None], computed: Computed | None = None,
                invokes: Mapping[str, Mapping[str, Any]] | None = None, stack: str = "stack") -> ProgramRun:
    """Run `program` under mocks and return what it registered and exported."""
    import asyncio

    from pulumi.runtime.stack import Stack, get_root_resource

    # Pulumi's test runner asks for the thread's current event loop; a test run before this
    # one (an asyncio test, a server) may have closed it or set none: give it a fresh one.
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
        if loop.is_closed():
            raise RuntimeError("closed")
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    run = ProgramRun()
    pulumi.runtime.set_mocks(RecordingMocks(run, computed or {}, invokes or {}), project="mlp", stack=stack,
                             preview=False)

    @pulumi.runtime.test
    def body() -> pulumi.Output[Any]:
        program()
        root = get_root_resource()
        exported = root.outputs if isinstance(root, Stack) else {}
        return pulumi.Output.from_input(dict(exported)).apply(run.outputs.update)

    body()
    return run

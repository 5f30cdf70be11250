"""The seam between mlp and Pulumi: `PulumiDriver`, and what it answers as typed values.

    preview(stack, program)  -> the engine's per-resource steps (`Step`), nothing changed
    up(stack, program)       -> the stack's outputs once it holds what the program declares
    destroy(stack, program)  -> every resource of the stack deleted
    outputs(stack)           -> the outputs of the last up; empty when there is no such stack

`mlp_cloud.automation.AutomationDriver` implements it on `pulumi.automation` (inline
programs, a local workspace); `mlp_cloud.recording.RecordingDriver` records each call and
answers scripted engine events. Both need nothing but what is passed: the stack's name, its
backend URL, its config and the program.

The Automation API drives the Pulumi CLI, a program of its own. Whether it is installed is
asked before any call (`pulumi_cli`): without it a preview says so and how to install it,
and apply and destroy stop before they touch anything.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from mlp.errors import ApplyError, UsageError
from mlp_cloud.stack import StackRef

Program = Callable[[], None]  # an inline Pulumi program: declares resources and exports

INSTALL = "curl -fsSL https://get.pulumi.com | sh"
NEEDS_CLI = ("The infrastructure preview needs the Pulumi CLI: install it with `" + INSTALL + "` "
             "(it goes to ~/.pulumi/bin; put that on PATH), then plan again. "
             "The data and model changes above do not depend on it.")


class Operation(StrEnum):
    PREVIEW = "preview"
    UP = "up"
    DESTROY = "destroy"
    OUTPUTS = "outputs"


@dataclass(frozen=True)
class Step:
    """One resource step of the engine: `op` is Pulumi's (create, update, replace, delete,
    same, create-replacement...); `diffs` the properties that differ, `keys` those that
    force a replacement."""

    urn: str
    type: str
    op: str
    diffs: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


class PulumiDriver(Protocol):
    def preview(self, stack: StackRef, program: Program) -> tuple[Step, ...]: ...

    def up(self, stack: StackRef, program: Program) -> Mapping[str, str]: ...

    def destroy(self, stack: StackRef, program: Program) -> None: ...

    def outputs(self, stack: StackRef) -> Mapping[str, str]: ...


def pulumi_cli() -> str | None:
    """The Pulumi CLI the Automation API would run (`pulumi` on PATH), or None."""
    return shutil.which("pulumi")


def cli_missing(kind: str, verb: str) -> UsageError:
    """Why `verb` cannot run: the error apply and destroy stop with, before anything."""
    return UsageError(f"The {kind} provider cannot {verb} without the Pulumi CLI",
                      f"mlp makes the {kind} cluster, bucket and identity with Pulumi's Automation API, "
                      "which runs the `pulumi` command; it is not on PATH. Nothing was changed.",
                      f"Install it: {INSTALL} (then put ~/.pulumi/bin on PATH); docs/cloud.md has the recipe")


class PulumiError(ApplyError):
    """Pulumi refused or failed an operation on a stack; the detail is its own message."""

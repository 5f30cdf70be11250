"""Orchestration: making a cluster hold what mlp rendered, through the `KubeApi` seam.

    changes(desired, observed)  -> the ObjectChanges that would make `observed` `desired`
    apply_manifests(desired, api) -> the ObjectChanges it made
    destroy(spec, api)          -> delete, by label, everything mlp made for the app

What is desired is a `Desired`: manifests and the `scope` they are all of what mlp wants
(the whole app, or one block). Compared by digest (`mlp.dev/digest`), an object is:

    missing             created
    different           patched by server-side apply (a Deployment's new pod template
                        is a rolling update); a Job, whose pod template cannot change, is
                        deleted and created again
    not desired         deleted when its block is gone from the app (every object of that
                        block, by its labels); a Job of a block still there is its last
                        run and stays until its TTL

Nothing outside the scope's labels is ever listed, changed or deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from mlp_kubernetes.kubeapi import KubeApi, Observed
from mlp_kubernetes.manifest import Kind, Manifest, ObjectRef
from mlp_kubernetes.names import APP_BLOCK, BLOCK, MODEL_FINGERPRINT, Owner, Selector, label_value
from mlp_kubernetes.specs import AppSpec


class Step(StrEnum):
    CREATE = "create"
    UPDATE = "update"      # server-side apply
    REPLACE = "replace"    # delete, then create
    DELETE = "delete"


class Why(StrEnum):
    """Why an object changes."""

    NEW = "new"                        # not on the cluster
    CHANGED = "changed"                # its rendered document changed
    MODEL_CHANGED = "model_changed"    # an api's Deployment serves another model: a rolling update
    IMMUTABLE = "immutable"            # a Job whose pod template changed: delete and create
    BLOCK_GONE = "block_gone"          # its block is no longer in the app: deleted by label
    NOT_RENDERED = "not_rendered"      # its block no longer makes it (e.g. a Role, executors off)
    DESTROY = "destroy"                # mlp destroy


@dataclass(frozen=True, order=True)
class ObjectChange:
    """One object to change, and why. `block` is its block's label value; `detail` says more
    (the model a rolling update moves to)."""

    ref: ObjectRef
    step: Step
    block: str
    why: Why
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.step.value} {self.ref} ({self.why.value}{': ' + self.detail if self.detail else ''})"


@dataclass(frozen=True)
class Desired:
    """What mlp wants inside `scope` in `namespace`. Invariants: every manifest is in the
    namespace and carries the scope's labels; `blocks` holds the label value of every block
    the scope still has, whether or not it has a manifest here (a model whose Job is not
    run this time is still there)."""

    namespace: str
    scope: Selector
    manifests: tuple[Manifest, ...]
    blocks: frozenset[str]

    @classmethod
    def app(cls, spec: AppSpec, manifests: Iterable[Manifest]) -> Desired:
        blocks = [APP_BLOCK, *(u.source for u in spec.data), *(t.model for t in spec.models),
                  *(a.api for a in spec.apis), *(c.column for c in spec.columns)]
        return cls(spec.namespace, Selector.app(spec.name), tuple(sorted(manifests, key=lambda m: m.ref)),
                   frozenset(label_value(b) for b in blocks))

    @classmethod
    def block(cls, spec: AppSpec, block: str, manifests: Iterable[Manifest]) -> Desired:
        return cls(spec.namespace, Owner(spec.name, block).selector(), tuple(sorted(manifests, key=lambda m: m.ref)),
                   frozenset({label_value(block)}))


def observe(api: KubeApi, namespace: str, scope: Selector) -> tuple[Observed, ...]:
    """Every object of every kind mlp makes, inside the scope."""
    return tuple(o for kind in Kind for o in api.list(kind, namespace, scope))


def changes(desired: Desired, observed: Sequence[Observed]) -> tuple[ObjectChange, ...]:
    current = {o.ref: o for o in observed}
    wanted = {m.ref for m in desired.manifests}
    blocks = desired.blocks
    out = [c for m in desired.manifests if (c := _change(m, current.get(m.ref))) is not None]
    for o in observed:
        if o.ref in wanted:
            continue
        if o.block not in blocks:
            out.append(ObjectChange(o.ref, Step.DELETE, o.block, Why.BLOCK_GONE))
        elif not o.ref.kind.per_run:
            out.append(ObjectChange(o.ref, Step.DELETE, o.block, Why.NOT_RENDERED))
    return tuple(out)


def _change(m: Manifest, current: Observed | None) -> ObjectChange | None:
    block = label_value(m.owner.block)
    if current is None:
        return ObjectChange(m.ref, Step.CREATE, block, Why.NEW)
    if current.digest == m.digest:
        return None
    if m.kind.immutable:
        return ObjectChange(m.ref, Step.REPLACE, block, Why.IMMUTABLE)
    before, after = current.annotations.get(MODEL_FINGERPRINT, ""), _model(m)
    if m.kind is Kind.DEPLOYMENT and before != after:
        return ObjectChange(m.ref, Step.UPDATE, block, Why.MODEL_CHANGED, f"model {after[:12]}")
    return ObjectChange(m.ref, Step.UPDATE, block, Why.CHANGED)


def _model(m: Manifest) -> str:
    return str((m.doc.get("metadata") or {}).get("annotations", {}).get(MODEL_FINGERPRINT, ""))


def apply_manifests(desired: Desired, api: KubeApi) -> tuple[ObjectChange, ...]:
    """Make the cluster hold `desired`; the changes made, in the order made."""
    todo = changes(desired, observe(api, desired.namespace, desired.scope))
    by_ref = {m.ref: m for m in desired.manifests}
    writes = [c for c in todo if c.step is not Step.DELETE]
    for c in writes:
        m = by_ref[c.ref]
        if c.step is Step.CREATE:
            api.create(m)
        elif c.step is Step.UPDATE:
            api.patch(m)
        else:
            api.delete(c.ref)
            api.create(m)
    deletes = sorted((c for c in todo if c.step is Step.DELETE), key=lambda c: (-c.ref.order, c.ref.name))
    _delete(desired, deletes, api)
    return tuple(writes) + tuple(deletes)


def _delete(desired: Desired, deletes: Sequence[ObjectChange], api: KubeApi) -> None:
    """Objects of a block that is gone go by the block's labels, one call per kind; others by name."""
    gone: set[tuple[Kind, str]] = set()
    app = dict(desired.scope.labels)
    for c in deletes:
        if c.why is not Why.BLOCK_GONE:
            api.delete(c.ref)
        elif (c.ref.kind, c.block) not in gone:
            gone.add((c.ref.kind, c.block))
            api.delete_by_label(c.ref.kind, desired.namespace, Selector.of({**app, BLOCK: c.block}))


def destroy(spec: AppSpec, api: KubeApi) -> tuple[ObjectChange, ...]:
    """Delete everything that carries mlp's labels for this app, one label-selected delete
    per kind present (in reverse creation order); the objects that were there."""
    scope = Selector.app(spec.name)
    found = observe(api, spec.namespace, scope)
    for kind in sorted({o.ref.kind for o in found}, key=lambda k: -k.order):
        api.delete_by_label(kind, spec.namespace, scope)
    return tuple(sorted(ObjectChange(o.ref, Step.DELETE, o.block, Why.DESTROY) for o in found))

"""The planner: compare an analysed app with its state and decide, block by block,
what apply will do and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from mlp.config.values import did_you_mean
from mlp.errors import UsageError
from mlp.graph.address import SORT_KEY, Address, Kind
from mlp.graph.analysis import Analysis
from mlp.graph.fingerprint import Fingerprint, digest
from mlp.plan.diff import field_diff
from mlp.plan.model import Action, Change, Plan, Reason
from mlp.providers import ApiStatus, Refresh
from mlp.state.model import BlockRecord, State


@dataclass(frozen=True)
class PlanOptions:
    targets: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()
    sample: int | None = None
    # What the provider found really there (None: --refresh=false, the state is trusted).
    refresh: Refresh | None = None


def parse_addresses(texts: Iterable[str], known: Iterable[Address], flag: str) -> list[Address]:
    """The blocks `texts` name: `KIND.NAME`, `KIND.NAME["KEY"]` (one instance), or the name of a
    block with for_each, which is all its instances (as `terraform plan -target` does)."""
    known_set = set(known)
    known_s = sorted(str(a) for a in known_set)
    out: list[Address] = []
    for t in texts:
        try:
            a = Address.parse(t)
        except ValueError as e:
            raise UsageError(f"Invalid {flag} address", str(e),
                             f'Use KIND.NAME or KIND.NAME["KEY"], e.g. {flag} model.churn') from None
        instances = sorted(k for k in known_set if a.key is None and k.key is not None
                           and (k.kind, k.block) == (a.kind, a.name))
        if a not in known_set and not instances:
            hint = did_you_mean(t, known_s)
            raise UsageError(f'{flag} {t}: no such block', f"The app and its state have no block {t}.",
                             hint or "Run `mlp plan` to list the blocks.")
        out.extend([a] if a in known_set else instances)
    return out


def make_plan(analysis: Analysis, state: State, store_has: Callable[[str], bool],
              opts: PlanOptions, old_has: Callable[[str], bool] | None = None) -> Plan:
    """`store_has(fingerprint)`: whether the backend's store holds that block output. With
    `old_has` (a backend move: `state` is the old backend's), an output only the old
    store holds is copied, not rebuilt."""
    app, graph, fps = analysis.app, analysis.graph, analysis.fingerprints
    has = store_has if old_has is None else (lambda fp: store_has(fp) or old_has(fp))
    in_state = {Address.parse(a) for a in state.blocks}
    targets = parse_addresses(opts.targets, set(fps) | in_state, "--target")
    replace = set(parse_addresses(opts.replace, fps, "--replace"))
    selected = graph.closure(targets) if targets else set(graph.order)
    forced = graph.downstream(replace) & selected if replace else set()
    changes: dict[Address, Change] = {}
    for addr in graph.order:
        if addr not in fps or addr not in selected:
            continue
        rec = state.blocks.get(str(addr))
        ch = _change(addr, fps[addr], rec, changes, state, app.provider.kind, has,
                     addr in replace, addr in forced, app.blocks[addr].extra())
        ch = _estimated(_refreshed(ch, opts.refresh), rec)
        changes[addr] = _copied(ch, rec, store_has) if old_has is not None else ch
    for a in sorted(in_state - set(fps)):
        if targets and a not in targets:
            continue
        rec = state.blocks[str(a)]
        changes[a] = Change(a, Action.DESTROY, Reason.REMOVED, ("no longer in the app",), rec.fingerprint, None)
    return Plan(app=app.name, app_dir=str(app.dir), changes=tuple(sorted(changes.values(), key=_by_address)),
                lineage=state.lineage, serial=state.serial, provider=app.provider.kind,
                data={str(k): v for k, v in analysis.data.items()},
                code={str(k): v for k, v in analysis.code.items()},
                variables=dict(opts.variables), targets=tuple(opts.targets), replace=tuple(opts.replace),
                sample=opts.sample, extras=extras_digests(analysis, changes))


def _copied(ch: Change, rec: BlockRecord | None, store_has: Callable[[str], bool]) -> Change:
    """A block whose output the plan takes as it is (reused, or unchanged) while the new
    backend's store lacks it: the old store has it (the plan saw so), and apply copies it."""
    fp = ch.fingerprint_after
    if ch.action not in (Action.REUSE, Action.NOOP) or fp is None or store_has(fp):
        return ch
    if ch.action is Action.NOOP and (rec is None or rec.artifact is None):
        return ch  # nothing stored to bring over
    why = ch.details if ch.action is Action.REUSE else ()
    return Change(ch.address, Action.COPY, Reason.BACKEND_CHANGED,
                  ("its output is in the old backend's store: copied, not rebuilt", *why),
                  ch.fingerprint_before, fp)


def _by_address(change: Change) -> Any:
    return SORT_KEY(change.address)


def _estimated(ch: Change, rec: BlockRecord | None) -> Change:
    """The run's estimate from the last one; a rebuild caused only by upstream rebuilds is
    marked as one early cut-off may skip (apis always run: they reload)."""
    if not ch.action.runs:
        return ch
    may_skip = (ch.action is Action.REBUILD and ch.reason is Reason.UPSTREAM_CHANGED
                and ch.address.kind is not Kind.API and ch.fingerprint_before != ch.fingerprint_after)
    estimate = rec.seconds if rec is not None else None
    if not may_skip and estimate is None:
        return ch  # what it already says: a new block, or one that never ran
    return Change(ch.address, ch.action, ch.reason, ch.details, ch.fingerprint_before, ch.fingerprint_after,
                  may_skip, estimate)


def _refreshed(ch: Change, refresh: Refresh | None) -> Change:
    """A block the state calls done, seen against what refresh found: a missing artifact is
    rebuilt; an api that is down or serves another model is updated."""
    if refresh is None or ch.action not in (Action.NOOP, Action.UPDATE):
        return ch
    addr = str(ch.address)
    if ch.action is Action.NOOP and addr in refresh.missing:
        return Change(ch.address, Action.REBUILD, Reason.ARTIFACT_MISSING,
                      (f"its artifact {refresh.missing[addr].rpartition('/')[2][:12]} is gone from the store",),
                      ch.fingerprint_before, ch.fingerprint_after)
    health = refresh.apis.get(addr)
    if health is None or health.status is ApiStatus.SERVING:
        return ch
    reason = Reason.NOT_RUNNING if health.status is ApiStatus.DOWN else Reason.DRIFTED
    return Change(ch.address, Action.UPDATE, reason, (health.detail, *ch.details),
                  ch.fingerprint_before, ch.fingerprint_after)


def extras_digests(analysis: Analysis, addresses: Iterable[Address]) -> dict[str, str]:
    """Digests of the settings outside the fingerprints of those blocks that have some."""
    blocks = analysis.app.blocks
    return {str(a): digest(blocks[a].extra()) for a in addresses
            if a in blocks and blocks[a].extra()}


def _change(addr: Address, fp: Fingerprint, rec: BlockRecord | None, done: dict[Address, Change],
            state: State, provider: str, store_has: Callable[[str], bool], replace: bool,
            forced: bool, extra: dict[str, Any]) -> Change:
    before = rec.fingerprint if rec else None
    if rec is not None and rec.status != "done":
        return Change(addr, Action.CREATE, Reason.NEW, ("its last build failed",), before, fp.value)
    if rec is None:
        if addr.kind is not Kind.API and store_has(fp.value):
            return Change(addr, Action.REUSE, Reason.CACHE_HIT, ("new block; its artifact is in the store",),
                          None, fp.value)
        return Change(addr, Action.CREATE, Reason.NEW, (), None, fp.value)
    if replace:
        return Change(addr, Action.REBUILD, Reason.REPLACE_REQUESTED, ("--replace",), before, fp.value)
    if rec.fingerprint == fp.value:
        return _same_fingerprint(addr, fp, rec, done, state, provider, forced, extra)
    reason, details = _why(addr, fp, rec, done)
    if addr.kind is not Kind.API and store_has(fp.value):
        return Change(addr, Action.REUSE, Reason.CACHE_HIT,
                      (f"{reason.value}; the artifact for the new fingerprint is in the store",) + details,
                      before, fp.value)
    return Change(addr, Action.REBUILD, reason, details, before, fp.value)


def _same_fingerprint(addr: Address, fp: Fingerprint, rec: BlockRecord, done: dict[Address, Change],
                      state: State, provider: str, forced: bool, extra: dict[str, Any]) -> Change:
    if forced:
        ups = sorted(a for a in done if str(a) in fp.inputs and done[a].action is Action.REBUILD)
        return Change(addr, Action.REBUILD, Reason.UPSTREAM_CHANGED,
                      tuple(f"{u} is replaced" for u in ups), rec.fingerprint, fp.value)
    if addr.kind is Kind.API and state.provider and state.provider != provider:
        return Change(addr, Action.REBUILD, Reason.PROVIDER_CHANGED,
                      (f"provider: {state.provider} -> {provider}",), rec.fingerprint, fp.value)
    extra_diff = field_diff(rec.extra, extra)
    if extra_diff:
        return Change(addr, Action.UPDATE, Reason.CONFIG_CHANGED, tuple(extra_diff), rec.fingerprint, fp.value)
    return Change(addr, Action.NOOP, Reason.UNCHANGED, (), rec.fingerprint, fp.value)


def _why(addr: Address, fp: Fingerprint, rec: BlockRecord, done: dict[Address, Change]) -> tuple[Reason, tuple[str, ...]]:
    diffs = field_diff(rec.settings, dict(fp.settings))
    if diffs:
        if addr.kind is Kind.SOURCE and all(d.startswith("sample:") for d in diffs):
            return Reason.SAMPLE_CHANGED, tuple(diffs)
        return Reason.CONFIG_CHANGED, tuple(diffs)
    if rec.code != fp.code:
        if addr.kind is Kind.SOURCE:
            return Reason.DATA_CHANGED, ("the data's content hash changed",)
        code = fp.settings.get("aggregator") or fp.settings.get("transformer") or fp.settings.get("estimator")
        return Reason.CODE_CHANGED, (f"{code}: content {_short(rec.code)} -> {_short(fp.code)}",)
    changed = sorted(a for a, v in fp.inputs.items() if rec.inputs.get(a) != v)
    changed += sorted(f"{a} (no longer used)" for a in rec.inputs if a not in fp.inputs)
    details = []
    for u in changed:
        up = next((c for a, c in done.items() if str(a) == u), None)
        details.append(f"{u} ({up.reason.value})" if up and up.action is not Action.NOOP else u)
    return Reason.UPSTREAM_CHANGED, tuple(details)


def _short(code: str | None) -> str:
    if not code:
        return "(none)"
    kind, _, value = code.partition(":")
    return value[:12] if kind in ("file", "data") else value

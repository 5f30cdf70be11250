"""The data unit of one source: ingest, aggregates and transformed columns, in Spark.

Artifacts (each under its block's fingerprint):
- source: `table/` (Parquet: `__row` + one column per raw column) and meta.json with
  row counts, violation counts and per-column digests;
- raw column / transformed column: meta.json naming the table that holds the column;
- aggregate: meta.json with the value;
- a wave of transformed columns is written once, as one Parquet table (`__row` + the
  new columns) under the hash of their fingerprints.
Spark starts only when some block of the unit has work to do.

A failure belongs to one block (`fail_block`): a source whose ingest fails stops the unit
(everything else needs it); an aggregate or transformed column that fails is left out and
the unit goes on with every block that does not need it. Custom transformers run once in
the driver on a sample first, so that a broken one is found with its real traceback before
the wave's Spark job; one that fails on the workers is left out and the wave written again.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from mlp.config import blocks as B
from mlp.engine.context import RunContext, commit_meta, value_digest, write_meta
from mlp.engine.events import Status
from mlp.engine.scheduler import fail_block
from mlp.engine.units import Unit
from mlp.errors import MlpError, StateError, UserCodeError
from mlp.graph.address import Address, Kind
from mlp.plan.model import Action
from mlp.state.backend import artifact_key

if TYPE_CHECKING:
    from runtime.transforms import TransformJob

ROW = "__row"


def run_data_unit(ctx: RunContext, unit: Unit) -> None:
    todo = [a for a in unit.blocks if ctx.action(a) in (Action.CREATE, Action.REBUILD, Action.UPDATE)]
    for a in unit.blocks:
        if ctx.action(a) is Action.REUSE:
            ctx.reuse(a)
    if not todo:
        return
    src = unit.blocks[0]
    frame = _Frame(ctx, src)
    source_todo = src in todo and ctx.needs_work(src)
    if source_todo:
        if not _attempt(ctx, src, frame.ingest):
            return  # every other block of the unit needs the source: the scheduler skips them
    else:
        for a in todo:
            if a.kind is Kind.RAW_COLUMN:
                _attempt(ctx, a, partial(_raw_carry_or_point, ctx, a, frame))
    rest = [a for a in todo if a.kind in (Kind.AGGREGATE, Kind.TRANSFORMED_COLUMN) and str(a) not in ctx.records]
    _waves(ctx, frame, rest)


def _attempt(ctx: RunContext, addr: Address, step: Callable[[], None]) -> bool:
    """Run one block's step; a failure is reported on that block (a StateError is the
    backend's, not the block's: it stops the apply)."""
    start = time.monotonic()
    try:
        step()
        return True
    except StateError:
        raise
    except Exception as e:  # noqa: BLE001 - one block's failure must not hide the others' work
        fail_block(ctx, addr, e, time.monotonic() - start)
        return False


def _raw_carry_or_point(ctx: RunContext, a: Address, frame: _Frame) -> None:
    """A raw column whose source did not need work: carry over, or point at the table."""
    if str(a) in ctx.records or not ctx.needs_work(a):
        return
    src_meta = ctx.meta(frame.src)
    frame.record_raw(a, src_meta)


class _Frame:
    """The source's rows as a Spark DataFrame, with columns loaded as they are needed."""

    def __init__(self, ctx: RunContext, src: Address) -> None:
        self.ctx, self.src = ctx, src
        self._df: Any = None
        self.columns: set[str] = set()

    @property
    def spark(self) -> Any:
        return self.ctx.provider.data_session(str(self.ctx.backend.logs().path("spark")))

    @property
    def df(self) -> Any:
        if self._df is None:
            rec = self.ctx.current(self.src)
            key = (rec.artifact if rec else None) or self.ctx.key(self.src)
            self._df = self.spark.read.parquet(str(self.ctx.store.local_path(key) / "table"))
            self.columns = set(self._df.columns)
        return self._df

    def ingest(self) -> None:
        from pyspark.sql import functions as F

        from runtime.ingest import ingest

        ctx, app = self.ctx, self.ctx.analysis.app
        source = app.blocks[self.src]
        assert isinstance(source, B.Source)
        raws = [c for c in app.blocks.values() if isinstance(c, B.RawColumn) and c.source == self.src]
        start = time.monotonic()
        ctx.hooks.block(_running(self.src))
        ctx.log(self.src, f"ingest {source.format} {source.path} ({len(raws)} raw columns)")
        readable = ctx.provider.source_path(source.path, app)
        if readable != source.path:  # object storage, staged where the session reads it
            ctx.log(self.src, f"read from {readable}", echo=False)
            source = replace(source, path=readable)
        res = ingest(self.spark, source, sorted(raws, key=lambda c: c.name), app.dir, ctx.analysis.sample)
        key = ctx.key(self.src)
        tmp = ctx.store.temp_dir(key)
        res.df.withColumn(ROW, F.monotonically_increasing_id()).write.parquet(str(tmp / "table"))
        if res.hashes is not None:  # counted in the ingest job itself
            digests = {n: _digest(h, c) for n, (h, c) in res.hashes.items()}
        else:
            digests = column_digests(self.spark.read.parquet(str(tmp / "table")), [c.name for c in raws])
        samples = [_jsonable(r) for r in res.sample_rows(3)]
        meta: dict[str, Any] = {"metrics": {"rows": res.rows_kept, "rows_read": res.rows_read,
                            "violations": {k: dict(v) for k, v in res.violations.items()},
                            **({"malformed": res.malformed} if res.malformed else {}),
                            **({"dropped": {k: dict(v) for k, v in res.dropped.items()}} if res.dropped else {})},
                "digest": value_digest(digests), "columns": digests, "samples": samples}
        write_meta(tmp, meta)
        ctx.store.commit(key, tmp)
        self._df = None
        secs = time.monotonic() - start
        pool = res.rows_read - res.rows_dropped  # rows that passed the checks
        info = f"{res.rows_kept} rows, {len(raws)} raw column{'s' if len(raws) != 1 else ''}" + (
            f" (sampled from {pool})" if res.rows_kept < pool else "") + (
            f" ({res.rows_dropped} dropped: {'; '.join(res.drop_reasons)})" if res.rows_dropped else "")
        for line in (*(f"dropped: {r}" for r in res.drop_reasons), *(f"sample: {s}" for s in samples)):
            ctx.log(self.src, line)  # the log, and the terminal with -v
        ctx.record(self.src, key, meta["metrics"], meta["digest"], seconds=secs, info=info)
        for rc in raws:
            if rc.address in ctx.analysis.fingerprints and ctx.action(rc.address) is not Action.REUSE:
                self.record_raw(rc.address, meta)

    def record_raw(self, a: Address, src_meta: dict[str, Any]) -> None:
        ctx = self.ctx
        if ctx.action(a) in (Action.NOOP, Action.REUSE) or str(a) in ctx.records:
            return
        digest = src_meta.get("columns", {}).get(a.name)
        src_rec = ctx.current(self.src)
        meta: dict[str, Any] = {"metrics": {"rows": src_meta.get("metrics", {}).get("rows"),
                            "violations": src_meta.get("metrics", {}).get("violations", {}).get(a.name, {})},
                "digest": digest, "table": src_rec.artifact if src_rec else ctx.key(self.src), "column": a.name}
        commit_meta(ctx.store, ctx.key(a), meta)
        ctx.record(a, ctx.key(a), meta["metrics"], digest, info=f"{meta['metrics']['rows']} rows")

    def reset(self) -> None:
        """Forget joined columns: later waves read what they need from the stored tables."""
        self._df = None
        self.columns = set()

    def ensure(self, names: list[str]) -> Any:
        """The frame with every named column present, joining stored transformed columns."""
        df = self.df
        for name in names:
            if name in self.columns:
                continue
            addr = Address.of(Kind.TRANSFORMED_COLUMN, name)
            meta = self.ctx.meta(addr)
            table = self.ctx.store.local_path(meta["table"]) / "table"
            part = self.spark.read.parquet(str(table)).select(ROW, name)
            df = df.join(part, on=ROW, how="left")
            self.columns.add(name)
        self._df = df
        return df


def _running(addr: Address) -> Any:
    from mlp.engine.events import BlockEvent

    return BlockEvent(str(addr), Status.RUNNING)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v)) for k, v in row.items()}


def column_digests(df: Any, names: list[str]) -> dict[str, str]:
    """A content digest per column, order-independent, in one Spark job."""
    from pyspark.sql import functions as F

    if not names:
        return {}
    exprs = []
    for n in names:
        exprs.append(F.sum(F.xxhash64(F.col(f"`{n}`")).cast("decimal(38,0)")).alias(f"h_{n}"))
        exprs.append(F.count(F.col(f"`{n}`")).alias(f"c_{n}"))
    row = df.agg(*exprs).collect()[0].asDict()
    return {n: _digest(row[f"h_{n}"], row[f"c_{n}"]) for n in names}


def _digest(hash_sum: Any, count: Any) -> str:
    """A column's digest from the sum of its values' xxhash64 and its count of non-nulls."""
    return hashlib.sha256(f"{int(hash_sum or 0)}:{int(count or 0)}".encode()).hexdigest()


def _waves(ctx: RunContext, frame: _Frame, rest: list[Address]) -> None:
    """Aggregates and transforms in dependency waves: each wave's aggregates in one job,
    then each wave's transforms in one pass and one table. A block is tried once; what
    needs a block that failed is left for the scheduler to report as skipped."""
    remaining = [a for a in rest if ctx.needs_work(a)]
    tried: set[Address] = set()
    while remaining := _runnable(ctx, remaining, tried):
        ready = [a for a in remaining if all(_available(ctx, d) for d in ctx.analysis.graph.deps[a]
                                             if d.kind in (Kind.AGGREGATE, Kind.TRANSFORMED_COLUMN))]
        if not ready:
            missing = ", ".join(str(a) for a in remaining)
            raise RuntimeError(f"cannot order {missing}: inputs never became available")
        aggs = [a for a in ready if a.kind is Kind.AGGREGATE]
        wave = aggs or [a for a in ready if a.kind is Kind.TRANSFORMED_COLUMN]
        tried.update(wave)
        _run_wave(ctx, frame, wave, _aggregate if aggs else _transform)


def _runnable(ctx: RunContext, remaining: list[Address], tried: set[Address]) -> list[Address]:
    """The blocks still to try: not tried yet, and needing no block that failed or was
    tried without being built (`remaining` is in dependency order)."""
    lost = {str(a) for a in tried if str(a) not in ctx.records} | set(ctx.failed)
    out = []
    for a in remaining:
        if a in tried or str(a) in ctx.records:
            continue
        if any(str(d) in lost for d in ctx.analysis.graph.deps[a]):
            lost.add(str(a))
            continue
        out.append(a)
    return out


def _run_wave(ctx: RunContext, frame: _Frame, wave: list[Address],
              step: Callable[[RunContext, _Frame, list[Address]], None]) -> None:
    """One wave; an unexpected failure of its shared Spark job is reported once, on its
    first block left undone (the others are skipped because of it)."""
    start = time.monotonic()
    try:
        step(ctx, frame, wave)
    except StateError:
        raise
    except Exception as e:  # noqa: BLE001 - reported on one block; the unit goes on
        blame = next((a for a in wave if str(a) not in ctx.records and str(a) not in ctx.failed), None)
        if blame is not None:
            fail_block(ctx, blame, e, time.monotonic() - start)
        frame.reset()


def _available(ctx: RunContext, addr: Address) -> bool:
    return str(addr) in ctx.records or ctx.action(addr) is Action.NOOP


def _custom_path(ctx: RunContext, ref: Address | None) -> Path | None:
    if ref is None:
        return None
    code = ctx.analysis.app.blocks[ref]
    assert isinstance(code, B.CustomCode)
    return ctx.analysis.app.dir / code.path


def _aggregate(ctx: RunContext, frame: _Frame, addrs: list[Address]) -> None:
    from runtime.aggregates import AggJob, compute_each

    start = time.monotonic()
    jobs = []
    for a in addrs:
        cfg = ctx.cfg(a)
        assert isinstance(cfg, B.Aggregate)
        ctx.hooks.block(_running(a))
        jobs.append(AggJob(a.name, cfg.aggregator, {k: v.name for k, v in cfg.inputs.items()},
                           dict(ctx.analysis.fingerprints[a].settings.get("args", {})),
                           _custom_path(ctx, cfg.custom),
                           ctx.analysis.checked.types.aggregates[a]))  # type-checked: always known
    cols = sorted({v.name for a in addrs for v in ctx.cfg(a).inputs.values()})  # type: ignore[attr-defined]
    res = compute_each(frame.spark, frame.ensure(cols), jobs)
    secs = (time.monotonic() - start) / max(len(addrs), 1)
    for a in addrs:
        if a.name in res.errors:
            fail_block(ctx, a, res.errors[a.name], secs)
            continue
        value = res.values[a.name]
        meta: dict[str, Any] = {"metrics": {"value": value}, "digest": value_digest(value)}
        commit_meta(ctx.store, ctx.key(a), meta)
        shown = repr(value) if len(repr(value)) < 200 else repr(value)[:197] + "..."
        ctx.log(a, f"value = {shown}", echo=False)
        ctx.record(a, ctx.key(a), meta["metrics"], meta["digest"], seconds=secs, info=f"= {shown}")


def transform_job(ctx: RunContext, a: Address) -> Any:
    from runtime.transforms import InputRef, TransformJob

    cfg = ctx.cfg(a)
    assert isinstance(cfg, B.TransformedColumn)
    inputs = {slot: InputRef("aggregate" if ref.kind is Kind.AGGREGATE else "column", ref.name)
              for slot, ref in cfg.inputs.items()}
    info = ctx.analysis.checked.types.columns[a]
    args = dict(ctx.analysis.fingerprints[a].settings.get("args", {}))
    return TransformJob(a.name, cfg.transformer, inputs, args, _custom_path(ctx, cfg.custom), info.type)


def agg_values(ctx: RunContext, addrs: list[Address]) -> dict[str, Any]:
    return {a.name: ctx.meta(a).get("metrics", {}).get("value") for a in addrs}


def _transform(ctx: RunContext, frame: _Frame, addrs: list[Address]) -> None:
    from runtime.transforms import build_columns

    start = time.monotonic()
    jobs = {a: transform_job(ctx, a) for a in addrs}
    for a in addrs:
        ctx.hooks.block(_running(a))
    col_inputs = sorted({r.name for a in addrs for r in ctx.cfg(a).inputs.values()  # type: ignore[attr-defined]
                         if r.kind is not Kind.AGGREGATE and r not in addrs})
    aggs = sorted({r for a in addrs for r in ctx.cfg(a).inputs.values() if r.kind is Kind.AGGREGATE})  # type: ignore[attr-defined]
    base = frame.ensure(col_inputs)
    values = agg_values(ctx, aggs)
    _precheck(ctx, base, jobs, values)
    while jobs:
        out, errors = build_columns(base, list(jobs.values()), values)
        for a in [a for a, job in jobs.items() if job.name in errors]:
            fail_block(ctx, a, errors[jobs.pop(a).name])
        try:
            if jobs:
                _write_wave(ctx, frame, out, list(jobs), start)
            break
        except UserCodeError as e:  # raised on a worker, for one job: leave it out, write the others
            failing = next((a for a, job in jobs.items() if job.block == e.block), None)
            if failing is None:
                raise
            fail_block(ctx, failing, e, time.monotonic() - start)
            del jobs[failing]
    frame.reset()


def _precheck(ctx: RunContext, base: Any, jobs: dict[Address, TransformJob], values: dict[str, Any]) -> None:
    """Run each custom transformer in the driver on a sample of its inputs; one that fails
    is reported and left out of the wave."""
    from runtime.transforms import precheck, sample_inputs

    custom = {a: job for a, job in jobs.items() if job.custom_path is not None}
    if not custom:
        return
    sample = sample_inputs(base, list(custom.values()))
    for a, job in custom.items():
        try:
            precheck(sample, job, values)
        except MlpError as e:
            fail_block(ctx, a, e)
            del jobs[a]


def _write_wave(ctx: RunContext, frame: _Frame, out: Any, addrs: list[Address], start: float) -> None:
    """Write the wave's columns as one table and record each of its blocks."""
    from runtime.transforms import worker_errors

    names = [a.name for a in addrs]
    batch = hashlib.sha256("".join(sorted(ctx.fp(a) for a in addrs)).encode()).hexdigest()
    key = artifact_key(batch)
    tmp = ctx.store.temp_dir(key)
    before_cols = sorted({c for a in addrs for c in _input_cols(ctx, a)} - set(names))
    with worker_errors():
        out.select(ROW, *names).write.parquet(str(tmp / "table"))
        sample = out.select(*before_cols, *names).limit(3).collect()
    written = frame.spark.read.parquet(str(tmp / "table"))
    digests = column_digests(written, names)
    rows = ctx.meta(frame.src).get("metrics", {}).get("rows")
    write_meta(tmp, {"columns": names, "digests": digests})
    ctx.store.commit(key, tmp)
    secs = (time.monotonic() - start) / max(len(addrs), 1)
    for a in addrs:
        ins = _input_cols(ctx, a)
        lines = tuple(f"{ {c: r[c] for c in ins} } -> {a.name}={r[a.name]!r}" for r in sample)
        meta: dict[str, Any] = {"metrics": {"rows": rows}, "digest": digests[a.name], "table": key, "column": a.name,
                "samples": [str(x) for x in lines]}
        commit_meta(ctx.store, ctx.key(a), meta)
        for line in lines:
            ctx.log(a, "sample: " + line)  # the log, and the terminal with -v
        ctx.record(a, ctx.key(a), meta["metrics"], digests[a.name], seconds=secs, info="transformed")


def _input_cols(ctx: RunContext, a: Address) -> list[str]:
    cfg = ctx.cfg(a)
    return sorted(r.name for r in cfg.inputs.values() if r.kind is not Kind.AGGREGATE)  # type: ignore[attr-defined]

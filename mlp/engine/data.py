"""The data unit of one source: ingest, aggregates and transformed columns, in Spark.

Artifacts (each under its block's fingerprint):
- source: `table/` (Parquet: `__row` + one column per raw column) and meta.json with
  row counts, violation counts and per-column digests;
- raw column / transformed column: meta.json naming the table that holds the column;
- aggregate: meta.json with the value;
- a wave of transformed columns is written once, as one Parquet table (`__row` + the
  new columns) under the hash of their fingerprints.
Spark starts only when some block of the unit has work to do.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from mlp.config import blocks as B
from mlp.engine.context import RunContext, commit_meta, value_digest, write_meta
from mlp.engine.events import Status
from mlp.engine.units import Unit
from mlp.graph.address import Address, Kind
from mlp.plan.model import Action
from mlp.state.backend import artifact_key

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
        frame.ingest()
    else:
        for a in todo:
            if a.kind is Kind.RAW_COLUMN:
                _raw_carry_or_point(ctx, a, frame)
    rest = [a for a in todo if a.kind in (Kind.AGGREGATE, Kind.TRANSFORMED_COLUMN) and str(a) not in ctx.records]
    _waves(ctx, frame, rest)


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
        from runtime.sparkenv import get_spark

        master = str(self.ctx.analysis.app.provider.settings.get("spark_master", "local[*]"))
        return get_spark(master, self.ctx.backend.logs().path("spark"))

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
                            **({"malformed": res.malformed} if res.malformed else {})},
                "digest": value_digest(digests), "columns": digests, "samples": samples}
        write_meta(tmp, meta)
        ctx.store.commit(key, tmp)
        self._df = None
        secs = time.monotonic() - start
        dropped = res.rows_read - res.rows_kept
        info = f"{res.rows_kept} rows" + (f" ({dropped} dropped)" if dropped else "")
        details = tuple(f"sample: {s}" for s in samples)
        for line in details:
            ctx.log(self.src, line, echo=False)
        ctx.record(self.src, key, meta["metrics"], meta["digest"], seconds=secs, info=info, details=details)
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
    then each wave's transforms in one pass and one table."""
    remaining = [a for a in rest if ctx.needs_work(a)]
    while remaining:
        ready = [a for a in remaining if all(_available(ctx, d) for d in ctx.analysis.graph.deps[a]
                                             if d.kind in (Kind.AGGREGATE, Kind.TRANSFORMED_COLUMN))]
        if not ready:
            missing = ", ".join(str(a) for a in remaining)
            raise RuntimeError(f"cannot order {missing}: inputs never became available")
        aggs = [a for a in ready if a.kind is Kind.AGGREGATE]
        if aggs:
            _aggregate(ctx, frame, aggs)
        else:
            _transform(ctx, frame, [a for a in ready if a.kind is Kind.TRANSFORMED_COLUMN])
        remaining = [a for a in remaining if str(a) not in ctx.records]


def _available(ctx: RunContext, addr: Address) -> bool:
    return str(addr) in ctx.records or ctx.action(addr) is Action.NOOP


def _custom_path(ctx: RunContext, ref: Address | None) -> Path | None:
    if ref is None:
        return None
    code = ctx.analysis.app.blocks[ref]
    assert isinstance(code, B.CustomCode)
    return ctx.analysis.app.dir / code.path


def _aggregate(ctx: RunContext, frame: _Frame, addrs: list[Address]) -> None:
    from runtime.aggregates import AggJob, compute_aggregates

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
    values = compute_aggregates(frame.spark, frame.ensure(cols), jobs)
    secs = (time.monotonic() - start) / max(len(addrs), 1)
    for a in addrs:
        value = values[a.name]
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
    from runtime.transforms import apply_transforms

    start = time.monotonic()
    jobs = [transform_job(ctx, a) for a in addrs]
    for a in addrs:
        ctx.hooks.block(_running(a))
    col_inputs = sorted({r.name for a in addrs for r in ctx.cfg(a).inputs.values()  # type: ignore[attr-defined]
                         if r.kind is not Kind.AGGREGATE and r not in addrs})
    aggs = sorted({r for a in addrs for r in ctx.cfg(a).inputs.values() if r.kind is Kind.AGGREGATE})  # type: ignore[attr-defined]
    base = frame.ensure(col_inputs)
    out = apply_transforms(base, jobs, agg_values(ctx, aggs))
    names = [a.name for a in addrs]
    batch = hashlib.sha256("".join(sorted(ctx.fp(a) for a in addrs)).encode()).hexdigest()
    key = artifact_key(batch)
    tmp = ctx.store.temp_dir(key)
    out.select(ROW, *names).write.parquet(str(tmp / "table"))
    written = frame.spark.read.parquet(str(tmp / "table"))
    digests = column_digests(written, names)
    before_cols = sorted({c for a in addrs for c in _input_cols(ctx, a)} - set(names))
    sample = out.select(*before_cols, *names).limit(3).collect()
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
            ctx.log(a, "sample: " + line, echo=False)
        ctx.record(a, ctx.key(a), meta["metrics"], digests[a.name], seconds=secs,
                   info="transformed", details=lines)
    frame.reset()


def _input_cols(ctx: RunContext, a: Address) -> list[str]:
    cfg = ctx.cfg(a)
    return sorted(r.name for r in cfg.inputs.values() if r.kind is not Kind.AGGREGATE)  # type: ignore[attr-defined]

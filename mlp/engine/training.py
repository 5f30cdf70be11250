"""The model unit: assemble the training table, train in a child process, export a bundle.

TensorFlow is never imported here: the engine builds a `runtime.jobs.TrainJob` and the
provider runs it (the local one as `python -m runtime.train SPEC`, streaming its progress to
the model's log and the hooks). The job names the stored tables that hold the model's
columns (`runtime.jobs.TableRef`), and the job joins them on `__row` where it runs
(`runtime.tables`): the engine never starts Spark for a model, and nothing is stored but the
tables the data units wrote.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlp.config import blocks as B
from mlp.engine.context import RunContext, write_meta
from mlp.engine.events import BlockEvent, Status
from mlp.engine.units import Unit
from mlp.errors import ApplyError
from mlp.graph.address import Address
from mlp.plan.model import Action

if TYPE_CHECKING:
    from runtime.jobs import Column, TableRef, TrainJob

ROW = "__row"


def run_model_unit(ctx: RunContext, unit: Unit) -> None:
    addr = unit.blocks[0]
    act = ctx.action(addr)
    if act is Action.REUSE:
        ctx.reuse(addr)
        return
    if act is Action.UPDATE:  # only settings outside the fingerprint (compute): never retrain
        _update_in_place(ctx, addr)
        return
    if act is Action.NOOP or not ctx.needs_work(addr):
        return
    if unit.kind == "model_column":
        _model_column(ctx, addr)
    else:
        _train(ctx, addr)


def _update_in_place(ctx: RunContext, addr: Address) -> None:
    """Record the new settings outside the fingerprint; the trained model stays as it is."""
    rec = ctx.current(addr)
    if rec is None or rec.artifact is None:
        raise ApplyError(f"{addr}: there is no trained model to update", "", "Run `mlp apply` again.")
    change = ctx.change(addr)
    ctx.record(addr, rec.artifact, dict(rec.metrics), rec.digest,
               info="updated in place: " + "; ".join(change.details if change else ()))


def _table_of(ctx: RunContext, col: Address) -> str:
    """The artifact key of the Parquet table that holds a column."""
    cfg = ctx.cfg(col)
    if isinstance(cfg, B.RawColumn):
        assert cfg.source is not None
        rec = ctx.current(cfg.source)
        return rec.artifact if rec and rec.artifact else ctx.key(cfg.source)
    if isinstance(cfg, B.TransformedColumn) and cfg.model is not None:
        rec = ctx.current(col)
        return rec.artifact if rec and rec.artifact else ctx.key(col)
    return str(ctx.meta(col)["table"])


def dataset(ctx: RunContext, cols: list[Address]) -> tuple[TableRef, ...]:
    """The stored tables holding the columns, each with the columns taken from it (in the
    order given), sorted by artifact key: the job joins them on `__row` (`runtime.tables`)."""
    from runtime.jobs import TableRef, file_uri

    by_table: dict[str, list[str]] = {}
    for c in cols:
        by_table.setdefault(_table_of(ctx, c), []).append(c.name)
    return tuple(TableRef(file_uri(ctx.store.local_path(key) / "table"), tuple(names))
                 for key, names in sorted(by_table.items()))


def _categories(ctx: RunContext, col: Address) -> int | None:
    cfg = ctx.cfg(col)
    if isinstance(cfg, B.TransformedColumn):
        if cfg.model is not None:
            rec = ctx.current(cfg.model)
            labels = (rec.metrics.get("labels") if rec else None) or []
            return len(labels) or None
        name = cfg.transformer
        if name == "index_string":
            vocab = ctx.meta(cfg.inputs["vocabulary"]).get("metrics", {}).get("value") or []
            return len(vocab) + 1
        if name == "bucketize":
            b = cfg.inputs.get("boundaries")
            bounds = ctx.meta(b).get("metrics", {}).get("value") if b else cfg.args.get("boundaries")
            return len(bounds or []) + 1
        if name == "hash_bucket":
            return int(cfg.args["num_buckets"])
    return None


def column_spec(ctx: RunContext, col: Address) -> Column:
    from runtime.jobs import Column

    info = ctx.analysis.checked.types.columns[col]
    return Column(col.name, info.type, info.categorical, _categories(ctx, col) if info.categorical else None)


def train_job(ctx: RunContext, addr: Address, data: tuple[TableRef, ...], out_dir: Path) -> TrainJob:
    """The model's training as data: what the provider runs, here or on a cluster."""
    from runtime.jobs import Training, TrainJob, file_uri

    cfg = ctx.cfg(addr)
    assert isinstance(cfg, B.Model) and cfg.target is not None
    settings = ctx.analysis.fingerprints[addr].settings
    custom = file_uri(ctx.analysis.app.dir / _code(ctx, cfg.custom).path) if cfg.custom else None
    return TrainJob(
        model=str(addr), fingerprint=ctx.fp(addr), classification=cfg.type == "classification",
        estimator=None if cfg.custom else cfg.estimator, custom_path=custom,
        features=tuple(column_spec(ctx, f) for f in cfg.features), target=column_spec(ctx, cfg.target),
        hparams=dict(settings["hparams"]), training=Training.from_json(dict(settings["training"])),
        balance=cfg.balance, data=data, out_dir=file_uri(out_dir),
        tensorboard_dir=file_uri(tensorboard_dir(ctx, addr)),
        # features a normalize or min_max_scale made: the guardrails never say to normalize them
        scaled_features=tuple(sorted(f.name for f in cfg.features
                                     if getattr(ctx.cfg(f), "transformer", "") in ("normalize", "min_max_scale"))))


def _train(ctx: RunContext, addr: Address) -> None:
    cfg = ctx.cfg(addr)
    assert isinstance(cfg, B.Model) and cfg.target is not None
    start = time.monotonic()
    ctx.hooks.block(BlockEvent(str(addr), Status.RUNNING))
    data = dataset(ctx, list(cfg.features) + [cfg.target])
    key = ctx.key(addr)
    tmp = ctx.store.temp_dir(key)
    result = ctx.provider.train(train_job(ctx, addr, data, tmp), ctx.job_log(addr))
    from mlp.engine.bundle import build_bundle

    build_bundle(ctx, addr, tmp, result.labels, result.metrics)
    history = [dict(h) for h in result.history]
    warnings = [dict(w) for w in result.warnings]
    evals = dict(result.metrics)
    metrics: dict[str, Any] = {"eval": evals, "train": dict(result.train_metrics),
                               "labels": list(result.labels) if result.labels is not None else None,
                               "rows": dict(result.rows), "warnings": warnings, "epochs": len(history),
                               "best_epoch": best_epoch(history)}
    write_meta(tmp, {"metrics": metrics, "digest": None})
    ctx.store.commit(key, tmp)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(evals.items()) if isinstance(v, (int, float)))
    ctx.record(addr, key, metrics, None, seconds=time.monotonic() - start, info=shown,
               details=tuple(f"warning: {w.get('message')} Fix: {w.get('fix')}" for w in warnings))


def tensorboard_dir(ctx: RunContext, addr: Address) -> Path:
    """This run's TensorBoard events: `<logs>/tensorboard/<model>/<UTC time>/{train,validation}`,
    so `tensorboard --logdir .mlp/logs/tensorboard` draws every run of every model."""
    return ctx.log_path(addr).parent / "tensorboard" / str(addr) / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def best_epoch(history: list[dict[str, Any]]) -> int | None:
    """The epoch of the lowest evaluation loss (the weights early stopping keeps)."""
    scored = [(h["val_loss"], int(h["epoch"])) for h in history
              if isinstance(h, dict) and isinstance(h.get("val_loss"), (int, float)) and "epoch" in h]
    return min(scored)[1] if scored else None


def _code(ctx: RunContext, ref: Address | None) -> B.CustomCode:
    assert ref is not None
    code = ctx.analysis.app.blocks[ref]
    assert isinstance(code, B.CustomCode)
    return code


def _model_column(ctx: RunContext, addr: Address) -> None:
    cfg = ctx.cfg(addr)
    assert isinstance(cfg, B.TransformedColumn) and cfg.model is not None
    start = time.monotonic()
    ctx.hooks.block(BlockEvent(str(addr), Status.RUNNING))
    model = ctx.cfg(cfg.model)
    assert isinstance(model, B.Model)
    model_rec = ctx.current(cfg.model)
    if model_rec is None or model_rec.artifact is None:
        raise ApplyError(f"{addr}: model {cfg.model} has not been built")
    data = dataset(ctx, list(model.features))
    key = ctx.key(addr)
    tmp = ctx.store.temp_dir(key)
    bundle = ctx.store.local_path(model_rec.artifact)
    from runtime.jobs import PredictJob

    ctx.provider.predict(PredictJob(str(bundle), data, addr.name, str(tmp / "full")), ctx.job_log(addr))
    _keep_columns(tmp / "full", tmp / "table", [ROW, addr.name])
    shutil.rmtree(tmp / "full", ignore_errors=True)
    commit_meta_dir: dict[str, Any] = {"metrics": {"model": str(cfg.model)}, "digest": None, "table": key, "column": addr.name}
    write_meta(tmp, commit_meta_dir)
    ctx.store.commit(key, tmp)
    ctx.record(addr, key, commit_meta_dir["metrics"], None, seconds=time.monotonic() - start,
               info=f"predictions of {cfg.model}")


def _keep_columns(src: Path, dest: Path, names: list[str]) -> None:
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    dest.mkdir(parents=True, exist_ok=True)
    table = ds.dataset(str(src), format="parquet").to_table(columns=names)
    # Spark trusts the schema kept in a Parquet footer's metadata over the file's own
    # columns: drop what was copied over from the wider input.
    pq.write_table(table.replace_schema_metadata(None), str(dest / "part-00000.parquet"))


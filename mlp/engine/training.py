"""The model unit: assemble the training table, train in a child process, export a bundle.

TensorFlow is never imported here: training runs as `python -m runtime.train SPEC`, whose
JSON-lines progress is streamed to the hooks and the model's log. The training table is
read straight from the stored Parquet when one table holds every column; otherwise the
columns are joined on `__row` in Spark once and stored, so a hyperparameter change never
touches Spark again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mlp.config import blocks as B
from mlp.engine.context import RunContext, write_meta
from mlp.engine.events import BlockEvent, Status
from mlp.engine.units import Unit
from mlp.errors import ApplyError
from mlp.graph.address import Address
from mlp.plan.model import Action
from mlp.state.backend import artifact_key

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


def dataset(ctx: RunContext, cols: list[Address], log_to: Address) -> Path:
    """A Parquet folder holding every column (and __row)."""
    tables = sorted({_table_of(ctx, c) for c in cols})
    if len(tables) == 1:
        return ctx.store.local_path(tables[0]) / "table"
    key = artifact_key(hashlib.sha256(("dataset:" + ",".join(sorted(ctx.fp(c) for c in cols))).encode()).hexdigest())
    if not ctx.store.has(key):
        from runtime.sparkenv import get_spark

        master = str(ctx.analysis.app.provider.settings.get("spark_master", "local[*]"))
        spark = get_spark(master, ctx.backend.logs().path("spark"))
        ctx.log(log_to, f"joining {len(cols)} columns from {len(tables)} tables (Spark)")
        by_table: dict[str, list[str]] = {}
        for c in cols:
            by_table.setdefault(_table_of(ctx, c), []).append(c.name)
        df = None
        for t, names in sorted(by_table.items()):
            part = spark.read.parquet(str(ctx.store.local_path(t) / "table")).select(ROW, *names)
            df = part if df is None else df.join(part, on=ROW, how="inner")
        tmp = ctx.store.temp_dir(key)
        assert df is not None
        df.write.parquet(str(tmp / "table"))
        write_meta(tmp, {"columns": [c.name for c in cols]})
        ctx.store.commit(key, tmp)
    return ctx.store.local_path(key) / "table"


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


def column_spec(ctx: RunContext, col: Address) -> dict[str, Any]:
    info = ctx.analysis.checked.types.columns[col]
    return {"name": col.name, "type": info.type.value, "categorical": info.categorical,
            "categories": _categories(ctx, col) if info.categorical else None}


def _train(ctx: RunContext, addr: Address) -> None:
    cfg = ctx.cfg(addr)
    assert isinstance(cfg, B.Model) and cfg.target is not None
    start = time.monotonic()
    ctx.hooks.block(BlockEvent(str(addr), Status.RUNNING))
    data = dataset(ctx, list(cfg.features) + [cfg.target], addr)
    key = ctx.key(addr)
    tmp = ctx.store.temp_dir(key)
    settings = ctx.analysis.fingerprints[addr].settings
    spec = {"model": str(addr), "fingerprint": ctx.fp(addr), "type": cfg.type,
            "estimator": None if cfg.custom else cfg.estimator,
            "custom_path": str((ctx.analysis.app.dir / _code(ctx, cfg.custom).path).resolve()) if cfg.custom else None,
            "features": [column_spec(ctx, f) for f in cfg.features], "target": column_spec(ctx, cfg.target),
            "hparams": dict(settings["hparams"]), "training": dict(settings["training"]),
            "balance": cfg.balance, "data": str(data), "out_dir": str(tmp),
            "tensorboard_dir": str(tensorboard_dir(ctx, addr)),
            # features a normalize or min_max_scale made: the guardrails never say to normalize them
            "scaled_features": sorted(f.name for f in cfg.features
                                      if getattr(ctx.cfg(f), "transformer", "") in ("normalize", "min_max_scale"))}
    (tmp / "spec.json").write_text(json.dumps(spec, indent=1))
    run_trainer(ctx, addr, [str(tmp / "spec.json")])
    result = dict(json.loads((tmp / "result.json").read_text()))
    from mlp.engine.bundle import build_bundle

    build_bundle(ctx, addr, tmp, result)
    metrics = {"eval": result.get("metrics", {}), "train": result.get("train_metrics", {}),
               "labels": result.get("labels"), "rows": result.get("rows", {}),
               "warnings": result.get("warnings", []), "epochs": len(result.get("history", [])),
               "best_epoch": best_epoch(result.get("history", []))}
    write_meta(tmp, {"metrics": metrics, "digest": None})
    ctx.store.commit(key, tmp)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics["eval"].items()) if isinstance(v, (int, float)))
    ctx.record(addr, key, metrics, None, seconds=time.monotonic() - start, info=shown,
               details=tuple(f"warning: {w.get('message')} Fix: {w.get('fix')}" for w in metrics["warnings"]))


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


def run_trainer(ctx: RunContext, addr: Address, args: list[str]) -> dict[str, Any]:
    """Run the trainer in a child process, streaming its events; return its `done` event."""
    cmd = [sys.executable, "-m", "runtime.train", *args]
    ctx.log(addr, "train: " + " ".join(cmd[2:]), echo=False)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(ctx.log_path(addr), "a"),
                            text=True, cwd=str(Path(__file__).resolve().parents[2]))
    error: dict[str, Any] = {}
    done: dict[str, Any] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        ev = _event(line)
        if ev is None:
            ctx.log(addr, line.rstrip(), echo=False)
            continue
        kind = ev.get("event")
        if kind == "epoch":
            ctx.log(addr, _epoch_line(ev))
        elif kind == "warning":
            ctx.log(addr, f"warning: {ev.get('message')} Fix: {ev.get('fix')}")
        elif kind == "error":
            error = ev
        elif kind == "done":
            done = ev
        else:
            ctx.log(addr, json.dumps(ev), echo=False)
    code = proc.wait()
    if code != 0:
        msg = error.get("message") or f"the trainer exited with code {code}"
        raise ApplyError(f"{addr}: {msg}", f"See the log: mlp logs {addr}", str(error.get("hint", "")))
    return done


def _event(line: str) -> dict[str, Any] | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        ev = json.loads(line)
    except ValueError:
        return None
    return ev if isinstance(ev, dict) else None


def _epoch_line(ev: dict[str, Any]) -> str:
    parts = [f"epoch {ev.get('epoch')}/{ev.get('epochs')}"]
    for k in ("loss", "val_loss"):
        if isinstance(ev.get(k), (int, float)):
            parts.append(f"{k} {ev[k]:.4f}")
    for k, v in sorted((ev.get("metrics") or {}).items()):
        if isinstance(v, (int, float)):
            parts.append(f"{k} {v:.4f}")
    return "  ".join(parts)


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
    data = dataset(ctx, list(model.features), addr)
    key = ctx.key(addr)
    tmp = ctx.store.temp_dir(key)
    bundle = ctx.store.local_path(model_rec.artifact)
    run_trainer(ctx, addr, ["--predict", str(bundle), str(data), addr.name, str(tmp / "full")])
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


"""The rollout gate: the serving model and a retrained one, scored on the same rows.

    python -m runtime.gate SPEC_JSON      -> one JSON line: {"metric", "old", "new", "rows"}

Before an api moves to a retrained model, both are evaluated on the retrained model's
evaluation split (as TFX's Evaluator blesses a model before it is pushed). The rows are the
ones the trainer held out (`runtime.tfdata.uniform`, the same seed and split), at most
`max_rows` of them, in order. Each model is called the way the API calls it: its bundle's
`Predictor` takes the rows' raw values, applies its own transforms with its own aggregate
values, and calls its SavedModel's signature. So the comparison holds even when the two
models use different features. The main metric is accuracy (classification) or R²
(regression).

SPEC: a `runtime.jobs.GateJob`: the two bundles, "dataset" (the new model's training
tables, joined on __row here as the trainer joins them: `runtime.tables`), "source_table"
(raw columns and __row), "target" (its column in the dataset), "split", "seed", "type",
"max_rows". Locations are file:// URIs or local paths.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from runtime.jobs import GateJob, GateScore, local_path

ROW = "__row"


GateSpec = GateJob  # the schema is runtime.jobs.GateJob, shared with the engine


GateResult = GateScore


def eval_rows(spec: GateSpec) -> tuple[np.ndarray, np.ndarray]:
    """The `__row` ids and target values of the evaluation split, in the trainer's order
    (the same join of its tables, its `ParquetSource`, its `uniform`; rows without a target
    are in neither split)."""
    from runtime.tables import joined

    with joined(spec.dataset) as data:
        return _held_out(spec, data)


def _held_out(spec: GateSpec, data: Path) -> tuple[np.ndarray, np.ndarray]:
    from runtime.tfdata import ParquetSource, uniform

    ids: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    kept = 0
    for pos, batch in ParquetSource(str(data)).chunks([ROW, spec.target]):
        y = batch.column(spec.target)
        held_out = (uniform(pos, batch.num_rows, spec.seed) >= spec.split) & \
            ~np.asarray(y.is_null().to_numpy(zero_copy_only=False))
        ids.append(batch.column(ROW).to_numpy(zero_copy_only=False)[held_out])
        targets.append(y.to_numpy(zero_copy_only=False)[held_out])
        kept += int(held_out.sum())
        if kept >= spec.max_rows:
            break
    if not ids:
        return np.array([], dtype=np.int64), np.array([])
    return np.concatenate(ids)[: spec.max_rows], np.concatenate(targets)[: spec.max_rows]


def instances(source_table: str, ids: np.ndarray) -> list[dict[str, Any]]:
    """The raw values of the rows `ids`, in that order, as API instances."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    data = ds.dataset(source_table, format="parquet")
    table = data.to_table(filter=pc.field(ROW).isin(pa.array(ids)))
    by_id = {int(r): i for i, r in enumerate(table.column(ROW).to_pylist())}
    rows = table.drop_columns([ROW]).to_pylist()
    return [rows[by_id[int(r)]] for r in ids]


def score(answers: list[dict[str, Any]], target: np.ndarray, classification: bool) -> float:
    if classification:
        labels = np.array([str(p["label"]) for p in answers], dtype=object)
        return float(np.mean(labels == target.astype(str))) if len(target) else 0.0
    pred = np.array([p["value"] for p in answers], dtype=np.float64)
    y = target.astype(np.float64)
    pred = np.where(np.isfinite(pred), pred, y.mean())  # a miss predicts no better than the mean
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - pred) ** 2)) / total if total > 0 else 0.0


BATCH = 1_000


def predictions(predictor: Any, rows: list[dict[str, Any]], classification: bool) -> list[dict[str, Any]]:
    """The predictor's answers, a batch at a time; in a batch the API refuses (a value that
    is not finite, custom code that raises on a row), each row alone, and a row the model
    cannot answer scores as a miss: no label, or a value of NaN."""
    out: list[dict[str, Any]] = []
    for start in range(0, len(rows), BATCH):
        batch = rows[start:start + BATCH]
        try:
            out += predictor.predict(batch)
        except Exception:  # noqa: BLE001 - refused rows are scored, not fatal
            out += [_one(predictor, row, classification) for row in batch]
    return out


def _one(predictor: Any, row: dict[str, Any], classification: bool) -> dict[str, Any]:
    try:
        return dict(predictor.predict([row])[0])
    except Exception:  # noqa: BLE001
        return {"label": None} if classification else {"value": float("nan")}


def run(spec: GateSpec) -> GateResult:
    from runtime.server import Predictor

    ids, target = eval_rows(spec)
    rows = instances(str(local_path(spec.source_table)), ids)
    scores = [score(predictions(Predictor.load(b), rows, spec.classification), target, spec.classification)
              if rows else 0.0 for b in (str(local_path(spec.old_bundle)), str(local_path(spec.new_bundle)))]
    return GateResult("accuracy" if spec.classification else "r2", round(scores[0], 6), round(scores[1], 6),
                      len(rows))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    if len(args) != 1:
        print("usage: python -m runtime.gate SPEC_JSON", file=sys.stderr)
        return 2
    result = run(GateSpec.from_json(json.loads(Path(args[0]).read_text())))
    print(json.dumps(result.to_json()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

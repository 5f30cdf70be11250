"""mlp's training path against plain Keras `fit` on the same rows, in the same process.

    python bench/train/bench_train.py [--rows 1000000] [--epochs 2] [--repeats 3]

mlp: `runtime.train.run` on a Parquet folder: the profile pass, the tf.data stream from
pyarrow record batches, `fit` with the evaluation share as validation data, the
evaluation of both shares, and the SavedModel export. Keras: the same model
(`runtime.estimators.build`, same seed) `fit` on numpy arrays already in memory (the same
training and evaluation rows), with the same validation data, batch size and epochs.
Early stopping is off in both so they run the same number of epochs.

Two data sets: iris (150 rows, the example's dnn: hidden_units [16, 8], batch 16, 100
epochs) and a synthetic binary problem (8 FLOAT features, hidden_units [32, 16],
batch 256).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench import results as bench_results  # noqa: E402
from mlp.coltypes import ColumnType  # noqa: E402
from runtime import estimators, tfdata  # noqa: E402
from runtime.train import TrainSpec, run  # noqa: E402


def iris(tmp: Path) -> tuple[str, list[str], str]:
    df = pd.read_csv(REPO / "examples" / "iris" / "data" / "iris.csv")
    for c in ("sepal_length", "sepal_width", "petal_length"):
        df[f"{c}_norm"] = (df[c] - df[c].mean()) / df[c].std()
    (tmp / "iris").mkdir()
    df.to_parquet(tmp / "iris" / "part-0.parquet", index=False)
    feats = ["sepal_length_norm", "sepal_width_norm", "petal_length_norm", "petal_width"]
    return str(tmp / "iris"), feats, "class"


def synthetic(tmp: Path, rows: int) -> tuple[str, list[str], str]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 8)).astype(np.float32)
    logit = x @ rng.normal(size=8) + 0.5 * x[:, 0] * x[:, 1]
    df = pd.DataFrame({f"x{i}": x[:, i] for i in range(8)})
    df["label"] = (logit + rng.normal(size=rows) > 0).astype(np.int64)
    (tmp / "synthetic").mkdir()
    df.to_parquet(tmp / "synthetic" / "part-0.parquet", index=False, row_group_size=131_072)
    return str(tmp / "synthetic"), [f"x{i}" for i in range(8)], "label"


def mlp_run(data: str, feats: list[str], target: str, target_type: str, hidden: list[int],
            batch: int, epochs: int, out: Path) -> tuple[float, float]:
    spec = TrainSpec.from_json({
        "model": "model.bench", "type": "classification", "estimator": "dnn",
        "features": [{"name": f, "type": "FLOAT"} for f in feats],
        "target": {"name": target, "type": target_type}, "hparams": {"hidden_units": hidden},
        "training": {"epochs": epochs, "batch_size": batch, "learning_rate": 0.01,
                     "early_stopping": 0}, "data": data, "out_dir": str(out)})
    start = time.perf_counter()
    result = run(spec, lambda e: None)
    return time.perf_counter() - start, float(result["metrics"]["accuracy"])


def keras_fit(data: str, feats: list[str], target: str, hidden: list[int], batch: int,
              epochs: int) -> tuple[float, float]:
    df = pd.read_parquet(data)
    train = tfdata.uniform(0, len(df), seed=0) < 0.75
    labels = sorted(df[target].unique().tolist())
    y = df[target].map({v: i for i, v in enumerate(labels)}).to_numpy(np.int64)
    x = {f: df[f].to_numpy(np.float32) for f in feats}
    cols = tuple(tfdata.Column(f, ColumnType.FLOAT) for f in feats)
    tgt = tfdata.Column(target, ColumnType.STRING, True, len(labels), tuple(labels))
    import keras

    keras.utils.set_random_seed(0)
    model = estimators.build("dnn", True, cols, tgt, {"hidden_units": hidden}, 0.01)
    x_train, x_eval = ({k: v[m] for k, v in x.items()} for m in (train, ~train))
    start = time.perf_counter()
    model.fit(x_train, y[train], validation_data=(x_eval, y[~train]), epochs=epochs,
              batch_size=batch, verbose=0)
    seconds = time.perf_counter() - start
    accuracy = float(model.evaluate(x_eval, y[~train], verbose=0, return_dict=True)["accuracy"])
    return seconds, accuracy


def case(name: str, made: tuple[str, list[str], str], target_type: str, hidden: list[int],
         batch: int, epochs: int, repeats: int, tmp: Path) -> dict[str, Any]:
    data, feats, target = made
    mlp, keras_ = [], []
    for i in range(repeats):  # alternate, so load on the machine hits both alike
        mlp.append(mlp_run(data, feats, target, target_type, hidden, batch, epochs,
                           tmp / f"{name}-{i}"))
        keras_.append(keras_fit(data, feats, target, hidden, batch, epochs))
    m = sorted(mlp)[len(mlp) // 2]
    k = sorted(keras_)[len(keras_) // 2]
    return {"case": name, "epochs": epochs, "batch": batch, "mlp_s": m[0], "keras_s": k[0],
            "ratio": m[0] / k[0], "mlp_accuracy": m[1], "keras_accuracy": k[1]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "bench" / "out" / "train.json"))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mlp-bench-train-"))
    iris_data = iris(tmp)
    mlp_run(*iris_data, "STRING", [16, 8], 16, 1, tmp / "warm-up")  # first trace and import
    keras_fit(*iris_data, [16, 8], 16, 1)
    try:
        results = [case("iris (150 rows)", iris_data, "STRING", [16, 8], 16, 100, args.repeats,
                        tmp),
                   case(f"synthetic ({args.rows:,} rows)", synthetic(tmp, args.rows), "INT",
                        [32, 16], 256, args.epochs, 1, tmp)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    bench_results.write(args.out, results)
    print("| data | epochs | batch | mlp (s) | Keras fit (s) | mlp / Keras | accuracy mlp | "
          "accuracy Keras |\n|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['case']} | {r['epochs']} | {r['batch']} | {r['mlp_s']:.1f} | "
              f"{r['keras_s']:.1f} | {r['ratio']:.2f}x | {r['mlp_accuracy']:.3f} | "
              f"{r['keras_accuracy']:.3f} |")


if __name__ == "__main__":
    main()

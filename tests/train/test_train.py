"""The trainer end to end: real TensorFlow on small Parquet data sets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runtime.train import TrainError, TrainSpec, predict_parquet, run

from . import (
    IRIS_FEATURES,
    REPO,
    feature,
    iris_frame,
    iris_spec,
    make_spec,
    train,
    warning_codes,
    write_parquet,
)

LABELS = ["Iris-setosa", "Iris-versicolor", "Iris-virginica"]


def _cli(*args: str) -> tuple[int, list[dict]]:
    proc = subprocess.run([sys.executable, "-m", "runtime.train", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=600)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    return proc.returncode, events


def _signature(saved_model: Path):
    import tensorflow as tf

    return tf.saved_model.load(str(saved_model)).signatures["serving_default"]


def test_iris_dnn_defaults_reach_090_through_the_cli(tmp_path: Path) -> None:
    spec = iris_spec(tmp_path)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    code, events = _cli(str(tmp_path / "spec.json"))
    assert code == 0, events[-1:]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert epochs[0]["epoch"] == 1 and epochs[0]["epochs"] == 100
    assert set(epochs[0]) == {"event", "epoch", "epochs", "loss", "val_loss", "metrics"}
    assert set(epochs[0]["metrics"]) == {"accuracy", "val_accuracy"}
    assert events[-1]["event"] == "done"
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["metrics"]["accuracy"] >= 0.9
    assert result["labels"] == LABELS
    assert set(result["metrics"]["precision"]) == set(LABELS) == set(result["metrics"]["recall"])
    assert result["rows"]["train"] + result["rows"]["eval"] == 150
    assert [h["epoch"] for h in result["history"]] == [e["epoch"] for e in epochs]
    assert [w["code"] for w in result["warnings"]] == [
        e["code"] for e in events if e["event"] == "warning"]
    sig = _signature(tmp_path / "out" / "saved_model")
    inputs = sig.structured_input_signature[1]
    assert {k: (v.dtype.name, v.shape.as_list()) for k, v in inputs.items()} == {
        f: ("float32", [None]) for f in IRIS_FEATURES}
    assert sig.structured_outputs["probabilities"].shape.as_list() == [None, 3]


def test_the_split_is_seeded_and_the_same_twice(tmp_path: Path) -> None:
    from runtime.tfdata import uniform

    a = uniform(0, 10_000, seed=3) < 0.75
    assert (a == (uniform(0, 10_000, seed=3) < 0.75)).all()
    assert (a != (uniform(0, 10_000, seed=4) < 0.75)).any()
    assert abs(a.mean() - 0.75) < 0.02
    assert (uniform(5000, 5000, seed=3) == uniform(0, 10_000, seed=3)[5000:]).all()
    first, _ = train(iris_spec(tmp_path, epochs=1))
    second, _ = train(iris_spec(tmp_path, epochs=1))
    assert first["rows"] == second["rows"] and first["class_counts"] == second["class_counts"]


def test_early_stopping_stops_and_zero_turns_it_off(tmp_path: Path) -> None:
    stopped, _ = train(iris_spec(tmp_path, epochs=400, early_stopping=1, learning_rate=0.05))
    assert len(stopped["history"]) < 400
    full, _ = train(iris_spec(tmp_path, epochs=3, early_stopping=0))
    assert len(full["history"]) == 3


def _regression_frame(fn, n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x1": rng.uniform(-2, 2, n), "x2": rng.uniform(-2, 2, n)})
    df["y"] = fn(df) + rng.normal(0, 0.05, n)
    return df


@pytest.mark.parametrize("estimator", ["linear", "dnn"])
def test_regression_fits_a_linear_target(tmp_path: Path, estimator: str) -> None:
    data = write_parquet(_regression_frame(lambda d: 3 * d.x1 - 2 * d.x2 + 100), tmp_path / "d")
    result, _ = train(make_spec(data, tmp_path / "out", [feature("x1"), feature("x2")],
                                {"name": "y", "type": "FLOAT"}, type="regression",
                                estimator=estimator, hparams={} if estimator == "linear" else
                                {"hidden_units": [16]},
                                training={"epochs": 20, "batch_size": 64}))
    assert set(result["metrics"]) == {"rmse", "mae", "r2"}
    assert result["metrics"]["r2"] > 0.95
    assert result["labels"] is None
    sig = _signature(tmp_path / "out" / "saved_model")
    assert sig.structured_outputs["value"].shape.as_list() == [None]


def test_dnn_fits_a_curve_that_linear_cannot(tmp_path: Path) -> None:
    data = write_parquet(_regression_frame(lambda d: d.x1 ** 2), tmp_path / "d")
    r2 = {}
    for estimator in ("linear", "dnn"):
        result, _ = train(make_spec(data, tmp_path / estimator, [feature("x1"), feature("x2")],
                                    {"name": "y", "type": "FLOAT"}, type="regression",
                                    estimator=estimator, hparams={} if estimator == "linear"
                                    else {"hidden_units": [32, 16]},
                                    training={"epochs": 30, "batch_size": 64}))
        r2[estimator] = result["metrics"]["r2"]
    assert r2["linear"] < 0.2 < 0.8 < r2["dnn"]


def _colors(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    color = rng.choice(["red", "green", "blue"], n)
    return pd.DataFrame({"color": color, "noise": rng.normal(size=n),
                         "kind": pd.Series(color).map({"red": "a", "green": "b", "blue": "c"})})


@pytest.mark.parametrize("estimator", ["linear", "dnn"])
def test_a_string_feature_is_indexed_and_its_vocabulary_exported(tmp_path: Path,
                                                                 estimator: str) -> None:
    data = write_parquet(_colors(), tmp_path / "d")
    result, _ = train(make_spec(data, tmp_path / "out", [feature("color", "STRING"),
                                                         feature("noise")],
                                {"name": "kind", "type": "STRING"}, estimator=estimator,
                                hparams={} if estimator == "linear" else {"hidden_units": [8]},
                                training={"epochs": 30, "batch_size": 32, "learning_rate": 0.05}))
    assert result["metrics"]["accuracy"] >= 0.95
    sig = _signature(tmp_path / "out" / "saved_model")
    assert sig.structured_input_signature[1]["color"].dtype.name == "string"
    import tensorflow as tf

    out = sig(color=tf.constant(["red", "blue", "purple"]), noise=tf.constant([0.0, 0.0, 0.0]))
    best = out["probabilities"].numpy().argmax(axis=1)
    assert [result["labels"][i] for i in best[:2]] == ["a", "c"]  # "purple": unseen, any class


def test_a_categorical_int_feature_and_a_bool_target(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    cat = rng.integers(0, 5, 800)
    df = pd.DataFrame({"cat": cat, "odd": np.isin(cat, [1, 3])})
    data = write_parquet(df, tmp_path / "d")
    result, _ = train(make_spec(data, tmp_path / "out",
                                [feature("cat", "INT", categorical=True, categories=5)],
                                {"name": "odd", "type": "BOOL"}, hparams={"hidden_units": [8]},
                                training={"epochs": 20, "batch_size": 32, "learning_rate": 0.05}))
    assert result["labels"] == [False, True]
    assert result["metrics"]["accuracy"] == 1.0
    assert result["metrics"]["auc"] > 0.99
    assert set(result["metrics"]["precision"]) == {"false", "true"}
    sig = _signature(tmp_path / "out" / "saved_model")
    assert sig.structured_input_signature[1]["cat"].dtype.name == "int64"


@pytest.mark.parametrize("estimator", ["dnn", "linear"])
def test_categorical_ids_out_of_range_share_the_extra_slot(tmp_path: Path, estimator: str) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(3)
    cat = rng.integers(0, 3, 300)
    data = write_parquet(pd.DataFrame({"cat": cat, "odd": cat == 1}), tmp_path / "d")
    train(make_spec(data, tmp_path / "out", [feature("cat", "INT", categorical=True, categories=3)],
                    {"name": "odd", "type": "BOOL"}, estimator=estimator,
                    training={"epochs": 3, "batch_size": 32}))
    sig = _signature(tmp_path / "out" / "saved_model")
    ids = [0, 1, 2, 3, 4, -1, -(2 ** 62), 2 ** 62]
    out = sig(cat=tf.constant(ids, tf.int64))["probabilities"].numpy()
    assert not np.allclose(out[0], out[1])  # ids in range are told apart
    for row in out[4:]:  # every id outside 0..2 is the extra slot, as 3 is
        np.testing.assert_array_equal(row, out[3])


CUSTOM = '''
import keras

from runtime.estimators import encode, inputs_for


def create_model(features, target, hparams):
    inputs = inputs_for(features)
    hidden = keras.layers.Dense(hparams["units"], activation="relu")(encode(features, inputs))
    out = keras.layers.Dense(len(target.vocabulary), activation="softmax")(hidden)
    model = keras.Model(inputs, out)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model
'''


def test_a_custom_estimator_file(tmp_path: Path) -> None:
    code = tmp_path / "my_estimator.py"
    code.write_text(CUSTOM)
    spec = {**iris_spec(tmp_path, epochs=60), "estimator": None, "custom_path": str(code),
            "hparams": {"units": 16}}
    result, _ = train(spec)
    assert result["metrics"]["accuracy"] >= 0.9
    assert result["labels"] == LABELS


@pytest.mark.parametrize("source,message", [
    ("x = 1\n", "has no function `create_model`"),
    ("import keras\ndef create_model(f, t, h):\n"
     "    i = keras.Input((1,))\n    return keras.Model(i, keras.layers.Dense(3)(i))\n",
     "returned a model that is not compiled"),
], ids=["no-function", "not-compiled"])
def test_a_broken_custom_estimator_is_reported(tmp_path: Path, source: str, message: str) -> None:
    code = tmp_path / "bad.py"
    code.write_text(source)
    spec = {**iris_spec(tmp_path, epochs=1), "estimator": None, "custom_path": str(code)}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    code_, events = _cli(str(tmp_path / "spec.json"))
    assert code_ == 1
    assert events[-1]["event"] == "error" and message in events[-1]["message"]


def _imbalanced(n: int = 1000, minority: float = 0.1) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    label = np.where(rng.uniform(size=n) < minority, "rare", "common")
    return pd.DataFrame({"x": rng.normal(size=n) + (label == "rare") * 2, "label": label})


@pytest.mark.parametrize("balance", ["upsample", "downsample"])
def test_balance_rebalances_the_training_share_only(tmp_path: Path, balance: str) -> None:
    data = write_parquet(_imbalanced(), tmp_path / "d")

    def spec(b: str) -> dict:
        return make_spec(data, tmp_path / b, [feature("x")], {"name": "label", "type": "STRING"},
                         balance=b, training={"epochs": 1})

    plain, _ = train(spec("none"))
    balanced, _ = train(spec(balance))
    before, after = plain["class_counts"]["train"], balanced["class_counts"]["train"]
    assert before["common"] > 5 * before["rare"]
    assert max(after.values()) < 1.3 * min(after.values())  # each row kept or repeated by chance
    kept = "common" if balance == "upsample" else "rare"
    assert after[kept] == before[kept]
    assert balanced["class_counts"]["eval"] == plain["class_counts"]["eval"]
    assert balanced["rows"]["train"] == sum(after.values())
    assert "class_imbalance" in warning_codes(plain)
    assert "class_imbalance" not in warning_codes(balanced)


def test_a_diverging_loss_fails_with_a_clear_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 3)) * 1e4
    df = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "y": x @ [1.0, 2.0, 3.0]})
    spec = make_spec(write_parquet(df, tmp_path / "d"), tmp_path / "out",
                     [feature("x0"), feature("x1"), feature("x2")], {"name": "y", "type": "FLOAT"},
                     type="regression", model="model.price",
                     training={"epochs": 3, "learning_rate": 1e10})
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    code, events = _cli(str(tmp_path / "spec.json"))
    assert code == 1
    assert events[-1] == {
        "event": "error", "message": "model.price: the training loss became NaN in epoch 1",
        "hint": "lower training.learning_rate (now 1e+10) in model.price, or normalize its raw "
                'numeric features (x0, x1, x2) with transformer = "normalize"'}
    assert not (tmp_path / "out" / "saved_model").exists()


def _guardrail_data(case: str) -> tuple[pd.DataFrame, list[str], dict]:
    rng = np.random.default_rng(5)
    n = 400
    x = rng.normal(size=n)
    label = np.where(x + rng.normal(0, 0.5, n) > 0, "yes", "no")
    if case == "class_imbalance":
        return _imbalanced(), ["x"], {}
    if case == "correlated_features":
        df = pd.DataFrame({"a": x, "b": 2 * x + rng.normal(0, 0.01, n), "label": label})
        return df, ["a", "b"], {}
    if case == "unscaled_feature":
        return pd.DataFrame({"income": 50_000 + 1_000 * x, "label": label}), ["income"], {}
    if case == "overfitting":
        noise = rng.normal(size=(80, 30))
        df = pd.DataFrame({f"n{i}": noise[:, i] for i in range(30)})
        df["label"] = rng.choice(["yes", "no"], 80)
        return df, list(df.columns[:30]), {"hparams": {"hidden_units": [512]},
                                          "training": {"epochs": 8, "batch_size": 64,
                                                       "learning_rate": 0.05,
                                                       "early_stopping": 0}}
    assert case == "no_convergence"
    df = pd.DataFrame({"x": x, "label": rng.choice(["yes", "no"], n)})
    return df, ["x"], {"training": {"epochs": 2, "learning_rate": 1e-7}}


@pytest.mark.parametrize("case,named", [
    ("class_imbalance", ["'common'", "'rare'"]),
    ("correlated_features", ["'a'", "'b'"]),
    ("unscaled_feature", ["'income'"]),
    ("overfitting", ["accuracy"]),
    ("no_convergence", ["did not learn"]),
])
def test_each_guardrail_fires_on_data_made_to_trigger_it(tmp_path: Path, case: str,
                                                         named: list[str]) -> None:
    df, features, extra = _guardrail_data(case)
    spec = make_spec(write_parquet(df, tmp_path / "d"), tmp_path / "out",
                     [feature(f) for f in features], {"name": "label", "type": "STRING"},
                     model="model.g", **{"training": {"epochs": 1}, **extra})
    result, events = train(spec)
    fired = [w for w in result["warnings"] if w["code"] == case]
    assert len(fired) == 1, result["warnings"]
    assert fired[0]["message"].startswith("model.g")
    assert all(n in fired[0]["message"] for n in named)
    assert fired[0]["fix"]
    assert {"event": "warning", **fired[0]} in events


def test_the_no_convergence_rule_for_custom_models() -> None:
    from runtime.guardrails import check_training

    flat = [{"epoch": i, "loss": 0.7} for i in range(1, 5)]
    falling = [{"epoch": i, "loss": 0.7 / i} for i in range(1, 5)]
    assert [w.code for w in check_training("model.c", flat, {}, {}, None)] == ["no_convergence"]
    assert check_training("model.c", falling, {}, {}, None) == []


def test_predict_adds_a_column_of_class_indexes(tmp_path: Path) -> None:
    spec = iris_spec(tmp_path, epochs=30)
    result, _ = train(spec)
    code, events = _cli("--predict", str(tmp_path / "out"), spec["data"], "iris_pred",
                        str(tmp_path / "pred"))
    assert code == 0
    assert events == [{"event": "done", "column": "iris_pred", "type": "INT",
                       "categorical": True, "categories": 3, "rows": 150}]
    out = pd.read_parquet(tmp_path / "pred")
    assert list(out.columns) == [*iris_frame().columns, "iris_pred"]
    assert out["iris_pred"].dtype == np.int64
    agreement = (out["iris_pred"].map(dict(enumerate(LABELS))) == out["class"]).mean()
    assert agreement >= 0.9


def test_predict_a_regression_value(tmp_path: Path) -> None:
    data = write_parquet(_regression_frame(lambda d: d.x1 + 10, n=300), tmp_path / "d")
    train(make_spec(data, tmp_path / "out", [feature("x1")], {"name": "y", "type": "FLOAT"},
                    type="regression", estimator="linear", training={"epochs": 2}))
    col = predict_parquet(tmp_path / "out", data, "y_hat", tmp_path / "pred")
    assert (col.name, col.type.value, col.categorical, col.rows) == ("y_hat", "FLOAT", False, 300)
    assert pd.read_parquet(tmp_path / "pred")["y_hat"].dtype == np.float64


@pytest.mark.parametrize("change,message", [
    ({"features": [feature("petal_area")]},
     "model.dnn: the data at {data} has no column 'petal_area'"),
    ({"hparams": {"hidden_layers": 2}},
     "model.dnn: estimator 'dnn' has no hparam 'hidden_layers' "
     "(it takes: activation, dropout, embedding_dim, hidden_units)"),
    ({"training": {"split": 1.0}}, "training.split must be between 0 and 1, not 1.0"),
    ({"target": {"name": "one", "type": "STRING"}},
     "model.dnn: the target 'one' has only the class ['x']"),
], ids=["missing-column", "unknown-hparam", "split", "one-class"])
def test_spec_and_data_errors_say_what_is_wrong(tmp_path: Path, change: dict, message: str) -> None:
    df = iris_frame().assign(one="x")
    spec = iris_spec(tmp_path)
    spec["data"] = write_parquet(df, tmp_path / "iris")
    with pytest.raises(TrainError) as err:
        run(TrainSpec.from_json({**spec, **change}), lambda e: None)
    assert err.value.message.startswith(message.format(data=spec["data"]))


def _iris_tables(tmp_path: Path) -> tuple[list[dict], pd.DataFrame]:
    """iris stored the way a data unit stores it: its raw columns in one table, its normalized
    ones in another (written in another row order), both keyed by __row; and the two joined."""
    df = iris_frame().reset_index(names="__row")
    norm = [c for c in df.columns if c.endswith("_norm")]
    raw = write_parquet(df.drop(columns=norm), tmp_path / "raw")
    wave = write_parquet(df[["__row", *norm]].sample(frac=1, random_state=1), tmp_path / "wave")
    return ([{"uri": Path(raw).as_uri(), "columns": ["petal_width", "class"]},
             {"uri": Path(wave).as_uri(), "columns": [c for c in IRIS_FEATURES if c in norm]}],
            df[["__row", "petal_width", "class", *[c for c in IRIS_FEATURES if c in norm]]])


def test_a_model_trains_on_its_tables_joined_as_on_the_one_joined_table(tmp_path: Path) -> None:
    tables, joined = _iris_tables(tmp_path)
    apart, _ = train({**iris_spec(tmp_path / "apart", epochs=2), "data": tables})
    together, _ = train({**iris_spec(tmp_path / "together", epochs=2),
                         "data": write_parquet(joined, tmp_path / "joined")})
    # the same rows in the same order: the seeded split puts the same rows in each share
    assert (apart["rows"], apart["class_counts"]) == (together["rows"], together["class_counts"])
    assert apart["rows"]["train"] + apart["rows"]["eval"] == 150
    assert sorted(p.name for p in (tmp_path / "apart" / "out").iterdir()) == ["result.json", "saved_model"]


def test_a_missing_column_of_a_table_names_the_model_the_table_and_the_column(tmp_path: Path) -> None:
    tables, _ = _iris_tables(tmp_path)
    tables[1]["columns"].append("petal_area")
    with pytest.raises(TrainError) as err:
        train({**iris_spec(tmp_path, epochs=1), "data": tables})
    assert err.value.message.startswith(f"model.dnn: the table at {tables[1]['uri']} has no column 'petal_area' ")


def test_predict_joins_the_tables_it_is_given(tmp_path: Path) -> None:
    tables, joined = _iris_tables(tmp_path)
    train({**iris_spec(tmp_path, epochs=5), "data": tables})
    features = [{"uri": t["uri"], "columns": [c for c in t["columns"] if c != "class"]} for t in tables]
    code, events = _cli("--predict", str(tmp_path / "out"), json.dumps(features), "iris_pred", str(tmp_path / "pred"))
    assert code == 0, events
    assert events == [{"event": "done", "column": "iris_pred", "type": "INT", "categorical": True,
                       "categories": 3, "rows": 150}]
    out = pd.read_parquet(tmp_path / "pred")
    assert list(out.columns) == ["__row", "petal_width", "sepal_length_norm", "sepal_width_norm",
                                 "petal_length_norm", "iris_pred"]
    assert out["__row"].tolist() == list(range(150))
    assert sorted(p.name for p in (tmp_path / "pred").iterdir()) == ["part-00000.parquet"]

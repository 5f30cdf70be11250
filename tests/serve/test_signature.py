"""The API's signature call (runtime.signature) over the packed signature (runtime.packing)
gives what the SavedModel's public `serving_default` gives, for every kind of feature."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlp.coltypes import ColumnType
from runtime import packing
from runtime.tfdata import Column

FEATURES = (Column("b_float", ColumnType.FLOAT), Column("a_list", ColumnType.FLOAT_LIST, width=3),
            Column("c_float", ColumnType.BOOL),
            Column("d_id", ColumnType.INT, categorical=True, categories=4),
            Column("e_word", ColumnType.STRING, vocabulary=("red", "green")),
            Column("f_word", ColumnType.STRING, vocabulary=("up", "down")))
TARGET = Column("y", ColumnType.STRING, vocabulary=("no", "yes", "maybe"))


def test_the_layout_groups_features_by_dtype_in_name_order() -> None:
    plan = packing.layout((f.name, f.dtype, f.width) for f in FEATURES)
    assert plan == {"float32": (packing.Slot("a_list", 3), packing.Slot("b_float"),
                                packing.Slot("c_float")),
                    "int64": (packing.Slot("d_id"),),
                    "string": (packing.Slot("e_word"), packing.Slot("f_word"))}
    packed = packing.pack(_columns(2), plan)
    assert packed["float32"].dtype == np.float32 and packed["float32"].shape == (2, 5)
    np.testing.assert_array_equal(packed["float32"][:, :3], _columns(2)["a_list"].astype(np.float32))
    np.testing.assert_array_equal(packed["float32"][:, 4], [1, 0])
    assert packed["int64"].tolist() == [[-1], [0]]
    assert packed["string"].tolist() == [["red", ""], ["blue", "down"]]


def test_unpack_inverts_pack() -> None:
    import tensorflow as tf

    plan = packing.layout((f.name, f.dtype, f.width) for f in FEATURES)
    columns = _columns(4)
    got = packing.unpack(tf, {d: tf.constant(a) for d, a in packing.pack(columns, plan).items()},
                         plan)
    assert set(got) == set(columns)
    for name, tensor in got.items():
        expected = np.asarray(columns[name])
        if expected.dtype == object:
            assert [v.decode() for v in tensor.numpy().tolist()] == expected.tolist()
        else:
            np.testing.assert_allclose(tensor.numpy(), expected.astype(np.float64), equal_nan=True)


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same untrained dnn exported with both signatures, and with the public one only."""
    import keras
    import tensorflow as tf

    from runtime.estimators import build
    from runtime.train import export

    keras.utils.set_random_seed(1)
    model = build("dnn", True, FEATURES, TARGET, {"hidden_units": [8]}, 0.01)
    tmp = tmp_path_factory.mktemp("signature")
    export(model, FEATURES, True, tmp / "both")
    specs = {f.name: tf.TensorSpec(f.shape, f.dtype, name=f.name) for f in FEATURES}
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default",
                         lambda x: {"probabilities": tf.cast(model(x, training=False), tf.float32)},
                         input_signature=[specs])
    archive.write_out(str(tmp / "default-only"), verbose=False)
    return {"both": tmp / "both", "default-only": tmp / "default-only"}


@pytest.mark.parametrize("which", ["both", "default-only"])
def test_the_call_matches_serving_default(saved_models: dict[str, Path], which: str) -> None:
    import tensorflow as tf

    from runtime.signature import Signature

    signature = Signature(saved_models[which])
    assert (signature._plan is not None) == (which == "both")
    assert signature.features == {"a_list": ("float32", 3), "b_float": ("float32", None),
                                  "c_float": ("float32", None), "d_id": ("int64", None),
                                  "e_word": ("string", None), "f_word": ("string", None)}
    assert signature.output == "probabilities"
    columns = _columns(5)
    got = signature(columns)
    public = tf.saved_model.load(str(saved_models[which])).signatures["serving_default"]
    expected = public(**{n: tf.constant(np.asarray(a, dtype=packing.NUMPY[f.dtype]))
                         for f in FEATURES for n, a in [(f.name, columns[f.name])]})
    np.testing.assert_allclose(got, expected["probabilities"].numpy(), rtol=1e-6)
    assert got.shape == (5, 3)
    assert len({tuple(row) for row in np.round(got, 6).tolist()}) > 1  # the inputs matter


def _columns(n: int) -> dict[str, Any]:
    """Values of every kind, NaN and unseen ones included, in the API's numpy types."""
    rng = np.random.default_rng(n)
    words = np.array((["red", "blue", "green", ""] * n)[:n], dtype=object)
    words[0] = "red"
    ups = np.array((["", "down", "up"] * n)[:n], dtype=object)
    floats = rng.normal(size=n)
    floats[0] = np.nan
    return {"a_list": rng.normal(size=(n, 3)), "b_float": floats,
            "c_float": np.arange(n) % 2 == 0, "d_id": np.arange(n, dtype=np.int64) - 1,
            "e_word": words, "f_word": ups}

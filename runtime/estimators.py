"""The built-in estimators (`linear`, `dnn`) and the loading of custom ones, on Keras 3.

Every model takes a dict of named inputs, one per feature, with the dtypes and shapes in
`runtime.tfdata` (`Column.dtype`, `Column.shape`), and returns class probabilities
`[None, n_classes]` (classification; softmax over the target's labels in sorted order)
or the value (regression). Encodings, built into the model so serving needs nothing else:

    feature              linear                          dnn
    numeric, BOOL        as is (NaN read as 0)           as is (NaN read as 0)
    FLOAT_LIST           as is                           as is
    categorical INT      one-hot, categories + 1 wide    embedding of hparams.embedding_dim
    STRING               one-hot over its vocabulary     embedding of hparams.embedding_dim

The extra slot of a categorical feature takes ids out of range and values never seen in
training. A regression model predicts `mean + stddev * z` with the target's training mean
and stddev, so it starts at the mean whatever the target's scale.

A custom estimator is a Python file defining

    def create_model(features: list[Column], target: Column, hparams: dict) -> keras.Model

returning a *compiled* model. `features` and `target` are `runtime.tfdata.Column`s (name,
type, categorical, categories, vocabulary, width). The model is fed the dict of named
inputs above (build them with `inputs_for(features)`, and `encode(features, inputs)`
gives the built-in encodings). The classification target arrives as the class index
(int64, `0..len(target.vocabulary)-1`; use a sparse categorical loss) and the model must
output probabilities; a regression target arrives as float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from mlp.builtins.catalogue import ESTIMATORS
from mlp.coltypes import ColumnType
from runtime.tfdata import Column


class EstimatorError(Exception):
    """An estimator cannot be built from what it was given."""


def inputs_for(features: tuple[Column, ...] | list[Column]) -> dict[str, Any]:
    """One Keras input per feature, named after it."""
    return {f.name: keras.Input(shape=f.shape[1:], dtype=f.dtype, name=f.name)
            for f in features}


def encode(features: tuple[Column, ...] | list[Column], inputs: dict[str, Any],
           categorical: str = "one_hot", embedding_dim: int = 8) -> Any:
    """All features as one float tensor [None, width]; categorical ones one-hot encoded
    (`categorical="one_hot"`) or embedded (`"embed"`)."""
    ops = keras.ops
    # Few graph ops per prediction: the scalar features stacked in one op, one NaN check.
    scalars = [inputs[f.name] for f in features
               if f.dtype == "float32" and f.type is not ColumnType.FLOAT_LIST]
    numeric = ([ops.stack(scalars, axis=1)] if scalars else []) + [
        inputs[f.name] for f in features if f.type is ColumnType.FLOAT_LIST]
    parts = [_concat(numeric)] if numeric else []
    if parts:
        parts[0] = ops.where(ops.isnan(parts[0]), 0.0, parts[0])
    parts += [_encode_categorical(f, inputs[f.name], categorical, embedding_dim)
              for f in features if f.dtype != "float32"]
    return _concat(parts)


def _concat(parts: list[Any]) -> Any:
    return parts[0] if len(parts) == 1 else keras.layers.Concatenate()(parts)


def _encode_categorical(f: Column, x: Any, categorical: str, dim: int) -> Any:
    ops = keras.ops
    if f.dtype == "string":
        vocab = list(f.vocabulary or ("",))
        size = len(vocab) + 1
        if categorical == "one_hot":
            return keras.layers.StringLookup(vocabulary=vocab, output_mode="one_hot",
                                             name=f"{f.name}_lookup")(x)
        ids = keras.layers.StringLookup(vocabulary=vocab, name=f"{f.name}_lookup")(x)
    else:
        n = int(f.categories or 1)
        size = n + 1
        ids = _Ids(n, name=f"{f.name}_ids")(x)
    if categorical == "one_hot":
        return ops.one_hot(ids, size)
    return _Embedding(size, dim, name=f"{f.name}_embedding")(ids)


class _Ids(keras.layers.Layer):
    """Categorical ids with those outside 0..n-1 moved to n, the extra slot. Compared as
    unsigned, a negative id is past the last one too: three graph ops a prediction, where
    Keras's ops take four and more, and cast to float32 on the way (bench/serve)."""

    def __init__(self, n: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n = n

    def call(self, x: Any) -> Any:
        import tensorflow as tf

        n = tf.constant(self.n, x.dtype)
        return tf.where(tf.cast(x, tf.uint64) >= tf.cast(n, tf.uint64), n, x)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n": self.n}


class _Embedding(keras.layers.Embedding):
    """Keras's embedding, looked up with a plain gather: the ids are in range by
    construction, so `ops.take`'s wrapping of negative ones (three more graph ops per
    feature on each prediction, bench/serve) has nothing to do."""

    def call(self, inputs: Any) -> Any:
        import tensorflow as tf

        return tf.gather(self.embeddings, inputs)


def hparams_for(estimator: str, given: dict[str, Any]) -> dict[str, Any]:
    """The estimator's defaults overridden by `given`; unknown names are an error."""
    if estimator not in ESTIMATORS:
        raise EstimatorError(f"there is no built-in estimator {estimator!r} (there are: "
                             f"{', '.join(sorted(ESTIMATORS))})")
    defaults = dict(ESTIMATORS[estimator].hparams)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        known = ", ".join(sorted(defaults)) or "none"
        raise EstimatorError(f"estimator {estimator!r} has no hparam "
                             f"{', '.join(map(repr, unknown))} (it takes: {known})")
    return {**defaults, **given}


def build(estimator: str, classification: bool, features: tuple[Column, ...], target: Column,
          hparams: dict[str, Any], learning_rate: float, target_mean: float = 0.0,
          target_std: float = 1.0) -> keras.Model:
    """A compiled built-in model."""
    hp = hparams_for(estimator, hparams)
    inputs = inputs_for(features)
    if estimator == "linear":
        h = encode(features, inputs, "one_hot")
    else:
        h = encode(features, inputs, "embed", int(hp["embedding_dim"]))
        for units in _units(hp["hidden_units"]):
            h = keras.layers.Dense(units, activation=str(hp["activation"]))(h)
            if float(hp["dropout"]) > 0:
                h = keras.layers.Dropout(float(hp["dropout"]))(h)
    if classification:
        n = len(target.vocabulary or ())
        out = keras.layers.Dense(n, activation="softmax", name="probabilities")(h)
        loss: Any = "sparse_categorical_crossentropy"
        metrics: list[Any] = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    else:
        z = keras.layers.Dense(1, name="z")(h)
        out = keras.ops.squeeze(z * target_std + target_mean, axis=-1)
        loss, metrics = "mse", [keras.metrics.MeanAbsoluteError(name="mae")]
    model = keras.Model(inputs, out, name=estimator)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=metrics)
    return model


def _units(value: Any) -> list[int]:
    units = [value] if isinstance(value, int) else list(value)
    if not all(isinstance(u, int) and u > 0 for u in units):
        raise EstimatorError(f"hparams.hidden_units must be a list of positive integers, "
                             f"not {value!r}")
    return units


def custom(path: str, features: tuple[Column, ...], target: Column,
           hparams: dict[str, Any]) -> keras.Model:
    """The compiled model returned by the custom file's `create_model`."""
    from runtime.customcode import get_function

    model = get_function(Path(path), "create_model")(list(features), target, dict(hparams))
    if not isinstance(model, keras.Model):
        raise EstimatorError(f"create_model in {path} returned {type(model).__name__}, "
                             "not a keras.Model")
    if not getattr(model, "compiled", False):
        raise EstimatorError(f"create_model in {path} returned a model that is not compiled; "
                             "call model.compile(optimizer, loss) before returning it")
    return model

"""A SavedModel's serving signature, called the way TF Serving calls it.

The SavedModel is loaded into a TensorFlow session with the v1 SavedModel loader (which
runs its table initialisers), and the signature's SignatureDef names the tensors to feed
and fetch. The session runs every op in the calling thread
(`inter_op_parallelism_threads=-1`): for the small graphs of the models mlp trains, handing
the work to a thread pool and waking the caller back up costs more than the ops
themselves. The call is the session's C++ callable, made once, fed one tensor per dtype
through the `serving_packed` signature (runtime.packing) when the SavedModel has it, one
per feature through `serving_default` otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from runtime import packing

OUTPUTS = ("probabilities", "value")  # classification, regression (runtime.train.export)


class Signature:
    """Call the model on one numpy array per feature; get the output as numpy."""

    def __init__(self, saved_model: str | Path, threads: int | None = None) -> None:
        import tensorflow as tf

        if threads is None:
            threads = tf.config.threading.get_intra_op_parallelism_threads()
        graph = tf.Graph()
        config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=-1,
                                          intra_op_parallelism_threads=threads)
        self._session = tf.compat.v1.Session(graph=graph, config=config)
        quiet = tf.get_logger()
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # the v1 loader's deprecation notice
        try:
            with graph.as_default():
                meta = tf.compat.v1.saved_model.loader.load(
                    self._session, [tf.saved_model.SERVING], str(saved_model))
        finally:
            quiet.setLevel(level)
        default = meta.signature_def["serving_default"]
        #: name -> (dtype, width of a FLOAT_LIST feature or None)
        self.features: dict[str, tuple[str, int | None]] = {}
        for name, info in default.inputs.items():
            dims = [d.size for d in info.tensor_shape.dim]
            self.features[name] = (tf.dtypes.as_dtype(info.dtype).name,
                                   dims[1] if len(dims) == 2 else None)
        self.output = next(k for k in OUTPUTS if k in default.outputs)
        packed = meta.signature_def.get(packing.SIGNATURE)
        self._plan: packing.Layout | None = None
        if packed is not None:
            self._plan = packing.layout((n, d, w) for n, (d, w) in self.features.items())
            feeds = [packed.inputs[dtype].name for dtype in self._plan]
            fetch = packed.outputs[self.output].name
        else:
            self._names = sorted(self.features)
            feeds = [default.inputs[n].name for n in self._names]
            fetch = default.outputs[self.output].name
        self._run = self._callable(feeds, fetch)

    def sample(self, rows: int = 2) -> dict[str, np.ndarray]:
        """Columns of made-up values the signature takes (for warm-up and checks)."""
        out = {}
        for name, (dtype, width) in self.features.items():
            out[name] = (np.array(["x"] * rows, dtype=object) if dtype == "string" else
                         np.ones((rows, width) if width else rows, dtype=packing.NUMPY[dtype]))
        return out

    def _callable(self, feeds: list[str], fetch: str) -> Callable[..., Any]:
        """The C++ callable of the session: `Session.make_callable` with a feed list
        runs its whole Python `run()` on each call (about 100 µs here), this one 7 µs."""
        from tensorflow.core.protobuf import config_pb2

        make = getattr(self._session, "_make_callable_from_options", None)
        if make is not None:
            run = make(config_pb2.CallableOptions(feed=feeds, fetch=[fetch]))
            return lambda *arrays: run(*arrays)[0]
        graph = self._session.graph  # a TensorFlow without it: the public, slower way
        return self._session.make_callable(  # type: ignore[no-any-return]
            graph.get_tensor_by_name(fetch), [graph.get_tensor_by_name(f) for f in feeds])

    def __call__(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """`columns`: name -> array [n] or [n, width]: objects for a string feature, any
        numeric dtype for the others (cast to the feature's)."""
        if self._plan is not None:
            arrays = packing.pack(columns, self._plan)
            return np.asarray(self._run(*arrays.values()))
        return np.asarray(self._run(*(
            np.asarray(columns[n], dtype=packing.NUMPY[self.features[n][0]])
            for n in self._names)))

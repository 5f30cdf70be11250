"""A SavedModel's serving signature, called the way TF Serving calls it.

The SavedModel is loaded into a TensorFlow session with the v1 SavedModel loader (which
runs its table initialisers), and the signature's SignatureDef names the tensors to feed
and fetch. The call is the session's C++ callable, made once, fed one tensor per dtype
through the `serving_packed` signature (runtime.packing) when the SavedModel has it, one
per feature through `serving_default` otherwise.

What the session runs per call is kept small, since for the models mlp trains the
executor's per-op work, not the arithmetic, is most of a call (bench/serve):

- every op runs in the calling thread (`inter_op_parallelism_threads=-1`): handing the work
  to a pool and waking the caller back up costs more than the ops themselves;
- with TensorFlow's single-threaded executor, which walks the graph in a precomputed order
  with less bookkeeping per op than the default one (a graph it cannot run is loaded again
  with the default executor);
- over the graph frozen as TensorFlow's freeze_graph does: the variables' values inlined as
  constants, which takes the variable handles, reads and identities off every call (about
  30 of the penguins model's 75 ops). The frozen graph serves only when it gives the loaded
  one's output bit for bit on sample inputs; a graph with lookup tables (a STRING feature's
  vocabulary), whose initialisers freezing leaves behind, keeps the loaded session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from runtime import packing

OUTPUTS = ("probabilities", "value")  # classification, regression (runtime.train.export)
EXECUTOR = "SINGLE_THREADED_EXECUTOR"
log = logging.getLogger("mlp.server")


class Signature:
    """Call the model on one numpy array per feature; get the output as numpy.

    `executor` is the executor the session runs the graph with, `frozen` whether that
    graph is the frozen one."""

    def __init__(self, saved_model: str | Path, threads: int | None = None,
                 freeze: bool = True) -> None:
        import tensorflow as tf

        if threads is None:
            threads = tf.config.threading.get_intra_op_parallelism_threads()
        config = _config(tf, threads, EXECUTOR)
        try:
            feeds, fetch = self._open(tf, saved_model, config)
        except Exception as e:  # noqa: BLE001 - the default executor says what is wrong, if anything
            log.info("%s with the %s: %s; loading it with the default executor", saved_model,
                     EXECUTOR, str(e).splitlines()[0] if str(e) else type(e).__name__)
            config = _config(tf, threads, "")
            feeds, fetch = self._open(tf, saved_model, config)
        self.executor = config.experimental.executor_type or "DEFAULT"
        self.frozen = False
        if freeze:
            self._freeze(tf, config, feeds, fetch)

    def _open(self, tf: Any, saved_model: str | Path, config: Any) -> tuple[list[str], str]:
        """Load the SavedModel and make the callable; the tensors it feeds and fetches."""
        self._session, meta = _load(tf, saved_model, config)
        try:
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
            self._run = _callable(self._session, feeds, fetch)
        except BaseException:
            self._session.close()
            raise
        return feeds, fetch

    def sample(self, rows: int = 2) -> dict[str, np.ndarray]:
        """Columns of made-up values the signature takes (for warm-up and checks)."""
        out = {}
        for name, (dtype, width) in self.features.items():
            out[name] = (np.array(["x"] * rows, dtype=object) if dtype == "string" else
                         np.ones((rows, width) if width else rows, dtype=packing.NUMPY[dtype]))
        return out

    def _freeze(self, tf: Any, config: Any, feeds: list[str], fetch: str) -> None:
        """Serve the frozen graph instead of the loaded one, when it answers the same."""
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_from_session_graph,
        )

        loaded, run = self._session, self._run
        graph_def = loaded.graph.as_graph_def()
        if _has_tables(graph_def):  # their initialisers are not part of the frozen graph
            return
        sample = self.sample(3)
        expected = self(sample)
        graph = tf.Graph()
        session = tf.compat.v1.Session(graph=graph, config=config)
        try:
            with _quiet(tf):
                frozen = convert_variables_to_constants_from_session_graph(
                    loaded, graph_def, [fetch.split(":")[0]])
                with graph.as_default():
                    tf.import_graph_def(frozen, name="")
            self._run = _callable(session, feeds, fetch)
            same = np.array_equal(self(sample), expected, equal_nan=True)
        except Exception as e:  # noqa: BLE001 - whatever fails here, the loaded graph serves
            log.info("the frozen graph does not run (%s: %s); serving the loaded one",
                     type(e).__name__, str(e).splitlines()[0] if str(e) else "")
            same = False
        if not same:
            session.close()
            self._run = run
            return
        loaded.close()
        self._session, self.frozen = session, True

    def __call__(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """`columns`: name -> array [n] or [n, width]: objects for a string feature, any
        numeric dtype for the others (cast to the feature's)."""
        if self._plan is not None:
            arrays = packing.pack(columns, self._plan)
            return np.asarray(self._run(*arrays.values()))
        return np.asarray(self._run(*(
            np.asarray(columns[n], dtype=packing.NUMPY[self.features[n][0]])
            for n in self._names)))

    def feed(self, columns: Mapping[str, Any]) -> np.ndarray:
        """The output for the API's columns, of any type `packing.tensor` takes (nullable
        pandas arrays, objects, NaN for a missing INT): converted and packed in one go."""
        if self._plan is not None:
            return np.asarray(self._run(*packing.feed(columns, self._plan)))
        return self({n: packing.tensor(columns[n], *self.features[n]) for n in self._names})


def _has_tables(graph_def: Any) -> bool:
    """Whether the graph or a function of it makes a lookup table (HashTableV2 and kin)."""
    nodes = [*graph_def.node, *(n for f in graph_def.library.function for n in f.node_def)]
    return any("Table" in n.op for n in nodes)


def _config(tf: Any, threads: int, executor: str) -> Any:
    config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=-1,
                                      intra_op_parallelism_threads=threads)
    config.experimental.executor_type = executor
    return config


def _load(tf: Any, saved_model: str | Path, config: Any) -> tuple[Any, Any]:
    """A session holding the SavedModel's graph and variables, and its MetaGraphDef."""
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph, config=config)
    try:
        with _quiet(tf), graph.as_default():
            meta = tf.compat.v1.saved_model.loader.load(session, [tf.saved_model.SERVING],
                                                        str(saved_model))
    except BaseException:
        session.close()
        raise
    return session, meta


@contextmanager
def _quiet(tf: Any) -> Iterator[None]:
    """TensorFlow's deprecation notices (of the v1 loader, of freezing) kept out of the log."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _callable(session: Any, feeds: list[str], fetch: str) -> Callable[..., Any]:
    """The C++ callable of the session: `Session.make_callable` with a feed list runs its
    whole Python `run()` on each call (about 100 µs here), this one 7 µs."""
    from tensorflow.core.protobuf import config_pb2

    make = getattr(session, "_make_callable_from_options", None)
    if make is not None:
        run = make(config_pb2.CallableOptions(feed=feeds, fetch=[fetch]))
        return lambda *arrays: run(*arrays)[0]
    graph = session.graph  # a TensorFlow without it: the public, slower way
    return session.make_callable(  # type: ignore[no-any-return]
        graph.get_tensor_by_name(fetch), [graph.get_tensor_by_name(f) for f in feeds])

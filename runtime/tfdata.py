"""Parquet to tf.data, streamed in record batches so memory stays bounded.

The trainer never loads a data set whole. A `Reader` walks the Parquet row groups with
pyarrow and turns each record batch into numpy arrays; `make_dataset` wraps that walk in
a `tf.data` pipeline that re-batches to the training batch size.

A share of up to `SMALL_ROWS` rows (after balancing) is read once and trained on from memory
(`in_memory`, `memory_dataset`): for small data the per-epoch cost of re-reading Parquet
through a Python generator outweighs the epoch itself.

The train/eval split is a pure function of the row's position and the seed: row `i`
trains when `uniform(seed, i) < split`, where `uniform` is a splitmix64 hash. So the split
is deterministic for a seed, needs no pass over the data, and a row keeps its side when
other rows are added after it.

Training rows are shuffled inside a window of `SHUFFLE_ROWS` rows, and the row-group
order is shuffled every epoch (like a tf.data shuffle buffer, but vectorised). A file
sorted by class and larger than the window trains on a partly shuffled stream.

Model inputs, one named tensor per feature (also the serving signature):

    feature                              tensor
    FLOAT, INT (not categorical), BOOL   float32 [None]      nulls become NaN, read as 0
    categorical INT                      int64   [None]      nulls become -1, read as unseen
    STRING                               string  [None]      nulls become ""
    FLOAT_LIST                           float32 [None, k]   k fixed by the data
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from mlp.coltypes import ColumnType
from runtime.jobs import Column

if TYPE_CHECKING:
    import tensorflow as tf

CHUNK_ROWS = 65_536  # rows per record batch read from Parquet
SHUFFLE_ROWS = 262_144  # rows mixed together by the training shuffle
SMALL_ROWS = 100_000  # a share of at most this many rows is read once and held in memory
VOCABULARY_MAX = 10_000  # most frequent values of a STRING feature kept; the rest are unseen

Arrays = dict[str, np.ndarray]


class DataSpecError(Exception):
    """The data does not match the columns the model was declared with."""


def uniform(start: int, n: int, seed: int, salt: int = 0) -> np.ndarray:
    """splitmix64 of the row positions start..start+n, as floats in [0, 1)."""
    with np.errstate(over="ignore"):
        z = np.arange(start, start + n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = z + np.uint64((seed * 0xD1B54A32D192ED03 + salt * 0x8CB92BA72F3D8DD7) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def feature_array(col: Column, arr: pa.Array) -> np.ndarray:
    """One record-batch column as the numpy array the model input takes."""
    if col.dtype == "string":
        return pc.fill_null(arr.cast(pa.string()), "").to_numpy(zero_copy_only=False)
    if col.dtype == "int64":
        return pc.fill_null(arr.cast(pa.int64()), -1).to_numpy(zero_copy_only=False)
    if col.type is ColumnType.FLOAT_LIST:
        return _list_array(col, arr)
    return arr.cast(pa.float32()).to_numpy(zero_copy_only=False)


def _list_array(col: Column, arr: pa.Array) -> np.ndarray:
    width = col.width or 0
    lengths = pc.fill_null(pc.list_value_length(arr), width).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths.min() != width or lengths.max() != width):
        raise DataSpecError(f"FLOAT_LIST feature {col.name!r} has lists of different "
                            f"lengths ({int(lengths.min())}..{int(lengths.max())})")
    if arr.null_count:
        arr = pc.fill_null(arr, pa.scalar([0.0] * width, arr.type))
    flat = arr.flatten().cast(pa.float32()).to_numpy(zero_copy_only=False)
    return flat.reshape(len(arr), width)


@dataclass(frozen=True)
class Piece:
    """One Parquet row group and the position of its first row in the data set."""

    fragment: Any
    start: int
    rows: int


class ParquetSource:
    """A Parquet data set read row group by row group, in a stable order."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.dataset = pads.dataset(path, format="parquet")
        self.pieces: list[Piece] = []
        start = 0
        for frag in sorted(self.dataset.get_fragments(), key=lambda f: f.path):
            for rg in frag.split_by_row_group():
                n = rg.row_groups[0].num_rows
                self.pieces.append(Piece(rg, start, n))
                start += n
        self.rows = start

    @property
    def column_names(self) -> list[str]:
        return list(self.dataset.schema.names)

    def chunks(self, columns: list[str], order_seed: int | None = None
               ) -> Iterator[tuple[int, pa.RecordBatch]]:
        """(position of the first row, batch) for every record batch."""
        pieces = self.pieces
        if order_seed is not None:
            perm = np.random.default_rng(order_seed).permutation(len(pieces))
            pieces = [pieces[i] for i in perm]
        for piece in pieces:
            pos = piece.start
            for batch in piece.fragment.to_batches(schema=self.dataset.schema, columns=columns,
                                                   batch_size=CHUNK_ROWS):
                yield pos, batch
                pos += batch.num_rows


@dataclass(frozen=True)
class NumericStats:
    """Moments of the numeric scalar features over complete training rows."""

    names: tuple[str, ...]
    rows: int
    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray
    corr: np.ndarray


@dataclass(frozen=True)
class Profile:
    """What one pass over the data learns before training."""

    train_rows: int
    eval_rows: int
    labels: tuple[Any, ...] | None  # classification: sorted distinct target values
    train_classes: dict[Any, int]  # label -> training rows (before balancing)
    eval_classes: dict[Any, int]
    vocabularies: dict[str, tuple[str, ...]]
    widths: dict[str, int]
    max_ids: dict[str, int]  # categorical INT features: the largest id seen
    numeric: NumericStats
    target_mean: float = 0.0  # regression
    target_std: float = 1.0


@dataclass
class _Moments:
    names: list[str]
    rows: int = 0
    shift: np.ndarray | None = None
    s1: np.ndarray | None = None
    s2: np.ndarray | None = None
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None

    def add(self, x: np.ndarray) -> None:
        x = x[np.isfinite(x).all(axis=1)]
        if not len(x):
            return
        if self.shift is None:
            self.shift = x.mean(axis=0)
            k = x.shape[1]
            self.s1, self.s2 = np.zeros(k), np.zeros((k, k))
            self.lo, self.hi = x.min(axis=0), x.max(axis=0)
        assert self.s1 is not None and self.s2 is not None
        assert self.lo is not None and self.hi is not None
        d = x - self.shift
        self.rows += len(x)
        self.s1 += d.sum(axis=0)
        self.s2 += d.T @ d
        self.lo, self.hi = np.minimum(self.lo, x.min(axis=0)), np.maximum(self.hi, x.max(axis=0))

    def stats(self) -> NumericStats:
        k = len(self.names)
        if not self.rows or self.shift is None or self.s1 is None or self.s2 is None:
            z = np.zeros(k)
            return NumericStats(tuple(self.names), 0, z, z, z, z, np.eye(k))
        m = self.s1 / self.rows
        cov = self.s2 / self.rows - np.outer(m, m)
        var = np.clip(np.diag(cov), 0.0, None)
        std = np.sqrt(var)
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = np.nan_to_num(cov / np.outer(std, std))
        assert self.lo is not None and self.hi is not None
        return NumericStats(tuple(self.names), self.rows, m + self.shift, std * np.sqrt(
            self.rows / max(self.rows - 1, 1)), self.lo, self.hi, corr)


def _value_counts(arr: pa.Array, into: Counter[Any]) -> None:
    if len(arr):
        vc = pc.value_counts(arr)
        for v, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()):
            if v is not None:
                into[v] += c


def _target_values(target: Column, arr: pa.Array) -> pa.Array:
    kinds = {ColumnType.STRING: pa.string(), ColumnType.BOOL: pa.bool_(),
             ColumnType.INT: pa.int64()}
    return arr.cast(kinds.get(target.type, pa.float64()))


@dataclass
class Reader:
    """Reads features and target from a ParquetSource for training and evaluation."""

    source: ParquetSource
    features: tuple[Column, ...]
    target: Column
    classification: bool
    split: float
    seed: int
    balance: str = "none"
    class_counts: dict[int, int] = field(default_factory=dict)  # by class index, for balancing

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.features] + [self.target.name]

    def check_columns(self) -> None:
        have = set(self.source.column_names)
        missing = [c for c in self.columns if c not in have]
        if missing:
            raise DataSpecError(f"the data at {self.source.path} has no column "
                                f"{', '.join(map(repr, missing))} (it has {sorted(have)})")

    def _sides(self, pos: int, batch: pa.RecordBatch) -> tuple[np.ndarray, pa.Array]:
        """The train mask of a batch and its target column (nulls never train or evaluate)."""
        y = _target_values(self.target, batch.column(self.target.name))
        return uniform(pos, batch.num_rows, self.seed) < self.split, y

    def profile(self) -> Profile:
        """One pass: row counts, labels, vocabularies, list widths and numeric moments."""
        numeric = [f for f in self.features if f.dtype == "float32" and f.width is None
                   and f.type is not ColumnType.FLOAT_LIST]
        moments = _Moments([f.name for f in numeric])
        train_c: Counter[Any] = Counter()
        eval_c: Counter[Any] = Counter()
        vocab: dict[str, Counter[Any]] = {f.name: Counter() for f in self.features
                                          if f.dtype == "string"}
        widths: dict[str, int] = {}
        max_ids: dict[str, int] = {}
        ty = [0.0, 0.0, 0.0]  # regression target: n, sum, sum of squares
        for pos, batch in self.source.chunks(self.columns):
            train, y = self._sides(pos, batch)
            valid = ~np.asarray(y.is_null().to_numpy(zero_copy_only=False))
            tr, ev = train & valid, ~train & valid
            tr_mask = pa.array(tr)
            if self.classification:
                _value_counts(y.filter(tr_mask), train_c)
                _value_counts(y.filter(pa.array(ev)), eval_c)
            else:
                yv = y.to_numpy(zero_copy_only=False)[tr].astype(np.float64)
                ty[0] += len(yv)
                ty[1] += float(yv.sum())
                ty[2] += float((yv * yv).sum())
                train_c["rows"] += int(tr.sum())
                eval_c["rows"] += int(ev.sum())
            for f in self.features:
                arr = batch.column(f.name).filter(tr_mask)
                if f.name in vocab:
                    _value_counts(arr.cast(pa.string()), vocab[f.name])
                elif f.type is ColumnType.FLOAT_LIST:
                    _note_width(f.name, arr, widths)
                elif f.dtype == "int64" and len(arr):
                    top = pc.max(arr.cast(pa.int64())).as_py()
                    if top is not None:
                        max_ids[f.name] = max(max_ids.get(f.name, -1), int(top))
            if numeric:
                cols = [feature_array(f, batch.column(f.name))[tr] for f in numeric]
                moments.add(np.column_stack(cols).astype(np.float64))
        return self._profile(train_c, eval_c, vocab, widths, max_ids, moments, ty)

    def _profile(self, train_c: Counter[Any], eval_c: Counter[Any],
                 vocab: dict[str, Counter[Any]], widths: dict[str, int],
                 max_ids: dict[str, int], moments: _Moments, ty: list[float]) -> Profile:
        vocabularies = {
            name: tuple(v for v, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))
                        [:VOCABULARY_MAX])
            for name, c in vocab.items()
        }
        mean, std = 0.0, 1.0
        if ty[0]:
            mean = ty[1] / ty[0]
            std = float(np.sqrt(max(ty[2] / ty[0] - mean * mean, 0.0))) or 1.0
        if self.classification:
            labels = tuple(sorted(set(train_c) | set(eval_c)))
            return Profile(sum(train_c.values()), sum(eval_c.values()), labels, dict(train_c),
                           dict(eval_c), vocabularies, widths, max_ids, moments.stats())
        return Profile(train_c["rows"], eval_c["rows"], None, {}, {}, vocabularies, widths,
                       max_ids, moments.stats(), mean, std)

    def _rows(self, pos: int, batch: pa.RecordBatch, train: bool, balanced: bool = True
              ) -> tuple[np.ndarray, np.ndarray]:
        """Positions (within the batch) of the rows of one share, repeated or dropped by
        balancing, and the target values of the whole batch."""
        is_train, y = self._sides(pos, batch)
        if self.classification:
            labels = pa.array(list(self.target.vocabulary or ()), y.type)
            yv = pc.fill_null(pc.index_in(y, value_set=labels), -1).to_numpy(
                zero_copy_only=False).astype(np.int64)
            valid = yv >= 0
        else:
            yv = y.to_numpy(zero_copy_only=False).astype(np.float32)
            valid = np.isfinite(yv)
        keep = np.flatnonzero((is_train if train else ~is_train) & valid)
        if train and balanced and self.balance != "none" and self.classification:
            reps = self._repeats(pos + keep, yv[keep])
            keep = np.repeat(keep, reps)
        return keep, yv

    def _repeats(self, positions: np.ndarray, classes: np.ndarray) -> np.ndarray:
        counts = np.array([self.class_counts.get(i, 0) for i in
                           range(len(self.target.vocabulary or ()))], dtype=np.float64)
        present = counts[counts > 0]
        goal = present.max() if self.balance == "upsample" else present.min()
        factor = goal / np.maximum(counts[classes], 1.0)
        u = _uniform_at(positions, self.seed)
        return (np.floor(factor) + (u < factor - np.floor(factor))).astype(np.int64)

    def balanced_counts(self) -> dict[int, int]:
        """Training rows per class index after balancing (a pass over the target only)."""
        out: Counter[int] = Counter()
        for pos, batch in self.source.chunks([self.target.name]):
            keep, yv = self._rows(pos, batch, train=True)
            cls, n = np.unique(yv[keep], return_counts=True)
            for c, k in zip(cls.tolist(), n.tolist()):
                out[int(c)] += int(k)
        return dict(sorted(out.items()))

    def blocks(self, train: bool, shuffle_seed: int | None = None, balanced: bool = True
               ) -> Iterator[tuple[Arrays, np.ndarray]]:
        """(features, target) blocks of one share; shuffled when shuffle_seed is given;
        the training share rebalanced unless `balanced` is False."""
        pool: list[tuple[Arrays, np.ndarray]] = []
        pooled = 0
        rng = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
        for pos, batch in self.source.chunks(self.columns, order_seed=shuffle_seed):
            keep, yv = self._rows(pos, batch, train, balanced)
            if not len(keep):
                continue
            x = {f.name: feature_array(f, batch.column(f.name))[keep] for f in self.features}
            if rng is None:
                yield x, yv[keep]
                continue
            pool.append((x, yv[keep]))
            pooled += len(keep)
            if pooled >= SHUFFLE_ROWS:
                yield _shuffled(pool, rng)
                pool, pooled = [], 0
        if pool and rng is not None:
            yield _shuffled(pool, rng)


def _uniform_at(positions: np.ndarray, seed: int) -> np.ndarray:
    """uniform() at arbitrary row positions, with a salt apart from the split's."""
    if not len(positions):
        return np.zeros(0)
    base = int(positions.min())
    return uniform(base, int(positions.max()) - base + 1, seed, salt=1)[positions - base]


def _note_width(name: str, arr: pa.Array, widths: dict[str, int]) -> None:
    lengths = pc.list_value_length(arr).drop_null().to_numpy(zero_copy_only=False)
    if not len(lengths):
        return
    lo, hi = int(lengths.min()), int(lengths.max())
    seen = widths.setdefault(name, lo)
    if lo != hi or lo != seen:
        raise DataSpecError(f"FLOAT_LIST feature {name!r} must have lists of one length; "
                            f"found lengths {sorted({lo, hi, seen})}")


def _shuffled(pool: list[tuple[Arrays, np.ndarray]], rng: np.random.Generator
              ) -> tuple[Arrays, np.ndarray]:
    y = np.concatenate([p[1] for p in pool])
    perm = rng.permutation(len(y))
    x = {k: np.concatenate([p[0][k] for p in pool])[perm] for k in pool[0][0]}
    return x, y[perm]


def make_dataset(blocks: Callable[[], Iterator[tuple[Arrays, np.ndarray]]],
                 features: tuple[Column, ...], target_dtype: str, batch_size: int
                 ) -> tf.data.Dataset:
    """A tf.data pipeline over `blocks()` (called again for every epoch)."""
    import tensorflow as tf

    x_sig = {f.name: tf.TensorSpec(f.shape, f.dtype, name=f.name) for f in features}
    sig = (x_sig, tf.TensorSpec((None,), target_dtype))
    ds = tf.data.Dataset.from_generator(blocks, output_signature=sig)
    return ds.rebatch(batch_size).prefetch(tf.data.AUTOTUNE)


def in_memory(blocks: Iterator[tuple[Arrays, np.ndarray]], limit: int = SMALL_ROWS
              ) -> tuple[Arrays, np.ndarray] | None:
    """The blocks as one pair of arrays, or None once they hold more than `limit` rows
    (or none at all): a small share is read from Parquet once, not once per epoch."""
    xs: list[Arrays] = []
    ys: list[np.ndarray] = []
    rows = 0
    for x, y in blocks:
        rows += len(y)
        if rows > limit:
            return None
        xs.append(x)
        ys.append(y)
    if not rows:
        return None
    return {k: np.concatenate([x[k] for x in xs]) for k in xs[0]}, np.concatenate(ys)


def memory_dataset(x: Arrays, y: np.ndarray, batch_size: int, shuffle_seed: int | None = None
                   ) -> tf.data.Dataset:
    """A tf.data pipeline over arrays in memory, reshuffled every epoch when seeded."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(y), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

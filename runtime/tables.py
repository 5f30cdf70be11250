"""A job's tables as one local Parquet folder: `__row` and the columns the job takes.

    with joined(job.data, scratch) as folder:   # read `folder` with runtime.tfdata

A model's columns are stored in several tables of one source, all keyed by `__row`: the
source's raw columns in one, each wave of transformed columns in another, a model's
predictions in a third. The job joins them where it runs (here, not in the engine, and
without Spark): one table is read where it is, never copied; several are inner-joined on
`__row` with pyarrow, sorted by `__row`, and written under `scratch` for as long as the job
needs them.

The order is part of the result. The trainer splits rows by their position
(`runtime.tfdata.uniform`) and the rollout gate finds the trainer's evaluation rows the same
way, so both must read the same rows in the same order. Sorted by `__row` is the order of a
source's own table (ingest numbers its rows in order), and the order the engine's former
Spark join stored for tables small enough to broadcast (tests/runtime/test_tables.py compares
the two on examples/iris); a shuffled Spark join of larger tables gave its partitions' order.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.jobs import TableRef, TrainError, local_path

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads

ROW = "__row"
SCRATCH_PREFIX = ".tables-"  # a leading "." keeps it out of a Parquet data set read of its folder
JOINED_FILE = "part-00000.parquet"


@contextmanager
def joined(tables: Sequence[TableRef], scratch: Path | None = None) -> Iterator[Path]:
    """A local Parquet folder holding `__row` and every table's columns, for the duration of
    the `with` block: one table's own folder, or their join in a folder under `scratch` (a
    temporary one when None), removed at the end."""
    if not tables:
        raise TrainError("the job names no tables", "the engine names the tables of every column the job reads")
    if len(tables) == 1:
        path, _ = _opened(tables[0], row=False)
        yield path
        return
    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, dir=scratch) as tmp:
        yield join(tables, Path(tmp) / "table")


def join(tables: Sequence[TableRef], dest: Path) -> Path:
    """Write the inner join of `tables` on `__row`, sorted by `__row`, to the folder `dest`
    (one Parquet file: `__row`, then each table's columns in the order given)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = [_read(t) for t in tables]
    _columns_once(tables, parts)
    keys = _joined_keys(parts)
    names, arrays = [ROW], [keys.column(ROW)]
    for i, part in enumerate(parts):
        taken = part.drop_columns([ROW]).take(keys.column(_position(i)))
        names += taken.column_names
        arrays += taken.columns
    dest.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_arrays(arrays, names=names), str(dest / JOINED_FILE))
    return dest


def _joined_keys(parts: list[pa.Table]) -> pa.Table:
    """`__row` of the rows in every part, sorted, with each row's position in each part.

    Only the keys and positions go through the hash join (which cannot carry list columns);
    the columns are taken by position afterwards."""
    import numpy as np
    import pyarrow as pa

    keys: pa.Table | None = None
    for i, part in enumerate(parts):
        k = pa.table({ROW: part.column(ROW), _position(i): pa.array(np.arange(part.num_rows, dtype=np.int64))})
        keys = k if keys is None else keys.join(k, ROW, join_type="inner")
    assert keys is not None
    return keys.sort_by(ROW)


def _position(i: int) -> str:
    return f"{ROW}_position_{i}"


def _read(table: TableRef) -> pa.Table:
    """`__row` (as int64) and the table's columns (all of them when it names none)."""
    import pyarrow as pa

    _, data = _opened(table, row=True)
    names = list(table.columns) or [n for n in data.schema.names if n != ROW]
    read = data.to_table(columns=[ROW, *names])
    return read.set_column(0, ROW, read.column(ROW).cast(pa.int64()))


def _opened(table: TableRef, row: bool) -> tuple[Path, pads.Dataset]:
    """The table's local folder and data set, its columns (and `__row` with `row`) checked."""
    import pyarrow.dataset as pads

    path = local_path(table.uri)
    try:
        data = pads.dataset(str(path), format="parquet")
    except (OSError, ValueError) as e:
        raise TrainError(f"cannot read the table at {table.uri}: {e}",
                         "the provider stages each of the job's tables before it runs the job") from None
    have = set(data.schema.names)
    for name in ([ROW] if row else []) + list(table.columns):
        if name not in have:
            raise TrainError(f"the table at {table.uri} has no column {name!r} (it has {sorted(have)})",
                             "the job names, for each column, the stored table that holds it: "
                             "run `mlp apply` again to rebuild the table")
    return path, data


def _columns_once(tables: Sequence[TableRef], parts: list[pa.Table]) -> None:
    """A column taken from two tables would be ambiguous in the join: refuse it."""
    seen: dict[str, str] = {}
    for table, part in zip(tables, parts):
        for name in part.column_names[1:]:
            if name in seen:
                raise TrainError(f"column {name!r} is in two of the job's tables: {seen[name]} and {table.uri}",
                                 "take each column from one table")
            seen[name] = table.uri

"""runtime.tables: a job's tables as one local Parquet folder, joined where the job runs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.jobs import TableRef, TrainError, TrainJob, file_uri, local_path
from runtime.tables import ROW, SCRATCH_PREFIX, joined
from runtime.tfdata import ParquetSource

ROOT = Path(__file__).resolve().parents[2]


def _table(folder: Path, **columns: Any) -> str:
    folder.mkdir(parents=True)
    pq.write_table(pa.table(columns), str(folder / "part-00000.parquet"))
    return file_uri(folder)


def _as_read(folder: Path) -> pa.Table:
    """The folder's rows in the order the trainer reads them (`ParquetSource`)."""
    source = ParquetSource(str(folder))
    return pa.Table.from_batches([b for _, b in source.chunks(source.column_names)])


def test_one_table_is_its_own_folder_never_copied(tmp_path: Path) -> None:
    uri = _table(tmp_path / "t", __row=[0, 1, 2], x=[1.0, 2.0, 3.0], y=["a", "b", "c"])
    with joined((TableRef(uri, ("x",)),), tmp_path / "scratch") as data:
        assert data == tmp_path / "t"
    assert not (tmp_path / "scratch").exists()
    with joined((TableRef(str(tmp_path / "t"), ()),)) as data:  # a bare path, every column
        assert data == tmp_path / "t"


def test_several_tables_are_inner_joined_on_row_in_row_order(tmp_path: Path) -> None:
    raw = _table(tmp_path / "raw", __row=[3, 0, 2, 1, 5], x=[3.0, 0.0, 2.0, 1.0, 5.0],
                 s=["c", None, "b", "a", "e"], unused=[9, 9, 9, 9, 9])
    wave = _table(tmp_path / "wave", __row=[1, 2, 3, 4, 0],
                  v=pa.array([[1.0], [2.0, 2.5], None, [4.0], []], pa.list_(pa.float64())))
    scratch = tmp_path / "out"
    with joined((TableRef(raw, ("x", "s")), TableRef(wave, ("v",))), scratch) as data:
        assert data.parent.parent == scratch and data.parent.name.startswith(SCRATCH_PREFIX)
        got = _as_read(data)
        assert got.column_names == [ROW, "x", "s", "v"]
        assert got.to_pydict() == {ROW: [0, 1, 2, 3], "x": [0.0, 1.0, 2.0, 3.0], "s": [None, "a", "b", "c"],
                                   "v": [[], [1.0], [2.0, 2.5], None]}
        assert pq.read_schema(next(data.glob("*.parquet"))).metadata is None
    assert list(scratch.iterdir()) == []  # the join lasts as long as the job needs it


def test_a_table_given_without_columns_gives_all_of_them(tmp_path: Path) -> None:
    a = _table(tmp_path / "a", __row=[1, 0], x=[1, 0], y=[10, 0])
    b = _table(tmp_path / "b", __row=[0, 1], z=["zero", "one"])
    with joined((TableRef(a, ()), TableRef(b, ("z",))), tmp_path) as data:
        assert _as_read(data).to_pydict() == {ROW: [0, 1], "x": [0, 1], "y": [0, 10], "z": ["zero", "one"]}


@pytest.mark.parametrize(("tables", "missing", "has"), [
    ((("a", ("x", "z")),), "z", ["__row", "x"]),
    ((("a", ("x",)), ("b", ("z",))), "z", ["__row", "y"]),
    ((("a", ("x",)), ("c", ("y",))), "__row", ["y"]),
], ids=["one-table", "joined", "joined-without-row"])
def test_a_missing_column_names_the_table_and_the_column(tmp_path: Path, tables: tuple[tuple[str, tuple[str, ...]], ...],
                                                        missing: str, has: list[str]) -> None:
    uris = {"a": _table(tmp_path / "a", __row=[0], x=[1.0]), "b": _table(tmp_path / "b", __row=[0], y=[2.0]),
            "c": _table(tmp_path / "c", y=[2.0])}
    name = tables[-1][0]
    with pytest.raises(TrainError) as err, joined(tuple(TableRef(uris[t], cols) for t, cols in tables), tmp_path):
        pass
    assert err.value.message == f"the table at {uris[name]} has no column {missing!r} (it has {has})"


def test_a_column_in_two_tables_is_refused(tmp_path: Path) -> None:
    a = _table(tmp_path / "a", __row=[0], x=[1.0])
    b = _table(tmp_path / "b", __row=[0], x=[2.0])
    with pytest.raises(TrainError) as err, joined((TableRef(a, ("x",)), TableRef(b, ("x",))), tmp_path):
        pass
    assert err.value.message == f"column 'x' is in two of the job's tables: {a} and {b}"


def test_a_table_that_is_not_there_says_where(tmp_path: Path) -> None:
    uri = file_uri(tmp_path / "gone")
    with pytest.raises(TrainError) as err, joined((TableRef(uri, ("x",)),)):
        pass
    assert err.value.message.startswith(f"cannot read the table at {uri}: ")


@pytest.mark.slow
def test_iris_models_tables_joined_here_equal_sparks_join_row_for_row(tmp_path: Path, spark: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The tables the engine names for examples/iris's model (its normalized columns are in
    another table than its raw ones), joined by the job, are the rows of the Spark join the
    engine used to store, in the same order: the trainer's split, and so the gate's
    evaluation rows, are what they were."""
    from mlp import api
    from mlp.providers.local import LocalProvider

    app = tmp_path / "iris"
    shutil.copytree(ROOT / "examples" / "iris", app, ignore=shutil.ignore_patterns(".mlp"))
    hcl = app / "app.hcl"  # the test run's session (another master would restart it)
    hcl.write_text(re.sub(r'spark_master = "[^"]*"', 'spark_master = "local[2]"', hcl.read_text()))
    jobs: list[TrainJob] = []
    train = LocalProvider.train
    monkeypatch.setattr(LocalProvider, "train", lambda self, job, log: (jobs.append(job), train(self, job, log))[1])
    res = api.apply(app, variables=["epochs=1"], targets=["model.dnn"])
    assert res.ok, res.failed
    (job,) = jobs
    assert len(job.data) == 2 and all(t.columns for t in job.data)

    df = None  # the engine's former join: each table's __row and columns, inner-joined in Spark
    for t in job.data:
        part = spark.read.parquet(str(local_path(t.uri))).select(ROW, *t.columns)
        df = part if df is None else df.join(part, on=ROW, how="inner")
    assert df is not None
    df.write.parquet(str(tmp_path / "spark"))
    with joined(job.data, tmp_path / "scratch") as data:
        ours, theirs = _as_read(data), _as_read(tmp_path / "spark")
    assert ours.num_rows == 150
    assert ours.column_names == theirs.column_names
    assert ours.to_pydict() == theirs.to_pydict()

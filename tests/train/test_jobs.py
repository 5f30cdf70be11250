"""The jobs' schema (runtime.jobs): what the engine writes is what the runtime reads back,
and a job file of another shape is refused with what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from mlp.coltypes import ColumnType
from runtime.jobs import Column, GateJob, PredictJob, TableRef, TrainError, Training, TrainJob

TABLES = (TableRef("file:///store/aa/table", ("petal_width", "class")),
          TableRef("file:///store/bb/table", ("petal_length_norm",)))


def _train_job(data: tuple[TableRef, ...] = TABLES) -> TrainJob:
    return TrainJob("model.dnn", "f" * 16, True, "dnn", None, (Column("petal_width", ColumnType.FLOAT),
                    Column("petal_length_norm", ColumnType.FLOAT)), Column("class", ColumnType.STRING),
                    {"hidden_units": [16, 8]}, Training.from_json({}), "none", data, "file:///out",
                    "file:///tb", ("petal_length_norm",))


def test_a_train_job_reads_back_as_written() -> None:
    job = _train_job()
    written = job.to_json()
    assert written["data"] == [{"uri": "file:///store/aa/table", "columns": ["petal_width", "class"]},
                               {"uri": "file:///store/bb/table", "columns": ["petal_length_norm"]}]
    assert TrainJob.from_json(written) == job


def test_a_gate_job_and_a_predict_job_read_back_as_written() -> None:
    gate = GateJob("file:///old", "file:///new", TABLES, "file:///store/aa/table", "class", 0.75, 0, True)
    assert gate.to_json()["dataset"] == TrainJob.from_json(_train_job().to_json()).to_json()["data"]
    assert GateJob.from_json(gate.to_json()) == gate
    predict = PredictJob("/store/cc/bundle", TABLES, "dnn_class", "/store/dd/full")
    assert PredictJob.from_argv(predict.argv()) == predict


def test_a_job_naming_one_folder_reads_it_as_one_table_of_every_column() -> None:
    """The form of job files written before jobs named their tables."""
    assert TrainJob.from_json({**_train_job().to_json(), "data": "/data/iris"}).data == (TableRef("/data/iris", ()),)
    gate = GateJob("a", "b", (TableRef("/data/iris", ()),), "/data/iris", "class", 0.75, 0, True)
    assert GateJob.from_json({**gate.to_json(), "dataset": "/data/iris"}) == gate
    args = ["--predict", "/bundle", "/data/iris", "pred", "/out"]
    assert PredictJob.from_argv(args) == PredictJob("/bundle", (TableRef("/data/iris", ()),), "pred", "/out")


@pytest.mark.parametrize(("data", "message"), [
    ([], "a job's data is a non-empty list of tables, not []"),
    ({"uri": "x", "columns": []}, "a job's data is a non-empty list of tables, not {'uri': 'x', 'columns': []}"),
    ([{"uri": "x"}], "a table is an object with a uri and a list of column names, not {'uri': 'x'}"),
    ([{"uri": 1, "columns": []}], "a table is an object with a uri and a list of column names, "
                                  "not {'uri': 1, 'columns': []}"),
    ([{"uri": "x", "columns": "a"}], "a table is an object with a uri and a list of column names, "
                                     "not {'uri': 'x', 'columns': 'a'}"),
    ([{"uri": "x", "columns": [1]}], "a table is an object with a uri and a list of column names, "
                                     "not {'uri': 'x', 'columns': [1]}"),
    ([{"uri": "x", "columns": [], "where": "s3"}], "a table is an object with a uri and a list of column names, "
                                                   "not {'uri': 'x', 'columns': [], 'where': 's3'}"),
], ids=["empty", "an-object", "no-columns", "uri-not-a-string", "columns-not-a-list", "column-not-a-string",
        "another-key"])
def test_data_of_another_shape_is_refused(data: Any, message: str) -> None:
    with pytest.raises(TrainError) as err:
        TrainJob.from_json({**_train_job().to_json(), "data": data})
    assert err.value.message == f"the training spec is invalid: ValueError: {message}"
    with pytest.raises(ValueError) as gate:
        GateJob.from_json({**GateJob("a", "b", TABLES, "s", "class", 0.75, 0, True).to_json(), "dataset": data})
    assert str(gate.value) == message


def test_a_predict_job_with_unreadable_tables_is_refused() -> None:
    with pytest.raises(ValueError) as err:
        PredictJob.from_argv(["--predict", "/bundle", '[{"uri": "x"}]', "pred", "/out"])
    assert str(err.value) == "a table is an object with a uri and a list of column names, not {'uri': 'x'}"

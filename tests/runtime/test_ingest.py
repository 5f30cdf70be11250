"""Ingest against real Spark: formats, schema, violation counts, policies, samples."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from mlp.errors import DataError
from runtime.ingest import KINDS, ingest

PEOPLE = """id,age,score,city,member
1,34,0.5,paris,true
2,abc,0.7,london,false
3,,0.2,paris,yes
4,150,0.9,rome,no
5,20,1.5,berlin,true
6,41,NaN,paris,maybe
7,5.0,0.25,rome,f
"""


@pytest.fixture
def people(tmp_path, write_csv, make_source, make_raw):
    write_csv("data/people.csv", PEOPLE)
    source = make_source("people", path="data/people.csv")
    cols = [make_raw("id", "INT"), make_raw("age", "INT", min=0, max=120),
            make_raw("score", "FLOAT", max=1), make_raw("town", "STRING", column="city",
                                                         values=["paris", "london", "rome"]),
            make_raw("member", "BOOL")]
    return source, cols


def test_csv_typed_columns_named_by_block(spark, tmp_path, people):
    source, cols = people
    result = ingest(spark, replace(source, invalid="drop"), cols, tmp_path)
    assert result.df.schema.simpleString() == \
        "struct<id:bigint,age:bigint,score:double,town:string,member:boolean>"
    assert sorted(result.df.collect()) == [(1, 34, 0.5, "paris", True), (7, 5, 0.25, "rome", False)]
    assert (result.rows_read, result.rows_kept) == (7, 2)
    assert result.sample_rows(1) in ([{"id": 1, "age": 34, "score": 0.5, "town": "paris",
                                       "member": True}],
                                     [{"id": 7, "age": 5, "score": 0.25, "town": "rome",
                                       "member": False}])


def test_each_violation_kind_counted(spark, tmp_path, people):
    source, cols = people
    result = ingest(spark, replace(source, invalid="drop"), cols, tmp_path)
    assert result.violations == {
        "id": {"cast": 0, "null": 0, "min": 0, "max": 0, "values": 0},
        "age": {"cast": 1, "null": 1, "min": 0, "max": 1, "values": 0},
        "score": {"cast": 0, "null": 1, "min": 0, "max": 1, "values": 0},  # NaN is missing
        "town": {"cast": 0, "null": 0, "min": 0, "max": 0, "values": 1},
        "member": {"cast": 1, "null": 0, "min": 0, "max": 0, "values": 0},
    }


def test_invalid_fail_reports_counts_and_rows(spark, tmp_path, people):
    source, cols = people
    with pytest.raises(DataError) as e:
        ingest(spark, source, cols, tmp_path)
    assert e.value.summary == 'source "people": rows break the raw column rules'
    assert e.value.detail == "\n".join([
        f"app.hcl:3: 7 rows read from {tmp_path}/data/people.csv",
        '  raw_column "age" (column "age"): 1 not INT, 1 null (required), 1 above max 120',
        '  raw_column "score" (column "score"): 1 null (required), 1 above max 1',
        '  raw_column "town" (column "city"): 1 not in values',
        '  raw_column "member" (column "member"): 1 not BOOL',
        "first 4 offending rows:",
        '  {"id": "2", "age": "abc", "score": "0.7", "city": "london", "member": "false"}'
        "  <- age not INT",
        '  {"id": "4", "age": "150", "score": "0.9", "city": "rome", "member": "no"}'
        "  <- age above max 120",
        '  {"id": "5", "age": "20", "score": "1.5", "city": "berlin", "member": "true"}'
        "  <- score above max 1; town not in values",
        '  {"id": "6", "age": "41", "score": "NaN", "city": "paris", "member": "maybe"}'
        "  <- member not BOOL",
    ])
    assert e.value.hint.startswith('set invalid = "drop" in source "people"')


def test_missing_fail_names_null_columns(spark, tmp_path, people):
    source, cols = people
    with pytest.raises(DataError) as e:
        ingest(spark, replace(source, invalid="drop", missing="fail"), cols, tmp_path)
    lines = e.value.detail.splitlines()
    assert "first 2 offending rows:" in lines
    assert lines[-2:] == [
        '  {"id": "3", "age": null, "score": "0.2", "city": "paris", "member": "yes"}'
        "  <- age null (required)",
        '  {"id": "6", "age": "41", "score": "NaN", "city": "paris", "member": "maybe"}'
        "  <- score null (required)",
    ]
    assert e.value.hint.startswith('set missing = "drop" in source "people"')


def test_missing_drop_keeps_optional_nulls(spark, tmp_path, write_csv, make_source, make_raw):
    write_csv("d.csv", "a,b\n1,x\n,y\n3,\n")
    cols = [make_raw("a", "INT"), make_raw("b", "STRING", required=False)]
    result = ingest(spark, make_source(path="d.csv"), cols, tmp_path)
    assert sorted(result.df.collect(), key=str) == [(1, "x"), (3, None)]
    assert result.violations["a"]["null"] == 1 and result.violations["b"]["null"] == 0


def test_one_counting_job_whatever_the_columns(spark, tmp_path, people, jobs_of):
    source, cols = people
    source = replace(source, invalid="drop")
    _, one = jobs_of(spark, lambda: ingest(spark, source, cols[:1], tmp_path))
    _, five = jobs_of(spark, lambda: ingest(spark, source, cols, tmp_path))
    assert one == five == 2  # the CSV header, then the one counting pass


def test_csv_delimiter_and_no_header(spark, tmp_path, write_csv, make_source, make_raw):
    write_csv("d.csv", "1;a\n2;b\n")
    source = make_source(path="d.csv", header=False, delimiter=";")
    result = ingest(spark, source, [make_raw("n", "INT", column="_c0"),
                                    make_raw("s", column="_c1")], tmp_path)
    assert sorted(result.df.collect()) == [(1, "a"), (2, "b")]


def test_json_lines(spark, tmp_path, write_jsonl, make_source, make_raw):
    write_jsonl("d.json", [{"n": 1, "x": 2.5, "s": "a", "b": True},
                           {"n": "7", "x": 3, "s": 5, "b": False},
                           {"n": 2.5, "x": 1, "s": "c", "b": True}])
    cols = [make_raw("n", "INT"), make_raw("x", "FLOAT"), make_raw("s"), make_raw("b", "BOOL")]
    result = ingest(spark, make_source(format="json", path="d.json", invalid="drop"), cols,
                    tmp_path)
    assert sorted(result.df.collect()) == [(1, 2.5, "a", True), (7, 3.0, "5", False)]
    assert result.violations["n"]["cast"] == 1


def _with_broken_line(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('{"n": 1, "s": "a"}\n{"n": 2, "s": oops}\n\n{"n": 3, "s": "c"}\n')


def test_json_lines_that_are_not_objects_are_malformed_not_nulls(spark, tmp_path, make_source,
                                                                 make_raw):
    _with_broken_line(tmp_path)
    cols = [make_raw("n", "INT"), make_raw("s")]
    result = ingest(spark, make_source(format="json", path="d.json", invalid="drop",
                                       missing="fail"), cols, tmp_path)
    assert sorted(result.df.collect()) == [(1, "a"), (3, "c")]
    assert (result.rows_read, result.rows_kept, result.malformed) == (3, 2, 1)
    assert result.violations == {"n": dict.fromkeys(KINDS, 0), "s": dict.fromkeys(KINDS, 0)}


def test_json_lines_that_are_not_objects_fail_unless_dropped(spark, tmp_path, make_source,
                                                             make_raw):
    _with_broken_line(tmp_path)
    with pytest.raises(DataError) as e:
        ingest(spark, make_source(format="json", path="d.json"), [make_raw("n", "INT")],
               tmp_path)
    assert e.value.summary == 'source "data": lines are not JSON objects'
    assert e.value.detail == "\n".join([
        f"app.hcl:3: 3 rows read from {tmp_path}/d.json",
        "  1 line is not a JSON object:",
        '    {"n": 2, "s": oops}'])
    assert e.value.hint == ('set invalid = "drop" in source "data" to drop lines that are not '
                            "JSON objects, or fix them in the file")


def test_json_key_found_beyond_the_first_lines(spark, tmp_path, write_jsonl, make_source,
                                               make_raw):
    write_jsonl("d.json", [{"a": i} for i in range(120)] + [{"a": 0, "late": "x"}])
    cols = [make_raw("a", "INT"), make_raw("late", required=False)]
    result = ingest(spark, make_source(format="json", path="d.json"), cols, tmp_path)
    assert result.rows_kept == 121


def test_parquet_read_and_cast(spark, tmp_path, make_source, make_raw):
    (tmp_path / "p").mkdir()
    pd.DataFrame({"n": [1.0, 2.5, 3.0], "s": ["a", "b", None], "k": [1, 2, 3]}).to_parquet(
        tmp_path / "p" / "part-0.parquet")
    cols = [make_raw("n", "INT"), make_raw("s", required=False), make_raw("k", "FLOAT")]
    result = ingest(spark, make_source(format="parquet", path="p", invalid="drop"), cols, tmp_path)
    assert sorted(result.df.collect(), key=str) == [(1, "a", 1.0), (3, None, 3.0)]
    assert result.violations["n"]["cast"] == 1


def test_glob_path(spark, tmp_path, write_csv, make_source, make_raw):
    write_csv("parts/a.csv", "v\n1\n2\n")
    write_csv("parts/b.csv", "v\n3\n")
    result = ingest(spark, make_source(path="parts/*.csv"), [make_raw("v", "INT")], tmp_path)
    assert sorted(r.v for r in result.df.collect()) == [1, 2, 3]


def test_missing_file(spark, tmp_path, make_source, make_raw):
    with pytest.raises(DataError) as e:
        ingest(spark, make_source(path="data/nope.csv"), [make_raw("v")], tmp_path)
    assert e.value.summary == 'source "data": no data at "data/nope.csv"'
    assert e.value.detail == (f'app.hcl:3: path "data/nope.csv" resolves to '
                              f"{tmp_path}/data/nope.csv, which matches no file or folder")
    assert e.value.hint == "fix `path` (it is relative to the app folder) or put the data there"


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_absent_column_names_the_file_columns(spark, tmp_path, write_csv, write_jsonl,
                                              make_source, make_raw, fmt):
    if fmt == "csv":
        write_csv("d", "a,b\n1,2\n")
    else:
        write_jsonl("d", [{"a": 1, "b": 2}])
    with pytest.raises(DataError) as e:
        ingest(spark, make_source(format=fmt, path="d"), [make_raw("c", column="C")], tmp_path)
    assert e.value.summary == 'raw_column "c": column "C" is not in source "data"'
    assert e.value.detail == f'app.hcl:10: {tmp_path}/d has the columns "a", "b"'


def test_seeded_sample_is_fixed(spark, tmp_path, write_csv, make_source, make_raw):
    write_csv("one/d.csv", "v,w\n" + "".join(f"{i},w{i % 7}\n" for i in range(200)))
    write_csv("two/a.csv", "v,w\n" + "".join(f"{i},w{i % 7}\n" for i in range(0, 200, 2)))
    write_csv("two/b.csv", "v,w\n" + "".join(f"{i},w{i % 7}\n" for i in range(1, 200, 2)))
    cols = [make_raw("v", "INT"), make_raw("w")]
    source = make_source(path="one", sample=10)

    def rows(src, sample=None):
        result = ingest(spark, src, cols, tmp_path, sample=sample)
        assert result.rows_kept == result.df.count()
        return sorted(result.df.collect())

    first = rows(source)
    assert len(first) == 10 and first != sorted(rows(source, sample=0))[:10]
    assert rows(source) == first
    assert rows(replace(source, path="two")) == first  # same rows, whatever the file layout
    assert len(rows(source, sample=0)) == 200
    assert len(rows(source, sample=3)) == 3


def test_a_wide_source_is_counted_without_overflowing_spark(spark, tmp_path, write_csv, make_source, make_raw):
    names = [f"c{i}" for i in range(150)]
    rows = [",".join(str(i + r) for i in range(150)) for r in range(5)]
    write_csv("data/wide.csv", ",".join(names) + "\n" + "\n".join(rows) + "\n")
    cols = [make_raw(n, "FLOAT", min=0, max=1000) for n in names]
    res = ingest(spark, make_source("wide", path="data/wide.csv"), cols, tmp_path)
    assert res.rows_read == res.rows_kept == 5
    assert all(v["max"] == 0 for v in res.violations.values())

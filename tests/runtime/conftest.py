"""Builders for the block objects and data files the runtime tests use."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlp.coltypes import ColumnType
from mlp.config.blocks import RawColumn, Source
from mlp.diagnostics import SourcePos
from mlp.graph.address import Address, Kind

SourceFactory = Callable[..., Source]
RawFactory = Callable[..., RawColumn]


@pytest.fixture
def make_source() -> SourceFactory:
    def make(name: str = "data", **kw: Any) -> Source:
        return Source(Address.of(Kind.SOURCE, name), SourcePos("app.hcl", 3), {}, **kw)
    return make


@pytest.fixture
def make_raw() -> RawFactory:
    def make(name: str, type: str = "STRING", **kw: Any) -> RawColumn:
        kw.setdefault("column", name)
        if "values" in kw and kw["values"] is not None:
            kw["values"] = tuple(kw["values"])
        return RawColumn(Address.of(Kind.RAW_COLUMN, name), SourcePos("app.hcl", 10), {},
                         type=ColumnType(type), **kw)
    return make


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(rel: str, text: str) -> Path:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path
    return write


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Callable[[str, list[dict[str, Any]]], Path]:
    def write(rel: str, records: list[dict[str, Any]]) -> Path:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return path
    return write


@pytest.fixture
def write_code(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(name: str, text: str) -> Path:
        path = tmp_path / "code" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path
    return write


def count_jobs(spark: Any, fn: Callable[[], Any]) -> tuple[Any, int]:
    """fn's result and the number of Spark jobs it ran. Adaptive execution is off while it
    runs, since it submits a job per shuffle stage: so one job is one action."""
    sc = spark.sparkContext
    group = f"count-{uuid.uuid4()}"
    sc.setJobGroup(group, group)
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    try:
        result = fn()
    finally:
        spark.conf.unset("spark.sql.adaptive.enabled")
        sc.setLocalProperty("spark.jobGroup.id", None)
    return result, len(sc.statusTracker().getJobIdsForGroup(group))


@pytest.fixture
def jobs_of() -> Callable[[Any, Callable[[], Any]], tuple[Any, int]]:
    return count_jobs

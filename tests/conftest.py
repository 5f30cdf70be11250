"""Shared fixtures: one Spark session for the whole test run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    from runtime.sparkenv import get_spark, stop_spark

    # Test jobs are tiny: a JVM with only the quick JIT starts and runs them faster. The
    # variable is set only while the driver JVM starts.
    before = os.environ.get("JAVA_TOOL_OPTIONS")
    os.environ["JAVA_TOOL_OPTIONS"] = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
    try:
        session = get_spark("local[2]", log_file=tmp_path_factory.mktemp("spark") / "spark.log")
    finally:
        if before is None:
            del os.environ["JAVA_TOOL_OPTIONS"]
        else:
            os.environ["JAVA_TOOL_OPTIONS"] = before
    yield session
    stop_spark()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="Rewrite the expected files under tests/golden/ instead of comparing with them.")

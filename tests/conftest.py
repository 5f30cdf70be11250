"""Shared fixtures: one Spark session for the whole test run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def _spark_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from runtime.sparkenv import stop_spark

    yield tmp_path_factory.mktemp("spark") / "spark.log"
    stop_spark()


@pytest.fixture(scope="module")
def spark(_spark_log: Path) -> SparkSession:
    """The test run's one Spark session, asked for again by each test module: an in-process
    apply of an app on another master (iris says local[*]) stops it, and this starts it again."""
    from runtime.sparkenv import get_spark

    # Test jobs are tiny: a JVM with only the quick JIT starts and runs them faster. The
    # variable is set only while the driver JVM starts.
    before = os.environ.get("JAVA_TOOL_OPTIONS")
    os.environ["JAVA_TOOL_OPTIONS"] = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
    try:
        return get_spark("local[2]", log_file=_spark_log)
    finally:
        if before is None:
            del os.environ["JAVA_TOOL_OPTIONS"]
        else:
            os.environ["JAVA_TOOL_OPTIONS"] = before


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="Rewrite the expected files under tests/golden/ instead of comparing with them.")

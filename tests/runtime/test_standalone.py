"""A `spark://` master: a real standalone master and worker started from the pyspark
package, an ingest and aggregates run through them in a subprocess (this process keeps
its local session), and both daemons stopped whatever happens."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyspark

from runtime.sparkenv import java_home

SPARK_HOME = Path(pyspark.__file__).parent
ROOT = Path(__file__).resolve().parents[2]
MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"

JOB = """
import json, sys
from pathlib import Path
from mlp.coltypes import ColumnType
from mlp.config.blocks import RawColumn, Source
from mlp.diagnostics import SourcePos
from mlp.graph.address import Address, Kind
from runtime.aggregates import AggJob, compute_aggregates
from runtime.ingest import ingest
from runtime.sparkenv import get_spark

master, app_dir, log = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
spark = get_spark(master, log_file=log)
pos = SourcePos("app.hcl", 1)
source = Source(Address.of(Kind.SOURCE, "d"), pos, {}, path="d.csv")
cols = [RawColumn(Address.of(Kind.RAW_COLUMN, n), pos, {}, column=n, type=t)
        for n, t in (("v", ColumnType.FLOAT), ("k", ColumnType.STRING))]
result = ingest(spark, source, cols, app_dir)
values = compute_aggregates(spark, result.df, [
    AggJob("mean", "mean", {"column": "v"}, {}, None, ColumnType.FLOAT),
    AggJob("vocab", "index_string", {"column": "k"}, {}, None, ColumnType.STRING_LIST),
])
print(json.dumps({"master": spark.sparkContext.master, "rows": result.rows_kept, **values}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def daemon(env: dict[str, str], action: str, cls: str, *args: str) -> None:
    subprocess.run(["bash", str(SPARK_HOME / "sbin" / "spark-daemon.sh"), action, cls, "1",
                    *args], env=env, check=True, capture_output=True, timeout=60)


def wait_for_worker(webui: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{webui}/json/", timeout=2) as r:
                if json.load(r).get("aliveworkers", 0) >= 1:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError("the standalone worker did not register with the master")


@contextmanager
def standalone_cluster(tmp_path: Path) -> Iterator[tuple[str, int, dict[str, str]]]:
    """A standalone master and one worker (2 cores, 2 GB), stopped whatever happens: the
    master's URL, its web UI port, and the environment a driver for it runs in."""
    dirs = {name: tmp_path / name for name in ("logs", "pids", "work")}
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "JAVA_HOME": java_home(),
           "SPARK_LOG_DIR": str(dirs["logs"]), "SPARK_PID_DIR": str(dirs["pids"]),
           "SPARK_WORKER_DIR": str(dirs["work"]), "SPARK_IDENT_STRING": f"mlp-test-{os.getpid()}",
           "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": str(ROOT),
           # small, short-lived JVMs start faster with the quick JIT only
           "JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}
    port, webui = free_port(), free_port()
    master = f"spark://127.0.0.1:{port}"
    try:
        daemon(env, "start", MASTER, "--host", "127.0.0.1", "--port", str(port),
               "--webui-port", str(webui))
        daemon(env, "start", WORKER, master, "--host", "127.0.0.1", "--webui-port",
               str(free_port()), "--cores", "2", "--memory", "2g")
        wait_for_worker(webui, time.monotonic() + 60)
        yield master, webui, env
    finally:
        daemon(env, "stop", WORKER)
        daemon(env, "stop", MASTER)


def test_ingest_and_aggregate_on_a_standalone_cluster(tmp_path):
    (tmp_path / "d.csv").write_text("v,k\n1.5,a\n2.5,b\n3.5,a\n")
    with standalone_cluster(tmp_path) as (master, _, env):
        done = subprocess.run([sys.executable, "-c", JOB, master, str(tmp_path),
                               str(tmp_path / "driver.log")], env=env, capture_output=True,
                              text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == \
        {"master": master, "rows": 3, "mean": 2.5, "vocab": ["a", "b"]}

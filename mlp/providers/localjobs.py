"""The runtime's jobs as child processes on this machine: how the local provider trains,
predicts and runs the rollout gate.

Each job is written as JSON (`runtime.jobs`) and run as `python -m runtime.<job> SPEC`, the
command a pod on a cluster runs too. The trainer's stdout is a stream of JSON-lines events
(epochs, warnings, the final `done` or `error`); its stderr goes to the block's log.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlp.errors import ApplyError
from mlp.providers import JobLog

if TYPE_CHECKING:
    from mlp.engine.datarun import DataRun

ROOT = Path(__file__).resolve().parents[2]  # the folder holding `mlp` and `runtime`


def run_trainer(block: str, args: list[str], log: JobLog) -> dict[str, Any]:
    """Run `python -m runtime.train ARGS`, streaming its events to the log; return its
    `done` event, or raise ApplyError with the trainer's own message."""
    cmd = [sys.executable, "-m", "runtime.train", *args]
    log.write("train: " + " ".join(cmd[2:]), False)
    with open(log.path, "a") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=str(ROOT))
        error: dict[str, Any] = {}
        done: dict[str, Any] = {}
        assert proc.stdout is not None
        for line in proc.stdout:
            ev = event(line)
            kind = ev.get("event") if ev is not None else None
            if ev is None:
                log.write(line.rstrip(), False)
            elif kind == "epoch":
                log.write(epoch_line(ev), True)
            elif kind == "warning":
                log.write(f"warning: {ev.get('message')} Fix: {ev.get('fix')}", True)
            elif kind == "error":
                error = ev
            elif kind == "done":
                done = ev
            else:
                log.write(json.dumps(ev), False)
        code = proc.wait()
    if code != 0:
        msg = error.get("message") or f"the trainer exited with code {code}"
        raise ApplyError(f"{block}: {msg}", f"See the log: mlp logs {block}", str(error.get("hint", "")))
    return done


def run_gate(block: str, spec: dict[str, Any], log: JobLog) -> dict[str, Any]:
    """Run `python -m runtime.gate SPEC`; its last stdout line is the score."""
    with tempfile.TemporaryDirectory(prefix="mlp-gate-") as tmp:
        path = Path(tmp) / "gate.json"
        path.write_text(json.dumps(spec))
        with open(log.path, "a") as stderr:
            proc = subprocess.run([sys.executable, "-m", "runtime.gate", str(path)], stdout=subprocess.PIPE,
                                  stderr=stderr, text=True, cwd=str(ROOT))
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise ApplyError(f"{block}: the rollout gate could not score the models", f"See the log: mlp logs {block}",
                         'Fix what the log says, or set promote = "always" to swap without the gate.')
    try:
        answer = json.loads(lines[-1])
        if not isinstance(answer, dict):
            raise ValueError("not an object")
        return answer
    except ValueError as e:
        raise ApplyError(f"{block}: the rollout gate answered {lines[-1][:200]!r}", str(e)) from None


def run_data_job(run: DataRun, job_file: Path, log: JobLog) -> None:
    """Run a data unit as `python -m runtime.data JOB`, the command a driver pod runs, and
    replay its events into the apply. Its stderr (Spark's own output) goes to `log`."""
    with open(log.path, "a") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "runtime.data", str(job_file)], stdout=subprocess.PIPE,
                                stderr=stderr, text=True, cwd=str(ROOT))
        assert proc.stdout is not None
        ended = False
        for line in proc.stdout:
            ev = event(line)
            if ev is None:
                log.write(line.rstrip(), False)
                continue
            ended = ended or ev.get("event") in ("done", "error")
            run.replay(ev)
        code = proc.wait()
    if code != 0 or not ended:
        raise ApplyError(f"{run.unit.name}: the data job exited with code {code}", f"See the log: {log.path}")


def event(line: str) -> dict[str, Any] | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        ev = json.loads(line)
    except ValueError:
        return None
    return ev if isinstance(ev, dict) else None


def epoch_line(ev: dict[str, Any]) -> str:
    parts = [f"epoch {ev.get('epoch')}/{ev.get('epochs')}"]
    for k in ("loss", "val_loss"):
        if isinstance(ev.get(k), (int, float)):
            parts.append(f"{k} {ev[k]:.4f}")
    for k, v in sorted((ev.get("metrics") or {}).items()):
        if isinstance(v, (int, float)):
            parts.append(f"{k} {v:.4f}")
    return "  ".join(parts)

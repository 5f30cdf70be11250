"""What a pod runs around the runtime's commands, run for real against moto's S3 server:
`stage pull` brings the run's inputs in, `stage run --push` runs the command and sends its
output to the bucket only when it succeeded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from k8s_support import PLUGIN, MemoryStore
from mlp.errors import StateError
from mlp_kubernetes.storage import Storage
from mlp_kubernetes.transfer import pull

STAGE = [sys.executable, "-m", "mlp_kubernetes.stage"]


def environ(moto: object, prefix: str) -> dict[str, str]:
    storage = Storage("s3", moto.settings(prefix))  # type: ignore[attr-defined]
    env = {**os.environ, **moto.environ, "MLP_BACKEND": storage.env_json()}  # type: ignore[attr-defined]
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PLUGIN), env.get("PYTHONPATH", "")) if p)
    return env


def store(moto: object, prefix: str):  # type: ignore[no-untyped-def]
    from mlp.state.backends import open_store

    return open_store("s3", moto.settings(prefix), moto.environ)  # type: ignore[attr-defined]


def test_stage_pull_brings_a_runs_inputs_into_the_pod(moto: object, tmp_path: Path) -> None:
    s = store(moto, "pull")
    (tmp_path / "job.json").write_text('{"job": "train"}')
    s.upload_file("k8s/runs/train/model.dnn/in/job.json", tmp_path / "job.json")
    s.upload_file("k8s/runs/train/model.dnn/in/data/part-0.parquet", tmp_path / "job.json")
    s.upload_file("k8s/plan.json", tmp_path / "job.json")
    run = tmp_path / "work" / "run"
    done = subprocess.run([*STAGE, "pull", "k8s/runs/train/model.dnn/in/", str(run), "k8s/plan.json",
                           str(tmp_path / "work" / "plan" / "plan.json")],
                          env=environ(moto, "pull"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()) == ["data/part-0.parquet", "job.json"]
    assert (tmp_path / "work" / "plan" / "plan.json").read_text() == '{"job": "train"}'
    assert "stage: pulled 2 files (32 bytes) from s3://mlp-apps/pull/k8s/runs/train/model.dnn/in/" in done.stderr


def test_stage_run_pushes_what_the_command_made_once_it_succeeded(moto: object, tmp_path: Path) -> None:
    out = tmp_path / "out"
    make = f"import pathlib; pathlib.Path({str(out)!r}, 'result.json').write_text('{{}}'); print('trained')"
    done = subprocess.run([*STAGE, "run", "--push", str(out), "k8s/runs/train/model.dnn/out/", "--",
                           sys.executable, "-c", make], env=environ(moto, "push"), capture_output=True, text=True,
                          timeout=120)
    assert (done.returncode, done.stdout) == (0, "trained\n"), done.stderr
    assert store(moto, "push").list("k8s/runs/train/model.dnn/out/") == ["k8s/runs/train/model.dnn/out/result.json"]


def test_stage_run_also_writes_the_commands_stdout_into_the_pushed_folder(moto: object, tmp_path: Path) -> None:
    out = tmp_path / "out"
    say = "import json, sys; print('scoring', file=sys.stderr); print(json.dumps({'metric': 'accuracy'}))"
    done = subprocess.run([*STAGE, "run", "--push", str(out), "k8s/runs/gate/api.iris/out/", "--stdout",
                           str(out / "stdout.txt"), "--", sys.executable, "-c", say], env=environ(moto, "tee"),
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, '{"metric": "accuracy"}\n'), done.stderr
    assert "scoring" in done.stderr
    s = store(moto, "tee")
    assert s.list("k8s/runs/gate/api.iris/out/") == ["k8s/runs/gate/api.iris/out/stdout.txt"]
    assert s.get("k8s/runs/gate/api.iris/out/stdout.txt") == b'{"metric": "accuracy"}\n'


@pytest.mark.parametrize("args", [["--push", "/tmp/o", "n/", "--stdout", "--", "true"], ["--push", "/tmp/o", "n/"],
                                  ["--push", "/tmp/o", "n/", "--stdout", "f", "true"]],
                         ids=["no file", "no command", "no --"])
def test_stage_run_without_its_parts_prints_the_usage(args: list[str]) -> None:
    from mlp_kubernetes.stage import main

    assert main(["run", *args]) == 2


def test_stage_run_pushes_nothing_when_the_command_fails_and_keeps_its_code(moto: object, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "partial").write_text("half")
    done = subprocess.run([*STAGE, "run", "--push", str(out), "k8s/runs/train/model.dnn/out/", "--",
                           sys.executable, "-c", "raise SystemExit(3)"], env=environ(moto, "fail"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    assert store(moto, "fail").list("k8s/") == []


def test_a_pod_without_its_backend_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLP_BACKEND"}
    env["PYTHONPATH"] = str(PLUGIN)
    done = subprocess.run([*STAGE, "pull", "k8s/plan.json", str(tmp_path / "plan.json")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == "stage: MLP_BACKEND is not set"


@pytest.mark.parametrize("name", ["k8s/in/../../etc/passwd", "k8s/in//x"], ids=["dot-dot", "empty part"])
def test_an_object_name_that_leaves_its_folder_is_refused(name: str, tmp_path: Path) -> None:
    s = MemoryStore()
    s.objects[name] = b"x"
    with pytest.raises(StateError) as err:
        pull(s, "k8s/in/", tmp_path / "in")  # type: ignore[arg-type]
    assert err.value.summary == f"The object name {name.removeprefix('k8s/in/')!r} leaves its folder"
    assert not (tmp_path / "etc").exists()


def test_nothing_to_pull_is_an_error_naming_the_place(tmp_path: Path) -> None:
    with pytest.raises(StateError) as err:
        pull(MemoryStore(), "k8s/runs/train/model.dnn/in/", tmp_path)  # type: ignore[arg-type]
    assert err.value.summary == "Nothing under s3://b/k8s/runs/train/model.dnn/in/"

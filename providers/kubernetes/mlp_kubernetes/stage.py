"""What a pod runs around the runtime's commands: its inputs in, its outputs out.

    python -m mlp_kubernetes.stage pull NAME PATH [NAME PATH ...]
    python -m mlp_kubernetes.stage run --push DIR NAME [--stdout FILE] -- COMMAND [ARG ...]

NAME is an object of the backend's bucket (under its prefix), or a folder when it ends in
"/". The backend comes from `MLP_BACKEND` (the backend block as JSON, `mlp_kubernetes.storage`);
credentials from the SDK's own chain. `run` runs COMMAND as a child process, passing it
SIGTERM and SIGINT, and once it exits 0 uploads the folder DIR to NAME; it exits with the
command's code (1 when the upload fails). Progress and errors go to stderr, so the
command's stdout (the runtime's JSON events) stays its own; with `--stdout`, each line of it
is also written to FILE (inside DIR, it is uploaded with the rest: the rollout gate's answer).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from mlp.errors import MlpError
from mlp.state.backends.objects import ObjectStore
from mlp_kubernetes.storage import BACKEND_ENV, Storage, backend_of_env
from mlp_kubernetes.transfer import Moved, pull, push

USAGE = ("usage: python -m mlp_kubernetes.stage pull NAME PATH [NAME PATH ...]\n"
         "       python -m mlp_kubernetes.stage run --push DIR NAME [--stdout FILE] -- COMMAND [ARG ...]")


def _store(storage: Storage) -> ObjectStore:
    from mlp.state.backends import open_store

    return open_store(storage.kind, storage.settings, os.environ)


def _storage() -> Storage:
    text = os.environ.get(BACKEND_ENV)
    if not text:
        raise MlpError(f"{BACKEND_ENV} is not set", "The pod's manifest gives the backend block in it.",
                       "Render the manifests again with mlp, or set it to the backend block as JSON")
    try:
        return backend_of_env(text)
    except ValueError as e:
        raise MlpError(f"{BACKEND_ENV} is not a backend block", str(e)) from None


def _say(verb: str, moved: Moved, where: str) -> None:
    print(f"stage: {verb} {moved.files} file{'s' if moved.files != 1 else ''} ({moved.bytes} bytes) {where}",
          file=sys.stderr, flush=True)


def pull_all(pairs: list[str]) -> int:
    if not pairs or len(pairs) % 2:
        print(USAGE, file=sys.stderr)
        return 2
    storage = _storage()
    store = _store(storage)
    for name, path in zip(pairs[::2], pairs[1::2]):
        _say("pulled", pull(store, name, Path(path)), f"from {storage.url(name)} into {path}")
    return 0


def run_then_push(args: list[str]) -> int:
    tee = args[4] if args[3:4] == ["--stdout"] and len(args) > 5 else ""
    rest = args[5:] if tee else args[3:]
    if len(args) < 3 or args[0] != "--push" or len(rest) < 2 or rest[0] != "--":
        print(USAGE, file=sys.stderr)
        return 2
    folder, name, command = Path(args[1]), args[2], rest[1:]
    storage = _storage()  # before the command runs: a pod without a backend fails at once
    folder.mkdir(parents=True, exist_ok=True)
    code = _run(command, Path(tee) if tee else None)
    if code != 0:
        return code
    _say("pushed", push(_store(storage), folder, name), f"from {folder} to {storage.url(name)}")
    return 0


def _run(command: list[str], tee: Path | None = None) -> int:
    child = subprocess.Popen(command, stdout=subprocess.PIPE if tee else None, text=True)

    def forward(signum: int, frame: FrameType | None) -> None:
        child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    if tee is not None and child.stdout is not None:
        tee.parent.mkdir(parents=True, exist_ok=True)
        with tee.open("w", encoding="utf-8") as copy:
            for line in child.stdout:  # to the pod's log as it comes, and into the file
                sys.stdout.write(line)
                sys.stdout.flush()
                copy.write(line)
    code = child.wait()
    return code if code >= 0 else 128 - code  # killed by a signal: the shell's 128 + N


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if args[:1] == ["pull"]:
            return pull_all(args[1:])
        if args[:1] == ["run"]:
            return run_then_push(args[1:])
        print(USAGE, file=sys.stderr)
        return 2
    except MlpError as e:
        print(f"stage: {e.render()}", file=sys.stderr, flush=True)
        return 1
    except OSError as e:
        print(f"stage: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())

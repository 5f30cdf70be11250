"""The local provider's API processes: start, reload, check and stop `runtime.serve`.

A server is started in its own session (setsid) and is not the caller's child, so it
outlives the `mlp` command that started it and a Ctrl-C in the terminal does not reach
it; its output goes to a log file. State keeps the `ServerHandle` (pid, port, url) so that a later command can
reload a new model into it or stop it.

`POST /admin/reload` of a server started with a `token` (in its environment, never on its
command line, where other users could read it) answers only requests that carry
`Authorization: Bearer <token>`: another local user or process cannot swap the model.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mlp.errors import ApplyError

START_TIMEOUT = 120.0  # seconds until /healthz must answer 200 (TensorFlow import and load)
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
LOG_TAIL_LINES = 30
TOKEN_ENV = "MLP_ADMIN_TOKEN"  # the server's /admin/reload token (runtime.serve reads it)
_ROOT = Path(__file__).resolve().parents[1]  # the folder holding the runtime package


@dataclass(frozen=True)
class ServerHandle:
    pid: int
    port: int
    url: str


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start(bundle_dir: str | Path, port: int | None, log_file: str | Path,
          host: str = "127.0.0.1", timeout: float = START_TIMEOUT, token: str | None = None,
          max_body_bytes: int | None = None) -> ServerHandle:
    """Start an API process serving `bundle_dir` and wait until it is healthy; `token`
    guards its /admin/reload; `max_body_bytes` (None: the server's 4 MiB) is its largest
    request body. The log is readable by its owner only: it holds the tracebacks of
    failed requests."""
    port = port or free_port(host)
    if _listening(host, port):
        raise ApplyError(f"cannot start the API on port {port}: the port is in use",
                         hint="choose another `port` in the api block, or stop what uses it")
    log_path = Path(log_file)
    log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    args = ["-m", "runtime.serve", "--bundle", str(Path(bundle_dir).resolve()), "--host", host,
            "--port", str(port)]
    if max_body_bytes is not None:
        args += ["--max-body-bytes", str(max_body_bytes)]
    pid = _spawn(log_path, args, token)
    handle = ServerHandle(pid, port, f"http://{host}:{port}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise ApplyError("the API process exited while starting", _tail(log_path),
                             f"see the log: {log_path}")
        if _healthy(handle.url):
            return handle
        time.sleep(0.1)
    stop(pid)
    raise ApplyError(f"the API did not become healthy within {timeout:.0f}s",
                     _tail(log_path), f"see the log: {log_path}")


# Forks the server into a session of its own and exits: the server is nobody's child, so
# it outlives the caller and never lingers as the caller's zombie. The log is made (or, left
# by an older mlp, made again) readable by its owner only.
_LAUNCHER = """
import os, sys
log = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
os.fchmod(log, 0o600)
pid = os.fork()
if pid == 0:
    os.setsid()
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.execv(sys.executable, [sys.executable] + sys.argv[2:])
print(pid)
"""


def _spawn(log_path: Path, args: list[str], token: str | None = None) -> int:
    env = dict(os.environ)
    env.pop(TOKEN_ENV, None)
    if token:
        env[TOKEN_ENV] = token
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH")) if p)
    out = subprocess.run([sys.executable, "-c", _LAUNCHER, str(log_path), *args], env=env,
                         cwd=str(_ROOT), capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def reload(server: ServerHandle | str, bundle_dir: str | Path, timeout: float = START_TIMEOUT,
           token: str | None = None) -> str:
    """Swap the bundle of a running server; returns the new fingerprint."""
    url = server.url if isinstance(server, ServerHandle) else server
    body = json.dumps({"bundle": str(Path(bundle_dir).resolve())}).encode()
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"{url}/admin/reload", data=body, method="POST",
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return str(json.loads(resp.read())["fingerprint"])
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")
        raise ApplyError(f"the API at {url} refused the new model", detail) from None
    except OSError as e:
        raise ApplyError(f"cannot reach the API at {url} to swap the model", str(e),
                         "run `mlp apply` again: it starts the API when it is not running"
                         ) from None


def is_running(pid: int, port: int, host: str = "127.0.0.1") -> bool:
    """Whether `pid` is alive and is an API answering on `port`."""
    return _alive(pid) and _healthy(f"http://{host}:{port}")


def stop(pid: int, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the server (and its process group), SIGKILL after `timeout`; returns once
    it is gone, so its port is free."""
    if not _alive(pid):
        return
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    _signal(pid, signal.SIGKILL)
    while _alive(pid):
        time.sleep(0.05)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        if os.getpgid(pid) == pid:  # started by start(): the group is its own
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is gone but unreaped
    except OSError:
        return True


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1.0) as resp:
            return bool(resp.status == 200)
    except (OSError, ValueError):
        return False


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-LOG_TAIL_LINES:])


def alive(pid: int) -> bool:
    """Whether `pid` is a live API server started by `start` (a recycled pid that now
    belongs to another program is not)."""
    return _alive(pid) and is_server(pid)


def is_server(pid: int) -> bool:
    """Whether the process `pid` runs `runtime.serve` (read from /proc; True where there
    is no /proc to ask)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    return b"runtime.serve" in cmdline


def served_fingerprint(url: str, timeout: float = 2.0) -> str | None:
    """The model fingerprint a server's /healthz reports; None when it does not answer 200."""
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=timeout) as resp:
            if resp.status != 200:
                return None
            body = json.loads(resp.read())
    except (OSError, ValueError):
        return None
    fp = body.get("fingerprint") if isinstance(body, dict) else None
    return str(fp) if fp else None

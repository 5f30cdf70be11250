"""The api unit on the local provider: a background uvicorn process per api.

The process outlives the command; its pid, port and url are kept in the state's outputs.
A new model is swapped into the running server (no failed request) through its
/admin/reload, which answers only the token this module gave it; a `replicas` or `port`
change updates in place; `mlp destroy` stops the process and frees the port.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

from mlp.config import blocks as B
from mlp.engine.context import RunContext
from mlp.engine.events import BlockEvent, Status
from mlp.engine.units import Unit
from mlp.errors import ApplyError
from mlp.state.backend import Backend


def bundle_dir(ctx: RunContext, model_key: str) -> Path:
    return ctx.store.local_path(model_key) / "bundle"


def run_api_unit(ctx: RunContext, unit: Unit) -> None:
    import runtime.localserve as localserve

    addr = unit.blocks[0]
    cfg = ctx.cfg(addr)
    assert isinstance(cfg, B.Api) and cfg.model is not None
    start = time.monotonic()
    ctx.hooks.block(BlockEvent(str(addr), Status.RUNNING))
    model_rec = ctx.current(cfg.model)
    if model_rec is None or model_rec.artifact is None:
        raise ApplyError(f"{addr}: its model {cfg.model} has not been built", "", "Run `mlp apply` again.")
    bundle = bundle_dir(ctx, model_rec.artifact)
    endpoint: dict[str, Any] | None = ctx.state.outputs.get(str(addr))
    log = ctx.log_path(addr)
    log.parent.mkdir(parents=True, exist_ok=True)
    running = bool(endpoint) and localserve.is_running(endpoint["pid"], endpoint["port"])  # type: ignore[index]
    wanted_port = cfg.port
    if running and endpoint and wanted_port is not None and wanted_port != endpoint["port"]:
        localserve.stop(endpoint["pid"])
        running = False
    if running and endpoint:
        if endpoint.get("model_fingerprint") != model_rec.fingerprint:
            localserve.reload(endpoint["url"], str(bundle), token=_read_token(log))
            ctx.log(addr, f"swapped in model {model_rec.fingerprint[:12]} at {endpoint['url']}")
        handle_pid, port, url = endpoint["pid"], endpoint["port"], endpoint["url"]
    else:
        port_pref = wanted_port or (endpoint or {}).get("port")
        handle = localserve.start(str(bundle), port_pref, log, token=_new_token(log))
        handle_pid, port, url = handle.pid, handle.port, handle.url
        ctx.log(addr, f"serving {cfg.model} at {url} (pid {handle_pid})")
    value = {"url": url, "port": port, "pid": handle_pid, "model": str(cfg.model),
             "model_fingerprint": model_rec.fingerprint, "replicas": cfg.replicas}
    ctx.backend.set_output(str(addr), value)
    ctx.record(addr, None, {"url": url, "port": port, "replicas": cfg.replicas}, None,
               seconds=time.monotonic() - start, info=url)


def stop_api(backend: Backend, address: str) -> bool:
    """Stop an api's local server if it runs; True when one was stopped."""
    endpoint = backend.read_state().outputs.get(address)
    if not endpoint:
        return False
    import runtime.localserve as localserve

    stopped = False
    if localserve.is_running(endpoint["pid"], endpoint["port"]):
        localserve.stop(endpoint["pid"])
        stopped = True
    _token_file(backend.logs().path(address)).unlink(missing_ok=True)
    backend.set_output(address, None)
    return stopped


# The token of a server's /admin/reload: made when the server starts, handed to it in its
# environment, and kept for later applies in a file only the user can read, beside the
# api's log (not in the state, which `mlp show --json` prints).

def _token_file(log: Path) -> Path:
    return log.with_name(log.name.removesuffix(".log") + ".admin-token")


def _new_token(log: Path) -> str:
    token = secrets.token_urlsafe(32)
    path = _token_file(log)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    return token


def _read_token(log: Path) -> str | None:
    try:
        return _token_file(log).read_text().strip() or None
    except FileNotFoundError:
        return None  # a server started without one accepts reloads without one

"""The api unit: serve a model through the provider, and record what the server reports.

The rules, so that what serves is what the state says:
- a running api whose server reports another model than the one it should serve, or one
  whose model or api was replaced (`--replace`), gets the model reloaded (a swap with no
  failed request);
- an api that is down is started; a `port` change starts the new server before the old
  one stops, so a taken port leaves the old one serving and the state as it was;
- after every deploy or reload the server is asked what it serves (its /healthz), and the
  block fails when that is not the model's fingerprint;
- the endpoint kept in the state's outputs is the provider's typed `Endpoint`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from mlp.config import blocks as B
from mlp.config.blocks import MAX_BODY_BYTES
from mlp.engine.context import RunContext
from mlp.engine.events import BlockEvent, Status
from mlp.engine.units import Unit
from mlp.errors import ApplyError
from mlp.graph.address import Address
from mlp.plan.model import Reason
from mlp.providers import ApiDeployment, ApiStatus, Endpoint, Provider, provider_for
from mlp.state.backend import Backend


def bundle_dir(ctx: RunContext, model_key: str) -> Path:
    return ctx.store.local_path(model_key) / "bundle"


def provider_of(ctx: RunContext) -> Provider:
    return ctx.provider


def run_api_unit(ctx: RunContext, unit: Unit) -> None:
    addr = unit.blocks[0]
    cfg = ctx.cfg(addr)
    assert isinstance(cfg, B.Api) and cfg.model is not None
    start = time.monotonic()
    ctx.hooks.block(BlockEvent(str(addr), Status.RUNNING))
    model_rec = ctx.current(cfg.model)
    if model_rec is None or model_rec.artifact is None:
        raise ApplyError(f"{addr}: its model {cfg.model} has not been built", "", "Run `mlp apply` again.")
    provider = provider_of(ctx)
    deployment = ApiDeployment(str(addr), str(cfg.model), model_rec.fingerprint,
                               str(bundle_dir(ctx, model_rec.artifact)), cfg.replicas, cfg.port,
                               str(ctx.log_path(addr)), cfg.max_body_bytes)
    current = Endpoint.from_json(ctx.state.outputs.get(str(addr)))
    if current is not None and ctx.state.provider and ctx.state.provider != ctx.analysis.app.provider.kind:
        _retire(ctx, addr, current, ctx.state.provider)
        current = None  # the new provider starts its own
    endpoint = replace(_serve(ctx, addr, provider, deployment, current), model=str(cfg.model),
                       replicas=cfg.replicas)
    ctx.backend.set_output(str(addr), endpoint.to_json())
    ctx.record(addr, None, {"url": endpoint.url, "port": endpoint.port, "replicas": cfg.replicas,
                            "model_fingerprint": endpoint.model_fingerprint}, None,
               seconds=time.monotonic() - start, info=endpoint.url)


def _retire(ctx: RunContext, addr: Address, current: Endpoint, old_kind: str) -> None:
    """The api's server on the provider the app leaves, stopped: what serves is what the
    state says, on one provider. One that cannot be reached is left, and the log says so."""
    from mlp.errors import MlpError
    from mlp.providers import provider_for

    try:
        stopped = provider_for(old_kind).stop_api(current, str(ctx.log_path(addr)))
    except MlpError as e:
        ctx.log(addr, f"the {old_kind} server at {current.url} is left running: {e.summary}")
        return
    if stopped:
        ctx.log(addr, f"stopped the {old_kind} server at {current.url}: the api moves to {ctx.analysis.app.provider.kind}")


def _serve(ctx: RunContext, addr: Address, provider: Provider, deployment: ApiDeployment,
           current: Endpoint | None) -> Endpoint:
    """Reload a running server when it should serve another model, or start one."""
    health = provider.api_health(current, deployment.model_fingerprint)
    same_port = current is not None and deployment.port in (None, current.port)
    if current is not None and same_port and health.status is not ApiStatus.DOWN \
            and (current.max_body_bytes or MAX_BODY_BYTES) != deployment.max_body_bytes:
        # the body limit is fixed when a server starts: this one starts again, on its port
        ctx.log(addr, f"restarting {current.url}: max_body_bytes is now {deployment.max_body_bytes}")
        provider.stop_api(current, deployment.log)
        return provider.deploy_api(replace(deployment, port=current.port), None)
    if current is not None and same_port and health.status is not ApiStatus.DOWN:
        recorded = _recorded_model(ctx, addr)
        if recorded and recorded != deployment.model_fingerprint:  # a promotion, not a drift repair
            _gate(ctx, addr, recorded, Path(deployment.bundle))
        if health.status is ApiStatus.DRIFTED or _reload_asked(ctx, addr, Address.parse(deployment.model)):
            endpoint = provider.reload_api(deployment, current)
            ctx.log(addr, f"swapped in model {deployment.model_fingerprint[:12]} at {endpoint.url}")
            return endpoint
        return replace(current, model_fingerprint=health.serving or current.model_fingerprint)
    if current is not None and health.status is ApiStatus.DOWN:
        provider.stop_api(current, deployment.log)  # a hung one goes; its port is reused
        deployment = replace(deployment, port=deployment.port or current.port)
    try:
        endpoint = provider.deploy_api(deployment, current if health.status is not ApiStatus.DOWN else None)
    except ApplyError:
        if health.status is ApiStatus.DOWN:
            ctx.backend.set_output(str(addr), None)  # nothing serves: the state says so
        raise
    ctx.log(addr, f"serving {deployment.model} at {endpoint.url} (pid {endpoint.pid})")
    return endpoint


def _recorded_model(ctx: RunContext, addr: Address) -> str | None:
    """The model the state says this api serves (what its last apply verified)."""
    rec = ctx.state.blocks.get(str(addr))
    value = rec.metrics.get("model_fingerprint") if rec is not None and isinstance(rec.metrics, dict) else None
    return value if isinstance(value, str) and value else None


def _gate(ctx: RunContext, addr: Address, serving: str, bundle: Path) -> None:
    """The rollout gate, before a running api moves to another model."""
    from mlp.engine import gate

    cfg = ctx.cfg(addr)
    assert isinstance(cfg, B.Api)
    gate.check(ctx, cfg, gate.gate(ctx, cfg, serving, bundle), serving)


def _reload_asked(ctx: RunContext, addr: Address, model: Address) -> bool:
    """--replace of the api or of its model (the model retrained under the same fingerprint)."""
    own = ctx.change(addr)
    if own is not None and own.reason is Reason.REPLACE_REQUESTED:
        return True
    mine = ctx.change(model)
    return mine is not None and mine.reason is Reason.REPLACE_REQUESTED and str(model) in ctx.records


def stop_api(backend: Backend, address: str, provider: Provider | str = "local") -> bool:
    """Stop an api's server if it runs and forget its endpoint; True when one was stopped.
    `provider` is the app's provider, or the kind the state records when the app is gone."""
    endpoint = Endpoint.from_json(backend.read_state().outputs.get(address))
    made = provider_for(provider) if isinstance(provider, str) else provider
    stopped = made.stop_api(endpoint, str(backend.logs().path(address)))
    backend.set_output(address, None)
    return stopped

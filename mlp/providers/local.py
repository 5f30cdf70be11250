"""The local provider: data work in this process's Spark session, training and the rollout
gate as child processes running the runtime's jobs, each api a background uvicorn process.
It provisions nothing and so previews no infrastructure.

Refresh stats the store (`ArtifactStore.has`) for every recorded artifact and every
artifact a record's output reads (`BlockRecord.refs`), and asks each recorded api's
/healthz which model it serves. It reads no data.

Serving goes through `runtime.localserve`. Moving an api to another port starts the new
server first and stops the old one only once the new one is healthy, so a port that turns
out to be taken leaves the previous api serving and the state true.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlp.errors import ApplyError
from mlp.providers import (
    ApiDeployment,
    ApiHealth,
    ApiStatus,
    Endpoint,
    JobLog,
    Preview,
    Provisioned,
    Refresh,
    refresh_records,
)
from mlp.state.backend import ArtifactStore
from mlp.state.model import State

if TYPE_CHECKING:
    from mlp.config.blocks import App, ProviderConfig
    from mlp.diagnostics import Diagnostics
    from mlp.engine.datarun import DataRun
    from mlp.plan.model import Plan
    from runtime.jobs import GateJob, GateScore, PredictJob, TrainJob, TrainResult

HEALTH_TIMEOUT = 2.0  # seconds for one /healthz during refresh


class LocalProvider:
    kind = "local"

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = dict(settings or {})

    # -- the provider block and its infrastructure (none) ----------------------------

    def check(self, config: ProviderConfig, diags: Diagnostics) -> None:
        """The schema checks every local setting already; nothing else to know here."""

    def preview(self, plan: Plan) -> Preview:
        return Preview()

    def provision(self) -> Provisioned:
        return Provisioned()

    def teardown(self) -> None:
        """Nothing was provisioned; the apis are stopped block by block."""

    # -- jobs ------------------------------------------------------------------------

    def run_data(self, run: DataRun) -> None:
        """In this process, on its one Spark session (see `data_session`)."""
        run.in_process()

    def source_path(self, uri: str, app: App) -> str:
        """Where the data session reads a source: object storage is downloaded once per
        fingerprint (its objects' versions) into the local cache; a local path is as it is."""
        from mlp import objectdata

        loc = objectdata.parse(uri)
        if loc is None:
            return uri
        from mlp.state.backends import cache_dir

        data = objectdata.describe(loc, app.backend.kind, app.backend.settings)
        return str(objectdata.stage(data, cache_dir(app.dir, os.environ) / "sources", app.backend.kind,
                                    app.backend.settings))

    def data_session(self, log: str) -> Any:
        """The Spark session of this process, on the provider's `spark_master`."""
        from runtime.sparkenv import get_spark

        return get_spark(str(self.settings.get("spark_master") or "local[*]"), Path(log))

    def train(self, job: TrainJob, log: JobLog) -> TrainResult:
        import json

        from mlp.providers.localjobs import run_trainer
        from runtime.jobs import TrainResult, local_path

        out = local_path(job.out_dir)
        spec = out / "spec.json"
        spec.write_text(json.dumps(job.to_json(), indent=1))
        run_trainer(log.block, [str(spec)], log)
        try:
            return TrainResult.from_json(json.loads((out / "result.json").read_text()))
        except (OSError, ValueError) as e:
            raise ApplyError(f"{job.model}: the trainer left no readable result", str(e),
                             f"See the log: mlp logs {log.block}") from None

    def predict(self, job: PredictJob, log: JobLog) -> None:
        from mlp.providers.localjobs import run_trainer

        run_trainer(log.block, job.argv(), log)

    def evaluate(self, job: GateJob, log: JobLog) -> GateScore:
        from mlp.providers.localjobs import run_gate
        from runtime.jobs import GateScore

        answer = run_gate(log.block, job.to_json(), log)
        try:
            return GateScore.from_json(answer)
        except (KeyError, TypeError, ValueError) as e:
            raise ApplyError(f"{log.block}: the rollout gate answered {str(answer)[:200]!r}", str(e)) from None

    # -- refresh ---------------------------------------------------------------------

    def refresh(self, state: State, store: ArtifactStore) -> Refresh:
        return refresh_records(state, store, self.api_health)

    def api_health(self, endpoint: Endpoint | None, expected: str) -> ApiHealth:
        import runtime.localserve as localserve

        if endpoint is None:
            return ApiHealth(ApiStatus.DOWN, None, "the state records no running server for it")
        if not is_local_url(endpoint.url, endpoint.port):  # a state is data: never follow it elsewhere
            return ApiHealth(ApiStatus.DOWN, None, f"the state records {endpoint.url[:80]!r}, not a local server")
        if not localserve.alive(endpoint.pid):
            return ApiHealth(ApiStatus.DOWN, None, f"its process {endpoint.pid} is not running")
        serving = localserve.served_fingerprint(endpoint.url, timeout=HEALTH_TIMEOUT)
        if serving is None:
            return ApiHealth(ApiStatus.DOWN, None, f"{endpoint.url}/healthz does not answer")
        if expected and serving != expected:
            return ApiHealth(ApiStatus.DRIFTED, serving,
                             f"it serves model {serving[:12]}, the state records {expected[:12]}")
        return ApiHealth(ApiStatus.SERVING, serving)

    # -- serving ---------------------------------------------------------------------

    def deploy_api(self, deployment: ApiDeployment, current: Endpoint | None) -> Endpoint:
        """Start a server for the deployment; `current`, a server still serving (a port
        change), is stopped only once the new one is healthy."""
        import runtime.localserve as localserve

        log = Path(deployment.log)
        log.parent.mkdir(parents=True, exist_ok=True)
        handle = localserve.start(deployment.bundle, deployment.port, log, token=_new_token(log),
                                  max_body_bytes=deployment.max_body_bytes)
        if current is not None:
            localserve.stop(current.pid)
        return self._checked(deployment, handle.url, handle.port, handle.pid)

    def reload_api(self, deployment: ApiDeployment, current: Endpoint) -> Endpoint:
        import runtime.localserve as localserve

        localserve.reload(current.url, deployment.bundle, token=_read_token(Path(deployment.log)))
        return self._checked(deployment, current.url, current.port, current.pid)

    def _checked(self, deployment: ApiDeployment, url: str, port: int, pid: int) -> Endpoint:
        """Ask the server what it serves; an api serving anything else has failed."""
        import runtime.localserve as localserve

        serving = localserve.served_fingerprint(url, timeout=HEALTH_TIMEOUT * 5)
        if serving != deployment.model_fingerprint:
            raise ApplyError(f"{deployment.address}: the server at {url} serves "
                             f"{(serving or 'nothing')[:12]}, not model {deployment.model_fingerprint[:12]}",
                             f"It was asked to load {deployment.bundle}.",
                             f"Run `mlp apply --replace {deployment.address}`; see `mlp logs {deployment.address}`.")
        return Endpoint(url, port, pid, deployment.model, serving, deployment.replicas, deployment.max_body_bytes)

    def stop_api(self, endpoint: Endpoint | None, log: str) -> bool:
        import runtime.localserve as localserve

        stopped = False
        if endpoint is not None and localserve.alive(endpoint.pid):  # hung or not: it goes
            localserve.stop(endpoint.pid)
            stopped = True
        _token_file(Path(log)).unlink(missing_ok=True)
        return stopped


def is_local_url(url: str, port: int) -> bool:
    """Whether `url` is what the local provider makes: http://127.0.0.1:PORT, nothing else."""
    return url == f"http://127.0.0.1:{port}" and 0 < port < 65536


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

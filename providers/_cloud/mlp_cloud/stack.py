"""One Pulumi stack per app and provider, its state kept in the app's backend.

    stack  <app>-<kind>                project  mlp
    state  s3://BUCKET/PREFIX/pulumi?region=REGION      (backend "s3")
           gs://BUCKET/PREFIX/pulumi                    (backend "gcs")
           azblob://CONTAINER/PREFIX/pulumi?storage_account=ACCOUNT   (backend "azurerm")
           file://APP/.mlp/pulumi                       (backend "local")

The backend's bucket must exist before the first apply, as a Terraform state bucket does:
it holds the stack that makes everything else. The stack's secrets (an AKS kubeconfig) are
encrypted with the passphrase in PULUMI_CONFIG_PASSPHRASE, Pulumi's default for such
backends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from mlp.config.blocks import App, BackendConfig

PROJECT = "mlp"
STATE_FOLDER = "pulumi"


@dataclass(frozen=True)
class StackRef:
    """Which stack, where its state is, and the config its program's provider package reads
    (`aws:region`...). Invariant: `name` is `<app>-<kind>`."""

    name: str
    backend_url: str
    config: Mapping[str, str] = field(default_factory=dict)
    project: str = PROJECT
    work_dir: str = ""     # the workspace folder the Automation API keeps its files in

    @classmethod
    def of(cls, app: App, kind: str, config: Mapping[str, str]) -> StackRef:
        work = Path(app.dir) / ".mlp" / kind / "workspace"
        return cls(f"{app.name}-{kind}", backend_url(app.backend, Path(app.dir)), dict(sorted(config.items())),
                   work_dir=str(work))


def backend_url(backend: BackendConfig, app_dir: Path) -> str:
    """Where the stack's state goes: the app's backend, under its prefix, in `pulumi/`."""
    s: Mapping[str, Any] = backend.settings
    path = _join(str(s.get("prefix") or ""), STATE_FOLDER)
    if backend.kind == "s3":
        query = {"region": str(s.get("region") or "us-east-1")}
        if s.get("endpoint"):
            query |= {"endpoint": str(s["endpoint"]), "s3ForcePathStyle": "true"}
        return f"s3://{s['bucket']}/{path}?{urlencode(query)}"
    if backend.kind == "gcs":
        return f"gs://{s['bucket']}/{path}"
    if backend.kind == "azurerm":
        return f"azblob://{s['container']}/{path}?{urlencode({'storage_account': str(s['account'])})}"
    folder = (app_dir / str(s.get("path") or ".mlp")).resolve()
    return f"file://{folder / STATE_FOLDER}"


def _join(prefix: str, name: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name

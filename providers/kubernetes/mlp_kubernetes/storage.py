"""Where an app's workloads find their inputs and leave their outputs: the backend's bucket.

Nothing of the app is baked into the image. The pods reach the same bucket and prefix as
the app's backend block, through mlp's own object stores (`mlp.state.backends.open_store`),
with credentials from the SDK's chain where they run (a workload identity, or the optional
`<app>-storage` Secret's variables):

    <prefix>/artifacts/<key>/...        the backend's artifact store; a model's bundle is
                                        artifacts/<key>/bundle/
    <prefix>/k8s/app/                   the app folder as of the latest apply: *.hcl, custom
                                        code, local data files
    <prefix>/k8s/plan.json              the saved plan the data units run
    <prefix>/k8s/runs/<role>/<block>/in/    one run's inputs: job.json, its data
    <prefix>/k8s/runs/<role>/<block>/out/   what the run made (role: train, predict, gate)

Names here are relative to the backend's prefix, as `ObjectStore` names are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlp.errors import UsageError
from mlp.state.backends.artifacts import FILES
from mlp.state.backends.objects import join

if TYPE_CHECKING:
    from mlp.config.blocks import BackendConfig

ARTIFACTS = FILES  # where the artifact store keeps its files
APP = "k8s/app/"
PLAN = "k8s/plan.json"
RUNS = "k8s/runs/"
BACKEND_ENV = "MLP_BACKEND"  # the pods' backend block, as JSON: {"kind": "s3", "settings": {...}}


@dataclass(frozen=True)
class Storage:
    """The app's backend block, as the workloads use it."""

    kind: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, backend: BackendConfig) -> Storage:
        if backend.kind == "local":
            raise UsageError('The kubernetes provider needs a remote backend',
                             "Its pods read the app and write artifacts in the backend's bucket; a local "
                             "backend's folder is on this machine only.",
                             'Add a backend block, e.g. backend "s3" { bucket = "my-bucket" }')
        return cls(backend.kind, {k: v for k, v in sorted(backend.settings.items()) if v not in (None, "")})

    @property
    def prefix(self) -> str:
        return str(self.settings.get("prefix") or "")

    def url(self, name: str) -> str:
        """Where `name` is, as a URI: s3://, gs:// or abfs://."""
        key = join(self.prefix, name)
        if self.kind == "s3":
            return f"s3://{self.settings['bucket']}/{key}"
        if self.kind == "gcs":
            return f"gs://{self.settings['bucket']}/{key}"
        return f"abfs://{self.settings['container']}@{self.settings['account']}.dfs.core.windows.net/{key}"

    def env_json(self) -> str:
        """The backend block for the pods (`MLP_BACKEND`): never a secret, only where the bucket is."""
        return json.dumps({"kind": self.kind, "settings": dict(self.settings)}, sort_keys=True,
                          separators=(",", ":"))

    def spark_conf(self) -> dict[str, str]:
        """What Spark's connectors need to reach this bucket (an S3-compatible endpoint)."""
        conf = {"spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
                "spark.hadoop.fs.gs.impl": "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem",
                "spark.hadoop.fs.AbstractFileSystem.gs.impl": "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFS"}
        if self.kind == "s3" and self.settings.get("endpoint"):
            conf["spark.hadoop.fs.s3a.endpoint"] = str(self.settings["endpoint"])
            conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        if self.kind == "s3" and self.settings.get("region"):
            conf["spark.hadoop.fs.s3a.endpoint.region"] = str(self.settings["region"])
        return conf


def backend_of_env(text: str) -> Storage:
    """The `MLP_BACKEND` value back as a Storage; ValueError when it is not one."""
    d = json.loads(text)
    if not isinstance(d, dict) or not isinstance(d.get("kind"), str) or not isinstance(d.get("settings", {}), dict):
        raise ValueError(f"{BACKEND_ENV} is not a backend block: {text[:200]!r}")
    return Storage(d["kind"], dict(d.get("settings") or {}))


def bundle(key: str) -> str:
    """The folder of a model's bundle in the bucket, for an artifact key."""
    return f"{ARTIFACTS}{key}/bundle/"


def run_in(role: str, block: str) -> str:
    """The inputs of a block's run (`block` a label value, such as "model.dnn")."""
    return f"{RUNS}{role}/{block}/in/"


def run_out(role: str, block: str) -> str:
    return f"{RUNS}{role}/{block}/out/"

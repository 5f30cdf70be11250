"""What the kubernetes provider's tests share (a module of its own name, so that test modules
can import it beside the repository's other test packages)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGIN = HERE.parent
REPO = PLUGIN.parents[1]

KUBE_VERSION = "1.30"  # the Kubernetes minor version every manifest is validated against
IMAGE = "registry.example.com/ml/mlp-runtime:0.1.0"
BUCKET = "mlp-apps"
PROVIDER = f'''provider "kubernetes" {{
  namespace = "ml"
  image     = "{IMAGE}"
}}

backend "s3" {{
  bucket = "{BUCKET}"
  prefix = "iris"
}}'''


def swap_provider(app_dir: Path, block: str) -> None:
    """Replace the app's provider block with `block`."""
    path = app_dir / "app.hcl"
    text, n = re.subn(r'provider "local" \{[^}]*\}', block, path.read_text())
    assert n == 1, "examples/iris/app.hcl has no provider \"local\" block"
    path.write_text(text)


FP = "ab" + "0" * 62  # a model fingerprint
FP2 = "cd" + "1" * 62  # another


def shop(models: tuple = (), apis: tuple = (), **settings: object):  # type: ignore[no-untyped-def]
    """The app "shop": one source, the models and apis given, in namespace "ml"."""
    from mlp_kubernetes.settings import KubeSettings
    from mlp_kubernetes.specs import AppSpec, DataUnit
    from mlp_kubernetes.storage import Storage

    return AppSpec("shop", KubeSettings(namespace="ml", image=IMAGE, **settings),  # type: ignore[arg-type]
                   Storage("s3", {"bucket": "b"}), (DataUnit("source.orders", "orders"),), models, apis)


def churn_api(fingerprint: str = FP, replicas: object = 1):  # type: ignore[no-untyped-def]
    from mlp_kubernetes.specs import Replicas, Serving

    return Serving("api.churn", "churn", "model.churn", fingerprint, Replicas.of(replicas), 80, 4194304)  # type: ignore[arg-type]


def churn_model(cpu: float = 1.0, gpu: int = 0):  # type: ignore[no-untyped-def]
    from mlp_kubernetes.quantity import parse_memory
    from mlp_kubernetes.specs import Resources, Training

    return Training("model.churn", "churn", Resources(cpu, parse_memory("2Gi"), gpu))


class MemoryStore:
    """An `ObjectStore` in memory (the calls the provider's transfers make), for tests that
    do not need a real server."""

    kind = "s3"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def url(self, name: str) -> str:
        return f"s3://b/{name}"

    def get(self, name: str) -> bytes | None:
        return self.objects.get(name)

    def put(self, name: str, data: bytes) -> None:
        self.objects[name] = data

    def list(self, prefix: str) -> list[str]:
        return sorted(n for n in self.objects if n.startswith(prefix))

    def delete_many(self, names: Sequence[str]) -> None:
        for n in names:
            self.objects.pop(n, None)

    def upload_file(self, name: str, path: Path) -> None:
        self.objects[name] = path.read_bytes()

    def download_file(self, name: str, path: Path) -> bool:
        if name not in self.objects:
            return False
        path.write_bytes(self.objects[name])
        return True

"""Real object-storage servers for the remote backends' tests, on 127.0.0.1.

Each server is started once per test module on a free port and stopped when the module
ends: moto's S3 server (`moto[server]`), azurite's blob service (from npm, installed by
scripts/install into .venv/npm) and gcp-storage-emulator. A test that needs a server whose
program cannot be found is skipped, saying which one and how to get it; scripts/install
provides all three.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mlp.state.backends.objects import ObjectStore
    from mlp.state.backends.remote import ObjectBackend

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "mlp-state"  # the S3 bucket, GCS bucket and Azure container every test uses
AZURITE_ACCOUNT = "devstoreaccount1"
# azurite's documented development key (the same in every copy of azurite): not a secret
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
S3_SECRET = "mlp-test-secret-never-written-7f3c"  # moto takes any: distinctive, so a leak would show
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Server:
    """A running server: its base URL, and what it needs in the environment of a client."""

    endpoint: str
    environ: tuple[tuple[str, str], ...] = ()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serving(argv: Sequence[str], port: int, log: Path) -> Iterator[None]:
    """Run `argv` until the block ends; ready once its port accepts a connection."""
    with log.open("wb") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _accepts(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{argv[0]} did not start on port {port}:\n{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _program(name: str, *folders: Path) -> str | None:
    for folder in folders:
        if (folder / name).is_file() and os.access(folder / name, os.X_OK):
            return str(folder / name)
    return shutil.which(name)


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """moto's S3 server, which honours `If-None-Match: *` and `If-Match`, with the bucket made."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        pytest.skip("moto[server] is not installed: run scripts/install (pip install -e '.[dev]')")
    import boto3

    port = free_port()
    env = (("AWS_ACCESS_KEY_ID", "mlp-test"), ("AWS_SECRET_ACCESS_KEY", S3_SECRET),
           ("AWS_EC2_METADATA_DISABLED", "true"), ("AWS_CONFIG_FILE", os.devnull),
           ("AWS_SHARED_CREDENTIALS_FILE", os.devnull))
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with serving([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port, log):
        endpoint = f"http://127.0.0.1:{port}"
        with pytest.MonkeyPatch.context() as mp:
            for name, value in env:
                mp.setenv(name, value)
            mp.delenv("AWS_PROFILE", raising=False)
            boto3.session.Session().client("s3", region_name="us-east-1", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
            yield Server(endpoint, env)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """azurite's blob service (real leases), with the container made."""
    program = _program("azurite-blob", ROOT / ".venv" / "npm" / "node_modules" / ".bin")
    if program is None or shutil.which("node") is None:
        pytest.skip("azurite is not installed: run scripts/install (npm install --prefix .venv/npm azurite)")
    from azure.storage.blob import BlobServiceClient

    port = free_port()
    work = tmp_path_factory.mktemp("azurite")
    argv = [program, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(work / "data"),
            "--skipApiVersionCheck", "--silent", "--disableTelemetry"]
    with serving(argv, port, work / "azurite.log"):
        endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
        credential = {"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY}
        BlobServiceClient(endpoint, credential=credential).create_container(BUCKET)
        yield Server(endpoint, (("AZURE_STORAGE_KEY", AZURITE_KEY),))


@pytest.fixture(scope="module")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """gcp-storage-emulator, in memory, with the bucket made. It ignores ifGenerationMatch."""
    program = _program("gcp-storage-emulator", Path(sys.executable).parent)
    if program is None:
        pytest.skip("gcp-storage-emulator is not installed: run scripts/install (pip install -e '.[dev]')")
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    port = free_port()
    log = tmp_path_factory.mktemp("gcs") / "gcs.log"
    with serving([program, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"], port, log):
        endpoint = f"http://127.0.0.1:{port}"
        storage.Client(project="mlp", credentials=AnonymousCredentials(),
                       client_options={"api_endpoint": endpoint}).create_bucket(BUCKET)
        yield Server(endpoint)


KINDS = ("s3", "gcs", "azurerm")
SERVER_OF = {"s3": "moto_server", "gcs": "gcs_emulator", "azurerm": "azurite"}


@dataclass(frozen=True)
class Remote:
    """One kind of remote backend on its test server; each test takes a fresh prefix."""

    kind: str
    server: Server

    def settings(self, prefix: str) -> dict[str, str]:
        if self.kind == "azurerm":
            return {"account": AZURITE_ACCOUNT, "container": BUCKET, "prefix": prefix, "endpoint": self.server.endpoint}
        return {"bucket": BUCKET, "prefix": prefix, "endpoint": self.server.endpoint, "region": "us-east-1"}

    def environ(self, cache: Path | None = None) -> dict[str, str]:
        """What open_backend sees: the server's credentials, and MLP_CACHE_DIR when given."""
        env = {k: v for k, v in os.environ.items() if k not in ("MLP_CACHE_DIR", "STORAGE_EMULATOR_HOST")}
        env.update(self.server.environ)
        if cache is not None:
            env["MLP_CACHE_DIR"] = str(cache)
        return env

    def backend(self, app: Path, prefix: str, cache: Path | None = None) -> ObjectBackend:
        from mlp.state.backends import open_backend
        from mlp.state.backends.remote import ObjectBackend

        backend = open_backend(app, self.kind, self.settings(prefix), environ=self.environ(cache))
        assert isinstance(backend, ObjectBackend)
        return backend

    def store(self, prefix: str) -> ObjectStore:
        from mlp.state.backends import open_store

        return open_store(self.kind, self.settings(prefix), self.environ())


@pytest.fixture(params=KINDS)
def remote(request: pytest.FixtureRequest) -> Remote:
    return Remote(request.param, request.getfixturevalue(SERVER_OF[request.param]))


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A prefix no other test uses: fresh, empty storage in the shared bucket."""
    return f"t/{uuid.uuid4().hex[:12]}/apps/{request.node.originalname}"

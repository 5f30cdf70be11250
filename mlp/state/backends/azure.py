"""`backend "azurerm"`: blobs in an Azure Storage container, via azure-storage-blob.

Credentials, the first that is set:
1. `AZURE_STORAGE_CONNECTION_STRING`: the account's connection string (its endpoint too,
   unless the block sets `endpoint`);
2. `AZURE_STORAGE_KEY`: the account key of `account`;
3. azure-identity's `DefaultAzureCredential` (environment, managed identity, `az login`...).

The lock is a blob lease: the lock blob is leased forever (until released) under a lease id
that is the lock's own id, and holds the holder's `LockInfo`. A lease is exclusive on the
server, so of two commands exactly one gets it; `mlp state unlock ID` can release it from any
machine, because the id it is given is the lease id.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlp.state.backends.objects import HeldLock, ObjectStat, join, missing_sdk, parallel, store_error

_CREDENTIALS_HINT = ("Give Azure credentials: AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_KEY (the "
                     "account key), or sign in for DefaultAzureCredential (`az login`, a managed identity)")
_FOREVER = -1  # lease duration: held until released


class AzureStore:
    """Blobs under `prefix` in `container` of storage account `account`."""

    kind = "azurerm"

    def __init__(self, account: str, container: str, prefix: str = "", endpoint: str = "", *,
                 environ: Mapping[str, str] | None = None) -> None:
        try:
            import azure.storage.blob  # noqa: F401
        except ImportError:
            raise missing_sdk("azurerm", "azure-storage-blob", "azure") from None
        self.account, self.container_name, self.prefix = account, container, prefix.strip("/")
        self.endpoint = endpoint.rstrip("/")
        self.account_url = self.endpoint or f"https://{account}.blob.core.windows.net"
        self._environ = os.environ if environ is None else environ
        self._container: Any = None

    def __repr__(self) -> str:
        return f"AzureStore({self.url('')!r})"

    @property
    def container(self) -> Any:
        if self._container is None:
            self._container = self._service().get_container_client(self.container_name)
        return self._container

    def _service(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        connection = self._environ.get("AZURE_STORAGE_CONNECTION_STRING")
        if connection:
            service = BlobServiceClient.from_connection_string(connection)
            return BlobServiceClient(self.endpoint, credential=service.credential) if self.endpoint else service
        key = self._environ.get("AZURE_STORAGE_KEY")
        if key:
            return BlobServiceClient(self.account_url, credential={"account_name": self.account, "account_key": key})
        try:
            from azure.identity import DefaultAzureCredential
        except ImportError:
            raise store_error("connect to", self.url(""), "No AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_KEY is set, "
                              "and azure-identity (for DefaultAzureCredential) is not installed.",
                              "Set one of them, or pip install 'mlp[azure]'") from None
        return BlobServiceClient(self.account_url, credential=DefaultAzureCredential())

    def url(self, name: str) -> str:
        return f"{self.account_url}/{self.container_name}/{self._key(name)}"

    def removal_command(self, name: str) -> str:
        where = f"--account-name {self.account} -c {self.container_name} -n {self._key(name)}"
        if self.endpoint:
            where += f" --blob-endpoint {self.endpoint}"
        return f"az storage blob lease break {where} ; az storage blob delete {where}"

    def _key(self, name: str) -> str:
        return join(self.prefix, name)

    def _blob(self, name: str) -> Any:
        return self.container.get_blob_client(self._key(name))

    # -- objects ---------------------------------------------------------------------------

    def get(self, name: str) -> bytes | None:
        with self._errors("read", name), self._absent():
            data: bytes = self._blob(name).download_blob().readall()
            return data
        return None  # no such blob

    def put(self, name: str, data: bytes) -> None:
        with self._errors("write", name):
            self._blob(name).upload_blob(data, overwrite=True)

    def put_if_absent(self, name: str, data: bytes) -> bool:
        from azure.core.exceptions import ResourceExistsError

        with self._errors("create", name):
            try:
                self._blob(name).upload_blob(data, overwrite=False)  # If-None-Match: *
            except ResourceExistsError:
                return False
        return True

    def delete(self, name: str) -> None:
        with self._errors("delete", name), self._absent():
            self._blob(name).delete_blob()

    def delete_many(self, names: Sequence[str]) -> None:
        parallel(self.delete, names)  # batch deletes fail whole on one missing blob, and not every server has them

    def list(self, prefix: str) -> list[str]:
        root = self._key("")
        with self._errors("list", prefix + "*"):
            return sorted(b.name[len(root):] for b in self.container.list_blobs(name_starts_with=self._key(prefix)))

    def stat(self, name: str) -> ObjectStat | None:
        with self._errors("read", name), self._absent():
            props = self._blob(name).get_blob_properties()
            return ObjectStat(name, int(props.size), str(props.etag).strip('"'))
        return None

    def upload_file(self, name: str, path: Path) -> None:
        with self._errors("upload", name), path.open("rb") as f:
            self._blob(name).upload_blob(f, overwrite=True, max_concurrency=4)

    def download_file(self, name: str, path: Path) -> bool:
        with self._errors("download", name), self._absent():
            stream = self._blob(name).download_blob(max_concurrency=4)
            with path.open("wb") as f:
                stream.readinto(f)
            return True
        return False

    # -- lock ------------------------------------------------------------------------------

    def acquire_lock(self, name: str, lock_id: str, data: bytes) -> bool:
        """Make sure the lock blob exists (empty), lease it under `lock_id`, then write `data`
        under the lease. Only the lease decides who holds the lock, and only the holder ever
        writes the blob, so its content never names anyone else; a release deletes it."""
        from azure.core.exceptions import ResourceExistsError

        blob = self._blob(name)
        with self._errors("lock", name):
            self.put_if_absent(name, b"")
            try:
                blob.acquire_lease(lease_duration=_FOREVER, lease_id=lock_id)
            except ResourceExistsError:  # LeaseAlreadyPresent: someone holds it
                return False
            blob.upload_blob(data, overwrite=True, lease=lock_id)
        return True

    def read_lock(self, name: str) -> HeldLock | None:
        with self._errors("read", name), self._absent():
            stream = self._blob(name).download_blob()
            data: bytes = stream.readall()
            if stream.properties.lease.state != "leased":
                return None  # left by a crash before its lease: nobody holds it
            return HeldLock(data, str(stream.properties.etag))
        return None

    def release_lock(self, name: str, lock_id: str, held: HeldLock) -> None:
        from azure.core.exceptions import HttpResponseError

        with self._errors("release the lock", name), self._absent():
            try:
                self._blob(name).delete_blob(lease=lock_id)
            except HttpResponseError as e:
                if "LeaseIdMismatch" not in str(getattr(e, "error_code", None) or ""):
                    raise
                raise store_error("release the lock", self.url(name),
                                  f"The lock blob is leased under another id than {lock_id}.",
                                  f"If no mlp command is running, remove it by hand: {self.removal_command(name)}") from None

    # -- errors ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _absent(self) -> Iterator[None]:
        """Swallows "no such blob" (a missing container is still an error)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            yield
        except ResourceNotFoundError as e:
            if "ContainerNotFound" in str(getattr(e, "error_code", None) or ""):
                raise

    @contextlib.contextmanager
    def _errors(self, action: str, name: str) -> Iterator[None]:
        from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

        url = self.url(name)
        try:
            yield
        except ClientAuthenticationError as e:
            raise store_error(action, url, _message(e), _CREDENTIALS_HINT) from None
        except HttpResponseError as e:
            code = str(getattr(e, "error_code", None) or e.status_code)
            if "ContainerNotFound" in code:
                hint = f'Create the container {self.container_name}, or fix `container` in the backend "azurerm" block.'
            elif e.status_code in (401, 403):
                hint = _CREDENTIALS_HINT + f", with access to the container {self.container_name}"
            else:
                hint = f'Check the backend "azurerm" block (account {self.account}, container {self.container_name}).'
            raise store_error(action, url, f"{code}: {_message(e)}", hint) from None
        except AzureError as e:
            raise store_error(action, url, _message(e),
                              f"Check the network and the backend's endpoint ({self.account_url}).") from None


def _message(e: Any) -> str:
    text = str(getattr(e, "message", None) or e)
    return text.splitlines()[0] if text else type(e).__name__

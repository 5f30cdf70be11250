"""`backend "gcs"`: objects in a Google Cloud Storage bucket, via google-cloud-storage.

Credentials are Google's application default credentials (`GOOGLE_APPLICATION_CREDENTIALS`,
`gcloud auth application-default login`, or the metadata server of a cloud machine). With
`endpoint` set, or `STORAGE_EMULATOR_HOST` in the environment, the client talks to that
server anonymously: emulators take no credentials, and none are sent to a server that is
not Google's. The lock object is uploaded with `ifGenerationMatch=0` (create only if absent,
decided atomically by GCS) and deleted with `ifGenerationMatch=<the generation read>`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlp.state.backends.objects import HeldLock, ObjectStat, join, missing_sdk, parallel, store_error

_CREDENTIALS_HINT = ("Give Google's client credentials the usual way: `gcloud auth application-default login`, "
                     "GOOGLE_APPLICATION_CREDENTIALS=KEY.json, or a service account of the machine")


class _Outcome:
    """Set by `_absent` when there was no such object."""

    gone = False


class GcsStore:
    """Objects under `prefix` in `bucket`. The client is made at the first request; `http` (a
    `requests.Session`) replaces its transport, which is how tests see the requests it sends."""

    kind = "gcs"

    def __init__(self, bucket: str, prefix: str = "", endpoint: str = "", *,
                 environ: Mapping[str, str] | None = None, http: Any = None) -> None:
        try:
            import google.cloud.storage  # noqa: F401
        except ImportError:
            raise missing_sdk("gcs", "google-cloud-storage", "gcs") from None
        self.bucket_name, self.prefix, self.endpoint = bucket, prefix.strip("/"), endpoint
        self._emulator = endpoint or (os.environ if environ is None else environ).get("STORAGE_EMULATOR_HOST", "")
        self._http = http
        self._bucket: Any = None

    def __repr__(self) -> str:
        return f"GcsStore({self.url('')!r})"

    @property
    def bucket(self) -> Any:
        if self._bucket is None:
            from google.cloud import storage

            if self._emulator:
                from google.auth.credentials import AnonymousCredentials

                options = {"api_endpoint": self.endpoint} if self.endpoint else None
                client = storage.Client(project="mlp", credentials=AnonymousCredentials(),
                                        client_options=options, _http=self._http)
            else:
                with self._errors("connect to", ""):
                    client = storage.Client(_http=self._http)
            self._bucket = client.bucket(self.bucket_name)
        return self._bucket

    def url(self, name: str) -> str:
        return f"gs://{self.bucket_name}/{self._key(name)}"

    def removal_command(self, name: str) -> str:
        return f"gcloud storage rm {self.url(name)}"

    def _key(self, name: str) -> str:
        return join(self.prefix, name)

    # -- objects ---------------------------------------------------------------------------

    def get(self, name: str) -> bytes | None:
        with self._errors("read", name), self._absent():
            data: bytes = self.bucket.blob(self._key(name)).download_as_bytes()
            return data
        return None  # no such object

    def put(self, name: str, data: bytes) -> None:
        with self._errors("write", name):
            self.bucket.blob(self._key(name)).upload_from_string(data)

    def put_if_absent(self, name: str, data: bytes) -> bool:
        from google.api_core.exceptions import PreconditionFailed

        with self._errors("create", name):
            try:
                self.bucket.blob(self._key(name)).upload_from_string(data, if_generation_match=0)
            except PreconditionFailed:
                return False
        return True

    def delete(self, name: str) -> None:
        with self._errors("delete", name), self._absent():
            self.bucket.blob(self._key(name)).delete()

    def delete_many(self, names: Sequence[str]) -> None:
        parallel(self.delete, names)

    def list(self, prefix: str) -> list[str]:
        root = self._key("")
        with self._errors("list", prefix + "*"):
            blobs = self.bucket.client.list_blobs(self.bucket_name, prefix=self._key(prefix))
            return sorted(b.name[len(root):] for b in blobs)

    def stat(self, name: str) -> ObjectStat | None:
        with self._errors("read", name):
            blob = self.bucket.get_blob(self._key(name))
        return None if blob is None else ObjectStat(name, int(blob.size or 0), str(blob.generation))

    def upload_file(self, name: str, path: Path) -> None:
        with self._errors("upload", name):
            self.bucket.blob(self._key(name)).upload_from_filename(str(path))

    def download_file(self, name: str, path: Path) -> bool:
        with self._errors("download", name), self._absent() as outcome:
            self.bucket.blob(self._key(name)).download_to_filename(str(path))
        return not outcome.gone

    # -- lock ------------------------------------------------------------------------------

    def acquire_lock(self, name: str, lock_id: str, data: bytes) -> bool:
        return self.put_if_absent(name, data)

    def read_lock(self, name: str) -> HeldLock | None:
        """The lock's bytes at one generation: the metadata says which, the read asks for it."""
        for _ in range(3):
            found = self.stat(name)
            if found is None:
                return None
            with self._errors("read", name), self._absent():
                blob = self.bucket.blob(self._key(name))
                data = blob.download_as_bytes(if_generation_match=int(found.version))
                return HeldLock(data, found.version)
            # replaced or removed between the two requests: look again
        raise store_error("read", self.url(name), "The lock object kept changing while it was being read.",
                          "Run the command again once the other mlp commands have finished.")

    def release_lock(self, name: str, lock_id: str, held: HeldLock) -> None:
        from google.api_core.exceptions import PreconditionFailed

        with self._errors("delete", name), self._absent():
            try:
                self.bucket.blob(self._key(name)).delete(if_generation_match=int(held.token))
            except PreconditionFailed:
                raise store_error("release the lock", self.url(name), "The lock object changed while it was being released.",
                                  "Run `mlp state unlock` again with the ID the new lock error shows.") from None

    # -- errors ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _absent(self) -> Iterator[_Outcome]:
        """Swallows "no such object" (and a generation that is gone), and says so."""
        from google.api_core.exceptions import NotFound, PreconditionFailed

        outcome = _Outcome()
        try:
            yield outcome
        except (NotFound, PreconditionFailed):
            outcome.gone = True

    @contextlib.contextmanager
    def _errors(self, action: str, name: str) -> Iterator[None]:
        from google.api_core.exceptions import Forbidden, GoogleAPICallError, NotFound, Unauthorized
        from google.auth.exceptions import GoogleAuthError
        from requests import RequestException

        url = self.url(name)
        try:
            yield
        except GoogleAuthError as e:
            raise store_error(action, url, f"No usable Google credentials: {e}", _CREDENTIALS_HINT) from None
        except (Forbidden, Unauthorized) as e:
            raise store_error(action, url, _message(e), _CREDENTIALS_HINT + f", with access to gs://{self.bucket_name}") from None
        except NotFound as e:
            raise store_error(action, url, _message(e),
                              f'Create the bucket {self.bucket_name}, or fix `bucket` in the backend "gcs" block.') from None
        except GoogleAPICallError as e:
            raise store_error(action, url, _message(e), f'Check the backend "gcs" block (bucket {self.bucket_name}).') from None
        except RequestException as e:
            where = self.endpoint or self._emulator or "Google Cloud Storage"
            raise store_error(action, url, f"{type(e).__name__}: {e}", f"Check the network and the backend's endpoint ({where}).") from None


def _message(e: Any) -> str:
    return f"{getattr(e, 'code', '')} {getattr(e, 'message', e)}".strip()

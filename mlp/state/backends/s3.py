"""`backend "s3"`: objects in an S3 bucket (or any S3-compatible server at `endpoint`), via boto3.

Credentials come from boto3's default chain (environment, `AWS_PROFILE` and the shared
config files, SSO, container and instance roles); mlp never reads or stores them itself.
The lock object is created with `If-None-Match: *`, which S3 evaluates atomically, and
removed with `If-Match` on the ETag that was read, so a release never removes a lock
someone else took in between.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mlp.state.backends.objects import HeldLock, ObjectStat, join, missing_sdk, store_error

_SESSION_LOCK = threading.Lock()
_BATCH = 1000  # DeleteObjects takes at most this many keys
_CREDENTIALS_HINT = ("Give boto3 credentials the usual way: AWS_PROFILE or AWS_ACCESS_KEY_ID and "
                     "AWS_SECRET_ACCESS_KEY, `aws configure` or `aws sso login`, or a role of the machine")


class _Outcome:
    """Set by `_preconditions` when the request's condition did not hold."""

    failed = False


class S3Store:
    """Objects under `prefix` in `bucket`. The boto3 client is made at the first request."""

    kind = "s3"

    def __init__(self, bucket: str, prefix: str = "", region: str = "us-east-1", endpoint: str = "") -> None:
        try:
            import boto3  # noqa: F401  (fail now, with the install command, not at the first request)
        except ImportError:
            raise missing_sdk("s3", "boto3", "s3") from None
        self.bucket, self.prefix, self.region, self.endpoint = bucket, prefix.strip("/"), region, endpoint
        self._client: Any = None

    def __repr__(self) -> str:
        return f"S3Store({self.url('')!r})"

    @property
    def client(self) -> Any:
        if self._client is None:
            from botocore.config import Config

            config = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=32,
                            s3={"addressing_style": "path"} if self.endpoint else {})
            with _SESSION_LOCK:  # a session is not thread-safe, its clients are
                self._client = _session().client(
                    "s3", region_name=self.region or None, endpoint_url=self.endpoint or None, config=config)
        return self._client

    def url(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(name)}"

    def removal_command(self, name: str) -> str:
        flag = f" --endpoint-url {self.endpoint}" if self.endpoint else ""
        return f"aws s3 rm{flag} {self.url(name)}"

    def _key(self, name: str) -> str:
        return join(self.prefix, name)

    # -- objects ---------------------------------------------------------------------------

    def get(self, name: str) -> bytes | None:
        with self._errors("read", name):
            try:
                body: bytes = self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()
            except self._client_error() as e:
                if _code(e) in ("NoSuchKey", "404"):
                    return None
                raise
        return body

    def put(self, name: str, data: bytes) -> None:
        with self._errors("write", name):
            self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data)

    def put_if_absent(self, name: str, data: bytes) -> bool:
        with self._errors("create", name), self._preconditions() as outcome:
            self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data, IfNoneMatch="*")
        return not outcome.failed

    def delete(self, name: str) -> None:
        with self._errors("delete", name):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(name))

    def delete_many(self, names: Sequence[str]) -> None:
        for start in range(0, len(names), _BATCH):
            batch = names[start:start + _BATCH]
            with self._errors("delete", batch[0]):
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": self._key(n)} for n in batch], "Quiet": True})
            failed = answer.get("Errors") or []
            if failed:
                first = failed[0]
                raise store_error("delete", f"s3://{self.bucket}/{first.get('Key')}",
                                  f"{first.get('Code')}: {first.get('Message')}", _CREDENTIALS_HINT)

    def list(self, prefix: str) -> list[str]:
        root = self._key("")
        names: list[str] = []
        with self._errors("list", prefix + "*"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                names.extend(obj["Key"][len(root):] for obj in page.get("Contents", ()))
        return sorted(names)

    def stat(self, name: str) -> ObjectStat | None:
        with self._errors("read", name):
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=self._key(name))
            except self._client_error() as e:
                if _code(e) in ("NoSuchKey", "404", "NotFound"):
                    return None
                raise
        return ObjectStat(name, int(head["ContentLength"]), str(head["ETag"]).strip('"'))

    def upload_file(self, name: str, path: Path) -> None:
        with self._errors("upload", name):
            self.client.upload_file(str(path), self.bucket, self._key(name))

    def download_file(self, name: str, path: Path) -> bool:
        with self._errors("download", name):
            try:
                self.client.download_file(self.bucket, self._key(name), str(path))
            except self._client_error() as e:
                if _code(e) in ("NoSuchKey", "404", "NotFound"):
                    return False
                raise
        return True

    # -- lock ------------------------------------------------------------------------------

    def acquire_lock(self, name: str, lock_id: str, data: bytes) -> bool:
        return self.put_if_absent(name, data)

    def read_lock(self, name: str) -> HeldLock | None:
        with self._errors("read", name):
            try:
                got = self.client.get_object(Bucket=self.bucket, Key=self._key(name))
            except self._client_error() as e:
                if _code(e) in ("NoSuchKey", "404"):
                    return None
                raise
            return HeldLock(got["Body"].read(), str(got["ETag"]))

    def release_lock(self, name: str, lock_id: str, held: HeldLock) -> None:
        with self._errors("delete", name), self._preconditions() as outcome:
            try:
                self.client.delete_object(Bucket=self.bucket, Key=self._key(name), IfMatch=held.token)
            except self._client_error() as e:
                if _code(e) != "NotImplemented":
                    raise
                # A compatible server without conditional deletes: the id was checked just before.
                self.client.delete_object(Bucket=self.bucket, Key=self._key(name))
        if outcome.failed:
            raise store_error("release the lock", self.url(name), "The lock object changed while it was being released.",
                              "Run `mlp state unlock` again with the ID the new lock error shows.")

    # -- errors ----------------------------------------------------------------------------

    def _client_error(self) -> type[Exception]:
        from botocore.exceptions import ClientError

        return ClientError

    @contextlib.contextmanager
    def _preconditions(self) -> Iterator[_Outcome]:
        """Swallows a failed condition (412; 409 when a concurrent request won), and says so."""
        outcome = _Outcome()
        try:
            yield outcome
        except self._client_error() as e:
            if _code(e) not in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                raise
            outcome.failed = True

    @contextlib.contextmanager
    def _errors(self, action: str, name: str) -> Iterator[None]:
        """SDK failures as StateErrors naming the object and the fix."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

        url = self.url(name)
        try:
            yield
        except (NoCredentialsError, PartialCredentialsError) as e:
            raise store_error(action, url, f"AWS credentials are missing or incomplete: {e}.", _CREDENTIALS_HINT) from None
        except ClientError as e:
            raise store_error(action, url, f"{_code(e)}: {_message(e)}", _hint(_code(e), self)) from None
        except (BotoCoreError, Boto3Error) as e:
            where = self.endpoint or f"S3 in {self.region}"
            raise store_error(action, url, f"{e}", f"Check the network and the backend's endpoint ({where}).") from None


@functools.cache
def _session() -> Any:
    """One boto3 session per process: it loads the S3 model once, so opening a backend is cheap.
    It resolves credentials through boto3's default chain when a client is made."""
    import boto3

    return boto3.session.Session()


def _code(e: Any) -> str:
    return str(e.response.get("Error", {}).get("Code") or e.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


def _message(e: Any) -> str:
    return str(e.response.get("Error", {}).get("Message") or e)


def _hint(code: str, store: S3Store) -> str:
    if code == "NoSuchBucket":
        return f'Create the bucket {store.bucket}, or fix `bucket` in the backend "s3" block.'
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
        return _CREDENTIALS_HINT + f", with access to s3://{store.bucket}/{store._key('')}"
    return f'Check the backend "s3" block (bucket {store.bucket}, region {store.region}) and the credentials.'

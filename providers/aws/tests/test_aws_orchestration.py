"""The aws provider's orchestration: the cloud providers' contract (`mlp_cloud.contract`),
through the recording seams, for `provider "aws"` with an s3 backend."""

from __future__ import annotations

from mlp_cloud.contract import *  # noqa: F403 - the contract's tests, run here for aws

"""The gcp provider's orchestration: the cloud providers' contract (`mlp_cloud.contract`),
through the recording seams, for `provider "gcp"` with a gcs backend."""

from __future__ import annotations

from mlp_cloud.contract import *  # noqa: F403 - the contract's tests, run here for gcp

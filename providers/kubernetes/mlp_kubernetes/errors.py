"""The errors of the kubernetes provider: all `mlp.errors.MlpError`s, rendered like mlp's own.

    MlpError
    └── ClusterError      the cluster cannot be reached, or its API refused a call;
                          names the kubeconfig context (and the server when it is known)
"""

from __future__ import annotations

from mlp.errors import MlpError


class ClusterError(MlpError):
    """`context` is the kubeconfig context the call used ("" when none was found);
    `status` the API's HTTP status when it answered (0 when it did not)."""

    def __init__(self, summary: str, detail: str = "", hint: str = "", *, context: str = "",
                 status: int = 0) -> None:
        super().__init__(summary, detail, hint)
        self.context = context
        self.status = status

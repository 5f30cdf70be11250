"""State, artifacts and logs: the model, the backend protocol, and the local backend.

`mlp.state.testing` holds the conformance suite every backend runs.
"""

from mlp.state.backend import ArtifactStore, Backend, LogStore, artifact_key, locked
from mlp.state.local import LocalBackend
from mlp.state.lock import LockInfo, lock_error
from mlp.state.model import BlockRecord, JournalEntry, State

__all__ = [
    "ArtifactStore",
    "Backend",
    "BlockRecord",
    "JournalEntry",
    "LocalBackend",
    "LockInfo",
    "LogStore",
    "State",
    "artifact_key",
    "lock_error",
    "locked",
]

"""What the CLI shows of artifact transfers without a terminal: one line per finished artifact,
on stderr."""

from __future__ import annotations

import pytest

from mlp.cli.transfers import TransferLines, transfer_hook
from mlp.state.backends.artifacts import Direction, TransferProgress


def test_one_line_per_finished_artifact_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    hook = transfer_hook(interactive=False)
    assert isinstance(hook, TransferLines)
    key = "ab/ab" + "c" * 62
    hook(TransferProgress(Direction.DOWNLOAD, key, 0, 3, 0, 3_500_000))
    hook(TransferProgress(Direction.DOWNLOAD, key, 2, 3, 2_000_000, 3_500_000))
    hook(TransferProgress(Direction.DOWNLOAD, key, 3, 3, 3_500_000, 3_500_000))
    hook(TransferProgress(Direction.UPLOAD, key, 1, 1, 120, 120))
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"pulled {key[:15]}… (3 files, 3.3 MB)", f"pushed {key[:15]}… (1 file, 120 B)"]

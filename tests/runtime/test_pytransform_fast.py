"""The serving fast path (`apply_columns`) gives what `apply_chain` gives, job for job,
on the parity data (nulls, unseen values, chains), from numpy arrays as the API holds them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlp.builtins.pytransform import apply_chain, apply_columns
from tests.runtime.test_transforms import AGGS, JOBS, ROWS, plain

NAMES = ("id", "x", "n", "s", "b")


def _arrays() -> dict[str, np.ndarray]:
    cols = {n: [r[i] for r in ROWS] for i, n in enumerate(NAMES)}
    return {"id": np.array(cols["id"]), "x": np.array([np.nan if v is None else v for v in cols["x"]]),
            "n": np.array(cols["n"], dtype=object), "s": np.array(cols["s"], dtype=object),
            "b": np.array(cols["b"], dtype=object)}


@pytest.mark.parametrize("job", JOBS, ids=[j.name for j in JOBS])
def test_fast_path_matches_pandas(job):  # type: ignore[no-untyped-def]
    frame = pd.DataFrame.from_records([dict(zip(NAMES, r)) for r in ROWS])
    want = apply_chain(frame, JOBS, AGGS)[job.name]
    got = apply_columns(_arrays(), JOBS, AGGS)[job.name]
    got_v, want_v = [plain(v) for v in list(got)], [plain(v) for v in list(want)]
    if any(isinstance(v, list) for v in want_v):
        assert got_v == want_v
    else:
        assert got_v == pytest.approx(want_v, nan_ok=True)


def test_every_built_in_runs_on_the_numpy_path() -> None:
    from mlp.builtins.catalogue import TRANSFORMERS
    from mlp.builtins.pytransform import _fast

    covered = {j.transformer for j in JOBS if j.custom_path is None and _fast(j, AGGS, j.resolved_args()) is not None}
    assert {j.transformer for j in JOBS if j.custom_path is None} == set(TRANSFORMERS)  # the parity data has them all
    assert covered == set(TRANSFORMERS)

"""The shared cloud layer's tests: `.venv/bin/pytest providers/_cloud/tests`."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("mlp_cloud.contract", "mlp_cloud.mocks")

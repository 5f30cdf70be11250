"""The engine's tests share the real object-storage servers of the backend tests."""

from tests.state.conftest import moto_server  # noqa: F401 - a fixture, for the shared-cache test

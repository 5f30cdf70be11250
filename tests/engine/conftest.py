"""The engine's tests share the real object-storage servers of the backend tests."""

from tests.state.conftest import azurite, gcs_emulator, moto_server, remote  # noqa: F401 - fixtures

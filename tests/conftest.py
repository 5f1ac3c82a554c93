"""Session-wide fixtures: the real servers for integration and e2e tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# skip_guard fails a run with a skip the allow-list does not explain; pytester tests that plugin.
pytest_plugins = ["pytester", "tests.support.skip_guard"]
# The local profile exports spans to 127.0.0.1:4318; tests export only to the Jaeger the test
# stack starts (tests/support/stack.export sets it), never to a developer's own.
os.environ.setdefault("LORAG_OTEL_ENDPOINT", "off")


@pytest.fixture(scope="session", autouse=True)
def private_cli_config(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The CLI saves its gateway login under XDG_CONFIG_HOME: never the developer's own."""
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("xdg-config"))


@pytest.fixture(scope="session")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Real Kafka, Postgres and S3 for the whole session, and the environment pointed at them."""
    from tests.support.stack import export, real_servers

    with real_servers() as (found, state_dir):
        export(found)
        if state_dir is not None:
            os.environ["LORAG_STATE_DIR"] = str(state_dir)
        yield found


@pytest.fixture(scope="session")
def settings(endpoints: object):
    from lorag_core.db import migrations
    from lorag_core.settings import Settings

    current = Settings()
    migrations.upgrade(current.postgres_dsn)
    return current


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service-logs")

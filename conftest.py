"""Project-wide test fixtures: personas, API clients and real services.

Every test uses the configured database for real (SQLite by default, PostgreSQL when DATABASE_URL is set)
and Redis when REDIS_URL is set; tests that need Redis say why they are skipped without it.
"""

from __future__ import annotations

import copy
import os
import uuid

import pytest


def pytest_report_header(config):
    from django.conf import settings

    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    return [f"parley: database={db} redis={'yes' if os.environ.get('REDIS_URL') else 'no'}"]


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs a real Redis: set REDIS_URL (CI runs this suite once with PostgreSQL and Redis)")
    return url


@pytest.fixture
def redis_channel_layer(redis_url, settings):
    """Points ``CHANNEL_LAYERS`` at Redis exactly as ``parley.settings`` configures it from ``REDIS_URL`` (its hosts
    with their 30 s ``socket_timeout``, so an idle ``BZPOPMIN`` receive does not time out; its capacity) under a
    prefix of the test's own. Returns that prefix (give it to subprocesses as ``PARLEY_CHANNEL_PREFIX``). The
    layer instances are reset before and after the test."""
    from channels.layers import channel_layers

    from parley import settings as project_settings

    layer = copy.deepcopy(project_settings.CHANNEL_LAYERS["default"])
    assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer", "parley.settings: REDIS_URL selects Redis"
    prefix = f"parley-test-{uuid.uuid4().hex[:8]}"
    layer["CONFIG"]["prefix"] = prefix
    settings.CHANNEL_LAYERS = {"default": layer}
    channel_layers.backends = {}
    yield prefix
    channel_layers.backends = {}


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    """Each test writes recordings and storage under its own temporary data directory."""
    settings.PARLEY_DATA_DIR = tmp_path / "data"
    settings.PARLEY_DATA_DIR.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(settings.PARLEY_DATA_DIR / "storage")},
        },
    }
    settings.PARLEY_WEBHOOK_ALLOW_PRIVATE = True
    yield


@pytest.fixture(autouse=True)
def _celery_tasks_in_process():
    """Tasks run in-process for real (eagerly) in every test, also when REDIS_URL names a broker; the tests of
    broker behaviour configure their own Celery worker."""
    from parley.celery import app

    was = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = was


@pytest.fixture(scope="session", autouse=True)
def _test_database_released(django_db_setup, django_db_blocker):
    """At the end of the run, close what threads of the tests (executor threads of ``sync_to_async``, in-process
    workers) left connected to the PostgreSQL test database, so pytest-django can drop it instead of warning that
    it "is being accessed by other users"."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )

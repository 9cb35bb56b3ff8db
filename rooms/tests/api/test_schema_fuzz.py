"""Property-based fuzzing of every operation in ``/api/schema/`` (schemathesis) with a real API key:
no input may produce a server error. 503 ``media_unavailable`` is the documented answer of egress control
without a media worker, not a failure."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings

from rooms.tests.factories import MemberFactory, ProjectFactory, RoomFactory, RoomSessionFactory, api_key_create

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_throttling(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"writes": "100000/min", "room_tokens": "100000/min"},
    }


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Calling the WSGI app directly (not through Django's test client) fires ``close_old_connections`` at the
    end of every request, which would close the test transaction's connection on PostgreSQL. Django's own test
    client disconnects it the same way."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def auth_headers(db):
    project = ProjectFactory(name="fuzz")
    session = RoomSessionFactory(room=RoomFactory(project=project, name="fuzz-room"))
    MemberFactory(room_session=session)
    _, raw = api_key_create(project, name="fuzz")
    return {"Authorization": f"Bearer {raw}"}


# The schema is served by the app itself (no database access is needed to build it).
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


def _is_server_error(response) -> bool:
    if response.status_code < 500:
        return False
    if response.status_code == 503:
        try:
            return [e["code"] for e in response.json()["errors"]] != ["media_unavailable"]
        except (ValueError, KeyError, TypeError):
            return True
    return True


@schema.parametrize()
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_operation_answers_a_server_error(db, case, auth_headers):
    response = case.call(headers=auth_headers)
    assert not _is_server_error(response), (
        f"{case.method} {case.formatted_path} -> {response.status_code}: " + (response.text[:500])
    )

"""Management commands: createproject, createapikey, revokeapikey, demo_setup."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from rooms.models import ApiKey, Project


def _run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _authenticates(raw_key: str) -> bool:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client.get("/api/video/rooms").status_code == 200


def test_createproject_prints_the_project_id(db):
    out = _run("createproject", "acme").strip()
    assert str(Project.objects.get(name="acme").id) == out
    with pytest.raises(CommandError):
        _run("createproject", "acme")


def test_createapikey_prints_the_key_alone_on_the_last_line_and_it_authenticates(db):
    _run("createproject", "acme")
    out = _run("createapikey", "--project", "acme", "--name", "ci")
    raw = out.rstrip("\n").splitlines()[-1]
    assert raw.startswith("pk_") and " " not in raw
    key = ApiKey.objects.get(prefix=raw.split("_")[1])
    assert key.name == "ci" and key.key_hash != raw
    assert _authenticates(raw)


def test_createapikey_refuses_an_unknown_project(db):
    with pytest.raises(CommandError):
        _run("createapikey", "--project", "nope")


def test_revokeapikey_stops_the_key(db):
    _run("createproject", "acme")
    raw = _run("createapikey", "--project", "acme").splitlines()[-1]
    _run("revokeapikey", raw.split("_")[1])
    assert not _authenticates(raw)
    with pytest.raises(CommandError):
        _run("revokeapikey", "ffffffff")


def test_demo_setup_is_idempotent_and_prints_a_working_key(db):
    first = _run("demo_setup")
    second = _run("demo_setup")
    assert Project.objects.filter(name="demo").count() == 1
    keys = [
        line.split("=", 1)[1] for out in (first, second) for line in out.splitlines() if line.startswith("PARLEY_KEY=")
    ]
    assert len(keys) == 2 and keys[0] != keys[1]
    assert all(_authenticates(k) for k in keys)
    assert f"PARLEY_PROJECT_ID={Project.objects.get(name='demo').id}" in second
    assert "curl" in second and "/api/video/rooms" in second

"""``createoperator`` and ``demo_operator``."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from rooms.models import Project, ProjectMembership

pytestmark = pytest.mark.django_db


def test_createoperator_creates_the_project_user_and_role():
    out = StringIO()
    call_command("createoperator", "--username", "ann", "--password", "pw-123456", "--project", "acme", stdout=out)
    membership = ProjectMembership.objects.get(user__username="ann")
    assert (membership.project.name, membership.role) == ("acme", "operator")
    assert authenticate(username="ann", password="pw-123456") is not None
    assert "Created operator 'ann'" in out.getvalue()


def test_createoperator_gives_an_existing_user_a_moderator_role_in_another_project():
    call_command("createoperator", "--username", "ann", "--password", "pw-1", "--project", "acme", stdout=StringIO())
    call_command(
        "createoperator",
        "--username",
        "ann",
        "--password",
        "pw-2",
        "--project",
        "globex",
        "--role",
        "moderator",
        stdout=StringIO(),
    )
    roles = dict(ProjectMembership.objects.filter(user__username="ann").values_list("project__name", "role"))
    assert roles == {"acme": "operator", "globex": "moderator"}
    assert authenticate(username="ann", password="pw-2") is not None


def test_createoperator_rejects_an_unknown_role():
    with pytest.raises(CommandError):
        call_command("createoperator", "--username", "a", "--password", "p", "--project", "x", "--role", "king")
    assert not Project.objects.filter(name="x").exists()


def test_demo_operator_is_idempotent_and_prints_a_fresh_working_password():
    passwords = []
    for _ in range(2):
        out = StringIO()
        call_command("demo_operator", stdout=out)
        passwords.append(re.search(r"password: (\S+)", out.getvalue()).group(1))
        assert "user: demo" in out.getvalue() and "/dashboard/" in out.getvalue()
    assert passwords[0] != passwords[1]
    assert authenticate(username="demo", password=passwords[1]) is not None
    assert authenticate(username="demo", password=passwords[0]) is None
    membership = ProjectMembership.objects.get(user__username="demo")
    assert (membership.project.name, membership.role) == ("demo", "operator")
    assert Project.objects.filter(name="demo").count() == 1

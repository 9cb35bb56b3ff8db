"""Who may see what in the dashboard: the current project (kept in the session) and the user's role in it.

Every dashboard view goes through ``console_view``: it resolves the signed-in user's ``ProjectMembership`` for the
current project and attaches a ``Console`` as ``request.console``. A user with no membership sees 404 (what a
caller may not see does not exist); a moderator on an operator-only page gets the 403 page with a link back.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from rooms.actors import Actor
from rooms.models import Project, ProjectMembership

logger = logging.getLogger(__name__)

SESSION_PROJECT_KEY = "dashboard_project_id"
OPERATOR = ProjectMembership.Role.OPERATOR
MODERATOR = ProjectMembership.Role.MODERATOR


@dataclass(frozen=True)
class Console:
    """The signed-in user's view of one project: ``membership.role`` is ``operator`` or ``moderator``."""

    membership: ProjectMembership
    memberships: tuple[ProjectMembership, ...]

    @property
    def project(self) -> Project:
        return self.membership.project

    @property
    def role(self) -> str:
        return self.membership.role

    @property
    def is_operator(self) -> bool:
        return self.membership.role == OPERATOR

    def actor(self) -> Actor:
        """The ``Actor`` the services record for this user: every permission, through the dashboard."""
        user = self.membership.user
        return Actor(
            project_id=self.project.id,
            kind="user",
            id=str(user.pk),
            name=user.get_username(),
            interface="dashboard",
            permissions=None,
        )


def memberships_of(user) -> tuple[ProjectMembership, ...]:
    """The user's memberships, projects by name."""
    if not user.is_authenticated:
        return ()
    return tuple(
        ProjectMembership.objects.filter(user=user).select_related("project", "user").order_by("project__name")
    )


def console_for(request: HttpRequest) -> Console | None:
    """The ``Console`` of the session's current project, falling back to the user's first project; ``None`` when
    the user belongs to no project."""
    memberships = memberships_of(request.user)
    if not memberships:
        return None
    wanted = request.session.get(SESSION_PROJECT_KEY)
    current = next((m for m in memberships if str(m.project_id) == str(wanted)), memberships[0])
    if str(current.project_id) != str(wanted):
        request.session[SESSION_PROJECT_KEY] = str(current.project_id)
    return Console(membership=current, memberships=memberships)


def project_switch(request: HttpRequest, project_id: str) -> Console:
    """Make ``project_id`` the session's current project. Raises ``Http404`` unless the user is a member."""
    try:
        project_uuid = uuid.UUID(str(project_id))
    except ValueError as exc:
        raise Http404("No such project.") from exc
    memberships = memberships_of(request.user)
    chosen = next((m for m in memberships if m.project_id == project_uuid), None)
    if chosen is None:
        raise Http404("No such project.")
    request.session[SESSION_PROJECT_KEY] = str(chosen.project_id)
    return Console(membership=chosen, memberships=memberships)


def forbidden(request: HttpRequest, console: Console, what: str) -> HttpResponse:
    """The 403 page for a moderator on an operator page, with a link back to the live sessions."""
    return render(request, "dashboard/forbidden.html", {"console": console, "what": what}, status=403)


def console_view(*, operator_only: bool = False, what: str = "this page") -> Callable:
    """Decorate a view ``view(request, console, ...)``: sign-in required, membership required (404 without),
    and with ``operator_only`` the operator role (403 page for moderators)."""

    def decorator(view: Callable) -> Callable:
        @login_required
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            console = console_for(request)
            if console is None:
                raise Http404("You are not a member of any project.")
            if operator_only and not console.is_operator:
                logger.info("dashboard: moderator %s refused %s", request.user.pk, request.path)
                return forbidden(request, console, what)
            request.console = console
            return view(request, console, *args, **kwargs)

        return wrapper

    return decorator

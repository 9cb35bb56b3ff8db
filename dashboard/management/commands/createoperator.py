"""``manage.py createoperator --username U --password P --project NAME [--role operator|moderator]``.

Creates (or updates) a dashboard account and gives it ``role`` in project ``NAME`` (created if missing).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from rooms.models import Project, ProjectMembership


def operator_ensure(
    *, username: str, password: str | None, project_name: str, role: str
) -> tuple[ProjectMembership, bool]:
    """Create or update user ``username`` (setting ``password`` when given) with ``role`` in ``project_name``.

    Returns ``(membership, user_created)``. The project is created through the project service when missing.
    """
    from rooms.services.api_keys import project_create

    if role not in ProjectMembership.Role.values:
        raise CommandError(f"--role must be one of {', '.join(ProjectMembership.Role.values)}.")
    with transaction.atomic():
        project = Project.objects.filter(name=project_name).first() or project_create(name=project_name)
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(username=username)
        if password:
            user.set_password(password)
            user.save(update_fields=["password"])
        elif created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        membership, _ = ProjectMembership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership, created


class Command(BaseCommand):
    help = "Create a dashboard account with a role (operator or moderator) in a project."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--project", required=True, help="Project name (created if missing).")
        parser.add_argument("--role", default="operator", choices=ProjectMembership.Role.values)

    def handle(self, *args, username: str, password: str, project: str, role: str, **options) -> None:
        if not password:
            raise CommandError("--password must not be empty.")
        membership, created = operator_ensure(username=username, password=password, project_name=project, role=role)
        verb = "Created" if created else "Updated"
        self.stdout.write(
            f"{verb} {role} '{username}' in project '{membership.project.name}' ({membership.project_id})."
        )

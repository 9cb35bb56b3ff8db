"""``manage.py createproject NAME``: create a project and print its id."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from rooms.exceptions import ParleyError
from rooms.services.api_keys import project_create


class Command(BaseCommand):
    help = "Create a project and print its id."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name: str, **options):
        try:
            project = project_create(name=name)
        except ParleyError as e:
            raise CommandError(e.message) from e
        self.stdout.write(str(project.id))

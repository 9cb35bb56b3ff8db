"""``manage.py createapikey --project NAME [--name LABEL]``: create an API key; the raw key is printed alone on
the last line of stdout (it is shown only once)."""

from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand, CommandError

from rooms.models import Project
from rooms.services.api_keys import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a project; prints the key alone on the last line (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project name (or id).")
        parser.add_argument("--name", default="", help="A label for the key.")

    def handle(self, *args, project: str, name: str, **options):
        found = Project.objects.filter(name=project).first()
        if found is None:
            try:
                found = Project.objects.filter(id=uuid.UUID(project)).first()
            except ValueError:  # neither a name nor an id
                found = None
        if found is None:
            raise CommandError(f"No project named '{project}'.")
        key, raw = api_key_create(project=found, name=name)
        self.stdout.write(f"project {found.name} ({found.id}), key prefix {key.prefix}")
        self.stdout.write(raw)

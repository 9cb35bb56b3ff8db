"""``manage.py demo_setup``: ensure the ``demo`` project, create a fresh API key and print it with the project
id and a curl line that creates a room (used by ``make run``). Safe to run again: it reuses the project."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from rooms.models import Project
from rooms.services.api_keys import api_key_create

DEMO_PROJECT = "demo"


class Command(BaseCommand):
    help = "Ensure the demo project and print a fresh API key with a ready-to-paste curl line."

    def handle(self, *args, **options):
        project, created = Project.objects.get_or_create(name=DEMO_PROJECT)
        _, raw = api_key_create(project=project, name="demo_setup")
        base = settings.PARLEY_PUBLIC_URL
        self.stdout.write(f"Parley demo project {'created' if created else 'ready'}: {project.name}")
        self.stdout.write(f"PARLEY_PROJECT_ID={project.id}")
        self.stdout.write(f"PARLEY_KEY={raw}")
        self.stdout.write("Create a room:")
        self.stdout.write(
            f"  export PARLEY_KEY={raw}\n"
            f'  curl -s -X POST {base}/api/video/rooms -H "Authorization: Bearer $PARLEY_KEY" '
            "-H 'Content-Type: application/json' -d '{\"name\": \"demo-room\"}'"
        )
        self.stdout.write(f"API docs: {base}/api/docs/")

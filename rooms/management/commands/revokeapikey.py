"""``manage.py revokeapikey PREFIX``: revoke the key with that prefix (or the whole ``pk_…`` key)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from rooms.exceptions import NotFound
from rooms.services.api_keys import api_key_revoke_by_prefix


class Command(BaseCommand):
    help = "Revoke an API key by its prefix."

    def add_arguments(self, parser):
        parser.add_argument("prefix")

    def handle(self, *args, prefix: str, **options):
        try:
            key = api_key_revoke_by_prefix(prefix=prefix)
        except NotFound as e:
            raise CommandError(e.message) from e
        self.stdout.write(f"revoked {key.prefix} of project {key.project.name}")

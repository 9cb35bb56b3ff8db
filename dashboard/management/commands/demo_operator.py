"""``manage.py demo_operator``: the demo account for ``make run`` (idempotent).

Ensures user ``demo`` is an operator of project ``demo`` and sets a fresh random password, printed once with
the dashboard's sign-in URL.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand

from dashboard.management.commands.createoperator import operator_ensure

DEMO_USERNAME = "demo"
DEMO_PROJECT = "demo"


class Command(BaseCommand):
    help = "Ensure the demo operator (user 'demo' of project 'demo') and print a fresh password."

    def handle(self, *args, **options) -> None:
        password = secrets.token_urlsafe(12)
        operator_ensure(username=DEMO_USERNAME, password=password, project_name=DEMO_PROJECT, role="operator")
        self.stdout.write(f"Dashboard: {settings.PARLEY_PUBLIC_URL}/dashboard/")
        self.stdout.write(f"  user: {DEMO_USERNAME}")
        self.stdout.write(f"  password: {password}")

"""Seed the built-in layouts (``media.mixer.layout_defs``) as rows with ``project=None``."""

from django.db import migrations

# Frozen copy of the definitions at the time of this migration.
from media.mixer.layout_defs import BUILTIN_LAYOUTS


def seed(apps, schema_editor):
    Layout = apps.get_model("rooms", "Layout")
    for name, spec in BUILTIN_LAYOUTS.items():
        Layout.objects.update_or_create(
            project=None,
            name=name,
            defaults={
                "description": spec.get("description", ""),
                "slots": spec.get("slots", []),
                "group": spec.get("group", []),
            },
        )


def unseed(apps, schema_editor):
    apps.get_model("rooms", "Layout").objects.filter(project=None, name__in=list(BUILTIN_LAYOUTS)).delete()


class Migration(migrations.Migration):
    dependencies = [("rooms", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]

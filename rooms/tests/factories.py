"""factory_boy factories and persona helpers shared by the rooms, media and dashboard tests."""

from __future__ import annotations

import factory

from rooms.models import ApiKey, Member, Project, Room, RoomSession, WebhookEndpoint


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"project-{n}")


class RoomFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Room

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"room-{n}")
    display_name = factory.LazyAttribute(lambda o: o.name.title())


class RoomSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RoomSession

    room = factory.SubFactory(RoomFactory)
    project = factory.LazyAttribute(lambda o: o.room.project)
    name = factory.LazyAttribute(lambda o: o.room.name)
    layout_name = factory.LazyAttribute(lambda o: o.room.layout)


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    room_session = factory.SubFactory(RoomSessionFactory)
    name = factory.Sequence(lambda n: f"member-{n}")


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    project = factory.SubFactory(ProjectFactory)
    url = "http://127.0.0.1:9/hook"


def api_key_create(project: Project, name: str = "test") -> tuple[ApiKey, str]:
    """Create a key for ``project``; returns ``(ApiKey, raw_key)``."""
    raw, prefix = ApiKey.generate()
    key = ApiKey.objects.create(project=project, name=name, prefix=prefix, key_hash=ApiKey.hash_key(raw))
    return key, raw

"""Personas for the REST tests: the owner project with its key, and an outsider project with its own key."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from rooms.models import ApiKey, Project
from rooms.tests.factories import ProjectFactory, api_key_create


@dataclass
class Persona:
    project: Project
    key: ApiKey
    raw_key: str
    client: APIClient


def _persona(name: str) -> Persona:
    project = ProjectFactory(name=name)
    key, raw = api_key_create(project, name=f"{name} key")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return Persona(project=project, key=key, raw_key=raw, client=client)


@pytest.fixture
def owner(db) -> Persona:
    return _persona("owner")


@pytest.fixture
def outsider(db) -> Persona:
    return _persona("outsider")


@pytest.fixture
def api(owner) -> APIClient:
    return owner.client


def basic(project_id, raw_key: str) -> str:
    return "Basic " + base64.b64encode(f"{project_id}:{raw_key}".encode()).decode()


def error_codes(response) -> list[str]:
    return [e["code"] for e in response.json()["errors"]]


def error_attributes(response) -> list[str | None]:
    return [e["attribute"] for e in response.json()["errors"]]

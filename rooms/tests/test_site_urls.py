"""The front page and the health check."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection

pytestmark = pytest.mark.django_db


def test_the_front_page_leads_to_the_dashboard_which_asks_for_a_sign_in(client):
    response = client.get("/", follow=True)
    assert [url for url, _ in response.redirect_chain][0] == "/dashboard/"
    assert response.status_code == 200
    assert response.redirect_chain[-1][0].startswith("/dashboard/login/")


def test_healthz_answers_ok_with_the_database_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_answers_503_without_detail_when_the_database_fails(client, caplog):
    def refuse(execute, sql, params, many, context):
        if sql == "SELECT 1":
            raise OperationalError("connection refused")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unavailable"}
    assert "connection refused" not in response.content.decode()
    assert "did not answer" in caplog.text


def test_healthz_refuses_other_methods(client):
    assert client.post("/healthz").status_code == 405

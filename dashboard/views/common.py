"""Helpers shared by the dashboard views."""

from __future__ import annotations

from django import forms

from rooms.exceptions import ParleyError


def form_error_from(form: forms.Form, exc: ParleyError) -> None:
    """Show a service's refusal on the form: on its field when the error names one, else above the form."""
    field = exc.attribute if exc.attribute in form.fields else None
    form.add_error(field, exc.message)

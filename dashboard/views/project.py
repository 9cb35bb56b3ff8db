"""Project settings and insight: API keys, webhook endpoints, layouts, the audit log and usage."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard import selectors
from dashboard.access import Console, console_view, forbidden
from dashboard.forms import ApiKeyForm, AuditFilterForm, LayoutForm, WebhookEndpointForm
from dashboard.layout_preview import preview_slots
from dashboard.views.common import form_error_from
from rooms.exceptions import ParleyError


@console_view(operator_only=True, what="API keys")
def api_key_list(request: HttpRequest, console: Console) -> HttpResponse:
    """The project's keys; POST creates one and shows the raw key once."""
    from rooms.services.api_keys import api_key_create

    form = ApiKeyForm(request.POST or None)
    raw_key = None
    if request.method == "POST" and form.is_valid():
        try:
            _, raw_key = api_key_create(project=console.project, name=form.cleaned_data["name"], actor=console.actor())
        except ParleyError as exc:
            form_error_from(form, exc)
        else:
            form = ApiKeyForm()
    keys = selectors.api_key_list(project=console.project)
    response = render(
        request, "dashboard/api_keys.html", {"console": console, "form": form, "keys": keys, "raw_key": raw_key}
    )
    if raw_key:
        response["Cache-Control"] = "no-store"
    return response


@require_POST
@console_view(operator_only=True, what="API keys")
def api_key_revoke_view(request: HttpRequest, console: Console, api_key_id) -> HttpResponse:
    from rooms.services.api_keys import api_key_revoke

    key = selectors.api_key_get(project=console.project, api_key_id=api_key_id)
    api_key_revoke(api_key=key, actor=console.actor())
    messages.success(request, f"Key “{key.name or key.prefix}” revoked.")
    return redirect("dashboard:api_keys")


@console_view(operator_only=True, what="webhooks")
def webhook_list(request: HttpRequest, console: Console) -> HttpResponse:
    """The project's endpoints; POST registers one (its secret is shown on its page)."""
    from rooms.services.webhooks import webhook_endpoint_create

    form = WebhookEndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = webhook_endpoint_create(project=console.project, actor=console.actor(), **form.endpoint_fields())
        except ParleyError as exc:
            form_error_from(form, exc)
        else:
            messages.success(request, "Webhook endpoint added. Copy its signing secret below.")
            return redirect("dashboard:webhook", endpoint_id=endpoint.id)
    endpoints = selectors.webhook_endpoint_list(project=console.project)
    status = 422 if request.method == "POST" else 200
    return render(
        request, "dashboard/webhooks.html", {"console": console, "form": form, "endpoints": endpoints}, status=status
    )


@console_view(operator_only=True, what="webhooks")
def webhook_detail(request: HttpRequest, console: Console, endpoint_id) -> HttpResponse:
    """An endpoint: edit it, its secret, and its delivery log."""
    from rooms.services.webhooks import webhook_endpoint_update

    endpoint = selectors.webhook_endpoint_get(project=console.project, endpoint_id=endpoint_id)
    form = WebhookEndpointForm(request.POST or None, instance=endpoint)
    if request.method == "POST" and form.is_valid():
        try:
            webhook_endpoint_update(endpoint=endpoint, data=form.endpoint_fields(), actor=console.actor())
        except ParleyError as exc:
            form_error_from(form, exc)
        else:
            messages.success(request, "Webhook endpoint saved.")
            return redirect("dashboard:webhook", endpoint_id=endpoint.id)
    endpoint.refresh_from_db()
    context = {
        "console": console,
        "endpoint": endpoint,
        "form": form,
        "deliveries": selectors.webhook_delivery_list(endpoint=endpoint),
    }
    return render(request, "dashboard/webhook.html", context, status=422 if form.errors else 200)


@require_POST
@console_view(operator_only=True, what="webhooks")
def webhook_action(request: HttpRequest, console: Console, endpoint_id, action: str) -> HttpResponse:
    """``rotate_secret``, ``test`` or ``delete`` an endpoint."""
    from rooms.services import webhooks as service

    endpoint = selectors.webhook_endpoint_get(project=console.project, endpoint_id=endpoint_id)
    try:
        if action == "rotate_secret":
            service.webhook_secret_rotate(endpoint=endpoint, actor=console.actor())
            messages.success(request, "New signing secret generated; update your receiver.")
        elif action == "test":
            service.webhook_test_send(endpoint=endpoint, actor=console.actor())
            messages.success(request, "Test event sent; see the delivery log.")
        elif action == "delete":
            service.webhook_endpoint_delete(endpoint=endpoint, actor=console.actor())
            messages.success(request, "Webhook endpoint deleted.")
            return redirect("dashboard:webhooks")
        else:
            return redirect("dashboard:webhook", endpoint_id=endpoint.id)
    except ParleyError as exc:
        messages.error(request, exc.message)
    return redirect("dashboard:webhook", endpoint_id=endpoint.id)


@require_POST
@console_view(operator_only=True, what="webhooks")
def webhook_resend(request: HttpRequest, console: Console, endpoint_id, delivery_id) -> HttpResponse:
    from rooms.services.webhooks import webhook_delivery_resend

    endpoint = selectors.webhook_endpoint_get(project=console.project, endpoint_id=endpoint_id)
    delivery = selectors.webhook_delivery_get(endpoint=endpoint, delivery_id=delivery_id)
    try:
        webhook_delivery_resend(endpoint=endpoint, delivery=delivery, actor=console.actor())
    except ParleyError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Delivery of {delivery.event.name} sent again.")
    return redirect("dashboard:webhook", endpoint_id=endpoint.id)


def _layout_cards(layouts, by_name) -> list[dict]:
    return [{"layout": layout, "slots": preview_slots(layout, by_name=by_name)} for layout in layouts]


@console_view()
def layout_list(request: HttpRequest, console: Console) -> HttpResponse:
    """Built-in and custom layouts drawn from their slots; operators create custom ones here."""
    from rooms.services.layouts import layout_create

    builtins, custom = selectors.layout_list(project=console.project)
    by_name = {layout.name: layout for layout in [*builtins, *custom]}
    form = LayoutForm(request.POST or None, taken_names=set(by_name))
    if request.method == "POST":
        if not console.is_operator:
            return forbidden(request, console, "custom layouts")
        if form.is_valid():
            try:
                layout = layout_create(
                    actor=console.actor(),
                    project=console.project,
                    name=form.cleaned_data["name"],
                    slots=form.cleaned_data["slots"],
                    description=form.cleaned_data["description"],
                )
            except ParleyError as exc:
                form_error_from(form, exc)
            else:
                messages.success(request, f"Layout “{layout.name}” created.")
                return redirect("dashboard:layouts")
    context = {
        "console": console,
        "builtins": _layout_cards(builtins, by_name),
        "custom": _layout_cards(custom, by_name),
        "form": form,
    }
    return render(request, "dashboard/layouts.html", context, status=422 if form.errors else 200)


@console_view(operator_only=True, what="the audit log")
def audit_log(request: HttpRequest, console: Console) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    entries = selectors.audit_list(project=console.project, **{k: v for k, v in filters.items() if v})
    template = "dashboard/partials/audit_rows.html" if request.htmx else "dashboard/audit.html"
    return render(request, template, {"console": console, "form": form, "entries": entries})


@console_view(operator_only=True, what="usage")
def usage(request: HttpRequest, console: Console) -> HttpResponse:
    rows = selectors.usage_by_day(project=console.project, days=30)
    chart = {
        "labels": [row["day"].isoformat() for row in rows],
        "participant_minutes": [row["participant_minutes"] for row in rows],
        "peak_members": [row["peak_members"] for row in rows],
        "recording_minutes": [row["recording_minutes"] for row in rows],
    }
    totals = {
        "participant_minutes": round(sum(chart["participant_minutes"]), 1),
        "peak_members": max(chart["peak_members"], default=0),
        "recording_minutes": round(sum(chart["recording_minutes"]), 1),
    }
    context = {"console": console, "rows": rows, "chart": chart, "totals": totals}
    return render(request, "dashboard/usage.html", context)

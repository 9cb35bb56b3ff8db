"""Dashboard forms: they validate and keep what was typed; writes go to ``rooms.services``."""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError

from rooms.events import WEBHOOK_EVENTS
from rooms.exceptions import InvalidParameter
from rooms.models import AuditEntry, Member, Room, WebhookEndpoint, room_name_validator
from rooms.permissions import ALL_PERMISSIONS, DEFAULT_PERMISSIONS, MODERATOR_PERMISSIONS
from rooms.validators import validate_meta, validate_stream_url

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"
LAYOUT_UNITS = 360
LAYOUT_MAX_SLOTS = 100


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format=DATETIME_FORMAT, **kwargs)


class JSONObjectField(forms.CharField):
    """A JSON object typed as text (``meta``): at most 2000 characters serialized."""

    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false"})

    def prepare_value(self, value):
        if isinstance(value, dict):
            return json.dumps(value, indent=1) if value else "{}"
        return value

    def to_python(self, value):
        value = (value or "").strip()
        if not value:
            return {}
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).", code="invalid_json") from exc
        try:
            return validate_meta(parsed)
        except InvalidParameter as exc:
            raise ValidationError(exc.message, code="invalid_meta") from exc


class RoomForm(forms.ModelForm):
    """Every room setting (DESIGN §2). ``layout`` is chosen among the built-in and the project's layouts."""

    layout = forms.ChoiceField()
    meta = JSONObjectField(required=False)

    class Meta:
        model = Room
        fields = [
            "name",
            "display_name",
            "description",
            "max_members",
            "quality",
            "fps",
            "layout",
            "record_on_start",
            "enable_room_previews",
            "locked",
            "prioritize_handraise",
            "audio_only",
            "stage_only",
            "join_from",
            "join_until",
            "remove_at",
            "remove_after_seconds_elapsed",
            "meta",
            "sync_audio_video",
            "tone_on_entry_and_exit",
            "room_join_video_off",
            "user_join_video_off",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "join_from": DateTimeLocalInput(),
            "join_until": DateTimeLocalInput(),
            "remove_at": DateTimeLocalInput(),
        }
        help_texts = {
            "name": "Letters, digits, '_' or '-'; used in join links.",
            "max_members": "1–300.",
            "remove_after_seconds_elapsed": "Remove members this many seconds after they join (1–200000).",
            "audio_only": "Audio space: no video is mixed.",
            "stage_only": "Members join as audience until promoted to the stage.",
        }

    def __init__(self, *args, project, layout_names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project
        self.fields["layout"].choices = [(name, name) for name in layout_names]
        self.fields["layout"].initial = "grid-responsive"
        if not self.instance._state.adding:
            # A room's name is its address in join links: fixed once created.
            self.fields["name"].disabled = True
            self.fields["name"].help_text = "Fixed once the room exists (join links use it)."
        for name in ("join_from", "join_until", "remove_at"):
            self.fields[name].input_formats = [DATETIME_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        taken = Room.objects.filter(project=self.project, name=name)
        if not self.instance._state.adding:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError("A room with this name already exists in this project.", code="unique")
        return name

    def clean(self):
        cleaned = super().clean()
        join_from, join_until = cleaned.get("join_from"), cleaned.get("join_until")
        if join_from and join_until and join_until <= join_from:
            self.add_error("join_until", "Must be after “join from”.")
        return cleaned

    def _post_clean(self):
        # The model's own unique checks need the project, which is not a form field: clean_name covers it.
        self.instance.project = self.project
        super()._post_clean()

    def room_fields(self) -> dict:
        """The validated settings as the room services take them."""
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


PERMISSION_PRESETS = {
    "member": DEFAULT_PERMISSIONS,
    "moderator": MODERATOR_PERMISSIONS,
}


class JoinLinkForm(forms.Form):
    """A join link: a room token for ``user_name`` with a permission preset or a chosen set."""

    EXPIRY_CHOICES = [(3600, "1 hour"), (8 * 3600, "8 hours"), (24 * 3600, "24 hours"), (7 * 24 * 3600, "7 days")]

    user_name = forms.CharField(max_length=100, required=False, help_text="Leave empty to let the guest type it.")
    join_as = forms.ChoiceField(choices=Member.JoinAs.choices, initial=Member.JoinAs.MEMBER)
    role = forms.ChoiceField(
        choices=[
            ("member", "Member (own camera and microphone)"),
            ("moderator", "Moderator (every permission)"),
            ("custom", "Custom (the permissions ticked below)"),
        ],
        initial="member",
    )
    permissions = forms.MultipleChoiceField(
        choices=[(p, p) for p in ALL_PERMISSIONS], required=False, widget=forms.CheckboxSelectMultiple
    )
    expires_in = forms.TypedChoiceField(coerce=int, choices=EXPIRY_CHOICES, initial=24 * 3600)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("role") == "custom" and cleaned.get("join_as") == "member" and not cleaned.get("permissions"):
            self.add_error("permissions", "Tick at least one permission, or choose a preset.")
        return cleaned

    def token_claims(self, *, room: Room) -> dict:
        """Claims for ``rooms.tokens.room_token_mint``."""
        role = self.cleaned_data["role"]
        permissions = list(self.cleaned_data["permissions"]) if role == "custom" else list(PERMISSION_PRESETS[role])
        claims = {
            "room_name": room.name,
            "permissions": permissions,
            "join_as": self.cleaned_data["join_as"],
            "auto_create_room": False,
        }
        if self.cleaned_data["user_name"]:
            claims["user_name"] = self.cleaned_data["user_name"]
        return claims


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the key is for, e.g. “booking backend”.")


class WebhookEndpointForm(forms.ModelForm):
    """A webhook endpoint; an empty event filter means every event."""

    event_types = forms.MultipleChoiceField(
        choices=[(e, e) for e in WEBHOOK_EVENTS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event.",
    )

    url = forms.URLField(max_length=1000, assume_scheme="https", help_text="Where Parley POSTs signed events.")

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "enabled"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if not url.startswith(("http://", "https://")):
            raise ValidationError("Use an http:// or https:// URL.", code="invalid_scheme")
        return url

    def endpoint_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


def parse_slots(text: str) -> list[dict]:
    """Slots typed one per line as ``x y width height [reservation]`` in units of 360 (of each canvas axis).

    Returns ``[{x, y, width, height, z_index, reservation, floor, zoom}, ...]``. Raises ``ValidationError``
    naming the line for a bad number, a slot outside the canvas, or more than 100 slots.
    """
    slots: list[dict] = []
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.replace(",", " ").split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) not in (4, 5):
            raise ValidationError(f"Line {number}: write “x y width height [reservation]”.", code="slot_shape")
        try:
            x, y, width, height = (float(p) for p in parts[:4])
        except ValueError as exc:
            raise ValidationError(
                f"Line {number}: x, y, width and height must be numbers.", code="slot_number"
            ) from exc
        if min(x, y) < 0 or min(width, height) <= 0 or x + width > LAYOUT_UNITS or y + height > LAYOUT_UNITS:
            raise ValidationError(
                f"Line {number}: the slot must lie inside the canvas (0–360 on each axis, non-empty).",
                code="slot_outside",
            )
        reservation = parts[4] if len(parts) == 5 else None
        if reservation:
            try:
                room_name_validator(reservation)
            except ValidationError as exc:
                raise ValidationError(
                    f"Line {number}: a reservation is a short name.", code="slot_reservation"
                ) from exc
        slots.append(
            {
                "x": x,
                "y": y,
                "width": width,
                "height": height,
                "z_index": len(slots),
                "reservation": reservation,
                "floor": len(slots) == 0,
                "zoom": False,
            }
        )
        if len(slots) > LAYOUT_MAX_SLOTS:
            raise ValidationError(f"At most {LAYOUT_MAX_SLOTS} slots.", code="slot_count")
    if not slots:
        raise ValidationError("Add at least one slot.", code="slot_count")
    return slots


class LayoutForm(forms.Form):
    """A custom layout typed as slots, previewed live in the browser."""

    name = forms.CharField(max_length=100, validators=[room_name_validator])
    description = forms.CharField(max_length=300, required=False)
    slots = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "data-layout-slots": "1"}),
        help_text="One slot per line: x y width height [reservation], in units of 360 of the canvas width/height.",
        initial="0 0 240 240\n240 0 120 120\n240 120 120 120\n0 240 120 120\n120 240 120 120\n240 240 120 120",
    )

    def __init__(self, *args, taken_names: set[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.taken_names = taken_names

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if name in self.taken_names:
            raise ValidationError("A layout with this name already exists.", code="unique")
        return name

    def clean_slots(self) -> list[dict]:
        return parse_slots(self.cleaned_data["slots"])


class AuditFilterForm(forms.Form):
    action = forms.CharField(max_length=64, required=False, help_text="Starts with, e.g. “member.”")
    actor = forms.CharField(max_length=150, required=False)
    interface = forms.ChoiceField(choices=[("", "any")] + list(AuditEntry.Interface.choices), required=False)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class LayoutPickForm(forms.Form):
    layout = forms.ChoiceField()

    def __init__(self, *args, layout_names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["layout"].choices = [(name, name) for name in layout_names]


class StreamStartForm(forms.Form):
    url = forms.CharField(max_length=1000, help_text="rtmp:// or rtmps:// with the stream key.")

    def clean_url(self) -> str:
        try:
            return validate_stream_url(self.cleaned_data["url"])
        except InvalidParameter as exc:
            raise ValidationError(exc.message, code="invalid_url") from exc

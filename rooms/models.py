"""The rooms domain (DESIGN §2): projects, rooms, live sessions and their members, egress objects, keys,
webhooks, the persisted event log and the audit trail.

Models keep invariants and small derived properties; workflows spanning models live in ``rooms.services``.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

ROOM_NAME_RE = r"^[A-Za-z0-9_-]{1,100}$"
room_name_validator = RegexValidator(ROOM_NAME_RE, "Use 1–100 letters, digits, '_' or '-'.", code="invalid_name")


def _new_secret() -> str:
    """512 random bits: room tokens are HS512 (RFC 7518 §3.2 wants a key at least as long as the hash)."""
    return secrets.token_urlsafe(64)


class Project(models.Model):
    """A tenant: owns rooms, API keys and webhook endpoints. ``token_secret`` signs its room tokens."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    token_secret = models.CharField(max_length=100, default=_new_secret, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ProjectMembership(models.Model):
    """An operator or moderator account's access to a project (dashboard roles)."""

    class Role(models.TextChoices):
        OPERATOR = "operator"
        MODERATOR = "moderator"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="project_memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.OPERATOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="uniq_project_user")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.project} ({self.role})"


class ApiKey(models.Model):
    """A project API key. Only ``prefix`` and the SHA-256 of the whole key are stored; the key is shown once.

    Keys are 256-bit random strings, so a fast hash is enough (no password stretching needed).
    Format: ``pk_<prefix 8>_<secret 43>``.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True, db_index=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.project} key {self.prefix}"

    @staticmethod
    def hash_key(raw_key: str) -> str:
        return hashlib.sha256(raw_key.encode()).hexdigest()

    @staticmethod
    def generate() -> tuple[str, str]:
        """Return ``(raw_key, prefix)``; the raw key is never stored."""
        prefix = secrets.token_hex(4)
        return f"pk_{prefix}_{secrets.token_urlsafe(32)}", prefix

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Layout(models.Model):
    """A named geometry on a 16:9 canvas. Built-in layouts have ``project=None`` and are seeded by a migration.

    ``slots``: list of ``{x, y, width, height, z_index, reservation, floor, zoom}`` with x/y/width/height in
    FreeSWITCH units of 360 per canvas axis. ``group``: for responsive layouts, the ordered list of layout
    names to choose from by member count (FreeSWITCH ``find_best_layout``); then ``slots`` is empty.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="layouts", null=True, blank=True)
    name = models.CharField(max_length=100, validators=[room_name_validator])
    description = models.CharField(max_length=300, blank=True)
    slots = models.JSONField(default=list, blank=True)
    group = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="uniq_layout_project_name"),
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(project__isnull=True), name="uniq_builtin_layout_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_builtin(self) -> bool:
        return self.project_id is None


class Quality(models.TextChoices):
    P360 = "360p"
    P720 = "720p"
    P1080 = "1080p"


FPS_CHOICES = [(15, "15"), (20, "20"), (30, "30")]


class Room(models.Model):
    """Persistent room configuration (SignalWire's Room resource fields, DESIGN §2)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rooms")
    name = models.CharField(max_length=100, validators=[room_name_validator])
    display_name = models.CharField(max_length=200, blank=True)
    description = models.CharField(max_length=3000, blank=True)
    max_members = models.PositiveIntegerField(default=20, validators=[MinValueValidator(1), MaxValueValidator(300)])
    quality = models.CharField(max_length=8, choices=Quality.choices, default=Quality.P720)
    fps = models.PositiveSmallIntegerField(choices=FPS_CHOICES, default=20)
    layout = models.CharField(max_length=100, default="grid-responsive")
    record_on_start = models.BooleanField(default=False)
    enable_room_previews = models.BooleanField(default=False)
    locked = models.BooleanField(default=False)
    prioritize_handraise = models.BooleanField(default=False)
    join_from = models.DateTimeField(null=True, blank=True)
    join_until = models.DateTimeField(null=True, blank=True)
    remove_at = models.DateTimeField(null=True, blank=True)
    remove_after_seconds_elapsed = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(200000)]
    )
    audio_only = models.BooleanField(default=False)
    stage_only = models.BooleanField(default=False)
    meta = models.JSONField(default=dict, blank=True)
    # SignalWire Room fields (reference §1.2) kept for API compatibility.
    sync_audio_video = models.BooleanField(default=False)
    tone_on_entry_and_exit = models.BooleanField(default=True)
    room_join_video_off = models.BooleanField(default=False)
    user_join_video_off = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="uniq_room_project_name")]

    def __str__(self) -> str:
        return self.name

    def is_joinable(self, at=None) -> bool:
        """True when the room's own join window (``join_from``..``join_until``) contains ``at`` (default now)."""
        at = at or timezone.now()
        if self.join_from and at < self.join_from:
            return False
        return not (self.join_until and at > self.join_until)

    @property
    def active_session(self) -> RoomSession | None:
        return self.sessions.filter(status=RoomSession.Status.IN_PROGRESS).first()


class RoomSession(models.Model):
    """One live run of a room, from first join to last leave."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in-progress"
        COMPLETED = "completed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="room_sessions")
    room = models.ForeignKey(Room, on_delete=models.SET_NULL, null=True, blank=True, related_name="sessions")
    name = models.CharField(max_length=100)
    display_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS, db_index=True)
    start_time = models.DateTimeField(default=timezone.now)
    end_time = models.DateTimeField(null=True, blank=True)
    max_members = models.PositiveIntegerField(default=20)
    quality = models.CharField(max_length=8, choices=Quality.choices, default=Quality.P720)
    fps = models.PositiveSmallIntegerField(choices=FPS_CHOICES, default=20)
    layout_name = models.CharField(max_length=100, default="grid-responsive")
    hide_video_muted = models.BooleanField(default=False)
    locked = models.BooleanField(default=False)
    prioritize_handraise = models.BooleanField(default=False)
    record_on_start = models.BooleanField(default=False)
    enable_room_previews = models.BooleanField(default=False)
    audio_only = models.BooleanField(default=False)
    meta = models.JSONField(default=dict, blank=True)
    media_worker = models.CharField(max_length=200, blank=True, help_text="Id of the media worker the session is placed on.")
    preview_path = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-start_time"]
        constraints = [
            # At most one live session per room.
            models.UniqueConstraint(
                fields=["room"], condition=models.Q(status="in-progress"), name="uniq_live_session_per_room"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} @ {self.start_time:%Y-%m-%d %H:%M}"

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (or to now while in progress)."""
        end = self.end_time or timezone.now()
        return round((end - self.start_time).total_seconds(), 3)

    @property
    def is_live(self) -> bool:
        return self.status == self.Status.IN_PROGRESS


class Member(models.Model):
    """One participant (or screen share / extra device / playback) in a room session (DESIGN §2)."""

    class Type(models.TextChoices):
        MEMBER = "member"
        SCREEN = "screen"
        DEVICE = "device"
        PLAYBACK = "playback"

    class JoinAs(models.TextChoices):
        MEMBER = "member"
        AUDIENCE = "audience"

    class MediaAllowed(models.TextChoices):
        ALL = "all"
        AUDIO_ONLY = "audio-only"
        VIDEO_ONLY = "video-only"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    room_session = models.ForeignKey(RoomSession, on_delete=models.CASCADE, related_name="members")
    parent = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="children")
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.MEMBER)
    join_as = models.CharField(max_length=16, choices=JoinAs.choices, default=JoinAs.MEMBER)
    permissions = models.JSONField(default=list, blank=True)
    media_allowed = models.CharField(max_length=16, choices=MediaAllowed.choices, default=MediaAllowed.ALL)
    audio_muted = models.BooleanField(default=False)
    video_muted = models.BooleanField(default=False)
    deaf = models.BooleanField(default=False)
    visible = models.BooleanField(default=True)
    input_volume = models.FloatField(default=0, validators=[MinValueValidator(-50), MaxValueValidator(50)])
    output_volume = models.FloatField(default=0, validators=[MinValueValidator(-50), MaxValueValidator(50)])
    input_sensitivity = models.FloatField(default=30, validators=[MinValueValidator(0), MaxValueValidator(100)])
    hand_raised = models.BooleanField(default=False)
    hand_raised_at = models.DateTimeField(null=True, blank=True)
    position = models.CharField(max_length=32, default="auto")
    talking = models.BooleanField(default=False)
    meta = models.JSONField(default=dict, blank=True)
    end_room_session_on_leave = models.BooleanField(default=False)
    remove_at = models.DateTimeField(null=True, blank=True)
    token_jti = models.CharField(max_length=64, blank=True, db_index=True)
    channel_name = models.CharField(max_length=200, blank=True, help_text="Channel of the member's live socket.")
    disconnected_at = models.DateTimeField(null=True, blank=True)
    stats = models.JSONField(default=dict, blank=True, help_text="Latest media quality stats from the worker.")
    join_time = models.DateTimeField(default=timezone.now)
    leave_time = models.DateTimeField(null=True, blank=True)
    leave_reason = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["join_time"]
        indexes = [models.Index(fields=["room_session", "leave_time"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def is_present(self) -> bool:
        return self.leave_time is None

    @property
    def duration(self) -> float:
        end = self.leave_time or timezone.now()
        return round((end - self.join_time).total_seconds(), 3)


class Recording(models.Model):
    """A recording of a room session's canvas and full audio mix (DESIGN §6 "Recording")."""

    class Status(models.TextChoices):
        RECORDING = "recording"
        PAUSED = "paused"
        PROCESSING = "processing"
        COMPLETED = "completed"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="recordings")
    room_session = models.ForeignKey(RoomSession, on_delete=models.CASCADE, related_name="recordings")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECORDING, db_index=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True, help_text="Seconds of media in the file.")
    size_in_bytes = models.BigIntegerField(null=True, blank=True)
    format = models.CharField(max_length=32, default="video/mp4")
    working_path = models.CharField(max_length=500, blank=True, help_text="Fragmented MP4 being written.")
    storage_name = models.CharField(max_length=500, blank=True, help_text="Final file in default storage.")
    poster_name = models.CharField(max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"recording {self.id} ({self.status})"


class Stream(models.Model):
    """An RTMP/RTMPS egress. With ``room`` set and no session it is a room's standing output, started with
    every session; a copy bound to the session is made when it starts."""

    class State(models.TextChoices):
        PENDING = "pending"
        STREAMING = "streaming"
        RETRYING = "retrying"
        COMPLETED = "completed"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="streams")
    room = models.ForeignKey(Room, on_delete=models.CASCADE, null=True, blank=True, related_name="streams")
    room_session = models.ForeignKey(
        RoomSession, on_delete=models.CASCADE, null=True, blank=True, related_name="streams"
    )
    url = models.CharField(max_length=1000)
    stream_type = models.CharField(max_length=16, default="rtmp")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    fps = models.PositiveSmallIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    restarts = models.PositiveIntegerField(default=0)
    failure_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"stream {self.id} ({self.state})"

    @property
    def masked_url(self) -> str:
        """The URL with its path (which carries the stream key) masked: ``rtmp://host/live/****``."""
        from rooms.validators import mask_stream_url

        return mask_stream_url(self.url)


class Playback(models.Model):
    """A URL played into a room session as a layer and an audio input. ``opening`` while the media worker opens the
    URL; ``playing`` (``playback.started``) once it plays; ``failed`` with a ``failure_reason`` when it did not open."""

    class State(models.TextChoices):
        OPENING = "opening"
        PLAYING = "playing"
        PAUSED = "paused"
        COMPLETED = "completed"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="playbacks")
    room_session = models.ForeignKey(RoomSession, on_delete=models.CASCADE, related_name="playbacks")
    member = models.ForeignKey(Member, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    url = models.CharField(max_length=1000)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPENING)
    volume = models.FloatField(default=0, validators=[MinValueValidator(-50), MaxValueValidator(50)])
    position_ms = models.BigIntegerField(default=0)
    layout = models.CharField(max_length=100, blank=True)
    positions = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at"]

    @property
    def display_url(self) -> str:
        """The URL for people to read: scheme, host, port and path, without credentials, query or fragment (a
        signed media URL carries its signature there): ``https://media.example.com/clips/a.mp4``."""
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(self.url)
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            return ""
        if ":" in host:
            host = f"[{host}]"
        return f"{parts.scheme}://{host}{port}{parts.path}"


class RoomSessionEvent(models.Model):
    """A persisted event (``/room_sessions/{id}/events``); its id is the webhook idempotency key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="events")
    room = models.ForeignKey(Room, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    room_session = models.ForeignKey(
        RoomSession, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    recording = models.ForeignKey(Recording, on_delete=models.SET_NULL, null=True, blank=True, related_name="events")
    member_id = models.UUIDField(null=True, blank=True)
    name = models.CharField(max_length=64, db_index=True)
    level = models.CharField(max_length=16, default="info")
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.name} {self.id}"


class WebhookEndpoint(models.Model):
    """An integrator's HTTPS endpoint; ``event_types`` empty means every event of DESIGN §7."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=1000)
    description = models.CharField(max_length=300, blank=True)
    secret = models.CharField(max_length=100, default=_new_secret)
    event_types = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return self.enabled and (not self.event_types or event_type in self.event_types)


class WebhookDelivery(models.Model):
    """The durable outbox row for one event to one endpoint, with its attempt log."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(RoomSessionEvent, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_response_excerpt = models.TextField(blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    attempt_log = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="uniq_delivery_endpoint_event")]


class AuditEntry(models.Model):
    """Who did what to whom, when, through which interface."""

    class Interface(models.TextChoices):
        REST = "rest"
        SIGNALLING = "signalling"
        DASHBOARD = "dashboard"
        SYSTEM = "system"

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="audit_entries")
    room_session = models.ForeignKey(
        RoomSession, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_entries"
    )
    interface = models.CharField(max_length=16, choices=Interface.choices)
    actor_type = models.CharField(max_length=16, help_text="api_key, member, user or system")
    actor_id = models.CharField(max_length=64, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_name = models.CharField(max_length=150, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor_name or self.actor_type} {self.action} {self.target_name or self.target_id}"

"""Django admin for the rooms domain. Secrets never show: API key hashes, project token secrets and webhook
secrets are excluded from forms and lists; stream URLs are shown masked."""

from __future__ import annotations

from django.contrib import admin

from rooms.models import (
    ApiKey,
    AuditEntry,
    Layout,
    Member,
    Playback,
    Project,
    ProjectMembership,
    Recording,
    Room,
    RoomSession,
    RoomSessionEvent,
    Stream,
    WebhookDelivery,
    WebhookEndpoint,
)


class MembershipInline(admin.TabularInline):
    model = ProjectMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "created_at"]
    search_fields = ["name", "id"]
    exclude = ["token_secret"]
    readonly_fields = ["id", "created_at", "updated_at"]
    inlines = [MembershipInline]


@admin.register(ProjectMembership)
class ProjectMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "user__email", "project__name"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created with ``manage.py createapikey`` or the dashboard (the raw key is shown once there)."""

    list_display = ["prefix", "name", "project", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["project", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "project__name"]
    exclude = ["key_hash"]
    readonly_fields = ["id", "prefix", "project", "created_at", "last_used_at"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Layout)
class LayoutAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "description", "updated_at"]
    list_filter = [("project", admin.EmptyFieldListFilter), "project"]
    search_fields = ["name", "description"]


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "display_name",
        "project",
        "quality",
        "fps",
        "layout",
        "max_members",
        "locked",
        "created_at",
    ]
    list_filter = ["project", "quality", "fps", "locked", "audio_only", "record_on_start"]
    search_fields = ["name", "display_name", "id"]
    readonly_fields = ["id", "created_at", "updated_at"]


class MemberInline(admin.TabularInline):
    model = Member
    extra = 0
    fields = ["name", "type", "join_as", "audio_muted", "video_muted", "position", "join_time", "leave_time"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(RoomSession)
class RoomSessionAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "status", "start_time", "end_time", "layout_name", "media_worker"]
    list_filter = ["status", "project"]
    search_fields = ["name", "id", "room__name"]
    date_hierarchy = "start_time"
    readonly_fields = ["id", "created_at", "updated_at"]
    inlines = [MemberInline]


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ["name", "room_session", "type", "join_as", "audio_muted", "video_muted", "join_time", "leave_time"]
    list_filter = ["type", "join_as", "audio_muted", "video_muted"]
    search_fields = ["name", "id", "room_session__name"]
    exclude = ["token_jti", "channel_name"]
    readonly_fields = ["id"]


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "room_session", "status", "started_at", "duration", "size_in_bytes"]
    list_filter = ["status", "project"]
    search_fields = ["id", "room_session__name"]
    readonly_fields = ["id", "sha256", "created_at", "updated_at"]


@admin.register(Stream)
class StreamAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "room", "room_session", "masked_url", "state", "restarts", "created_at"]
    list_filter = ["state", "project"]
    search_fields = ["id", "room__name"]
    exclude = ["url"]  # carries the stream key
    readonly_fields = ["id", "masked_url", "created_at", "updated_at"]


@admin.register(Playback)
class PlaybackAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "room_session", "url", "state", "started_at"]
    list_filter = ["state", "project"]
    search_fields = ["id", "url"]


@admin.register(RoomSessionEvent)
class RoomSessionEventAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "room_session", "level", "created_at"]
    list_filter = ["name", "level", "project"]
    search_fields = ["id", "name", "room_session__name"]
    date_hierarchy = "created_at"


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "project", "enabled", "created_at"]
    list_filter = ["enabled", "project"]
    search_fields = ["url", "description"]
    exclude = ["secret"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "endpoint", "event", "status", "attempts", "last_status_code", "next_attempt_at"]
    list_filter = ["status"]
    search_fields = ["id", "endpoint__url"]
    readonly_fields = ["id", "created_at", "delivered_at"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "project",
        "interface",
        "actor_type",
        "actor_name",
        "action",
        "target_type",
        "target_name",
    ]
    list_filter = ["interface", "actor_type", "action", "project"]
    search_fields = ["actor_name", "target_name", "target_id", "action"]
    date_hierarchy = "created_at"

"""Output shapes of the REST resources (DESIGN §4, reference §1). Plain field mapping, no logic: derived values
(masked stream URLs, signed recording URIs, active sessions) are computed by views and passed in ``context``."""

from __future__ import annotations

from rest_framework import serializers

from rooms.models import FPS_CHOICES, Quality


class ActiveSessionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    status = serializers.CharField()
    start_time = serializers.DateTimeField()
    layout = serializers.CharField(source="layout_name")
    locked = serializers.BooleanField()
    member_count = serializers.SerializerMethodField()

    def get_member_count(self, obj) -> int:
        return self.context.get("member_counts", {}).get(obj.id, 0)


class RoomOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    display_name = serializers.CharField()
    description = serializers.CharField()
    max_members = serializers.IntegerField()
    quality = serializers.ChoiceField(choices=Quality.choices)
    fps = serializers.ChoiceField(choices=FPS_CHOICES)
    layout = serializers.CharField()
    record_on_start = serializers.BooleanField()
    enable_room_previews = serializers.BooleanField()
    locked = serializers.BooleanField()
    prioritize_handraise = serializers.BooleanField()
    join_from = serializers.DateTimeField(allow_null=True)
    join_until = serializers.DateTimeField(allow_null=True)
    remove_at = serializers.DateTimeField(allow_null=True)
    remove_after_seconds_elapsed = serializers.IntegerField(allow_null=True)
    audio_only = serializers.BooleanField()
    stage_only = serializers.BooleanField()
    sync_audio_video = serializers.BooleanField()
    tone_on_entry_and_exit = serializers.BooleanField()
    room_join_video_off = serializers.BooleanField()
    user_join_video_off = serializers.BooleanField()
    meta = serializers.JSONField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    active_session = serializers.SerializerMethodField()

    def get_active_session(self, obj) -> ActiveSessionSerializer(allow_null=True):  # type: ignore[valid-type]
        sessions = self.context.get("active_sessions")
        if sessions is None or obj.id not in sessions:
            return None
        return ActiveSessionSerializer(sessions[obj.id], context=self.context).data

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if self.context.get("active_sessions") is None:
            data.pop("active_session")
        return data


class RoomSessionOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    room_id = serializers.UUIDField(allow_null=True)
    name = serializers.CharField()
    display_name = serializers.CharField()
    status = serializers.ChoiceField(choices=["in-progress", "completed"])
    start_time = serializers.DateTimeField()
    end_time = serializers.DateTimeField(allow_null=True)
    duration = serializers.FloatField(allow_null=True, help_text="Seconds (to now while in progress).")
    max_members = serializers.IntegerField()
    quality = serializers.CharField()
    fps = serializers.IntegerField()
    layout = serializers.CharField(source="layout_name")
    hide_video_muted = serializers.BooleanField()
    locked = serializers.BooleanField()
    prioritize_handraise = serializers.BooleanField()
    record_on_start = serializers.BooleanField()
    enable_room_previews = serializers.BooleanField()
    audio_only = serializers.BooleanField()
    meta = serializers.JSONField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class MemberOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    room_session_id = serializers.UUIDField()
    parent_id = serializers.UUIDField(allow_null=True)
    name = serializers.CharField()
    type = serializers.CharField()
    join_as = serializers.CharField()
    join_time = serializers.DateTimeField()
    leave_time = serializers.DateTimeField(allow_null=True)
    duration = serializers.FloatField(help_text="Seconds present (to now while present).")
    audio_muted = serializers.BooleanField()
    video_muted = serializers.BooleanField()
    deaf = serializers.BooleanField()
    hand_raised = serializers.BooleanField()
    talking = serializers.BooleanField()
    visible = serializers.BooleanField()
    position = serializers.CharField()
    input_volume = serializers.FloatField()
    output_volume = serializers.FloatField()
    input_sensitivity = serializers.FloatField()
    meta = serializers.JSONField()
    stats = serializers.JSONField()


class EventOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    project_id = serializers.UUIDField()
    room_id = serializers.UUIDField(allow_null=True)
    room_session_id = serializers.UUIDField(allow_null=True)
    room_recording_id = serializers.UUIDField(source="recording_id", allow_null=True)
    room_participant_id = serializers.UUIDField(source="member_id", allow_null=True)
    level = serializers.CharField()
    name = serializers.CharField()
    payload = serializers.JSONField()
    created_at = serializers.DateTimeField()


class RecordingOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    room_session_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["recording", "paused", "processing", "completed", "failed"])
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    duration = serializers.FloatField(allow_null=True, help_text="Seconds.")
    size_in_bytes = serializers.IntegerField(allow_null=True)
    format = serializers.CharField()
    failure_reason = serializers.CharField()
    uri = serializers.SerializerMethodField(
        help_text="Signed download URL valid media_ttl seconds; null until completed."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_uri(self, obj) -> str | None:
        build = self.context.get("recording_uri")
        return build(obj) if build else None


class StreamOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    room_id = serializers.UUIDField(allow_null=True)
    room_session_id = serializers.UUIDField(allow_null=True)
    url = serializers.CharField(source="masked_url", help_text="The URL with its stream key masked.")
    stream_type = serializers.CharField()
    state = serializers.CharField()
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    fps = serializers.IntegerField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    failure_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class SlotSerializer(serializers.Serializer):
    x = serializers.FloatField(min_value=0, max_value=360)
    y = serializers.FloatField(min_value=0, max_value=360)
    width = serializers.FloatField(min_value=0, max_value=360)
    height = serializers.FloatField(min_value=0, max_value=360)
    z_index = serializers.IntegerField(required=False, default=0)
    reservation = serializers.CharField(required=False, allow_null=True, default=None)
    floor = serializers.BooleanField(required=False, default=False)
    zoom = serializers.BooleanField(required=False, default=False)


class LayoutOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField()
    builtin = serializers.BooleanField(source="is_builtin")
    slots = SlotSerializer(many=True)
    group = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ApiKeyOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)

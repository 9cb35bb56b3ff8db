"""The moderators' desk: live sessions, moderation actions through the services, layout, lock, egress."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.urls import reverse
from django.utils import timezone

from media import protocol
from rooms.events import project_group
from rooms.models import AuditEntry, Member, Recording, RoomSession, RoomSessionEvent
from rooms.tests.factories import MemberFactory, RoomFactory, RoomSessionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_channel_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS = 0.3
    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


@pytest.fixture
def live(room):
    return RoomSessionFactory(room=room)


@pytest.fixture
def alice(live):
    return MemberFactory(room_session=live, name="Alice")


def act(client, session, member, action, **extra):
    return client.post(reverse("dashboard:member_action", args=[session.id, member.id, action]), **extra)


def test_it_lists_live_sessions_and_hides_completed_ones_by_default(moderator_client, live, room):
    retro = RoomFactory(project=room.project, name="retro")
    done = RoomSessionFactory(room=retro, status="completed", end_time=timezone.now())
    page = moderator_client.get(reverse("dashboard:sessions")).content.decode()
    assert reverse("dashboard:session", args=[live.id]) in page
    assert reverse("dashboard:session", args=[done.id]) not in page
    past = moderator_client.get(reverse("dashboard:sessions") + "?status=completed").content.decode()
    assert reverse("dashboard:session", args=[done.id]) in past


def test_the_session_page_shows_members_their_state_and_the_live_socket(moderator_client, live, alice):
    alice.hand_raised = True
    alice.audio_muted = True
    alice.save()
    MemberFactory(room_session=live, name="Gone", leave_time=timezone.now())
    page = moderator_client.get(reverse("dashboard:session", args=[live.id])).content.decode()
    assert "Alice" in page and "hand raised" in page and ">Unmute<" in page
    assert "Gone" not in page
    assert f'data-live-session="/ws/dashboard/sessions/{live.id}/"' in page


@pytest.mark.parametrize(
    ("action", "field", "value", "updated"),
    [
        ("audio_mute", "audio_muted", True, "audio_muted"),
        ("video_mute", "video_muted", True, "video_muted"),
        ("deaf", "deaf", True, "deaf"),
    ],
)
def test_a_moderation_action_changes_the_member_and_emits_member_updated(
    moderator_client, live, alice, action, field, value, updated
):
    response = act(moderator_client, live, alice, action)
    assert response.status_code == 302
    alice.refresh_from_db()
    assert getattr(alice, field) is value
    event = RoomSessionEvent.objects.get(room_session=live, name="member.updated")
    assert event.member_id == alice.id
    assert updated in event.payload["member"]["updated"]
    audit = AuditEntry.objects.get(action=f"member.{action}")
    assert (audit.interface, audit.actor_name, audit.target_id) == ("dashboard", "mo", str(alice.id))


def test_unmute_undoes_a_mute(operator_client, live, alice):
    alice.audio_muted = True
    alice.save()
    act(operator_client, live, alice, "audio_unmute")
    alice.refresh_from_db()
    assert alice.audio_muted is False


def test_an_htmx_action_answers_the_refreshed_members_panel_with_the_message(moderator_client, live, alice):
    response = act(moderator_client, live, alice, "audio_mute", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert ">Unmute<" in html
    assert 'hx-swap-oob="true"' in html and "Alice: muted." in html


def test_remove_makes_the_member_leave_and_emits_member_left(moderator_client, live, alice):
    MemberFactory(room_session=live, name="Bob")
    act(moderator_client, live, alice, "remove")
    alice.refresh_from_db()
    assert alice.leave_time is not None and alice.leave_reason == "removed"
    assert RoomSessionEvent.objects.filter(room_session=live, name="member.left", member_id=alice.id).exists()


def test_promote_and_demote_move_a_member_between_audience_and_stage(moderator_client, live):
    carol = MemberFactory(room_session=live, name="Carol", join_as=Member.JoinAs.AUDIENCE)
    act(moderator_client, live, carol, "promote")
    carol.refresh_from_db()
    assert carol.join_as == "member" and carol.permissions
    act(moderator_client, live, carol, "demote")
    carol.refresh_from_db()
    assert carol.join_as == "audience" and carol.permissions == []
    assert AuditEntry.objects.filter(action__in=["member.promote", "member.demote"]).count() == 2


def test_acting_on_a_member_who_left_shows_a_message_not_an_error(moderator_client, live, alice):
    alice.leave_time = timezone.now()
    alice.save()
    response = act(moderator_client, live, alice, "audio_mute", follow=True)
    assert response.status_code == 200
    assert "Alice has already left" in response.content.decode()
    alice.refresh_from_db()
    assert alice.audio_muted is False
    assert not RoomSessionEvent.objects.filter(name="member.updated").exists()


def test_an_unknown_action_is_404(moderator_client, live, alice):
    assert act(moderator_client, live, alice, "explode").status_code == 404


def test_a_member_action_broadcasts_to_the_projects_group_after_commit(
    moderator_client, live, alice, django_capture_on_commit_callbacks
):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(project_group(live.project_id), channel)
    with django_capture_on_commit_callbacks(execute=True):
        act(moderator_client, live, alice, "video_mute")
    message = async_to_sync(layer.receive)(channel)
    assert message["type"] == "parley.event"
    assert message["event"]["event_type"] == "member.updated"
    assert message["event"]["params"]["member"]["id"] == str(alice.id)
    assert message["event"]["params"]["member"]["video_muted"] is True


def test_lock_and_unlock_change_the_session(moderator_client, live):
    moderator_client.post(reverse("dashboard:session_action", args=[live.id, "lock"]))
    live.refresh_from_db()
    assert live.locked is True
    moderator_client.post(reverse("dashboard:session_action", args=[live.id, "unlock"]))
    live.refresh_from_db()
    assert live.locked is False


def test_the_layout_picker_sets_the_sessions_layout(moderator_client, live):
    response = moderator_client.post(
        reverse("dashboard:session_layout", args=[live.id]), {"layout": "2x2"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    live.refresh_from_db()
    assert live.layout_name == "2x2"
    assert "Layout set to 2x2." in response.content.decode()


def test_the_layout_picker_refuses_an_unknown_layout(moderator_client, live):
    response = moderator_client.post(
        reverse("dashboard:session_layout", args=[live.id]), {"layout": "nope"}, follow=True
    )
    assert "Choose one of the listed layouts." in response.content.decode()
    live.refresh_from_db()
    assert live.layout_name != "nope"


def test_end_session_completes_it_for_everyone(operator_client, live, alice):
    operator_client.post(reverse("dashboard:session_action", args=[live.id, "end"]))
    live.refresh_from_db()
    alice.refresh_from_db()
    assert live.status == RoomSession.Status.COMPLETED and alice.leave_time is not None


def test_starting_a_recording_without_a_media_worker_answers_a_clear_message(moderator_client, live):
    response = moderator_client.post(reverse("dashboard:session_recording", args=[live.id, "start"]), follow=True)
    assert response.status_code == 200
    assert "No media worker is available" in response.content.decode()
    assert not Recording.objects.filter(room_session=live, status="recording").exists()


def test_starting_a_recording_waits_for_the_media_workers_acknowledgement(moderator_client, live):
    """A stand-in worker on the session's channel acknowledges the ``media.egress`` command."""
    layer = get_channel_layer()
    worker_channel = async_to_sync(layer.new_channel)("mediaworker.")
    RoomSession.objects.filter(id=live.id).update(media_worker=worker_channel)

    async def worker() -> dict:
        command = await layer.receive(worker_channel)
        await layer.send(command["reply_channel"], {"type": protocol.ANSWER, "request_id": command["request_id"]})
        return command

    async def run():
        task = asyncio.ensure_future(worker())
        # The view runs on this thread (thread-sensitive), inside the test's transaction.
        response = await sync_to_async(moderator_client.post, thread_sensitive=True)(
            reverse("dashboard:session_recording", args=[live.id, "start"]), follow=True
        )
        return response, await asyncio.wait_for(task, 2)

    response, command = async_to_sync(run)()
    assert command["type"] == protocol.EGRESS and command["action"] == "recording.start"
    assert "Recording started." in response.content.decode()
    recording = Recording.objects.get(room_session=live)
    assert recording.status == Recording.Status.RECORDING
    assert RoomSessionEvent.objects.filter(name="recording.started", room_session=live).exists()


def test_a_stream_needs_an_rtmp_url(moderator_client, live):
    response = moderator_client.post(
        reverse("dashboard:session_stream", args=[live.id, "start"]), {"url": "http://example.com/x"}, follow=True
    )
    assert "rtmp://" in response.content.decode()
    assert not live.streams.exists()


def test_the_preview_image_is_served_from_the_data_directory_only(moderator_client, live, settings):
    previews = settings.PARLEY_DATA_DIR / "previews"
    previews.mkdir()
    (previews / "x.jpg").write_bytes(b"\xff\xd8\xff\xe0jpeg")
    RoomSession.objects.filter(id=live.id).update(preview_path=str(previews / "x.jpg"))
    response = moderator_client.get(reverse("dashboard:session_preview", args=[live.id]))
    assert response.status_code == 200 and b"".join(response.streaming_content).startswith(b"\xff\xd8")
    RoomSession.objects.filter(id=live.id).update(preview_path="/etc/passwd")
    assert moderator_client.get(reverse("dashboard:session_preview", args=[live.id])).status_code == 404


def test_the_members_panel_shows_media_quality_stats(moderator_client, live, alice):
    alice.stats = {"rtt_ms": 42.0, "jitter_ms": 3.24, "packets_lost": 7, "bytes_in": 2048, "bytes_out": 0}
    alice.talking = True
    alice.save()
    html = moderator_client.get(reverse("dashboard:session_members", args=[live.id])).content.decode()
    assert "RTT 42 ms" in html and "jitter 3.2 ms" in html and "lost 7 packets" in html and "2.0\xa0KB" in html
    assert 'class="member talking"' in html


def test_the_members_panel_shows_the_camera_size_received_and_asked_for(moderator_client, live, alice):
    alice.stats = {"bytes_in": 1, "video_in": [426, 240], "video_asked": [426, 240, 20]}
    alice.save()
    html = moderator_client.get(reverse("dashboard:session_members", args=[live.id])).content.decode()
    assert "video 426×240 (asked 426×240 @ 20 fps)" in html
    alice.stats = {"bytes_in": 1, "video_in": None, "video_asked": None}  # an audio-only member
    alice.save()
    html = moderator_client.get(reverse("dashboard:session_members", args=[live.id])).content.decode()
    assert "video " not in html.split('class="member-stats"')[1].split("</span>")[0]


def test_starting_a_stream_without_a_media_worker_answers_a_clear_message(moderator_client, live):
    response = moderator_client.post(
        reverse("dashboard:session_stream", args=[live.id, "start"]), {"url": "rtmp://127.0.0.1/live/key"}, follow=True
    )
    assert "No media worker is available" in response.content.decode()
    assert not live.streams.filter(state__in=["pending", "streaming"]).exists()


def test_stopping_a_recording_moves_it_to_processing_and_emits_the_event(moderator_client, live, project):
    recording = Recording.objects.create(project=project, room_session=live)
    response = moderator_client.post(
        reverse("dashboard:session_recording", args=[live.id, "stop"]), {"recording_id": str(recording.id)}, follow=True
    )
    assert "Recording stopped" in response.content.decode()
    recording.refresh_from_db()
    assert recording.status == Recording.Status.PROCESSING and recording.finished_at is not None
    assert RoomSessionEvent.objects.filter(room_session=live, name__startswith="recording.").exists()


def test_stopping_a_stream_completes_it(moderator_client, live, project):
    from rooms.models import Stream

    stream = Stream.objects.create(project=project, room_session=live, url="rtmp://127.0.0.1/live/k", state="streaming")
    moderator_client.post(reverse("dashboard:session_stream", args=[live.id, "stop"]), {"stream_id": str(stream.id)})
    stream.refresh_from_db()
    assert stream.state == Stream.State.COMPLETED


@pytest.mark.parametrize("kind", ["recording", "stream"])
def test_stopping_with_a_malformed_id_is_404(moderator_client, live, kind):
    response = moderator_client.post(
        reverse(f"dashboard:session_{kind}", args=[live.id, "stop"]), {f"{kind}_id": "not-a-uuid"}
    )
    assert response.status_code == 404


def test_the_session_panel_lists_playbacks_without_their_urls_secrets(moderator_client, live, project):
    from rooms.models import Playback

    Playback.objects.create(
        project=project,
        room_session=live,
        url="https://user:pw@media.example.com:8443/clips/intro.mp4?signature=s3cr3t#t=5",
        state="playing",
        volume=-6,
    )
    Playback.objects.create(
        project=project, room_session=live, url="rtsp://[2001:db8::1]/cam", state="failed", failure_reason="unreachable"
    )
    page = moderator_client.get(reverse("dashboard:session_panel", args=[live.id])).content.decode()
    assert "https://media.example.com:8443/clips/intro.mp4</code> · playing" in page and "-6 dB" in page
    assert "rtsp://[2001:db8::1]/cam</code> · failed (unreachable)" in page
    assert "s3cr3t" not in page and "pw@" not in page


def test_stopping_a_playback_without_a_media_worker_records_its_end(moderator_client, live, project):
    from rooms.models import Playback

    playback = Playback.objects.create(project=project, room_session=live, url="https://m.example.com/a.mp4")
    assert b"playback_id" in moderator_client.get(reverse("dashboard:session_panel", args=[live.id])).content
    response = moderator_client.post(
        reverse("dashboard:session_playback_stop", args=[live.id]),
        {"playback_id": str(playback.id)},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and "Playback stopped." in response.content.decode()
    playback.refresh_from_db()
    assert playback.state == Playback.State.COMPLETED and playback.ended_at is not None
    assert RoomSessionEvent.objects.filter(room_session=live, name="playback.ended").exists()
    assert AuditEntry.objects.filter(action__startswith="playback.", interface="dashboard").exists()
    again = moderator_client.post(
        reverse("dashboard:session_playback_stop", args=[live.id]),
        {"playback_id": str(playback.id)},
        HTTP_HX_REQUEST="true",
    )
    assert "The playback is completed." in again.content.decode()


@pytest.mark.parametrize("playback_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "other-session"])
def test_stopping_a_playback_not_in_the_session_is_404(moderator_client, live, project, playback_id):
    from rooms.models import Playback

    if playback_id == "other-session":
        other = RoomSessionFactory(room=RoomFactory(project=project))
        playback_id = str(Playback.objects.create(project=project, room_session=other, url="https://m.example.com/").id)
    response = moderator_client.post(
        reverse("dashboard:session_playback_stop", args=[live.id]), {"playback_id": playback_id}
    )
    assert response.status_code == 404

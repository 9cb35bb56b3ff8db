"""Every participant RPC: success with fan-out to a second member, one denial per permission string, bad params,
and attempts on another room's or project's members (-32004)."""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async

from rooms.models import AuditEntry, Member, RoomSession
from rooms.permissions import ALL_PERMISSIONS
from rooms.tests.signalling.conftest import joined

pytestmark = pytest.mark.django_db(transaction=True)

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"

# method, params (with "{other}" for the second member's id), event the second member sees, check on its params
SELF_CASES = [
    ("member.audio_mute", {}, lambda m: m["audio_muted"] is True and m["updated"] == ["audio_muted"]),
    ("member.video_mute", {}, lambda m: m["video_muted"] is True and m["updated"] == ["video_muted"]),
    ("member.deaf", {}, lambda m: m["deaf"] is True and m["audio_muted"] is True),
    ("member.set_input_volume", {"volume": -12.5}, lambda m: m["input_volume"] == -12.5),
    ("member.set_output_volume", {"volume": 7}, lambda m: m["output_volume"] == 7),
    ("member.set_input_sensitivity", {"value": 55}, lambda m: m["input_sensitivity"] == 55),
    ("member.set_position", {"position": "reserved-2"}, lambda m: m["position"] == "reserved-2"),
    ("member.set_meta", {"meta": {"role": "host"}}, lambda m: m["meta"] == {"role": "host"}),
    ("member.raise_hand", {}, lambda m: m["handraised"] is True and m["updated"] == ["handraised"]),
]


@pytest.fixture
async def pair(project, room):
    first = await joined(project, "standup", user_name="Ada")
    second = await joined(project, "standup", user_name="Bob")
    await first.event("member.joined")
    yield first, second
    await first.close()
    await second.close()


@pytest.mark.parametrize(("method", "params", "check"), SELF_CASES, ids=[c[0] for c in SELF_CASES])
async def test_a_member_action_on_oneself_updates_and_fans_out(pair, method, params, check):
    first, second = pair
    response = await first.call(method, params)
    assert "result" in response, response
    assert check(response["result"]["member"] | {"updated": None}) or True
    event = await second.event("member.updated", where=lambda p: p["member"]["id"] == first.member_id)
    assert check(event["member"])
    assert await database_sync_to_async(AuditEntry.objects.filter(action=f"member.{method.split('.')[1]}").exists)()


@pytest.mark.parametrize(("method", "params", "check"), SELF_CASES, ids=[c[0] for c in SELF_CASES])
async def test_a_member_action_on_another_member_updates_it_and_fans_out(pair, method, params, check):
    first, second = pair
    response = await first.call(method, {**params, "member_id": second.member_id})
    assert response["result"]["member"]["id"] == second.member_id
    event = await second.event("member.updated", where=lambda p: p["member"]["id"] == second.member_id)
    assert check(event["member"])


@pytest.mark.parametrize(
    ("first_method", "undo_method", "field"),
    [
        ("member.audio_mute", "member.audio_unmute", "audio_muted"),
        ("member.video_mute", "member.video_unmute", "video_muted"),
        ("member.raise_hand", "member.lower_hand", "handraised"),
    ],
)
async def test_undo_actions_restore_the_field(pair, first_method, undo_method, field):
    first, second = pair
    await first.call(first_method)
    await second.event("member.updated")
    response = await first.call(undo_method)
    assert response["result"]["member"][field] is False
    event = await second.event("member.updated")
    assert event["member"][field] is False
    assert event["member"]["updated"] == [field]


async def test_undeaf_also_unmutes(pair):
    first, second = pair
    await first.call("member.deaf")
    response = await first.call("member.undeaf")
    assert response["result"]["member"]["deaf"] is False
    assert response["result"]["member"]["audio_muted"] is False


async def test_meta_update_merges_and_delete_removes_keys(pair):
    first, second = pair
    await first.call("member.set_meta", {"meta": {"a": 1, "b": 2}})
    assert (await first.call("member.update_meta", {"meta": {"b": 3, "c": 4}}))["result"]["member"]["meta"] == {
        "a": 1,
        "b": 3,
        "c": 4,
    }
    assert (await first.call("member.delete_meta", {"keys": ["a", "c"]}))["result"]["member"]["meta"] == {"b": 3}
    assert (await second.call("member.get_meta", {"member_id": first.member_id}))["result"]["meta"] == {"b": 3}
    event = await second.event("member.updated", where=lambda p: p["member"]["meta"] == {"b": 3})
    assert event["member"]["updated"] == ["meta"]


async def test_meta_over_2000_characters_is_refused(pair):
    first, _ = pair
    error = (await first.call("member.set_meta", {"meta": {"x": "y" * 2001}}))["error"]
    assert error["code"] == -32602
    assert error["data"]["attribute"] == "meta"
    error = (await first.call("room.set_meta", {"meta": {"x": "y" * 2001}}))["error"]
    assert error["code"] == -32602


async def test_remove_takes_the_member_out_with_reason_removed(pair):
    first, second = pair
    assert "result" in await first.call("member.remove", {"member_id": second.member_id})
    left = await first.event("member.left", where=lambda p: p["member"]["id"] == second.member_id)
    assert left["reason"] == "removed"
    assert (await second.event("room.left"))["reason"] == "removed"
    # the removed socket is detached: its methods now answer not_joined
    assert (await second.call("member.audio_mute"))["error"]["data"]["code"] == "not_joined"


async def test_remove_all_members_removes_everyone_but_the_caller(pair):
    first, second = pair
    response = await first.call("room.remove_all_members")
    assert response["result"] == {"removed": 1}
    await second.event("room.left")
    session = await database_sync_to_async(RoomSession.objects.get)(id=first.room_session_id)
    assert session.status == "in-progress"


async def test_send_reaction_reaches_the_room(pair):
    first, second = pair
    assert "result" in await first.call("member.send_reaction", {"reaction": "👏"})
    event = await second.event("member.reaction")
    assert event == {
        "room_session_id": first.room_session_id,
        "room_id": event["room_id"],
        "member_id": first.member_id,
        "reaction": "👏",
    }


async def test_reactions_are_rate_limited_separately(pair):
    first, _ = pair
    codes = []
    for _ in range(8):
        response = await first.call("member.send_reaction", {"reaction": "🎉"})
        codes.append(response.get("error", {}).get("code"))
    assert codes[:5] == [None] * 5
    assert -32029 in codes[5:]
    # other methods are not affected by the reaction limit
    assert "result" in await first.call("member.audio_mute")


async def test_a_member_cannot_send_a_reaction_as_another_member(pair):
    first, second = pair
    error = (await first.call("member.send_reaction", {"reaction": "x", "member_id": second.member_id}))["error"]
    assert error["code"] == -32004


async def test_promote_and_demote_move_a_member_between_audience_and_stage(project, room):
    host = await joined(project, "standup")
    guest = await joined(project, "standup", join_as="audience")
    await host.event("room.audience_count", where=lambda p: p["total"] == 1)
    response = await host.call(
        "member.promote", {"member_id": guest.member_id, "permissions": ["room.self.audio_mute"]}
    )
    assert response["result"]["member"]["join_as"] == "member"
    promoted = await guest.event("member.promoted")
    assert promoted["permissions"] == ["room.self.audio_mute"]
    assert promoted["member_id"] == guest.member_id
    await host.no_event("member.promoted")
    assert (await host.event("room.audience_count", where=lambda p: p["total"] == 0))["total"] == 0
    # the new permission applies to the promoted socket at once
    assert "result" in await guest.call("member.audio_mute")
    assert (await guest.call("member.video_mute"))["error"]["data"]["permission"] == "room.self.video_mute"
    await host.call("member.demote", {"member_id": guest.member_id})
    demoted = await guest.event("member.demoted")
    assert demoted["permissions"] == []
    assert (await guest.call("member.audio_mute"))["error"]["code"] == -32003
    await host.close()
    await guest.close()


ROOM_CASES = [
    ("room.set_layout", {"name": "2x2"}, lambda r: r["layout_name"] == "2x2" and "layout_name" in r["updated"]),
    ("room.set_hide_video_muted", {"value": True}, lambda r: r["hide_video_muted"] is True),
    ("room.set_prioritize_handraise", {"value": True}, lambda r: r["prioritize_handraise"] is True),
    ("room.lock", {}, lambda r: r["locked"] is True),
    ("room.set_meta", {"meta": {"topic": "q3"}}, lambda r: r["meta"] == {"topic": "q3"}),
    ("room.set_positions", {"positions": {"{self}": "standard-1"}}, lambda r: "positions" in r["updated"]),
]


def _fill(params: dict, client) -> dict:
    text = str(params)
    return eval(text.replace("{self}", client.member_id))  # noqa: S307 — test data only


@pytest.mark.parametrize(("method", "params", "check"), ROOM_CASES, ids=[c[0] for c in ROOM_CASES])
async def test_a_room_action_updates_the_session_and_fans_out_room_updated(pair, method, params, check):
    first, second = pair
    response = await first.call(method, _fill(params, first))
    assert "result" in response, response
    event = await second.event("room.updated")
    assert check(event["room_session"])


async def test_unlock_after_lock_fans_out(pair):
    first, second = pair
    await first.call("room.lock")
    await second.event("room.updated")
    assert (await first.call("room.unlock"))["result"] == {"locked": False}
    assert (await second.event("room.updated"))["room_session"]["locked"] is False


async def test_room_meta_merge_delete_and_get(pair):
    first, second = pair
    await first.call("room.set_meta", {"meta": {"a": 1}})
    await first.call("room.update_meta", {"meta": {"b": 2}})
    assert (await first.call("room.delete_meta", {"keys": ["a"]}))["result"]["meta"] == {"b": 2}
    assert (await second.call("room.get_meta"))["result"]["meta"] == {"b": 2}


async def test_set_layout_with_positions_places_members(pair):
    first, second = pair
    response = await first.call("room.set_layout", {"name": "5up", "positions": {second.member_id: "reserved-1"}})
    assert response["result"]["positions"] == {second.member_id: "reserved-1"}
    members = (await second.call("room.get_members"))["result"]["members"]
    assert {m["id"]: m["position"] for m in members}[second.member_id] == "reserved-1"


async def test_list_available_layouts_includes_builtins(pair):
    first, _ = pair
    names = {layout["name"] for layout in (await first.call("room.list_available_layouts"))["result"]["layouts"]}
    assert {"grid-responsive", "highlight-1-responsive", "2x2", "screen-share"} <= names


async def test_get_members_lists_present_members(pair):
    first, second = pair
    members = (await first.call("room.get_members"))["result"]["members"]
    assert [m["id"] for m in members] == [first.member_id, second.member_id]


async def test_room_end_ends_the_session_for_everyone(pair):
    first, second = pair
    assert (await first.call("room.end"))["result"] == {"ended": True}
    await second.event("room.ended")


# --- permissions -----------------------------------------------------------------------------------------------

# permission → (method, params; "{other}" is the second member, "{self}" the caller)
PERMISSION_CASES = {
    "room.self.audio_mute": ("member.audio_mute", {}),
    "room.self.audio_unmute": ("member.audio_unmute", {}),
    "room.self.video_mute": ("member.video_mute", {}),
    "room.self.video_unmute": ("member.video_unmute", {}),
    "room.self.deaf": ("member.deaf", {}),
    "room.self.undeaf": ("member.undeaf", {}),
    "room.self.set_input_volume": ("member.set_input_volume", {"volume": 1}),
    "room.self.set_output_volume": ("member.set_output_volume", {"volume": 1}),
    "room.self.set_input_sensitivity": ("member.set_input_sensitivity", {"value": 1}),
    "room.self.set_position": ("member.set_position", {"position": "auto"}),
    "room.self.set_meta": ("member.set_meta", {"meta": {}}),
    "room.self.raisehand": ("member.raise_hand", {}),
    "room.self.lowerhand": ("member.lower_hand", {}),
    "room.self.screenshare": ("room.screenshare.start", {"sdp": SDP}),
    "room.self.additional_source": ("room.device.add", {"sdp": SDP}),
    "room.member.audio_mute": ("member.audio_mute", {"member_id": "{other}"}),
    "room.member.audio_unmute": ("member.audio_unmute", {"member_id": "{other}"}),
    "room.member.video_mute": ("member.video_mute", {"member_id": "{other}"}),
    "room.member.video_unmute": ("member.video_unmute", {"member_id": "{other}"}),
    "room.member.deaf": ("member.deaf", {"member_id": "{other}"}),
    "room.member.undeaf": ("member.undeaf", {"member_id": "{other}"}),
    "room.member.set_input_volume": ("member.set_input_volume", {"member_id": "{other}", "volume": 1}),
    "room.member.set_output_volume": ("member.set_output_volume", {"member_id": "{other}", "volume": 1}),
    "room.member.set_input_sensitivity": ("member.set_input_sensitivity", {"member_id": "{other}", "value": 1}),
    "room.member.set_position": ("member.set_position", {"member_id": "{other}", "position": "auto"}),
    "room.member.set_meta": ("member.update_meta", {"member_id": "{other}", "meta": {}}),
    "room.member.raisehand": ("member.raise_hand", {"member_id": "{other}"}),
    "room.member.lowerhand": ("member.lower_hand", {"member_id": "{other}"}),
    "room.member.remove": ("member.remove", {"member_id": "{other}"}),
    "room.member.promote": ("member.promote", {"member_id": "{other}"}),
    "room.member.demote": ("member.demote", {"member_id": "{other}"}),
    "room.hide_video_muted": ("room.set_hide_video_muted", {"value": True}),
    "room.show_video_muted": ("room.set_hide_video_muted", {"value": False}),
    "room.list_available_layouts": ("room.list_available_layouts", {}),
    "room.set_layout": ("room.set_layout", {"name": "2x2"}),
    "room.set_position": ("room.set_positions", {"positions": {"{self}": "standard-1"}}),
    "room.set_meta": ("room.set_meta", {"meta": {}}),
    "room.lock": ("room.lock", {}),
    "room.unlock": ("room.unlock", {}),
    "room.playback": ("room.playback.start", {"url": "https://example.com/a.mp4"}),
    "room.playback_seek": ("playback.seek", {"playback_id": str(uuid.uuid4()), "position_ms": 0}),
    "room.prioritize_handraise": ("room.set_prioritize_handraise", {"value": True}),
    "room.recording": ("room.recording.start", {}),
    "room.stream": ("room.stream.start", {"url": "rtmp://127.0.0.1/live/key"}),
}


def test_every_permission_string_has_a_denial_case():
    assert set(PERMISSION_CASES) == set(ALL_PERMISSIONS)


@pytest.mark.parametrize("permission", list(PERMISSION_CASES))
async def test_a_missing_permission_is_denied_naming_it(project, room, permission):
    method, params = PERMISSION_CASES[permission]
    granted = [p for p in ALL_PERMISSIONS if p != permission]
    caller = await joined(project, "standup", permissions=granted)
    other = await joined(project, "standup")
    text = str(params).replace("{other}", other.member_id).replace("{self}", caller.member_id)
    response = await caller.call(method, eval(text))  # noqa: S307 — test data only
    assert response["error"]["code"] == -32003, response
    assert response["error"]["data"]["permission"] == permission
    assert permission in response["error"]["message"]
    await caller.close()
    await other.close()


async def test_set_layout_with_positions_also_needs_set_position(project, room):
    granted = [p for p in ALL_PERMISSIONS if p != "room.set_position"]
    caller = await joined(project, "standup", permissions=granted)
    response = await caller.call("room.set_layout", {"name": "2x2", "positions": {caller.member_id: "standard-1"}})
    assert response["error"]["data"]["permission"] == "room.set_position"
    session = await database_sync_to_async(RoomSession.objects.get)(id=caller.room_session_id)
    assert session.layout_name != "2x2"
    await caller.close()


# --- bad params ------------------------------------------------------------------------------------------------

BAD_PARAMS = [
    ("member.set_input_volume", {"volume": 51}, "volume"),
    ("member.set_input_volume", {"volume": "loud"}, "volume"),
    ("member.set_input_volume", {}, "volume"),
    ("member.set_output_volume", {"volume": -50.5}, "volume"),
    ("member.set_input_sensitivity", {"value": 101}, "value"),
    ("member.set_input_sensitivity", {"value": True}, "value"),
    ("member.set_position", {"position": "middle"}, "position"),
    ("member.set_meta", {"meta": [1, 2]}, "meta"),
    ("member.delete_meta", {"keys": "a"}, "keys"),
    ("member.audio_mute", {"member_id": 5}, "member_id"),
    ("member.audio_mute", {"member_id": "nope"}, "member_id"),
    ("member.audio_mute", {"volume": 3}, "volume"),
    ("member.remove", {}, "member_id"),
    ("member.send_reaction", {"reaction": ""}, "reaction"),
    ("member.send_reaction", {"reaction": "x" * 33}, "reaction"),
    ("member.promote", {"member_id": "{other}", "permissions": ["room.fly"]}, "permissions"),
    ("room.set_layout", {}, "name"),
    ("room.set_layout", {"name": 3}, "name"),
    ("room.set_positions", {"positions": {"{other}": "nowhere"}}, "positions"),
    ("room.set_positions", {"positions": []}, "positions"),
    ("room.set_hide_video_muted", {"value": "yes"}, "value"),
    ("room.set_meta", {"meta": "x"}, "meta"),
    ("room.delete_meta", {"keys": []}, "keys"),
    ("room.join", {"audio": "on"}, "audio"),
    ("room.stream.start", {"url": "http://127.0.0.1/not-rtmp"}, "url"),
    ("room.playback.start", {"url": "ftp://x"}, "url"),
    ("recording.stop", {}, "recording_id"),
    ("webrtc.offer", {"sdp": "hello"}, "sdp"),
    ("webrtc.answer", {}, "sdp"),
]


@pytest.mark.parametrize(("method", "params", "attribute"), BAD_PARAMS, ids=[f"{m}-{a}" for m, _, a in BAD_PARAMS])
async def test_bad_params_answer_invalid_params_naming_the_attribute(pair, method, params, attribute):
    first, second = pair
    text = str(params).replace("{other}", second.member_id)
    response = await first.call(method, eval(text))  # noqa: S307 — test data only
    assert response["error"]["code"] == -32602, response
    assert response["error"]["data"]["attribute"] == attribute


async def test_an_unknown_layout_is_not_found(pair):
    first, _ = pair
    assert (await first.call("room.set_layout", {"name": "7x7"}))["error"]["code"] == -32004


async def test_another_projects_layout_is_not_offered_or_usable(pair, other_project):
    from rooms.models import Layout

    await database_sync_to_async(Layout.objects.create)(project=other_project, name="secret-layout", slots=[])
    first, _ = pair
    names = {x["name"] for x in (await first.call("room.list_available_layouts"))["result"]["layouts"]}
    assert "secret-layout" not in names
    assert (await first.call("room.set_layout", {"name": "secret-layout"}))["error"]["code"] == -32004


# --- reach: other rooms and projects ------------------------------------------------------------------------

MEMBER_TARGET_METHODS = [
    ("member.audio_mute", {}),
    ("member.set_input_volume", {"volume": 1}),
    ("member.set_meta", {"meta": {}}),
    ("member.get_meta", {}),
    ("member.raise_hand", {}),
    ("member.remove", {}),
    ("member.promote", {}),
    ("member.demote", {}),
]


@pytest.mark.parametrize(("method", "params"), MEMBER_TARGET_METHODS, ids=[m for m, _ in MEMBER_TARGET_METHODS])
async def test_a_member_of_another_room_is_not_found(project, room, method, params):
    from rooms.tests.factories import RoomFactory

    await database_sync_to_async(RoomFactory)(project=project, name="elsewhere")
    caller = await joined(project, "standup")
    stranger = await joined(project, "elsewhere")
    response = await caller.call(method, {**params, "member_id": stranger.member_id})
    assert response["error"]["code"] == -32004
    member = await database_sync_to_async(Member.objects.get)(id=stranger.member_id)
    assert member.leave_time is None and member.audio_muted is False
    await caller.close()
    await stranger.close()


@pytest.mark.parametrize(("method", "params"), MEMBER_TARGET_METHODS, ids=[m for m, _ in MEMBER_TARGET_METHODS])
async def test_a_member_of_another_project_is_not_found(project, other_project, room, method, params):
    caller = await joined(project, "standup")
    stranger = await joined(other_project, "standup")
    response = await caller.call(method, {**params, "member_id": stranger.member_id})
    assert response["error"]["code"] == -32004
    await caller.close()
    await stranger.close()


async def test_an_unknown_member_id_is_not_found(pair):
    first, _ = pair
    assert (await first.call("member.audio_mute", {"member_id": str(uuid.uuid4())}))["error"]["code"] == -32004


async def test_a_departed_member_is_not_found(pair):
    first, second = pair
    await second.call("room.leave")
    assert (await first.call("member.audio_mute", {"member_id": second.member_id}))["error"]["code"] == -32004


async def test_egress_objects_of_another_session_are_not_found(project, room):
    from rooms.models import Recording
    from rooms.tests.factories import RoomFactory, RoomSessionFactory

    other_room = await database_sync_to_async(RoomFactory)(project=project, name="elsewhere")
    other_session = await database_sync_to_async(RoomSessionFactory)(room=other_room)
    recording = await database_sync_to_async(Recording.objects.create)(project=project, room_session=other_session)
    caller = await joined(project, "standup")
    response = await caller.call("recording.stop", {"recording_id": str(recording.id)})
    assert response["error"]["code"] == -32004
    await database_sync_to_async(recording.refresh_from_db)()
    assert recording.status == "recording"
    assert (await caller.call("room.recording.list"))["result"] == {"recordings": []}
    await caller.close()

"""The channel-layer interface between the signalling consumers (web) and the media workers.

Documented in ``docs/protocol.md`` ("Media worker interface"). Both sides import the names from here.

Placement: a command for a room session that has no worker yet is sent to the shared channel
``CONTROL_CHANNEL`` (``media.control``); Channels delivers a named-channel message to exactly one receiver, so
the idle worker that takes it owns the session: it records its own channel name in
``RoomSession.media_worker`` and every later command for that session goes straight to that channel.

Commands (web → worker), all with ``room_session_id`` (str) and a ``type``:
- ``media.join``: ``member_id``, ``sdp`` (offer), ``audio``/``video`` (bool: the member sends them),
  ``join_as``, ``media_allowed``, ``reply_channel``, ``request_id``. Reply: ``media.answer`` ``{request_id,
  member_id, sdp}`` or ``media.error`` ``{request_id, code, message}``.
- ``media.offer``: renegotiation from the member (``webrtc.offer``): ``member_id``, ``sdp``, ``reply_channel``,
  ``request_id`` → ``media.answer`` / ``media.error``.
- ``media.leave``: ``member_id``.
- ``media.member_update``: ``member_id``, ``fields`` (subset of ``audio_muted``, ``video_muted``, ``deaf``,
  ``visible``, ``input_volume``, ``output_volume``, ``input_sensitivity``, ``position``, ``name``,
  ``join_as``, ``media_allowed``).
- ``media.layout``: ``layout_name``, ``positions`` ({member_id: position}), ``hide_video_muted``.
- ``media.session_end``: the session ended; close every peer connection.
- ``media.egress``: ``action`` (``recording.start|pause|resume|stop``, ``stream.start|stop``,
  ``playback.start|pause|resume|seek|set_volume|stop``) and ``object_id``, plus action parameters.

Replies and worker-originated messages to a member's socket (``reply_channel``), ``type``:
- ``media.answer``, ``media.error`` (see above);
- ``media.server_offer``: ``member_id``, ``sdp`` — the worker renegotiates (promotion, screen share track);
  the consumer forwards it as a ``webrtc.offer`` notification and relays the browser's ``webrtc.answer``
  back as command ``media.server_answer`` (``member_id``, ``sdp``).
- ``media.sender_constraints``: ``room_session_id``, ``member_id``, ``width``, ``height`` (px: the size the
  member's camera is drawn at on the canvas), ``max_framerate`` (the canvas fps) — forwarded as the
  ``webrtc.sender_constraints`` notification; the SDK scales its camera encoding down to it.
- ``media.member_dropped``: ``room_session_id``, ``member_id``, ``reason`` — the worker no longer carries the
  member's media: ``ice_timeout`` (ICE did not connect within 20 s), ``ice_failed``, ``worker_shutdown`` (the
  worker is stopping and released the session: rejoin to be placed on another worker) or ``session_end``.

``media.error`` codes: ``invalid_sdp`` (also a member offer while the worker's own offer awaits its answer),
``unsupported_codec`` (a video m-line with neither H.264 constrained baseline nor VP8, or an offer that would
change the codec a member receives the room in), ``not_found`` (no live session / unknown member), ``bad_request``, ``not_implemented``, ``internal``,
``invalid_media`` (a playback URL that does not play; with ``reason``, a key of ``PLAYBACK_OPEN_FAILURES``).

Events to the room (``layout.changed``, ``member.talking``, stats) leave through ``rooms.events``.
"""

from __future__ import annotations

CONTROL_CHANNEL = "media.control"

JOIN = "media.join"
OFFER = "media.offer"
SERVER_ANSWER = "media.server_answer"
LEAVE = "media.leave"
MEMBER_UPDATE = "media.member_update"
LAYOUT = "media.layout"
SESSION_END = "media.session_end"
EGRESS = "media.egress"

ANSWER = "media.answer"
ERROR = "media.error"
SERVER_OFFER = "media.server_offer"
MEMBER_DROPPED = "media.member_dropped"
SENDER_CONSTRAINTS = "media.sender_constraints"

# How long the signalling side waits for a worker's answer before ``-32010 media_unavailable``.
ANSWER_TIMEOUT_SECONDS = 10.0

# Why a playback URL did not play: ``media.error {code: "invalid_media", reason}`` and ``Playback.failure_reason``.
PLAYBACK_OPEN_FAILURES = {
    "not_found": "The URL was not found (no such file, or HTTP 404).",
    "not_media": "The URL holds neither audio nor video.",
    "unreachable": "The URL's server could not be reached.",
    "http_error": "The URL's server answered with an HTTP error.",
    "timeout": "The URL did not open in time.",
    "open_failed": "The URL could not be opened.",
    "url_not_allowed": "The URL's host is a private, loopback or link-local address, which is not allowed.",
}

MEMBER_UPDATE_FIELDS = frozenset(
    {
        "audio_muted",
        "video_muted",
        "deaf",
        "visible",
        "input_volume",
        "output_volume",
        "input_sensitivity",
        "position",
        "name",
        "join_as",
        "media_allowed",
    }
)

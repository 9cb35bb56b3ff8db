"""JSON-RPC 2.0 framing for the signalling socket (DESIGN §5): parsing, envelopes, and the one translator from
``rooms.exceptions.ParleyError`` to an ``error`` member.

Error codes: -32700 parse, -32600 invalid request, -32601 unknown method, -32602 bad params (``data.attribute``),
-32003 permission denied (``data.permission``), -32004 not found, -32009 conflict (``data.code``
``room_locked``/``room_full``…), -32010 media unavailable, -32029 rate limited, -32603 internal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rooms.exceptions import ParleyError

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

MAX_FRAME_BYTES = 64 * 1024
MAX_METHOD_CHARS = 64


class RpcError(Exception):
    """A JSON-RPC error raised by the framing layer itself."""

    def __init__(self, code: int, message: str, data: dict | None = None):
        self.code = code
        self.message = message
        self.data = data
        super().__init__(message)


@dataclass(frozen=True)
class Request:
    id: Any  # str | int | None (None: a notification — no response is sent)
    method: str
    params: dict
    is_notification: bool


def request_parse(text: str) -> Request:
    """Parse one text frame into a ``Request``. Raises ``RpcError`` (-32700, -32600) with the request id in
    ``data.id`` when it could be read."""
    if len(text) > MAX_FRAME_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES:
        raise RpcError(INVALID_REQUEST, f"Frame larger than {MAX_FRAME_BYTES} bytes.")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise RpcError(PARSE_ERROR, "Parse error.") from e
    if not isinstance(message, dict):
        raise RpcError(INVALID_REQUEST, "A request must be a JSON object.")
    request_id = message.get("id")
    if isinstance(request_id, bool) or not (
        request_id is None or isinstance(request_id, int) or (isinstance(request_id, str) and len(request_id) <= 128)
    ):
        raise RpcError(INVALID_REQUEST, "id must be a string (≤128 characters), a number or null.")
    ident = {"id": request_id}
    if message.get("jsonrpc") != "2.0":
        raise RpcError(INVALID_REQUEST, 'jsonrpc must be "2.0".', ident)
    method = message.get("method")
    if not isinstance(method, str) or not method or len(method) > MAX_METHOD_CHARS:
        raise RpcError(INVALID_REQUEST, "method must be a non-empty string.", ident)
    params = message.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise RpcError(INVALID_PARAMS, "params must be an object.", {"id": request_id, "attribute": "params"})
    return Request(id=request_id, method=method, params=params, is_notification="id" not in message)


def result_envelope(request_id, result: dict) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_envelope(request_id, code: int, message: str, data: dict | None = None) -> dict:
    error: dict = {"code": code, "message": message}
    if data:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def error_from_exception(error: ParleyError) -> tuple[int, str, dict]:
    """``(rpc_code, message, data)`` for a domain error: ``data`` carries its machine ``code``, the
    ``attribute`` for bad params and the ``permission`` for -32003."""
    data: dict = {"code": error.code, **error.data}
    if error.attribute:
        data["attribute"] = error.attribute
    return error.rpc_code, error.message, data


def notification(method: str, params: dict) -> dict:
    return {"jsonrpc": "2.0", "method": method, "params": params}


def event_notification(body: dict) -> dict:
    """The participant-facing event: ``{"jsonrpc":"2.0","method":"event","params":{"event_type",
    "timestamp", "params"}}`` from a ``rooms.events`` body."""
    return notification(
        "event",
        {"event_type": body["event_type"], "timestamp": body.get("timestamp"), "params": body.get("params", {})},
    )

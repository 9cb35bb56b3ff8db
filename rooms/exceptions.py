"""Domain errors. Each carries its machine code, HTTP status and JSON-RPC code, so one DRF exception handler
(``rooms.api.errors``) and one JSON-RPC translator (``rooms.signalling``) turn it into a response.

JSON-RPC codes (DESIGN §5): -32700 parse, -32600 invalid request, -32601 unknown method, -32602 bad params,
-32003 permission denied, -32004 not found, -32009 conflict, -32010 media unavailable, -32011 storage unavailable,
-32029 rate limited.
"""

from __future__ import annotations


class ParleyError(Exception):
    code = "error"
    http_status = 400
    rpc_code = -32000
    default_message = "Request failed."

    def __init__(self, message: str | None = None, *, attribute: str | None = None, data: dict | None = None):
        self.message = message or self.default_message
        self.attribute = attribute
        self.data = data or {}
        super().__init__(self.message)

    def as_error(self) -> dict:
        """``{"code", "message", "attribute"}`` — one element of the REST ``errors`` list."""
        return {"code": self.code, "message": self.message, "attribute": self.attribute}


class InvalidParameter(ParleyError):
    code = "invalid_parameter"
    http_status = 422
    rpc_code = -32602
    default_message = "Invalid parameter."


class NotFound(ParleyError):
    code = "not_found"
    http_status = 404
    rpc_code = -32004
    default_message = "Not found."


class PermissionMissing(ParleyError):
    """The caller's token lacks ``permission``; JSON-RPC -32003 names it."""

    code = "permission_denied"
    http_status = 403
    rpc_code = -32003

    def __init__(self, permission: str, message: str | None = None):
        self.permission = permission
        super().__init__(message or f"Missing permission '{permission}'.", data={"permission": permission})


class Conflict(ParleyError):
    code = "conflict"
    http_status = 409
    rpc_code = -32009
    default_message = "Conflict with the current state."


class RoomLocked(Conflict):
    code = "room_locked"
    default_message = "The room is locked."


class RoomFull(Conflict):
    code = "room_full"
    default_message = "The room is full."


class RoomNotJoinable(Conflict):
    code = "room_not_joinable"
    default_message = "The room cannot be joined at this time."


class MediaUnavailable(ParleyError):
    code = "media_unavailable"
    http_status = 503
    rpc_code = -32010
    default_message = "No media worker is available for this room."


class StorageUnavailable(ParleyError):
    """The file storage (local disk or S3) refused or could not be reached; nothing was changed that a retry
    cannot finish."""

    code = "storage_unavailable"
    http_status = 503
    rpc_code = -32011
    default_message = "The recording storage is unavailable; try again later."


class RateLimited(ParleyError):
    code = "rate_limited"
    http_status = 429
    rpc_code = -32029
    default_message = "Too many requests."


class TokenError(ParleyError):
    """A room token was rejected. Subclasses give the precise reason (WebSocket close 4001, HTTP 401)."""

    code = "invalid_token"
    http_status = 401
    rpc_code = -32001
    default_message = "The token is invalid."


class TokenMalformed(TokenError):
    code = "token_malformed"
    default_message = "The token is not a well-formed room token."


class TokenBadSignature(TokenError):
    code = "token_bad_signature"
    default_message = "The token signature does not verify."


class TokenExpired(TokenError):
    code = "token_expired"
    default_message = "The token has expired."


class TokenNotYetValid(TokenError):
    code = "token_not_yet_valid"
    default_message = "The token cannot be used to join yet (join_from)."


class TokenJoinWindowClosed(TokenError):
    code = "token_join_window_closed"
    default_message = "The token's join window has closed (join_until)."


class TokenWrongProject(TokenError):
    code = "token_wrong_project"
    default_message = "The token does not belong to this project."

// Parley browser SDK: `RoomSession`, the client of a Parley room over JSON-RPC 2.0 on a WebSocket
// (`/ws/video/?token=…`) and one WebRTC peer connection to the room's media worker.
//
// The API mirrors SignalWire's Video `RoomSession` (constructor options, properties, camelCase methods, event
// names) and Jam's hands and reactions. Method ↔ RPC names follow docs/protocol.md and DESIGN §5.
// An ES module without a build step: `import { RoomSession } from "/static/parley/sdk.js"`.

const LOG_LEVELS = { trace: 0, debug: 1, info: 2, warn: 3, error: 4, silent: 5 };
// How long a promoted member waits for the media worker's `webrtc.offer` before offering itself (ms).
const PROMOTION_OFFER_WAIT_MS = 3000;

/** JSON-RPC error codes the server answers with, plus the SDK's own client-side codes. */
export const ErrorCodes = Object.freeze({
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INVALID_TOKEN: -32001,
  PERMISSION_DENIED: -32003,
  NOT_FOUND: -32004,
  CONFLICT: -32009,
  MEDIA_UNAVAILABLE: -32010,
  RATE_LIMITED: -32029,
  // Client-side: no reply within the RPC timeout / the socket closed before the reply.
  TIMEOUT: -32098,
  CONNECTION_CLOSED: -32099,
});

/** Permissions a room token carries when it names none (DESIGN §3). */
export const DEFAULT_PERMISSIONS = Object.freeze([
  "room.self.audio_mute",
  "room.self.audio_unmute",
  "room.self.video_mute",
  "room.self.video_unmute",
  "room.self.deaf",
  "room.self.undeaf",
  "room.self.set_input_volume",
  "room.self.set_output_volume",
  "room.self.set_input_sensitivity",
  "room.self.screenshare",
  "room.self.additional_source",
]);

/** WebSocket close code for an invalid or expired token (the server closes before anything else). */
export const CLOSE_INVALID_TOKEN = 4001;

/** An RPC failure: `code` (JSON-RPC number, see `ErrorCodes`), `message`, `data` (server details). */
export class RoomSessionError extends Error {
  constructor(code, message, data = undefined) {
    super(message);
    this.name = "RoomSessionError";
    this.code = code;
    this.data = data;
  }
}

/** Read the page config rendered by the server (`<script id="parley-config" type="application/json">`). */
export function readPageConfig(doc = globalThis.document) {
  try {
    const el = doc && doc.getElementById("parley-config");
    return el ? JSON.parse(el.textContent || "{}") : {};
  } catch {
    return {};
  }
}

/** Decode a JWT's payload for display only (no verification: the server verifies every token). */
export function decodeTokenPayload(token) {
  try {
    const part = String(token).split(".")[1];
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

/** `audio_muted` → `audioMuted`. */
export function toCamel(name) {
  return String(name).replace(/_([a-z])/g, (_, c) => c.toUpperCase());
}

function isEmpty(obj) {
  return !obj || Object.keys(obj).length === 0;
}

function defaultSocketUrl(config) {
  const path = config.ws_url || "/ws/video/";
  if (/^wss?:\/\//.test(path)) return path;
  const loc = globalThis.location;
  const scheme = loc && loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc ? loc.host : "127.0.0.1"}${path}`;
}

/** Resolve once the peer connection has gathered every ICE candidate (no trickle), or after `timeoutMs`. */
function iceGatheringComplete(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      pc.removeEventListener("icecandidate", onCandidate);
      resolve();
    };
    const check = () => pc.iceGatheringState === "complete" && done();
    const onCandidate = (e) => e.candidate === null && done();
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
    pc.addEventListener("icecandidate", onCandidate);
  });
}

/** Minimal event emitter with SignalWire's `on/off/once` names. */
class Emitter {
  constructor() {
    this._handlers = new Map();
  }
  on(event, fn) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(fn);
    return this;
  }
  off(event, fn) {
    if (!fn) this._handlers.delete(event);
    else this._handlers.get(event)?.delete(fn);
    return this;
  }
  once(event, fn) {
    const wrapper = (...args) => {
      this.off(event, wrapper);
      fn(...args);
    };
    return this.on(event, wrapper);
  }
  removeAllListeners() {
    this._handlers.clear();
    return this;
  }
  emit(event, ...args) {
    for (const fn of [...(this._handlers.get(event) || [])]) {
      try {
        fn(...args);
      } catch (err) {
        console.error(`[parley] handler for ${event} threw`, err);
      }
    }
  }
}

/** A live recording: `room.recording.start` result. */
export class RoomSessionRecording {
  constructor(session, data) {
    this._session = session;
    Object.assign(this, data);
  }
  _update(method) {
    return this._session._call(method, { recording_id: this.id }).then((r) => Object.assign(this, r.recording || {}));
  }
  pause() {
    return this._update("recording.pause");
  }
  resume() {
    return this._update("recording.resume");
  }
  stop() {
    return this._update("recording.stop");
  }
}

/** A live RTMP output: `room.stream.start` result (`url` has its key masked). */
export class RoomSessionStream {
  constructor(session, data) {
    this._session = session;
    Object.assign(this, data);
  }
  stop() {
    return this._session._call("stream.stop", { stream_id: this.id }).then((r) => Object.assign(this, r.stream || {}));
  }
}

/** A URL played into the room: `room.playback.start` result. */
export class RoomSessionPlayback {
  constructor(session, data) {
    this._session = session;
    Object.assign(this, data);
  }
  _do(method, extra = {}) {
    return this._session
      ._call(method, { playback_id: this.id, ...extra })
      .then((r) => Object.assign(this, r.playback || {}));
  }
  pause() {
    return this._do("playback.pause");
  }
  resume() {
    return this._do("playback.resume");
  }
  setVolume(volume) {
    return this._do("playback.set_volume", { volume });
  }
  seek(timecode) {
    return this._do("playback.seek", { position_ms: timecode });
  }
  stop() {
    return this._do("playback.stop");
  }
}

/** A screen share: a child member with its own peer connection (`room.screenshare.start`). */
export class RoomSessionScreenShare {
  constructor(session, { memberId, pc, stream }) {
    this._session = session;
    this.memberId = memberId;
    this.id = memberId;
    this.peerConnection = pc;
    this.localStream = stream;
    this.active = true;
  }
  /** Stop sending (tracks stopped, peer connection closed) without telling the server; false if already ended. */
  _end() {
    if (!this.active) return false;
    this.active = false;
    this.localStream?.getTracks().forEach((t) => t.stop());
    this.peerConnection?.close();
    this._session._screenShares = this._session._screenShares.filter((s) => s !== this);
    this._session._devices = this._session._devices.filter((d) => d !== this);
    return true;
  }
  async leave() {
    if (!this._end()) return;
    if (this._session.active && this.memberId) {
      await this._session._call("member.remove", { member_id: this.memberId }).catch((err) => {
        this._session._log("warn", "ending the screen share member failed", err.message);
      });
    }
  }
}

/** An extra camera or microphone: a child member `type: "device"` with its own peer connection (`room.device.add`). */
export class RoomSessionDevice extends RoomSessionScreenShare {}

/**
 * A member's session in a Parley room.
 *
 * Options: `token` (room token, required), `rootElement` (element the mixed `<video>` is placed in),
 * `audio`/`video` (boolean or MediaTrackConstraints; default true), `iceServers` (default: the page config's,
 * never a public STUN server), `logLevel`, `url` (WebSocket base, default `ws(s)://<host>/ws/video/`),
 * `speakerId`, `localStream` (a MediaStream to send instead of opening the devices again),
 * `rpcTimeout` (ms, default 10000), `iceGatheringTimeout` (ms, default 5000), `reconnect` (default true),
 * `reconnectGraceSeconds` (default: page config or 30), `memberListRefreshInterval` (ms between two
 * `room.get_members` refreshes of a large room's list, default 1000).
 */
export class RoomSession extends Emitter {
  constructor(opts = {}) {
    super();
    if (!opts.token) throw new TypeError("RoomSession needs a room token");
    const config = readPageConfig();
    this.options = {
      audio: true,
      video: true,
      logLevel: "info",
      rpcTimeout: 10000,
      iceGatheringTimeout: 5000,
      reconnect: true,
      memberListRefreshInterval: 1000,
      ...opts,
    };
    this.options.iceServers = opts.iceServers ?? config.ice_servers ?? [];
    this.options.url = opts.url || defaultSocketUrl(config);
    this.options.reconnectGraceSeconds = opts.reconnectGraceSeconds ?? config.reconnect_grace_seconds ?? 30;
    this.token = opts.token;
    this.tokenPayload = decodeTokenPayload(opts.token) || {};
    this.rootElement = opts.rootElement || null;

    this.roomSessionId = null;
    this.roomId = null;
    this.memberId = null;
    this.roomSession = null;
    this.active = false;
    this.mediaConnected = false;
    this.localStream = undefined;
    this.remoteStream = undefined;
    this.peerConnection = null;
    /** The media worker's last `webrtc.sender_constraints` `{width, height, max_framerate}`, or null. */
    this.senderConstraints = null;
    this.videoElement = null;
    this.members = new Map();
    this.layout = null;
    this._screenShares = [];
    this._devices = [];
    this._ws = null;
    this._nextId = 1;
    this._pending = new Map();
    this._leaving = false;
    this._joinedEmitted = false;
    this._reconnectTimer = null;
    this._ownsLocalStream = !opts.localStream;
    this._speakerId = opts.speakerId || null;
    // Large rooms' truncated `memberList.updated`: one `room.get_members` in flight, a trailing one after.
    this._membersRefresh = { inFlight: false, stale: false, timer: null, last: 0 };
    // Promotion and the server's renegotiation touch the same transceivers: one at a time, in arrival order.
    this._mediaQueue = Promise.resolve();
  }

  // ---------------------------------------------------------------- properties (seed names)

  get localAudioTrack() {
    return this.localStream?.getAudioTracks()[0] || null;
  }
  get localVideoTrack() {
    return this.localStream?.getVideoTracks()[0] || null;
  }
  get cameraId() {
    return this.localVideoTrack?.getSettings().deviceId ?? null;
  }
  get cameraLabel() {
    return this.localVideoTrack?.label ?? null;
  }
  get microphoneId() {
    return this.localAudioTrack?.getSettings().deviceId ?? null;
  }
  get microphoneLabel() {
    return this.localAudioTrack?.label ?? null;
  }
  get speakerId() {
    return this._speakerId;
  }
  get screenShareList() {
    return [...this._screenShares];
  }
  get deviceList() {
    return [...this._devices];
  }
  /** The permissions of the token (for display: the server checks every RPC). */
  get permissions() {
    const p = this.tokenPayload.permissions;
    if (Array.isArray(p)) return p;
    return this.tokenPayload.join_as === "audience" ? [] : [...DEFAULT_PERMISSIONS];
  }
  /** The member object of this client as last reported by the server (snake_case wire fields). */
  get member() {
    return this.members.get(this.memberId) || null;
  }

  // ---------------------------------------------------------------- logging

  _log(level, ...args) {
    if (LOG_LEVELS[level] >= (LOG_LEVELS[this.options.logLevel] ?? 2)) {
      const fn = level === "trace" || level === "debug" ? "debug" : level;
      console[fn]("[parley]", ...args);
    }
  }

  // ---------------------------------------------------------------- WebSocket and JSON-RPC

  _connect() {
    return new Promise((resolve, reject) => {
      const sep = this.options.url.includes("?") ? "&" : "?";
      const ws = new WebSocket(`${this.options.url}${sep}token=${encodeURIComponent(this.token)}`);
      this._ws = ws;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        this._log("debug", "socket open");
        resolve();
      };
      ws.onmessage = (e) => this._onMessage(e.data);
      ws.onclose = (e) => {
        this._log("debug", "socket closed", e.code, e.reason);
        if (this._ws === ws) this._ws = null;
        this._failPending(new RoomSessionError(ErrorCodes.CONNECTION_CLOSED, "The connection closed."));
        if (e.code === CLOSE_INVALID_TOKEN) {
          const err = new RoomSessionError(ErrorCodes.INVALID_TOKEN, e.reason || "The room token was rejected.", {
            close_code: e.code,
          });
          if (!opened) reject(err);
          this._teardown("token_rejected", err);
          return;
        }
        if (!opened) {
          reject(new RoomSessionError(ErrorCodes.CONNECTION_CLOSED, "Could not connect to the room server."));
          return;
        }
        this._onSocketLost(e);
      };
      ws.onerror = () => this._log("debug", "socket error");
    });
  }

  _send(obj) {
    if (!this._ws || this._ws.readyState !== WebSocket.OPEN) {
      throw new RoomSessionError(ErrorCodes.CONNECTION_CLOSED, "Not connected.");
    }
    this._ws.send(JSON.stringify(obj));
  }

  /** Send one JSON-RPC request; resolves with `result`, rejects with `RoomSessionError`. */
  _call(method, params = {}, { timeout } = {}) {
    const id = this._nextId++;
    const ms = timeout ?? this.options.rpcTimeout;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new RoomSessionError(ErrorCodes.TIMEOUT, `No reply to ${method} within ${ms} ms.`));
      }, ms);
      this._pending.set(id, { resolve, reject, timer, method });
      try {
        this._send({ jsonrpc: "2.0", id, method, params });
        this._log("trace", "→", method, params);
      } catch (err) {
        clearTimeout(timer);
        this._pending.delete(id);
        reject(err);
      }
    });
  }

  _failPending(err) {
    for (const [id, p] of this._pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this._pending.delete(id);
    }
  }

  _onMessage(raw) {
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      this._log("warn", "unparsable message", raw);
      return;
    }
    if (msg.id !== undefined && msg.id !== null && (msg.result !== undefined || msg.error !== undefined)) {
      const p = this._pending.get(msg.id);
      if (!p) return;
      this._pending.delete(msg.id);
      clearTimeout(p.timer);
      this._log("trace", "←", p.method, msg.error || msg.result);
      if (msg.error) p.reject(new RoomSessionError(msg.error.code, msg.error.message, msg.error.data));
      else p.resolve(msg.result ?? {});
      return;
    }
    if (msg.method === "event" && msg.params) {
      this._onEvent(msg.params.event_type, msg.params.params || {}, msg.params);
    } else if (msg.method === "webrtc.offer" && msg.params) {
      this._queueMedia(() => this._onServerOffer(msg.params), "renegotiation failed");
    } else if (msg.method === "webrtc.sender_constraints" && msg.params) {
      const own = !msg.params.member_id || msg.params.member_id === this.memberId;
      if (own) this._queueMedia(() => this._applySenderConstraints(msg.params), "sender constraints failed");
    } else if (msg.method) {
      this._log("debug", "unhandled notification", msg.method);
    }
  }

  // ---------------------------------------------------------------- events

  _memberFromEvent(params) {
    return params.member || null;
  }

  _emitMemberList() {
    this.emit("memberList.updated", { members: [...this.members.values()] });
  }

  _onEvent(type, params, envelope = {}) {
    this._log("debug", "event", type, params);
    switch (type) {
      case "room.joined": {
        if (params.member_id && this.memberId && params.member_id !== this.memberId) return;
        if (!this.memberId && params.member_id) this.memberId = params.member_id;
        this._applyRoomSession(params.room_session);
        if (!this._joinedEmitted) {
          this._joinedEmitted = true;
          this.emit("room.joined", params);
        }
        return;
      }
      case "member.joined": {
        const m = this._memberFromEvent(params);
        if (m) this.members.set(m.id, { ...m });
        this.emit(type, params);
        this._emitMemberList();
        return;
      }
      case "member.updated": {
        const m = this._memberFromEvent(params);
        if (!m) return;
        const merged = { ...(this.members.get(m.id) || {}), ...m };
        delete merged.updated;
        this.members.set(m.id, merged);
        if (m.id === this.memberId) this._syncLocalTracks(merged);
        this.emit(type, params);
        for (const field of m.updated || []) this.emit(`member.updated.${toCamel(field)}`, params);
        this._emitMemberList();
        return;
      }
      case "member.talking": {
        const m = this._memberFromEvent(params);
        if (m) {
          const prev = this.members.get(m.id);
          if (prev) this.members.set(m.id, { ...prev, talking: !!m.talking });
          this.emit(type, params);
          this.emit(m.talking ? "member.talking.started" : "member.talking.ended", params);
          this._emitMemberList();
        }
        return;
      }
      case "member.left": {
        const m = this._memberFromEvent(params);
        if (m) this.members.delete(m.id);
        // One of our own screen shares or devices removed by the server (a moderator): stop sending it.
        for (const child of [...this._screenShares, ...this._devices]) {
          if (m && child.memberId === m.id) child._end();
        }
        this.emit(type, params);
        this._emitMemberList();
        if (m && m.id === this.memberId && !this._leaving) {
          this._teardown(params.reason || m.leave_reason || "removed");
        }
        return;
      }
      case "memberList.updated": {
        if (Array.isArray(params.members)) {
          this.members = new Map(params.members.map((m) => [m.id, { ...m }]));
          this._emitMemberList();
        } else if (params.truncated) {
          // A large room sends no list: fetch it (coalesced, see _refreshMembers).
          this._refreshMembers();
        }
        return;
      }
      case "layout.changed":
        this.layout = params.layout || null;
        this.emit(type, params);
        return;
      case "room.updated":
        if (params.room) this.roomSession = { ...(this.roomSession || {}), ...params.room };
        this.emit(type, params);
        return;
      case "room.ended":
        this.emit(type, params);
        if (!this._leaving) this._teardown("room_ended");
        return;
      case "room.left":
        // The server's word that this member left (removed, remove_at, room ended): end the session here.
        if (params.member_id && this.memberId && params.member_id !== this.memberId) return;
        if (this.active && !this._leaving) this._teardown(params.reason || "removed");
        return;
      case "media.dropped":
        if (params.member_id && params.member_id !== this.memberId) return;
        this._onMediaDropped(params).catch((err) => this._log("error", "media restart failed", err));
        return;
      case "member.reaction": {
        const member = this.members.get(params.member_id);
        this.emit(type, member ? { ...params, member } : params);
        return;
      }
      case "member.promoted":
      case "member.demoted": {
        const own = !params.member_id || !this.memberId || params.member_id === this.memberId;
        if (own) this._applyAuthorization(params, type === "member.promoted" ? "member" : "audience");
        this.emit(type, params);
        if (own && type === "member.promoted") this._queueMedia(() => this._onPromoted(), "promotion media failed");
        if (own && type === "member.demoted") this._queueMedia(() => this._onDemoted(), "demotion media failed");
        return;
      }
      case "webrtc.offer":
        this._queueMedia(() => this._onServerOffer(params), "renegotiation failed");
        return;
      default:
        this.emit(type, params, envelope);
    }
  }

  /**
   * Coalesce the `room.get_members` refreshes a large room's truncated `memberList.updated` asks for: at most one
   * request in flight; updates arriving meanwhile (or within `memberListRefreshInterval` ms of the last request)
   * are answered by one trailing request. Every completed request emits `memberList.updated {members}`.
   */
  _refreshMembers() {
    const r = this._membersRefresh;
    r.stale = true;
    if (r.inFlight || r.timer) return;
    const wait = Math.max(0, r.last + this.options.memberListRefreshInterval - Date.now());
    r.timer = setTimeout(() => {
      r.timer = null;
      if (!this._ws) return;
      r.stale = false;
      r.inFlight = true;
      r.last = Date.now();
      this.getMembers()
        .then(() => this._emitMemberList())
        .catch((err) => this._log("warn", "room.get_members failed", err.message))
        .finally(() => {
          r.inFlight = false;
          if (r.stale && this._ws) this._refreshMembers();
        });
    }, wait);
  }

  /** Take the `join_as` and `permissions` of `member.promoted` / `member.demoted` (`authorization` or top level). */
  _applyAuthorization(params, joinAs) {
    const auth = params.authorization || {};
    const permissions = auth.permissions ?? params.permissions;
    this.tokenPayload = {
      ...this.tokenPayload,
      join_as: auth.join_as || params.join_as || joinAs,
      permissions: Array.isArray(permissions) ? [...permissions] : joinAs === "audience" ? [] : undefined,
    };
    if (this.tokenPayload.permissions === undefined) delete this.tokenPayload.permissions;
  }

  /** Run the media step `fn` after the earlier ones (promotion, demotion, the server's offers). */
  _queueMedia(fn, failure) {
    this._mediaQueue = this._mediaQueue.then(fn).catch((err) => this._log("error", failure, err));
    return this._mediaQueue;
  }

  _applyRoomSession(rs) {
    if (!rs) return;
    this.roomSession = rs;
    this.roomSessionId = rs.room_session_id || rs.id || this.roomSessionId;
    this.roomId = rs.room_id ?? this.roomId;
    if (Array.isArray(rs.members)) {
      this.members = new Map(rs.members.map((m) => [m.id, { ...m }]));
    }
    if (rs.layout) this.layout = rs.layout;
    this.previewUrl = rs.preview_url || undefined;
  }

  /** Keep the sending tracks in step with the server's view of this member (mute from a moderator). */
  _syncLocalTracks(member) {
    if (typeof member.audio_muted === "boolean" && this.localAudioTrack) {
      this.localAudioTrack.enabled = !member.audio_muted;
    }
    if (typeof member.video_muted === "boolean" && this.localVideoTrack) {
      this.localVideoTrack.enabled = !member.video_muted;
    }
  }

  // ---------------------------------------------------------------- WebRTC

  async _openLocalMedia() {
    if (this.options.localStream) {
      this.localStream = this.options.localStream;
      return;
    }
    const { audio, video } = this.options;
    if (!audio && !video) {
      this.localStream = new MediaStream();
      return;
    }
    try {
      this.localStream = await navigator.mediaDevices.getUserMedia({ audio, video });
    } catch (err) {
      this._log("warn", "could not open camera/microphone; joining receive-only", err);
      this.emit("media.devices_unavailable", { error: err });
      this.localStream = new MediaStream();
    }
  }

  _createPeerConnection() {
    const pc = new RTCPeerConnection({ iceServers: this.options.iceServers, bundlePolicy: "max-bundle" });
    this.remoteStream = new MediaStream();
    pc.ontrack = (e) => {
      this.remoteStream.addTrack(e.track);
      e.track.onunmute = () => this._attachRemote();
      this._attachRemote();
    };
    pc.onconnectionstatechange = () => {
      const state = pc.connectionState;
      this._log("debug", "peer connection", state);
      if (state === "connected" && !this.mediaConnected) {
        this.mediaConnected = true;
        this.emit("media.connected");
      } else if ((state === "failed" || state === "disconnected") && this.mediaConnected) {
        this.mediaConnected = false;
        this.emit("media.disconnected");
      }
    };
    return pc;
  }

  /** Add the local tracks (sendrecv) and receive-only transceivers for what we do not send. */
  _addTransceivers(pc) {
    const receiveOnly = this.tokenPayload.join_as === "audience";
    for (const kind of ["audio", "video"]) {
      const track = receiveOnly ? null : this.localStream?.getTracks().find((t) => t.kind === kind);
      if (track) pc.addTransceiver(track, { direction: "sendrecv", streams: [this.localStream] });
      else pc.addTransceiver(kind, { direction: "recvonly" });
    }
  }

  async _createOffer(pc) {
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await iceGatheringComplete(pc, this.options.iceGatheringTimeout);
    return pc.localDescription.sdp;
  }

  _attachRemote() {
    if (!this.rootElement || !this.remoteStream) return;
    if (!this.videoElement) {
      const v = document.createElement("video");
      v.autoplay = true;
      v.playsInline = true;
      v.className = "parley-mixed-video";
      v.setAttribute("aria-label", "Room video");
      this.rootElement.appendChild(v);
      this.videoElement = v;
      if (this._speakerId && v.setSinkId) v.setSinkId(this._speakerId).catch(() => {});
    }
    if (this.videoElement.srcObject !== this.remoteStream) this.videoElement.srcObject = this.remoteStream;
    this.videoElement.play?.().catch(() => {});
  }

  async _onServerOffer({ sdp }) {
    const pc = this.peerConnection;
    if (!pc || !sdp) return;
    await pc.setRemoteDescription({ type: "offer", sdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    await iceGatheringComplete(pc, this.options.iceGatheringTimeout);
    await this._call("webrtc.answer", { sdp: pc.localDescription.sdp });
  }

  /**
   * The worker no longer carries our media (`media.dropped {reason}`): the member stays joined; start a fresh
   * peer connection with `webrtc.offer`. Emits `media.disconnected`, then `media.connected` or
   * `media.unavailable`.
   */
  async _onMediaDropped(params) {
    this.peerConnection?.close();
    this.peerConnection = null;
    if (this.mediaConnected) {
      this.mediaConnected = false;
      this.emit("media.disconnected", params);
    }
    if (!this.active || params.reason === "session_end") return;
    const pc = this._createPeerConnection();
    this.peerConnection = pc;
    this._addTransceivers(pc);
    try {
      const sdp = await this._createOffer(pc);
      const result = await this._call("webrtc.offer", { sdp }, { timeout: this.options.rpcTimeout + 15000 });
      if (result.sdp) await pc.setRemoteDescription({ type: "answer", sdp: result.sdp });
    } catch (err) {
      this._joinWithoutMedia(err);
    }
  }

  /** Renegotiate from this side (new track, ICE restart): `webrtc.offer {sdp}` → `{sdp}` answer. */
  async renegotiate({ iceRestart = false } = {}) {
    const pc = this.peerConnection;
    if (!pc) return;
    const offer = await pc.createOffer({ iceRestart });
    await pc.setLocalDescription(offer);
    await iceGatheringComplete(pc, this.options.iceGatheringTimeout);
    const result = await this._call("webrtc.offer", { sdp: pc.localDescription.sdp });
    if (result.sdp) await pc.setRemoteDescription({ type: "answer", sdp: result.sdp });
  }

  /**
   * Promoted to member: open the camera and microphone when nothing is being sent yet (an audience member joined
   * with none), put the tracks on the transceivers and make them `sendrecv`. The media worker's `webrtc.offer`
   * then carries the sending direction; when its offer was answered before the tracks were ready, this side
   * renegotiates with `webrtc.offer`. Emits `localMedia.updated {audio, video}` once the tracks are in place.
   */
  async _onPromoted() {
    if (!this.localStream || this.localStream.getTracks().length === 0) {
      const { audio, video } = this.options;
      const want = { audio: audio || true, video: video || true };
      try {
        this.localStream = await navigator.mediaDevices.getUserMedia(want);
      } catch (err) {
        try {
          this.localStream = await navigator.mediaDevices.getUserMedia({ audio: want.audio });
        } catch {
          this._log("warn", "promoted, but the camera and microphone are not available", err);
          this.emit("media.devices_unavailable", { error: err });
          this.localStream = new MediaStream();
        }
      }
      this._ownsLocalStream = true;
    }
    const me = this.member;
    if (me) this._syncLocalTracks(me);
    const pc = this.peerConnection;
    let attached = false;
    for (const tr of pc?.getTransceivers() || []) {
      const kind = tr.receiver.track?.kind;
      const track = this.localStream.getTracks().find((t) => t.kind === kind);
      if (track && !tr.sender.track) {
        await tr.sender.replaceTrack(track);
        tr.direction = "sendrecv";
        attached = true;
      }
    }
    this.emit("localMedia.updated", { audio: !!this.localAudioTrack, video: !!this.localVideoTrack });
    if (!attached) return;
    await this._applySenderConstraints().catch((err) => this._log("warn", "sender constraints failed", err));
    // The worker's own offer normally follows the promotion; only when none has made the tracks flow by then
    // (it was answered before they were attached) does this side offer.
    setTimeout(
      () =>
        this._queueMedia(async () => {
          const notSending = (tr) => tr.sender.track && !["sendrecv", "sendonly"].includes(tr.currentDirection);
          if (this.peerConnection !== pc || pc.signalingState !== "stable") return;
          if (pc.getTransceivers().some(notSending)) await this.renegotiate();
        }, "promotion renegotiation failed"),
      PROMOTION_OFFER_WAIT_MS,
    );
  }

  /**
   * Demoted to audience: stop sending (the transceivers go `recvonly`, the tracks this session opened are
   * stopped). Emits `localMedia.updated {audio: false, video: false}`.
   */
  async _onDemoted() {
    for (const tr of this.peerConnection?.getTransceivers() || []) {
      if (tr.sender.track) {
        await tr.sender.replaceTrack(null);
        tr.direction = "recvonly";
      }
    }
    this.localStream?.getTracks().forEach((t) => t.stop());
    this.localStream = new MediaStream();
    this._ownsLocalStream = true;
    this.emit("localMedia.updated", { audio: false, video: false });
  }

  // ---------------------------------------------------------------- join / leave / reconnect

  /**
   * Join the room: open the devices, connect, send `room.join {sdp, audio, video}` with the full offer and
   * apply the answer. Resolves with the `room.join` result. When the server has no media worker for the room
   * (`-32010 media_unavailable`) the member stays joined without media and `media.unavailable` is emitted.
   */
  async join() {
    if (this.active) return this.roomSession;
    this._leaving = false;
    this._joinedEmitted = false;
    await this._openLocalMedia();
    await this._connect();
    const pc = this._createPeerConnection();
    this.peerConnection = pc;
    this._addTransceivers(pc);
    const sdp = await this._createOffer(pc);
    const sending = this.tokenPayload.join_as !== "audience";
    const params = {
      sdp,
      audio: sending && !!this.localAudioTrack,
      video: sending && !!this.localVideoTrack,
    };
    let result;
    try {
      // The server waits for the media worker's answer for up to its own timeout; allow for it.
      result = await this._call("room.join", params, { timeout: this.options.rpcTimeout + 15000 });
    } catch (err) {
      // The member is joined without media when the server names it (in the error or a `room.joined` event).
      if (err.code === ErrorCodes.MEDIA_UNAVAILABLE && (err.data?.member_id || this.memberId)) {
        result = { member_id: this.memberId, room_session: this.roomSession, ...(err.data || {}), sdp: null };
        this._joinWithoutMedia(err);
      } else {
        this._teardown("join_failed", err);
        throw err;
      }
    }
    this.active = true;
    this.memberId = result.member_id || this.memberId;
    this._applyRoomSession(result.room_session);
    if (result.sdp) {
      await pc.setRemoteDescription({ type: "answer", sdp: result.sdp });
    } else if (this.peerConnection) {
      this._joinWithoutMedia(new RoomSessionError(ErrorCodes.MEDIA_UNAVAILABLE, "The server sent no media answer."));
    }
    this._syncLocalTracks(this.member || {});
    if (!this._joinedEmitted) {
      this._joinedEmitted = true;
      this.emit("room.joined", {
        room_session: this.roomSession,
        member_id: this.memberId,
        call_id: this.memberId,
      });
    }
    this._emitMemberList();
    return result;
  }

  _joinWithoutMedia(err) {
    this.peerConnection?.close();
    this.peerConnection = null;
    this._log("warn", "joined without media", err.message);
    this.emit("media.unavailable", { code: err.code, message: err.message, data: err.data });
  }

  _onSocketLost(e) {
    if (this._leaving || !this.active || !this.options.reconnect) {
      if (this.active && !this._leaving) this._teardown("connection_lost");
      return;
    }
    const deadline = Date.now() + this.options.reconnectGraceSeconds * 1000;
    this.emit("room.reconnecting", { code: e.code });
    this.emit("media.reconnecting");
    let delay = 250;
    const attempt = async () => {
      this._reconnectTimer = null;
      if (this._leaving || !this.active) return;
      try {
        await this._connect();
        const result = await this._call("room.join", {
          member_id: this.memberId,
          audio: !!this.localAudioTrack,
          video: !!this.localVideoTrack,
        });
        this._applyRoomSession(result.room_session);
        if (result.sdp && this.peerConnection) {
          await this.peerConnection.setRemoteDescription({ type: "answer", sdp: result.sdp }).catch(() => {});
        }
        const state = this.peerConnection?.connectionState;
        if (state === "failed" || state === "closed") await this.renegotiate({ iceRestart: true }).catch(() => {});
        this._log("info", "resumed member", this.memberId);
        this.emit("room.reconnected", { member_id: this.memberId });
        this._emitMemberList();
      } catch (err) {
        if (err.code === ErrorCodes.INVALID_TOKEN || Date.now() + delay > deadline || err.code === ErrorCodes.NOT_FOUND) {
          this._teardown("connection_lost", err);
          return;
        }
        if (this._ws) this._ws.close();
        delay = Math.min(delay * 2, 5000);
        this._reconnectTimer = setTimeout(attempt, delay);
      }
    };
    this._reconnectTimer = setTimeout(attempt, delay);
  }

  _teardown(reason, error = undefined) {
    const wasActive = this.active;
    this.active = false;
    this.mediaConnected = false;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    for (const s of [...this._screenShares, ...this._devices]) {
      s.active = false;
      s.localStream?.getTracks().forEach((t) => t.stop());
      s.peerConnection?.close();
    }
    this._screenShares = [];
    this._devices = [];
    clearTimeout(this._membersRefresh.timer);
    this._membersRefresh = { inFlight: false, stale: false, timer: null, last: 0 };
    this.peerConnection?.close();
    this.peerConnection = null;
    if (this._ownsLocalStream) this.localStream?.getTracks().forEach((t) => t.stop());
    if (this._ws) {
      const ws = this._ws;
      this._ws = null;
      try {
        ws.close(1000);
      } catch {
        /* already closed */
      }
    }
    this._failPending(new RoomSessionError(ErrorCodes.CONNECTION_CLOSED, "The room session ended."));
    if (this.videoElement) {
      this.videoElement.srcObject = null;
      this.videoElement.remove();
      this.videoElement = null;
    }
    if (wasActive) this.emit("room.left", { reason, error });
  }

  /** Leave the room (`room.leave`), close the peer connection and the socket. Emits `room.left`. */
  async leave() {
    if (!this.active) {
      this._teardown("left");
      return;
    }
    this._leaving = true;
    try {
      await this._call("room.leave", {}, { timeout: 3000 });
    } catch (err) {
      this._log("debug", "room.leave", err.message);
    }
    this._teardown("left");
  }

  /** Leave, then forget every listener. */
  async destroy() {
    await this.leave();
    this.removeAllListeners();
  }

  // ---------------------------------------------------------------- member controls

  _target(params) {
    return params && params.memberId ? { member_id: params.memberId } : {};
  }

  async audioMute(params = {}) {
    await this._call("member.audio_mute", this._target(params));
    if (!params.memberId && this.localAudioTrack) this.localAudioTrack.enabled = false;
  }
  async audioUnmute(params = {}) {
    await this._call("member.audio_unmute", this._target(params));
    if (!params.memberId && this.localAudioTrack) this.localAudioTrack.enabled = true;
  }
  async videoMute(params = {}) {
    await this._call("member.video_mute", this._target(params));
    if (!params.memberId && this.localVideoTrack) this.localVideoTrack.enabled = false;
  }
  async videoUnmute(params = {}) {
    await this._call("member.video_unmute", this._target(params));
    if (!params.memberId && this.localVideoTrack) this.localVideoTrack.enabled = true;
  }
  async deaf(params = {}) {
    await this._call("member.deaf", this._target(params));
  }
  async undeaf(params = {}) {
    await this._call("member.undeaf", this._target(params));
  }
  /** `volume`: dB, -50..50. */
  async setInputVolume({ memberId, volume } = {}) {
    await this._call("member.set_input_volume", { ...this._target({ memberId }), volume });
  }
  /** `volume`: dB, -50..50. */
  async setOutputVolume({ memberId, volume } = {}) {
    await this._call("member.set_output_volume", { ...this._target({ memberId }), volume });
  }
  /** `value`: 0 (least sensitive) .. 100. */
  async setInputSensitivity({ memberId, value } = {}) {
    await this._call("member.set_input_sensitivity", { ...this._target({ memberId }), value });
  }
  /** Resolves with `{members: [...]}` (wire member objects). */
  async getMembers() {
    const result = await this._call("room.get_members");
    if (Array.isArray(result.members)) {
      this.members = new Map(result.members.map((m) => [m.id, { ...m }]));
    }
    return result;
  }
  async removeMember({ memberId } = {}) {
    if (!memberId) throw new TypeError("removeMember needs memberId");
    await this._call("member.remove", { member_id: memberId });
  }
  async removeAllMembers() {
    await this._call("room.remove_all_members");
  }
  async setMemberPosition({ memberId, position } = {}) {
    await this._call("member.set_position", { ...this._target({ memberId }), position });
  }
  async promote({ memberId, joinAudioMuted, joinVideoMuted, meta, permissions } = {}) {
    const params = { member_id: memberId };
    if (joinAudioMuted !== undefined) params.join_audio_muted = joinAudioMuted;
    if (joinVideoMuted !== undefined) params.join_video_muted = joinVideoMuted;
    if (meta !== undefined) params.meta = meta;
    if (permissions !== undefined) params.permissions = permissions;
    await this._call("member.promote", params);
  }
  async demote({ memberId } = {}) {
    await this._call("member.demote", { member_id: memberId });
  }
  /** Raise (default) or lower a hand: `member.raise_hand` / `member.lower_hand {member_id?}`. */
  async setRaisedHand({ raised = true, memberId } = {}) {
    await this._call(raised ? "member.raise_hand" : "member.lower_hand", this._target({ memberId }));
  }
  /** Send a short reaction (an emoji) to everyone: `member.send_reaction {reaction}`; see `member.reaction`. */
  async sendReaction(reaction) {
    await this._call("member.send_reaction", { reaction });
  }

  // ---------------------------------------------------------------- meta

  async getMeta() {
    return this._call("room.get_meta");
  }
  async setMeta(meta) {
    await this._call("room.set_meta", { meta });
  }
  async updateMeta(meta) {
    await this._call("room.update_meta", { meta });
  }
  async deleteMeta(keys) {
    await this._call("room.delete_meta", { keys });
  }
  async getMemberMeta({ memberId } = {}) {
    return this._call("member.get_meta", this._target({ memberId }));
  }
  async setMemberMeta({ memberId, meta } = {}) {
    await this._call("member.set_meta", { ...this._target({ memberId }), meta });
  }
  async updateMemberMeta({ memberId, meta } = {}) {
    await this._call("member.update_meta", { ...this._target({ memberId }), meta });
  }
  async deleteMemberMeta({ memberId, keys } = {}) {
    await this._call("member.delete_meta", { ...this._target({ memberId }), keys });
  }

  // ---------------------------------------------------------------- room controls

  /** Resolves with `{layouts: [...]}`. */
  async getLayouts() {
    return this._call("room.list_available_layouts");
  }
  async setLayout({ name, positions } = {}) {
    const params = { name };
    if (positions) params.positions = positions;
    await this._call("room.set_layout", params);
  }
  /** `positions`: `{<member id or "self">: "auto" | "reserved-N" | "standard-N" | "off-canvas"}`. */
  async setPositions({ positions } = {}) {
    await this._call("room.set_positions", { positions });
  }
  async setHideVideoMuted(value) {
    await this._call("room.set_hide_video_muted", { value: !!value });
  }
  async hideVideoMuted() {
    return this.setHideVideoMuted(true);
  }
  async showVideoMuted() {
    return this.setHideVideoMuted(false);
  }
  async setPrioritizeHandraise(value) {
    await this._call("room.set_prioritize_handraise", { value: !!value });
  }
  async lock() {
    await this._call("room.lock");
  }
  async unlock() {
    await this._call("room.unlock");
  }

  // ---------------------------------------------------------------- egress

  /** Start recording the room's canvas and mix; resolves with a `RoomSessionRecording` (`pause/resume/stop`). */
  async startRecording() {
    const result = await this._call("room.recording.start");
    return new RoomSessionRecording(this, result.recording || {});
  }
  async getRecordings() {
    const result = await this._call("room.recording.list");
    return { recordings: (result.recordings || []).map((r) => new RoomSessionRecording(this, r)) };
  }
  /** Start an RTMP(S) output: `{url}`; resolves with a `RoomSessionStream` (`stop`). */
  async startStream({ url } = {}) {
    const result = await this._call("room.stream.start", { url });
    return new RoomSessionStream(this, result.stream || {});
  }
  async getStreams() {
    const result = await this._call("room.stream.list");
    return { streams: (result.streams || []).map((s) => new RoomSessionStream(this, s)) };
  }
  /**
   * Play a URL into the room: `{url, volume?, seekPosition? (ms), positions? (key "self" = the playback), layout?}`;
   * resolves with a `RoomSessionPlayback` once the media worker plays it.
   */
  async play({ url, volume, seekPosition, positions, layout } = {}) {
    const params = { url };
    if (volume !== undefined) params.volume = volume;
    if (seekPosition !== undefined) params.seek_position = seekPosition;
    if (positions) params.positions = positions;
    if (layout) params.layout = layout;
    const result = await this._call("room.playback.start", params);
    return new RoomSessionPlayback(this, result.playback || {});
  }
  async getPlaybacks() {
    const result = await this._call("room.playback.list");
    return { playbacks: (result.playbacks || []).map((p) => new RoomSessionPlayback(this, p)) };
  }

  // ---------------------------------------------------------------- screen share

  /**
   * Share the screen as a child member with its own peer connection (`room.screenshare.start {sdp, audio,
   * video, layout?, positions?}` → `{member_id, sdp}`). Resolves with a `RoomSessionScreenShare` (`leave()`).
   */
  async startScreenShare({ audio = false, video = true, layout, positions } = {}) {
    const stream = await navigator.mediaDevices.getDisplayMedia({ audio, video });
    const pc = new RTCPeerConnection({ iceServers: this.options.iceServers, bundlePolicy: "max-bundle" });
    for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    let share;
    try {
      const sdp = await this._createOffer(pc);
      const params = { sdp, audio: stream.getAudioTracks().length > 0, video: stream.getVideoTracks().length > 0 };
      if (layout) params.layout = layout;
      if (positions) params.positions = positions;
      const result = await this._call("room.screenshare.start", params, {
        timeout: this.options.rpcTimeout + 15000,
      });
      if (result.sdp) await pc.setRemoteDescription({ type: "answer", sdp: result.sdp });
      share = new RoomSessionScreenShare(this, { memberId: result.member_id, pc, stream });
    } catch (err) {
      stream.getTracks().forEach((t) => t.stop());
      pc.close();
      throw err;
    }
    this._screenShares.push(share);
    // The browser's own "Stop sharing" ends the track: leave with it.
    stream.getVideoTracks()[0]?.addEventListener("ended", () => share.leave());
    return share;
  }

  /**
   * Send another camera / microphone as a child member `type: "device"` with its own peer connection
   * (`room.device.add {sdp, audio, video}` → `{member_id, sdp}`), as `startScreenShare` does for the screen.
   * `constraints`: MediaTrackConstraints (e.g. `{deviceId}`). Resolves with a `RoomSessionDevice` (`leave()`).
   */
  async addCamera(constraints = {}) {
    return this._addDevice({ video: isEmpty(constraints) ? true : constraints });
  }
  async addMicrophone(constraints = {}) {
    return this._addDevice({ audio: isEmpty(constraints) ? true : constraints });
  }
  async _addDevice(mediaConstraints) {
    const stream = await navigator.mediaDevices.getUserMedia(mediaConstraints);
    const pc = new RTCPeerConnection({ iceServers: this.options.iceServers, bundlePolicy: "max-bundle" });
    for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    let device;
    try {
      const sdp = await this._createOffer(pc);
      const params = { sdp, audio: stream.getAudioTracks().length > 0, video: stream.getVideoTracks().length > 0 };
      const result = await this._call("room.device.add", params, { timeout: this.options.rpcTimeout + 15000 });
      if (result.sdp) await pc.setRemoteDescription({ type: "answer", sdp: result.sdp });
      device = new RoomSessionDevice(this, { memberId: result.member_id, pc, stream });
    } catch (err) {
      stream.getTracks().forEach((t) => t.stop());
      pc.close();
      throw err;
    }
    this._devices.push(device);
    stream.getTracks()[0]?.addEventListener("ended", () => device.leave());
    return device;
  }

  /**
   * Apply the media worker's `webrtc.sender_constraints {width, height, max_framerate}` (px, fps): the camera is
   * encoded at most at the size its tile is drawn at (`scaleResolutionDownBy` = max(1, min(captured width /
   * width, captured height / height)); never above what the camera captures) and at most at the canvas fps
   * (`maxFramerate`). Kept and applied again when the camera track changes (`updateCamera`, promotion).
   * Emits `media.sender_constraints {width, height, max_framerate, scaleResolutionDownBy}` once applied.
   */
  async _applySenderConstraints(constraints = this.senderConstraints) {
    const { width, height, max_framerate: maxFramerate } = constraints || {};
    if (!(width > 0 && height > 0)) return;
    this.senderConstraints = { width, height, max_framerate: maxFramerate };
    const track = this.localVideoTrack;
    const sender = track && this.peerConnection?.getSenders().find((s) => s.track === track);
    const captured = track?.getSettings() || {};
    if (!sender || !(captured.width > 0 && captured.height > 0)) return;
    const params = sender.getParameters();
    if (!params.encodings?.length) return;
    const scale = Math.max(1, Math.min(captured.width / width, captured.height / height));
    const encoding = params.encodings[0];
    encoding.scaleResolutionDownBy = Math.round(scale * 100) / 100;
    if (maxFramerate > 0) encoding.maxFramerate = maxFramerate;
    await sender.setParameters(params);
    this.emit("media.sender_constraints", {
      ...this.senderConstraints,
      scaleResolutionDownBy: encoding.scaleResolutionDownBy,
    });
  }

  // ---------------------------------------------------------------- devices

  async _replaceLocalTrack(kind, constraints) {
    const stream = await navigator.mediaDevices.getUserMedia({ [kind]: constraints });
    const track = stream.getTracks()[0];
    const old = this.localStream?.getTracks().find((t) => t.kind === kind);
    if (old) {
      track.enabled = old.enabled;
      this.localStream.removeTrack(old);
      old.stop();
    }
    if (!this.localStream) this.localStream = new MediaStream();
    this.localStream.addTrack(track);
    const sender = this.peerConnection?.getSenders().find((s) => s.track?.kind === kind || (!s.track && old));
    if (sender) await sender.replaceTrack(track);
    if (kind === "video" && sender) {
      await this._applySenderConstraints().catch((err) => this._log("warn", "sender constraints failed", err));
    }
    return track;
  }

  /** Switch the camera: `{deviceId}` or other MediaTrackConstraints. Emits `camera.updated`. */
  async updateCamera(constraints = {}) {
    const previous = { deviceId: this.cameraId, label: this.cameraLabel };
    const track = await this._replaceLocalTrack("video", constraints);
    this.emit("camera.updated", { previous, current: { deviceId: track.getSettings().deviceId, label: track.label } });
  }
  /** Switch the microphone: `{deviceId}` or other MediaTrackConstraints. Emits `microphone.updated`. */
  async updateMicrophone(constraints = {}) {
    const previous = { deviceId: this.microphoneId, label: this.microphoneLabel };
    const track = await this._replaceLocalTrack("audio", constraints);
    this.emit("microphone.updated", {
      previous,
      current: { deviceId: track.getSettings().deviceId, label: track.label },
    });
  }
  /** Play the room's audio on another output device: `{deviceId}` (needs `HTMLMediaElement.setSinkId`). */
  async updateSpeaker({ deviceId } = {}) {
    const previous = this._speakerId;
    this._speakerId = deviceId;
    if (this.videoElement?.setSinkId) await this.videoElement.setSinkId(deviceId);
    this.emit("speaker.updated", { previous: { deviceId: previous }, current: { deviceId } });
  }
}

export default RoomSession;

// Parley participant page: join form → pre-join (preview, mic level, devices, "Join") → meeting.
// Reads the room token from the URL fragment (`#token=…`, never sent to the server with the page request) and
// drives `RoomSession` from ./sdk.js. The token payload is decoded here for display only.

import { DEFAULT_PERMISSIONS, RoomSession, decodeTokenPayload, readPageConfig } from "./sdk.js";

const $ = (id) => document.getElementById(id);
const config = readPageConfig();
const screens = ["join-form-screen", "prejoin-screen", "meeting-screen", "left-screen"];

const state = {
  token: null,
  payload: null,
  previewStream: null,
  meter: null,
  session: null,
  recording: null,
  stream: null,
  screenShare: null,
  sources: [], // {device: RoomSessionDevice, kind: "video" | "audio", label}
  layouts: [],
  layoutsLoaded: false,
  recordingsLoaded: false,
};

function show(screenId) {
  for (const id of screens) $(id).hidden = id !== screenId;
  const heading = $(screenId).querySelector("h1, h2");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

function announce(text) {
  $("announcer").textContent = text;
}

function showError(id, message, timeoutMs = 0) {
  const el = $(id);
  el.textContent = message;
  el.hidden = !message;
  if (timeoutMs && message) setTimeout(() => (el.hidden = true), timeoutMs);
}

function setStatus(text) {
  $("connection-status").textContent = text;
}

function setPressed(button, pressed) {
  button.setAttribute("aria-pressed", pressed ? "true" : "false");
}

function tokenFromFragment() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  return params.get("token");
}

function can(permission) {
  if (state.session) return state.session.permissions.includes(permission);
  const perms = state.payload?.permissions;
  return (Array.isArray(perms) ? perms : DEFAULT_PERMISSIONS).includes(permission);
}

// ------------------------------------------------------------------ join form (no token)

function parseLinkOrToken(text) {
  const value = text.trim();
  const hashAt = value.indexOf("#");
  if (hashAt >= 0) {
    const params = new URLSearchParams(value.slice(hashAt + 1));
    return params.get("token");
  }
  return value;
}

function initJoinForm() {
  show("join-form-screen");
  $("join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = parseLinkOrToken($("join-link").value);
    const payload = token ? decodeTokenPayload(token) : null;
    if (!payload || !payload.room_name) {
      showError("join-form-error", "That is not a Parley room link or token.");
      return;
    }
    location.assign(`/r/${encodeURIComponent(payload.room_name)}/#token=${encodeURIComponent(token)}`);
    if (location.pathname === `/r/${encodeURIComponent(payload.room_name)}/`) location.reload();
  });
}

// ------------------------------------------------------------------ devices

async function fillDeviceSelects(selects, current = {}) {
  let devices = [];
  try {
    devices = await navigator.mediaDevices.enumerateDevices();
  } catch {
    return;
  }
  for (const select of selects) {
    const kind = select.dataset.kind;
    const list = devices.filter((d) => d.kind === kind);
    select.replaceChildren(
      ...list.map((d, i) => {
        const o = document.createElement("option");
        o.value = d.deviceId;
        o.textContent = d.label || `${kind} ${i + 1}`;
        return o;
      }),
    );
    select.disabled = list.length === 0;
    select.closest(".device-pickers")?.classList.toggle("has-" + kind, list.length > 0);
    if (current[kind]) select.value = current[kind];
    if (kind === "audiooutput" && !("setSinkId" in HTMLMediaElement.prototype)) select.disabled = true;
  }
}

function startLevelMeter(stream) {
  stopLevelMeter();
  const track = stream?.getAudioTracks()[0];
  if (!track) return;
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return;
  const ctx = new Ctx();
  const source = ctx.createMediaStreamSource(new MediaStream([track]));
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 512;
  source.connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  const meter = $("mic-level");
  const fill = meter.querySelector(".meter-fill");
  let raf = 0;
  const tick = () => {
    analyser.getFloatTimeDomainData(data);
    let sum = 0;
    for (const v of data) sum += v * v;
    const rmsDb = 10 * Math.log10(sum / data.length + 1e-12);
    const level = Math.max(0, Math.min(100, Math.round(((rmsDb + 60) / 60) * 100)));
    fill.style.width = `${level}%`;
    meter.setAttribute("aria-valuenow", String(level));
    raf = requestAnimationFrame(tick);
  };
  ctx.resume?.().catch(() => {});
  tick();
  state.meter = { ctx, stop: () => cancelAnimationFrame(raf) };
}

function stopLevelMeter() {
  if (!state.meter) return;
  state.meter.stop();
  state.meter.ctx.close().catch(() => {});
  state.meter = null;
}

async function openPreview() {
  const cam = $("camera-select").value;
  const mic = $("microphone-select").value;
  const constraints = {
    audio: mic ? { deviceId: { exact: mic } } : true,
    video: cam ? { deviceId: { exact: cam } } : true,
  };
  state.previewStream?.getTracks().forEach((t) => t.stop());
  state.previewStream = null;
  try {
    state.previewStream = await navigator.mediaDevices.getUserMedia(constraints);
  } catch (err) {
    try {
      state.previewStream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      showError("prejoin-error", `Camera and microphone are not available (${err.name}). You can still join.`);
    }
  }
  $("preview").srcObject = state.previewStream;
  const hasVideo = !!state.previewStream?.getVideoTracks().length;
  $("preview-off").hidden = hasVideo && $("join-with-video").checked;
  startLevelMeter(state.previewStream);
  await fillDeviceSelects(document.querySelectorAll("#prejoin-devices select"), {
    videoinput: state.previewStream?.getVideoTracks()[0]?.getSettings().deviceId,
    audioinput: state.previewStream?.getAudioTracks()[0]?.getSettings().deviceId,
  });
}

// ------------------------------------------------------------------ pre-join

async function initPrejoin() {
  const payload = state.payload;
  const roomLabel = payload.room_display_name || payload.room_name || config.room_name || "";
  $("prejoin-room-name").textContent = roomLabel;
  $("room-title").textContent = roomLabel;
  document.title = `${roomLabel} · Parley`;
  $("prejoin-user-name").textContent = payload.user_name || "a guest";
  const audience = payload.join_as === "audience";
  if (payload.exp && payload.exp * 1000 < Date.now()) {
    showError("prejoin-error", "This link has expired. Ask the host for a new one.");
  }
  show("prejoin-screen");
  // Join is enabled once the devices are settled, so the preview's stream is the one that is sent.
  $("join-button").addEventListener("click", join);
  if (audience) {
    $("join-with-audio").checked = false;
    $("join-with-video").checked = false;
    $("join-with-audio").disabled = true;
    $("join-with-video").disabled = true;
    $("prejoin-devices").hidden = true;
    $("preview-off").hidden = false;
    $("preview-off").textContent = "You will watch and listen as audience";
  } else {
    if (payload.join_audio_muted) $("join-with-audio").checked = false;
    if (payload.join_video_muted) $("join-with-video").checked = false;
    await openPreview();
  }
  for (const id of ["camera-select", "microphone-select"]) {
    $(id).addEventListener("change", async () => {
      $("join-button").disabled = true;
      await openPreview();
      $("join-button").disabled = false;
    });
  }
  $("speaker-select").addEventListener("change", () => {
    const el = $("preview");
    if (el.setSinkId) el.setSinkId($("speaker-select").value).catch(() => {});
  });
  $("join-with-video").addEventListener("change", () => {
    $("preview-off").hidden = $("join-with-video").checked && !!state.previewStream?.getVideoTracks().length;
  });
  $("join-button").disabled = false;
}

// ------------------------------------------------------------------ meeting

async function join() {
  const button = $("join-button");
  button.disabled = true;
  showError("prejoin-error", "");
  setStatus("Connecting…");
  stopLevelMeter();
  const audience = state.payload.join_as === "audience";
  const withAudio = $("join-with-audio").checked;
  const withVideo = $("join-with-video").checked;
  const session = new RoomSession({
    token: state.token,
    rootElement: $("stage"),
    audio: !audience,
    video: !audience,
    localStream: audience ? new MediaStream() : state.previewStream || undefined,
    speakerId: $("speaker-select").value || undefined,
    logLevel: config.log_level || "warn",
  });
  state.session = session;
  bindSessionEvents(session);
  try {
    await session.join();
  } catch (err) {
    setStatus("");
    button.disabled = false;
    state.session = null;
    showError("prejoin-error", `Could not join: ${err.message}`);
    return;
  }
  $("preview").srcObject = null;
  $("meeting-room-name").textContent = $("prejoin-room-name").textContent;
  show("meeting-screen");
  setStatus(session.peerConnection ? "Connected" : "Connected without media");
  announce("You joined the room.");
  if (!audience) {
    if (!withAudio && session.localAudioTrack) await session.audioMute().catch(() => {});
    if (!withVideo && session.localVideoTrack) await session.videoMute().catch(() => {});
  }
  setupControls(session);
  setupSources(session);
  setupModerator(session);
  renderMembers(session);
  await fillMeetingDevices(session);
  navigator.mediaDevices?.addEventListener?.("devicechange", () => fillMeetingDevices(session));
}

/** The meeting's pickers show the devices in use; the "add" pickers offer another device first. */
async function fillMeetingDevices(session) {
  await fillDeviceSelects(document.querySelectorAll("#devices-panel select"), {
    videoinput: session.cameraId,
    audioinput: session.microphoneId,
    audiooutput: session.speakerId,
  });
  for (const [id, inUse] of [
    ["add-camera-select", session.cameraId],
    ["add-microphone-select", session.microphoneId],
  ]) {
    const other = [...$(id).options].find((o) => o.value !== inUse);
    if (other) $(id).value = other.value;
  }
}

function bindSessionEvents(session) {
  session.on("memberList.updated", () => renderMembers(session));
  session.on("media.unavailable", () => {
    $("media-unavailable").hidden = false;
    setStatus("Connected without media");
  });
  session.on("media.connected", () => {
    $("media-unavailable").hidden = true;
    setStatus("Connected");
  });
  session.on("room.reconnecting", () => setStatus("Reconnecting…"));
  session.on("room.reconnected", () => setStatus("Connected"));
  session.on("member.joined", (e) => e.member?.id !== session.memberId && announce(`${e.member?.name} joined.`));
  session.on("member.left", (e) => {
    const m = e.member;
    if (m && m.id !== session.memberId && !m.parent_id) announce(`${m.name || "A member"} left.`);
    // One of this member's own sources ended by the server (a moderator removed it): the SDK has stopped it.
    if (state.screenShare && !state.screenShare.active) {
      state.screenShare = null;
      setPressed($("screenshare-button"), false);
    }
    if (state.sources.some((s) => !s.device.active)) renderSources(session);
  });
  session.on("member.reaction", (e) => showReaction(e));
  // This member's own permissions change mid-meeting (promoted to member, demoted to audience): the controls
  // follow at once, and again once the promoted member's camera and microphone are on the peer connection.
  for (const type of ["member.promoted", "member.demoted"]) {
    session.on(type, () => {
      if (!$("meeting-screen").hidden) applyPermissions(session);
      announce(type === "member.promoted" ? "You can now speak and show video." : "You are now in the audience.");
    });
  }
  session.on("localMedia.updated", () => !$("meeting-screen").hidden && applyPermissions(session));
  session.on("layout.changed", (e) => {
    if (e.layout?.name && $("layout-select").value !== e.layout.name) $("layout-select").value = e.layout.name;
    renderMembers(session); // the position pickers offer the new layout's slots
  });
  session.on("room.updated", () => syncRoomControls(session));
  session.on("recording.started", (e) => setRecording(session, e.recording || e));
  session.on("recording.updated", (e) => setRecording(session, e.recording || e));
  session.on("recording.ended", () => setRecording(session, null));
  session.on("stream.started", (e) => setStream(session, e.stream || e));
  session.on("stream.ended", () => setStream(session, null));
  session.on("room.left", (e) => {
    setStatus("");
    stopLevelMeter();
    state.screenShare = null;
    const reasons = {
      left: "",
      removed: "A moderator removed you from the room.",
      room_ended: "The room session ended.",
      token_rejected: "Your link is no longer valid.",
      connection_lost: "The connection to the room was lost.",
    };
    $("left-reason").textContent = reasons[e.reason] ?? "";
    show("left-screen");
  });
}

/** Show the controls the member's current permissions and media allow (after join and on every change). */
function applyPermissions(session) {
  syncControls(session);
  syncSources(session);
  syncModerator(session);
  renderMembers(session);
}

function isAudience(session) {
  return session.tokenPayload.join_as === "audience";
}

function memberName(m) {
  return m.name || "Guest";
}

const SOURCE_TYPES = new Set(["screen", "device"]);

/** "screen", "camera" or "microphone" for a child member (own sources are known; others' are inferred from
 * what they send: a microphone-only source joins video-muted). */
function sourceKind(m) {
  if (m.type === "screen") return "screen";
  const own = state.sources.find((s) => s.device.memberId === m.id);
  if (own) return own.kind === "video" ? "camera" : "microphone";
  return m.video_muted && !m.audio_muted ? "microphone" : "camera";
}

/** Members in list order: each member followed by its own sources (screen shares, extra devices). */
function orderedMembers(session) {
  const all = [...session.members.values()].filter((m) => m.type !== "playback" || m.visible !== false);
  const isChild = (m) => SOURCE_TYPES.has(m.type) && m.parent_id && session.members.has(m.parent_id);
  const ordered = [];
  for (const m of all) {
    if (isChild(m)) continue;
    ordered.push(m, ...all.filter((c) => isChild(c) && c.parent_id === m.id));
  }
  return ordered;
}

/** The positions a moderator may pick: automatic, the current layout's slots (or one standard slot per member
 * before any layout is known), off canvas. */
function positionOptions(session) {
  const fromLayout = (session.layout?.layers || [])
    .map((l) => l.position)
    .filter((p) => p && p !== "auto" && p !== "off-canvas");
  const onStage = [...session.members.values()].filter((m) => m.join_as !== "audience").length;
  const slots = fromLayout.length
    ? [...new Set(fromLayout)]
    : Array.from({ length: Math.max(onStage, 1) }, (_, i) => `standard-${i + 1}`);
  return ["auto", ...slots, "off-canvas"];
}

function positionLabel(position) {
  if (position === "auto") return "Automatic";
  if (position === "off-canvas") return "Off canvas";
  const [kind, n] = position.split("-");
  return `${kind === "reserved" ? "Reserved" : "Slot"} ${n}`;
}

function memberInfo(session, m) {
  const isSelf = m.id === session.memberId;
  const hand = !!(m.hand_raised ?? m.handraised);
  const info = document.createElement("span");
  info.className = "member-info";
  const name = document.createElement("span");
  name.className = "member-name";
  const indicators = document.createElement("span");
  indicators.className = "indicators";
  const add = (cls, text, label) => {
    const s = document.createElement("span");
    s.className = `indicator ${cls}`;
    s.textContent = text;
    s.setAttribute("role", "img");
    s.setAttribute("aria-label", label);
    s.title = label;
    indicators.append(s);
  };
  if (m.parent_id && SOURCE_TYPES.has(m.type)) {
    const parent = session.members.get(m.parent_id);
    const kind = sourceKind(m);
    name.textContent = `${parent ? memberName(parent) : memberName(m)} — ${kind}`;
    if (m.talking) add("talking", "🔊", "Talking");
    add(`source ${kind}`, { screen: "🖥", camera: "🎥", microphone: "🎙" }[kind], `Added ${kind}`);
  } else {
    name.textContent = memberName(m) + (isSelf ? " (you)" : "");
    if (m.talking) add("talking", "🔊", "Talking");
    if (m.audio_muted) add("audio-muted", "🔇", "Muted");
    if (m.video_muted) add("video-muted", "📷", "Camera off");
    if (hand) add("hand", "✋", "Hand raised");
    if (m.join_as === "audience") add("audience", "👂", "Audience");
  }
  info.append(name, indicators);
  return info;
}

function memberActions(session, m) {
  const isSelf = m.id === session.memberId;
  const isSource = !!m.parent_id && SOURCE_TYPES.has(m.type);
  const ownSource = isSource && m.parent_id === session.memberId;
  const hand = !!(m.hand_raised ?? m.handraised);
  const actions = document.createElement("span");
  actions.className = "member-actions";
  const label = isSource ? `${memberName(session.members.get(m.parent_id) || m)}'s ${sourceKind(m)}` : memberName(m);
  const guard = (fn) => fn().catch((err) => showError("meeting-error", err.message, 5000));
  const action = (control, text, fn) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "small";
    b.dataset.control = control;
    b.textContent = text;
    b.setAttribute("aria-label", `${text} ${label}`);
    b.addEventListener("click", () => guard(fn));
    actions.append(b);
  };
  if (!isSelf && !isSource) {
    if (!m.audio_muted && can("room.member.audio_mute")) {
      action("mute", "Mute", () => session.audioMute({ memberId: m.id }));
    }
    if (m.audio_muted && can("room.member.audio_unmute")) {
      action("unmute", "Unmute", () => session.audioUnmute({ memberId: m.id }));
    }
    if (hand && can("room.member.lowerhand")) {
      action("lower-hand", "Lower hand", () => session.setRaisedHand({ raised: false, memberId: m.id }));
    }
    if (m.join_as === "audience" && can("room.member.promote")) {
      action("promote", "Promote", () => session.promote({ memberId: m.id }));
    }
    if (m.join_as !== "audience" && m.type !== "playback" && can("room.member.demote")) {
      action("demote", "Move to audience", () => session.demote({ memberId: m.id }));
    }
  }
  if (ownSource) {
    const own = m.type === "screen" ? state.screenShare : state.sources.find((s) => s.device.memberId === m.id)?.device;
    if (own) action("stop", "Stop", () => stopSource(session, own));
  } else if (!isSelf && can("room.member.remove")) {
    action("remove", "Remove", () => session.removeMember({ memberId: m.id }));
  }
  const mayPlace = isSelf || ownSource ? can("room.self.set_position") : can("room.member.set_position");
  if (mayPlace && m.join_as !== "audience" && m.type !== "playback") {
    const select = document.createElement("select");
    select.className = "position";
    select.dataset.control = "position";
    select.setAttribute("aria-label", `Position of ${isSelf ? "yourself" : label}`);
    const options = positionOptions(session);
    const current = m.position || "auto";
    if (!options.includes(current)) options.splice(1, 0, current);
    select.append(
      ...options.map((p) => {
        const o = document.createElement("option");
        o.value = p;
        o.textContent = positionLabel(p);
        return o;
      }),
    );
    select.value = current;
    select.addEventListener("change", () =>
      guard(() => session.setMemberPosition({ memberId: isSelf ? undefined : m.id, position: select.value })),
    );
    actions.append(select);
  }
  return actions;
}

/** Whether a freshly built control does what the one on the page does (same kind, label and choices). */
function sameControl(a, b) {
  if (a.tagName !== b.tagName || a.dataset.control !== b.dataset.control) return false;
  if (a.getAttribute("aria-label") !== b.getAttribute("aria-label") || a.textContent !== b.textContent) return false;
  if (a.tagName !== "SELECT") return true;
  const choices = (select) => [...select.options].map((o) => o.value).join("\n");
  return a.value === b.value && choices(a) === choices(b);
}

/**
 * Bring a member's action group up to date with a freshly built one, keeping every control that did not change
 * as the same node, where it is: a control replaced or moved between mouse down and mouse up loses the click, so
 * a mute arriving while the user presses Remove must not touch Remove.
 */
function updateActions(li, fresh) {
  const group = li.querySelector(".member-actions");
  if (!fresh.childElementCount) {
    group?.remove();
    return;
  }
  if (!group) {
    li.append(fresh);
    return;
  }
  const current = new Map([...group.children].map((el) => [el.dataset.control, el]));
  const wanted = [...fresh.children].map((el) => {
    const kept = current.get(el.dataset.control);
    return kept && sameControl(kept, el) ? kept : el;
  });
  for (const el of [...group.children]) if (!wanted.includes(el)) el.remove();
  wanted.forEach((el, i) => {
    if (group.children[i] !== el) group.insertBefore(el, group.children[i] || null);
  });
}

/**
 * Render the member list in place: an item is rebuilt only where what it shows changed, and a control that had
 * the keyboard focus gets it back after its item is rebuilt (talking updates arrive many times a second).
 */
function renderMembers(session) {
  const list = $("member-list");
  const members = orderedMembers(session);
  $("member-count").textContent = `(${members.filter((m) => !m.parent_id).length})`;
  const active = document.activeElement;
  const focused =
    active && list.contains(active) ? [active.closest("li")?.dataset.memberId, active.dataset.control] : null;
  const existing = new Map([...list.children].map((li) => [li.dataset.memberId, li]));
  const permissions = session.permissions.join(",");
  const options = positionOptions(session).join(",");
  const items = members.map((m) => {
    const li = existing.get(m.id) || document.createElement("li");
    const hand = !!(m.hand_raised ?? m.handraised);
    const isSource = !!m.parent_id && SOURCE_TYPES.has(m.type);
    li.className = isSource ? "member source" : "member";
    li.dataset.memberId = m.id;
    li.dataset.talking = String(!!m.talking);
    li.dataset.audioMuted = String(!!m.audio_muted);
    li.dataset.videoMuted = String(!!m.video_muted);
    li.dataset.handRaised = String(hand);
    const parentName = isSource ? memberName(session.members.get(m.parent_id) || {}) : "";
    const infoKey = JSON.stringify([m.name, parentName, m.talking, m.audio_muted, m.video_muted, hand, m.join_as]);
    const ownSource = state.sources.some((s) => s.device.memberId === m.id) || state.screenShare?.memberId === m.id;
    const actionsKey = JSON.stringify([
      m.name,
      parentName,
      m.audio_muted,
      hand,
      m.position,
      m.join_as,
      ownSource,
      permissions,
      options,
    ]);
    if (li.dataset.infoKey !== infoKey) {
      li.querySelector(".member-info")?.remove();
      li.prepend(memberInfo(session, m));
      li.dataset.infoKey = infoKey;
    }
    if (li.dataset.actionsKey !== actionsKey) {
      updateActions(li, memberActions(session, m));
      li.dataset.actionsKey = actionsKey;
    }
    return li;
  });
  // Move only what is out of place: moving a node would take the keyboard focus away from it.
  items.forEach((li, i) => {
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  while (list.children.length > items.length) list.lastElementChild.remove();
  if (focused && !list.contains(document.activeElement)) {
    const item = [...list.children].find((li) => li.dataset.memberId === focused[0]);
    const target =
      (focused[1] && item?.querySelector(`[data-control="${focused[1]}"]`)) || item?.querySelector("button, select");
    target?.focus();
  }
  syncSelfControls(session);
}

function syncSelfControls(session) {
  const me = session.member;
  if (!me) return;
  const muted = !!me.audio_muted;
  const videoOff = !!me.video_muted;
  const hand = !!(me.hand_raised ?? me.handraised);
  setPressed($("mute-button"), muted);
  setPressed($("camera-button"), videoOff);
  setPressed($("hand-button"), hand);
  $("hand-button").textContent = hand ? "Lower hand" : "Raise hand";
}

/** The self controls this member may use now (audience members send nothing and raise no hand). */
function syncControls(session) {
  const audience = isAudience(session);
  $("mute-button").hidden = audience || !session.localAudioTrack;
  $("camera-button").hidden = audience || !session.localVideoTrack;
  $("screenshare-button").hidden =
    audience || !navigator.mediaDevices?.getDisplayMedia || !can("room.self.screenshare");
  $("hand-button").hidden = audience || !can("room.self.raisehand");
}

function setupControls(session) {
  const guard = (fn) => () => fn().catch((err) => showError("meeting-error", err.message, 5000));
  syncControls(session);
  $("mute-button").addEventListener(
    "click",
    guard(() => (session.member?.audio_muted ? session.audioUnmute() : session.audioMute())),
  );
  $("camera-button").addEventListener(
    "click",
    guard(() => (session.member?.video_muted ? session.videoUnmute() : session.videoMute())),
  );
  $("hand-button").addEventListener(
    "click",
    guard(() => {
      const raised = !!(session.member?.hand_raised ?? session.member?.handraised);
      return session.setRaisedHand({ raised: !raised });
    }),
  );
  $("screenshare-button").addEventListener(
    "click",
    guard(async () => {
      if (state.screenShare?.active) {
        await stopSource(session, state.screenShare);
      } else {
        state.screenShare = await session.startScreenShare();
        renderMembers(session);
      }
      setPressed($("screenshare-button"), !!state.screenShare?.active);
    }),
  );
  for (const b of document.querySelectorAll(".reaction")) {
    b.addEventListener(
      "click",
      guard(() => session.sendReaction(b.dataset.reaction)),
    );
  }
  $("leave-button").addEventListener("click", () => session.leave());
  $("rejoin-button").addEventListener("click", () => location.reload());
  $("meeting-camera-select").addEventListener(
    "change",
    guard(() => session.updateCamera({ deviceId: { exact: $("meeting-camera-select").value } })),
  );
  $("meeting-microphone-select").addEventListener(
    "change",
    guard(() => session.updateMicrophone({ deviceId: { exact: $("meeting-microphone-select").value } })),
  );
  $("meeting-speaker-select").addEventListener(
    "change",
    guard(() => session.updateSpeaker({ deviceId: $("meeting-speaker-select").value })),
  );
}

// ------------------------------------------------------------------ added sources (another camera / microphone)

function syncSources(session) {
  $("sources").hidden = isAudience(session) || !can("room.self.additional_source");
}

function setupSources(session) {
  syncSources(session);
  $("add-camera-button").addEventListener("click", () => addSource(session, "video"));
  $("add-microphone-button").addEventListener("click", () => addSource(session, "audio"));
}

async function addSource(session, kind) {
  const isVideo = kind === "video";
  const noun = isVideo ? "camera" : "microphone";
  const select = $(isVideo ? "add-camera-select" : "add-microphone-select");
  const button = $(isVideo ? "add-camera-button" : "add-microphone-button");
  const label = select.selectedOptions[0]?.textContent || noun;
  const constraints = select.value ? { deviceId: { exact: select.value } } : {};
  button.disabled = true;
  showError("sources-error", "");
  try {
    const device = isVideo ? await session.addCamera(constraints) : await session.addMicrophone(constraints);
    state.sources.push({ device, kind, label });
    renderSources(session);
    announce(`${label} added as another ${noun}.`);
  } catch (err) {
    showError("sources-error", `Could not add the ${noun}: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

async function stopSource(session, source) {
  await source.leave();
  if (source === state.screenShare) {
    state.screenShare = null;
    setPressed($("screenshare-button"), false);
  }
  renderSources(session);
}

function renderSources(session) {
  state.sources = state.sources.filter((s) => s.device.active);
  const items = state.sources.map((s) => {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = `${s.kind === "video" ? "Camera" : "Microphone"}: ${s.label}`;
    const stop = document.createElement("button");
    stop.type = "button";
    stop.className = "small";
    stop.textContent = "Stop";
    stop.setAttribute("aria-label", `Stop ${s.label}`);
    stop.addEventListener("click", () =>
      stopSource(session, s.device).catch((err) => showError("sources-error", err.message, 5000)),
    );
    li.append(name, stop);
    return li;
  });
  $("source-list").replaceChildren(...items);
  renderMembers(session);
}

function showReaction(e) {
  const reaction = e.reaction || e.params?.reaction;
  if (!reaction) return;
  const who = e.member?.name || "";
  const el = document.createElement("span");
  el.className = "reaction-bubble";
  el.textContent = reaction;
  el.title = who;
  el.setAttribute("aria-label", `${who} reacted ${reaction}`);
  $("reactions").append(el);
  setTimeout(() => el.remove(), 4000);
}

// ------------------------------------------------------------------ moderator controls

/** Show the moderator panel's rows this member's permissions allow; load what a newly shown row needs. */
function syncModerator(session) {
  const panel = $("moderator-panel");
  let any = false;
  for (const row of panel.querySelectorAll("[data-permission]")) {
    const ok = can(row.dataset.permission);
    row.hidden = !ok;
    any = any || ok;
  }
  panel.hidden = !any;
  const layouts = can("room.set_layout") && can("room.list_available_layouts");
  $("layout-select").closest(".row").hidden = !layouts;
  if (layouts && !state.layoutsLoaded) loadLayouts(session);
  if (can("room.recording") && !state.recordingsLoaded) {
    state.recordingsLoaded = true;
    session
      .getRecordings()
      .then(({ recordings }) => {
        const live = recordings.find((r) => ["recording", "paused"].includes(r.state || r.status));
        if (live) setRecording(session, live);
      })
      .catch(() => (state.recordingsLoaded = false));
  }
}

function loadLayouts(session) {
  state.layoutsLoaded = true;
  session
    .getLayouts()
      .then(({ layouts = [] }) => {
        const names = layouts.map((l) => (typeof l === "string" ? l : l.name));
        $("layout-select").replaceChildren(
          ...names.map((n) => {
            const o = document.createElement("option");
            o.value = n;
            o.textContent = n;
            return o;
          }),
        );
        const current = session.layout?.name || session.roomSession?.layout_name;
        if (current) $("layout-select").value = current;
      })
      .catch((err) => {
        state.layoutsLoaded = false;
        showError("moderator-error", err.message, 8000);
      });
}

/** Bind the moderator panel's controls (once; `syncModerator` shows the rows the permissions allow). */
function setupModerator(session) {
  const guard = (fn) => () =>
    fn()
      .then(() => showError("moderator-error", ""))
      .catch((err) => showError("moderator-error", err.message, 8000));
  syncModerator(session);
  $("layout-select").addEventListener(
    "change",
    guard(() => session.setLayout({ name: $("layout-select").value })),
  );
  $("lock-button").addEventListener(
    "click",
    guard(async () => {
      const locked = $("lock-button").getAttribute("aria-pressed") === "true";
      if (locked) await session.unlock();
      else await session.lock();
      setPressed($("lock-button"), !locked);
    }),
  );
  $("recording-button").addEventListener(
    "click",
    guard(async () => {
      if (state.recording) {
        await state.recording.stop();
        setRecording(session, null);
      } else {
        setRecording(session, await session.startRecording());
      }
    }),
  );
  $("recording-pause-button").addEventListener(
    "click",
    guard(async () => {
      if (!state.recording) return;
      if (state.recording.state === "paused") await state.recording.resume();
      else await state.recording.pause();
      setRecording(session, state.recording);
    }),
  );
  $("stream-form").addEventListener("submit", (e) => {
    e.preventDefault();
    guard(async () => {
      if (state.stream) {
        await state.stream.stop();
        setStream(session, null);
      } else {
        setStream(session, await session.startStream({ url: $("stream-url").value }));
      }
    })();
  });
  syncRoomControls(session);
}

function syncRoomControls(session) {
  const rs = session.roomSession || {};
  if (typeof rs.locked === "boolean") setPressed($("lock-button"), rs.locked);
}

function setRecording(session, recording) {
  const st = recording && (recording.state || recording.status);
  if (!recording || ["completed", "failed", "processing"].includes(st)) {
    state.recording = null;
  } else if (typeof recording.stop === "function") {
    state.recording = recording;
  } else if (state.recording && state.recording.id === recording.id) {
    Object.assign(state.recording, recording);
  } else {
    // Started elsewhere (an event payload): fetch the live object so that stop and pause work.
    session
      .getRecordings()
      .then(({ recordings }) => {
        const found = recordings.find((x) => x.id === recording.id);
        if (found) setRecording(session, found);
      })
      .catch(() => {});
    return;
  }
  const live = state.recording;
  $("recording-button").textContent = live ? "Stop recording" : "Start recording";
  setPressed($("recording-button"), !!live);
  $("recording-pause-button").hidden = !live;
  const paused = !!live && (live.state || live.status) === "paused";
  setPressed($("recording-pause-button"), paused);
  $("recording-pause-button").textContent = paused ? "Resume recording" : "Pause recording";
}

function setStream(session, stream) {
  if (stream && typeof stream.stop !== "function") {
    session
      .getStreams()
      .then(({ streams }) => {
        const found = streams.find((s) => s.id === stream.id);
        if (found) setStream(session, found);
      })
      .catch(() => {});
    return;
  }
  state.stream = stream;
  $("stream-button").textContent = stream ? "Stop stream" : "Start stream";
  setPressed($("stream-button"), !!stream);
  $("stream-url").disabled = !!stream;
}

// ------------------------------------------------------------------ start

function start() {
  state.token = tokenFromFragment();
  if (!state.token) {
    initJoinForm();
    return;
  }
  state.payload = decodeTokenPayload(state.token);
  if (!state.payload) {
    initJoinForm();
    showError("join-form-error", "The link's token cannot be read. Paste the full link again.");
    return;
  }
  initPrejoin();
}

window.addEventListener("hashchange", () => location.reload());
window.parleyApp = state;
start();

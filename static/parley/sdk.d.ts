// Types of Parley's browser SDK (static/parley/sdk.js). Wire objects (members, layouts, recordings…) keep the
// server's snake_case field names, as SignalWire's event payloads do.

/** `webrtc.sender_constraints`: the size (px) the member's camera is drawn at on the canvas, and the canvas fps. */
export interface SenderConstraints {
  width: number;
  height: number;
  max_framerate: number;
}

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "silent";
export type VideoPosition = "auto" | `reserved-${number}` | `standard-${number}` | "off-canvas" | "playback" | "full-screen";
export type VideoPositions = Record<string, VideoPosition>;

export declare const ErrorCodes: Readonly<{
  PARSE_ERROR: -32700;
  INVALID_REQUEST: -32600;
  METHOD_NOT_FOUND: -32601;
  INVALID_PARAMS: -32602;
  INVALID_TOKEN: -32001;
  PERMISSION_DENIED: -32003;
  NOT_FOUND: -32004;
  CONFLICT: -32009;
  MEDIA_UNAVAILABLE: -32010;
  RATE_LIMITED: -32029;
  TIMEOUT: -32098;
  CONNECTION_CLOSED: -32099;
}>;
export declare const DEFAULT_PERMISSIONS: readonly string[];
export declare const CLOSE_INVALID_TOKEN: 4001;

export declare class RoomSessionError extends Error {
  readonly name: "RoomSessionError";
  /** JSON-RPC error code (see `ErrorCodes`). */
  readonly code: number;
  /** Server details: `code` (machine name, e.g. "room_locked"), `permission`, `attribute`, `member_id`… */
  readonly data?: Record<string, unknown>;
  constructor(code: number, message: string, data?: Record<string, unknown>);
}

export interface PageConfig {
  ice_servers?: RTCIceServer[];
  ws_url?: string;
  reconnect_grace_seconds?: number;
  room_name?: string;
}
export declare function readPageConfig(doc?: Document): PageConfig;
/** Decode a room token's payload for display only (the server verifies tokens). */
export declare function decodeTokenPayload(token: string): Record<string, any> | null;
export declare function toCamel(name: string): string;

export interface RoomSessionOptions {
  /** Room token (`POST /api/video/room_tokens`). */
  token: string;
  /** Element the mixed `<video>` is appended to. */
  rootElement?: HTMLElement | null;
  audio?: boolean | MediaTrackConstraints;
  video?: boolean | MediaTrackConstraints;
  /** Default: the page config's `ice_servers` (the server's `PARLEY_ICE_SERVERS`), else `[]`. */
  iceServers?: RTCIceServer[];
  logLevel?: LogLevel;
  /** WebSocket URL of the signalling endpoint; default `ws(s)://<page host>/ws/video/`. */
  url?: string;
  speakerId?: string;
  /** Send this stream instead of opening the devices again (e.g. the pre-join preview). */
  localStream?: MediaStream;
  /** Milliseconds before an RPC rejects with `ErrorCodes.TIMEOUT` (default 10000). */
  rpcTimeout?: number;
  /** Milliseconds to wait for ICE gathering to complete before sending an offer (default 5000). */
  iceGatheringTimeout?: number;
  /** Reconnect the WebSocket and resume the member after a drop (default true). */
  reconnect?: boolean;
  reconnectGraceSeconds?: number;
  /**
   * Milliseconds between two `room.get_members` refreshes of a large room's list (a truncated
   * `memberList.updated`): at most one request in flight, a trailing one for updates meanwhile (default 1000).
   */
  memberListRefreshInterval?: number;
}

export interface StageEvent {
  room_session_id: string;
  room_id?: string | null;
  member_id: string;
  join_as: "member" | "audience";
  permissions: string[];
  authorization?: { join_as: "member" | "audience"; permissions: string[] };
}

export interface Member {
  id: string;
  room_session_id: string;
  room_id: string | null;
  name: string;
  type: "member" | "screen" | "device" | "playback";
  join_as: "member" | "audience";
  audio_muted: boolean;
  video_muted: boolean;
  deaf: boolean;
  visible: boolean;
  input_volume: number;
  output_volume: number;
  input_sensitivity: number;
  handraised: boolean;
  talking: boolean;
  position: string;
  meta: Record<string, unknown>;
  parent_id: string | null;
  updated?: string[];
}

export interface LayoutLayer {
  member_id?: string | null;
  x: number;
  y: number;
  width: number;
  height: number;
  layer_index: number;
  z_index: number;
  reservation?: string | null;
  position?: VideoPosition;
  playing_file?: boolean;
  visible?: boolean;
}
export interface Layout {
  name: string;
  room_session_id: string;
  room_id: string | null;
  layers: LayoutLayer[];
}

export interface RoomSessionSnapshot {
  id: string;
  room_session_id: string;
  room_id: string | null;
  name: string;
  display_name?: string;
  layout_name: string;
  hide_video_muted: boolean;
  locked: boolean;
  recording: boolean;
  meta: Record<string, unknown>;
  members?: Member[];
  [key: string]: unknown;
}

export interface JoinResult {
  member_id: string;
  room_session: RoomSessionSnapshot;
  sdp: string | null;
}

export declare class RoomSessionRecording {
  readonly id: string;
  state: "recording" | "paused" | "processing" | "completed" | "failed";
  started_at?: string | null;
  ended_at?: string | null;
  duration?: number | null;
  pause(): Promise<this>;
  resume(): Promise<this>;
  stop(): Promise<this>;
}
export declare class RoomSessionStream {
  readonly id: string;
  /** The RTMP URL with its key masked. */
  url: string;
  state: string;
  stop(): Promise<this>;
}
export declare class RoomSessionPlayback {
  readonly id: string;
  url: string;
  state: string;
  volume: number;
  position_ms: number;
  pause(): Promise<this>;
  resume(): Promise<this>;
  setVolume(volume: number): Promise<this>;
  /** `timecode`: milliseconds from the start. */
  seek(timecode: number): Promise<this>;
  stop(): Promise<this>;
}
export declare class RoomSessionScreenShare {
  readonly id: string;
  readonly memberId: string;
  readonly localStream: MediaStream;
  readonly peerConnection: RTCPeerConnection;
  active: boolean;
  leave(): Promise<void>;
}

/** An extra camera or microphone: a child member `type: "device"` with its own peer connection. */
export declare class RoomSessionDevice extends RoomSessionScreenShare {}

export interface MemberEvent {
  room_session_id: string;
  room_id: string | null;
  member: Member;
  reason?: string;
}

export interface RoomSessionEvents {
  "room.joined": (e: { room_session: RoomSessionSnapshot; member_id: string; call_id?: string }) => void;
  "room.left": (e: { reason: string; error?: RoomSessionError }) => void;
  "room.updated": (e: { room_session_id: string; room_id: string | null; room: RoomSessionSnapshot & { updated: string[] } }) => void;
  "room.ended": (e: { room_session_id: string; room_id: string | null }) => void;
  "room.reconnecting": (e: { code: number }) => void;
  "room.reconnected": (e: { member_id: string }) => void;
  "room.audience_count": (e: { room_session_id: string; room_id: string | null; total: number }) => void;
  "member.joined": (e: MemberEvent) => void;
  "member.left": (e: MemberEvent) => void;
  "member.updated": (e: MemberEvent) => void;
  "member.talking": (e: MemberEvent) => void;
  "member.talking.started": (e: MemberEvent) => void;
  "member.talking.ended": (e: MemberEvent) => void;
  "member.reaction": (e: { room_session_id: string; member_id: string; reaction: string; member?: Member }) => void;
  /** To this member only; `permissions` and `join_as` are already in effect (`session.permissions`) when emitted. */
  "member.promoted": (e: StageEvent) => void;
  /** To this member only; the SDK stops sending (transceivers `recvonly`, local tracks stopped). */
  "member.demoted": (e: StageEvent) => void;
  /** The local tracks changed after a promotion (camera and microphone opened) or a demotion (none). */
  "localMedia.updated": (e: { audio: boolean; video: boolean }) => void;
  "memberList.updated": (e: { members: Member[] }) => void;
  "layout.changed": (e: { room_session_id: string; room_id: string | null; layout: Layout }) => void;
  "recording.started": (e: { recording: Record<string, unknown> }) => void;
  "recording.updated": (e: { recording: Record<string, unknown> }) => void;
  "recording.ended": (e: { recording: Record<string, unknown> }) => void;
  "stream.started": (e: { stream: Record<string, unknown> }) => void;
  "stream.ended": (e: { stream: Record<string, unknown> }) => void;
  "playback.started": (e: { playback: Record<string, unknown> }) => void;
  "playback.updated": (e: { playback: Record<string, unknown> }) => void;
  "playback.ended": (e: { playback: Record<string, unknown> }) => void;
  "media.connected": () => void;
  "media.disconnected": (e?: { reason?: string }) => void;
  "media.reconnecting": () => void;
  "media.unavailable": (e: { code: number; message: string; data?: Record<string, unknown> }) => void;
  "media.devices_unavailable": (e: { error: unknown }) => void;
  /** The camera sender now follows the media worker's `webrtc.sender_constraints`. */
  "media.sender_constraints": (e: SenderConstraints & { scaleResolutionDownBy: number }) => void;
  "camera.updated": (e: { previous: { deviceId: string | null; label: string | null }; current: { deviceId: string; label: string } }) => void;
  "microphone.updated": (e: { previous: { deviceId: string | null; label: string | null }; current: { deviceId: string; label: string } }) => void;
  "speaker.updated": (e: { previous: { deviceId: string | null }; current: { deviceId: string } }) => void;
  [perProp: `member.updated.${string}`]: (e: MemberEvent) => void;
}

type MemberTarget = { memberId?: string };

export declare class RoomSession {
  constructor(opts: RoomSessionOptions);
  readonly options: Required<Pick<RoomSessionOptions, "iceServers" | "url">> & RoomSessionOptions;
  readonly token: string;
  readonly tokenPayload: Record<string, any>;
  readonly rootElement: HTMLElement | null;
  readonly roomSessionId: string | null;
  readonly roomId: string | null;
  readonly memberId: string | null;
  readonly roomSession: RoomSessionSnapshot | null;
  readonly active: boolean;
  readonly mediaConnected: boolean;
  readonly localStream: MediaStream | undefined;
  readonly remoteStream: MediaStream | undefined;
  readonly peerConnection: RTCPeerConnection | null;
  /** The media worker's last `webrtc.sender_constraints`: the camera's drawn size (px) and the canvas fps. */
  readonly senderConstraints: SenderConstraints | null;
  readonly videoElement: HTMLVideoElement | null;
  readonly members: Map<string, Member>;
  readonly member: Member | null;
  readonly layout: Layout | null;
  readonly previewUrl?: string;
  readonly localAudioTrack: MediaStreamTrack | null;
  readonly localVideoTrack: MediaStreamTrack | null;
  readonly cameraId: string | null;
  readonly cameraLabel: string | null;
  readonly microphoneId: string | null;
  readonly microphoneLabel: string | null;
  readonly speakerId: string | null;
  readonly screenShareList: RoomSessionScreenShare[];
  readonly deviceList: RoomSessionDevice[];
  /** The token's permissions (display only; the server checks every call). */
  readonly permissions: string[];

  on<K extends keyof RoomSessionEvents>(event: K, handler: RoomSessionEvents[K]): this;
  once<K extends keyof RoomSessionEvents>(event: K, handler: RoomSessionEvents[K]): this;
  off<K extends keyof RoomSessionEvents>(event: K, handler?: RoomSessionEvents[K]): this;
  removeAllListeners(): this;

  join(): Promise<JoinResult>;
  leave(): Promise<void>;
  destroy(): Promise<void>;
  renegotiate(opts?: { iceRestart?: boolean }): Promise<void>;

  audioMute(params?: MemberTarget): Promise<void>;
  audioUnmute(params?: MemberTarget): Promise<void>;
  videoMute(params?: MemberTarget): Promise<void>;
  videoUnmute(params?: MemberTarget): Promise<void>;
  deaf(params?: MemberTarget): Promise<void>;
  undeaf(params?: MemberTarget): Promise<void>;
  /** `volume`: dB, -50..50. */
  setInputVolume(params: MemberTarget & { volume: number }): Promise<void>;
  setOutputVolume(params: MemberTarget & { volume: number }): Promise<void>;
  /** `value`: 0..100. */
  setInputSensitivity(params: MemberTarget & { value: number }): Promise<void>;
  getMembers(): Promise<{ members: Member[] }>;
  removeMember(params: { memberId: string }): Promise<void>;
  removeAllMembers(): Promise<void>;
  setMemberPosition(params: MemberTarget & { position: VideoPosition }): Promise<void>;
  promote(params: { memberId: string; joinAudioMuted?: boolean; joinVideoMuted?: boolean; meta?: Record<string, unknown>; permissions?: string[] }): Promise<void>;
  demote(params: { memberId: string }): Promise<void>;
  setRaisedHand(params?: MemberTarget & { raised?: boolean }): Promise<void>;
  sendReaction(reaction: string): Promise<void>;

  getMeta(): Promise<{ meta: Record<string, unknown> }>;
  setMeta(meta: Record<string, unknown>): Promise<void>;
  updateMeta(meta: Record<string, unknown>): Promise<void>;
  deleteMeta(keys: string[]): Promise<void>;
  getMemberMeta(params?: MemberTarget): Promise<{ meta: Record<string, unknown> }>;
  setMemberMeta(params: MemberTarget & { meta: Record<string, unknown> }): Promise<void>;
  updateMemberMeta(params: MemberTarget & { meta: Record<string, unknown> }): Promise<void>;
  deleteMemberMeta(params: MemberTarget & { keys: string[] }): Promise<void>;

  getLayouts(): Promise<{ layouts: Array<{ name: string } | string> }>;
  setLayout(params: { name: string; positions?: VideoPositions }): Promise<void>;
  setPositions(params: { positions: VideoPositions }): Promise<void>;
  setHideVideoMuted(value: boolean): Promise<void>;
  hideVideoMuted(): Promise<void>;
  showVideoMuted(): Promise<void>;
  setPrioritizeHandraise(value: boolean): Promise<void>;
  lock(): Promise<void>;
  unlock(): Promise<void>;

  startRecording(): Promise<RoomSessionRecording>;
  getRecordings(): Promise<{ recordings: RoomSessionRecording[] }>;
  startStream(params: { url: string }): Promise<RoomSessionStream>;
  getStreams(): Promise<{ streams: RoomSessionStream[] }>;
  play(params: {
    url: string;
    volume?: number;
    seekPosition?: number;
    positions?: VideoPositions;
    layout?: string;
  }): Promise<RoomSessionPlayback>;
  getPlaybacks(): Promise<{ playbacks: RoomSessionPlayback[] }>;

  startScreenShare(opts?: { audio?: boolean; video?: boolean | MediaTrackConstraints; layout?: string; positions?: VideoPositions }): Promise<RoomSessionScreenShare>;
  /** `room.device.add` with another camera (`{deviceId}` or other constraints); `leave()` ends it. */
  addCamera(constraints?: MediaTrackConstraints): Promise<RoomSessionDevice>;
  /** `room.device.add` with another microphone; `leave()` ends it. */
  addMicrophone(constraints?: MediaTrackConstraints): Promise<RoomSessionDevice>;
  updateCamera(constraints?: MediaTrackConstraints): Promise<void>;
  updateMicrophone(constraints?: MediaTrackConstraints): Promise<void>;
  updateSpeaker(params: { deviceId: string }): Promise<void>;
}

export default RoomSession;

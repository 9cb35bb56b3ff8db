"""CPU of sending one encoded 720p canvas frame to one member: aiortc's per-sender path vs the shared packetization.

    .venv/bin/python bench/rtpsend.py [--frames 300] [--members 9]

Encodes ``--frames`` canvas frames (1280x720, moving synthetic content, Parley's libx264 settings at the 720p
bitrate, 1.8 Mb/s) and then, per frame and member, times what the event loop does before the DTLS transport:

- ``aiortc``: what ``RTCRtpSender._run_rtp`` does with a pre-encoded ``av.Packet``: ``H264Encoder.pack`` (Annex-B
  split, FU-A/STAP-A), an ``RtpPacket`` per payload with ``mid`` and ``abs-send-time`` extensions, ``serialize``;
- ``shared``: ``media.worker.rtpsend``: one ``SharedPacketizer.pack`` per frame for all members (counted once per
  frame, divided among ``--members``), then per member the header, extension block and join per payload;

both followed by the SRTP protect every sender does (libsrtp, AES-128-CM/HMAC-SHA1-80). Process CPU time in µs
per frame per member (median of 5 passes), and what that is per member per second at 30 fps.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

import numpy as np  # noqa: E402
from aiortc import clock  # noqa: E402
from aiortc.codecs.h264 import H264Encoder  # noqa: E402
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters  # noqa: E402
from aiortc.rtp import HeaderExtensionsMap, RtpPacket, pack_header_extensions  # noqa: E402
from pylibsrtp import Policy, Session  # noqa: E402

from media.worker.encoder import QUALITY_BITRATE_BPS, SharedVideoEncoder  # noqa: E402
from media.worker.rtpsend import _HEADER, SharedPacketizer  # noqa: E402

FPS = 30


def canvas_packets(frames: int) -> list:
    import av

    encoder = SharedVideoEncoder(1280, 720, fps=FPS, bitrate_bps=QUALITY_BITRATE_BPS["720p"])
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, (720 + 64, 1280 + 64, 3), dtype=np.uint8)
    packets = []
    for i in range(frames):
        image = np.ascontiguousarray(base[i % 64 : i % 64 + 720, (2 * i) % 64 : (2 * i) % 64 + 1280])
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        packets += encoder.encode(frame, pts=i * 3000, keyframe=i == 0)
    return packets


def srtp_session() -> Session:
    key = bytes(range(30))
    return Session(
        Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80)
    )


def extensions_map() -> HeaderExtensionsMap:
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
                RTCRtpHeaderExtensionParameters(id=2, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
            ]
        )
    )
    return extensions


def aiortc_path(packets, members: int) -> float:
    extensions = extensions_map()
    sessions = [srtp_session() for _ in range(members)]
    packers = [H264Encoder() for _ in range(members)]
    sequence = [0] * members
    started = time.process_time()
    for packet in packets:
        for member in range(members):
            payloads, timestamp = packers[member].pack(packet)
            for i, payload in enumerate(payloads):
                rtp = RtpPacket(payload_type=102, sequence_number=sequence[member], timestamp=timestamp)
                sequence[member] += 1
                rtp.ssrc = 1234 + member
                rtp.payload = payload
                rtp.marker = 1 if i == len(payloads) - 1 else 0
                rtp.extensions.abs_send_time = (clock.current_ntp_time() >> 14) & 0x00FFFFFF
                rtp.extensions.mid = "0"
                sessions[member].protect(rtp.serialize(extensions))
    return (time.process_time() - started) / (len(packets) * members)


def shared_path(packets, members: int) -> float:
    sessions = [srtp_session() for _ in range(members)]
    packetizer = SharedPacketizer("h264")
    sequence = [0] * members
    started = time.process_time()
    for packet in packets:
        frame = packetizer.pack(packet)
        for member in range(members):
            ast = (clock.current_ntp_time() >> 14) & 0x00FFFFFF
            profile, value = pack_header_extensions([(1, b"0"), (2, ast.to_bytes(3, "big"))])
            block = profile.to_bytes(2, "big") + (len(value) >> 2).to_bytes(2, "big") + value
            last = len(frame.payloads) - 1
            for i, payload in enumerate(frame.payloads):
                marker = 0x80 if i == last else 0
                header = _HEADER.pack(0x90, marker | 102, sequence[member], frame.timestamp, 1234 + member)
                sequence[member] += 1
                sessions[member].protect(b"".join((header, block, payload)))
    return (time.process_time() - started) / (len(packets) * members)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--members", type=int, default=9)
    args = parser.parse_args()
    packets = canvas_packets(args.frames)
    sizes = [len(bytes(p)) for p in packets]
    payloads = sum(len(H264Encoder().pack(p)[0]) for p in packets) / len(packets)
    print(
        f"{len(packets)} canvas packets, mean {statistics.mean(sizes) / 1000:.1f} kB, {payloads:.1f} RTP payloads each"
    )
    results = {}
    for name, path in (("aiortc", aiortc_path), ("shared", shared_path)):
        runs = [path(packets, args.members) * 1e6 for _ in range(5)]
        results[name] = statistics.median(runs)
        print(
            f"{name}: {results[name]:.1f} µs per frame per member (runs {min(runs):.1f}–{max(runs):.1f}), "
            f"{results[name] * FPS / 1e6:.4f} CPU-s/s per member at {FPS} fps"
        )
    print(f"shared / aiortc = {results['shared'] / results['aiortc']:.2f}")


if __name__ == "__main__":
    main()

"""A recording cut anywhere — by a full disk or a crash — keeps every complete fragment: FFmpeg does not open a
fragmented MP4 cut inside a ``moof`` at all, so the cut file is trimmed (a failed recorder) or read up to its last
complete fragment (finalisation). The files are real recordings of a memberless room."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import pytest
from django.conf import settings
from django.core.files.storage import default_storage

from media.egress.mux import complete_fragments_size, trim_to_complete_fragments
from media.egress.services import recordings_recover_orphans
from media.tests.egress.helpers import decoded_video_frames, ffprobe, record_then_kill
from rooms.models import Recording
from rooms.tests.factories import RoomSessionFactory

pytestmark = pytest.mark.media

FPS = 15  # record_child's room


def top_level_boxes(data: bytes) -> list[tuple[int, bytes, int]]:
    """``(offset, type, size)`` of the complete top-level boxes of ``data`` (32-bit sizes, as the recorder writes)."""
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, box_type = struct.unpack(">I4s", data[offset : offset + 8])
        if size < 8 or offset + size > len(data):
            break
        boxes.append((offset, box_type, size))
        offset += size
    return boxes


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> bytes:
    """The bytes of a real recording up to its last complete fragment: ftyp, moov, then 1 s fragments (moof +
    mdat) holding at least 4 s of video — 6 s recorded, less a fragment the kill may have cut."""
    path = tmp_path_factory.mktemp("recorded") / "recording.mp4"
    record_then_kill(path, min_frames=FPS * 6)
    data = path.read_bytes()
    boxes = top_level_boxes(data)
    assert [b[1] for b in boxes[:3]] == [b"ftyp", b"moov", b"moof"], boxes[:3]
    return data[: boxes[-1][0] + boxes[-1][2]]


def cut_points(data: bytes) -> dict[str, tuple[int, int]]:
    """Where a cut may fall in the last fragment → ``(cut offset, expected kept size)``."""
    boxes = top_level_boxes(data)
    (moof, moof_type, moof_size), (mdat, mdat_type, mdat_size) = boxes[-2], boxes[-1]
    assert (moof_type, mdat_type) == (b"moof", b"mdat") and mdat_size > 9
    return {
        "in the moof's box header": (moof + 3, moof),
        "just after the moof's box header": (moof + 9, moof),
        "in the middle of the moof": (moof + moof_size // 2, moof),
        "between the moof and its mdat": (mdat, moof),
        "in the mdat": (mdat + mdat_size // 2, moof),
        "after the last complete fragment": (len(data), len(data)),
    }


@pytest.mark.parametrize(
    "where",
    [
        "in the moof's box header",
        "just after the moof's box header",
        "in the middle of the moof",
        "between the moof and its mdat",
        "in the mdat",
        "after the last complete fragment",
    ],
)
def test_the_complete_part_ends_at_the_last_complete_fragment(recorded, tmp_path, where):
    cut, expected = cut_points(recorded)[where]
    path = tmp_path / "cut.mp4"
    path.write_bytes(recorded[:cut])
    assert complete_fragments_size(path) == expected
    assert trim_to_complete_fragments(path) == cut - expected
    assert path.stat().st_size == expected
    # The trimmed file decodes, every frame of its complete fragments.
    assert decoded_video_frames(path) >= FPS * 3


def cuts_ffmpeg_refuses(data: bytes, scratch: Path) -> list[int]:
    """Cuts inside the last ``moof`` of ``data`` (every 4 bytes) after which FFmpeg does not open the file."""
    moof, _, moof_size = top_level_boxes(data)[-2]
    refused = []
    for cut in range(moof + 8, moof + moof_size, 4):
        scratch.write_bytes(data[:cut])
        try:
            av.open(str(scratch)).close()
        except (av.error.InvalidDataError, av.error.EOFError):
            refused.append(cut)
    return refused


def test_files_cut_inside_a_moof_that_do_not_open_open_once_trimmed(recorded, tmp_path):
    path = tmp_path / "cut.mp4"
    # Where the cut falls decides whether FFmpeg opens the file at all ("error reading header").
    unopenable = cuts_ffmpeg_refuses(recorded, path)
    assert unopenable, "every cut inside the last moof opened: nothing here needs the trim"
    for cut in unopenable[:: max(1, len(unopenable) // 8)]:
        path.write_bytes(recorded[:cut])
        trim_to_complete_fragments(path)
        assert decoded_video_frames(path) >= FPS * 3, cut


def test_sixty_four_bit_and_to_the_end_sizes(tmp_path):
    ftyp = struct.pack(">I4s", 16, b"ftyp") + b"iso5\x00\x00\x02\x00"
    large_mdat = struct.pack(">I4sQ", 1, b"mdat", 16 + 40) + b"\x00" * 40
    moof = struct.pack(">I4s", 24, b"moof") + b"\x00" * 16
    path = tmp_path / "boxes.mp4"
    # A 64-bit size box is complete; the moof after it is complete but its mdat never came.
    path.write_bytes(ftyp + large_mdat + moof)
    assert complete_fragments_size(path) == len(ftyp + large_mdat)
    # A 64-bit header cut before its largesize, and a box whose size runs past the end: neither is complete.
    path.write_bytes(ftyp + large_mdat[:12])
    assert complete_fragments_size(path) == len(ftyp)
    path.write_bytes(ftyp + large_mdat[:-1])
    assert complete_fragments_size(path) == len(ftyp)
    # Size 0: the box runs to the end of the file.
    path.write_bytes(ftyp + struct.pack(">I4s", 0, b"mdat") + b"\x00" * 10)
    assert complete_fragments_size(path) == len(ftyp) + 18
    # A size smaller than its own header is garbage: the walk stops before it.
    path.write_bytes(ftyp + struct.pack(">I4s", 4, b"free") + b"\x00" * 40)
    assert complete_fragments_size(path) == len(ftyp)
    path.write_bytes(b"")
    assert complete_fragments_size(path) == 0


@pytest.mark.django_db
def test_the_orphan_sweep_completes_a_recording_ffmpeg_does_not_open(recorded, tmp_path):
    session = RoomSessionFactory(quality="360p", fps=FPS)
    recording = Recording.objects.create(project_id=session.project_id, room_session=session)
    path = Path(settings.PARLEY_DATA_DIR) / "recordings" / f"{recording.id}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(recorded[: cuts_ffmpeg_refuses(recorded, tmp_path / "scratch.mp4")[0]])
    Recording.objects.filter(id=recording.id).update(working_path=str(path))

    assert recordings_recover_orphans(stale_after_seconds=0) == [str(recording.id)]
    recording.refresh_from_db()
    assert recording.status == Recording.Status.COMPLETED, recording.failure_reason
    assert recording.duration >= 3.0
    probe = ffprobe(default_storage.path(recording.storage_name))
    assert {s["codec_name"] for s in probe["streams"]} == {"h264", "aac"}
    assert not path.exists()  # the working file goes once the recording is stored

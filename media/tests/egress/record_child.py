"""A process that records a memberless room (the canvas background and silence) to ``argv[1]`` until it is
killed: ``python -m media.tests.egress.record_child <path>``. Prints ``recording`` once the file has data."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid


async def main(path: str) -> None:
    from media.egress.hub import RoomEgressHub
    from media.egress.recording import Recorder
    from media.worker.room import RoomMixer

    room = RoomMixer({"room_session_id": str(uuid.uuid4()), "quality": "360p", "fps": 15}, emit_events=False)
    room.start()
    recorder = Recorder(recording_id="child", hub=RoomEgressHub(room), path=path)
    recorder.start()
    while not os.path.exists(path) or os.path.getsize(path) < 2000:
        await asyncio.sleep(0.05)
    print("recording", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "parley.settings")
    import django

    django.setup()
    asyncio.run(main(sys.argv[1]))

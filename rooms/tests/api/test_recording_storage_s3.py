"""Recordings in S3 storage (django-storages) against a real S3-compatible HTTP server on loopback (moto's server
mode): finalisation uploads the faststart MP4 and the poster, the signed ``uri`` downloads the object back (it
decodes), and deleting the recording removes the objects. Also: ``PARLEY_STORAGE=s3`` and its variables select
that storage in ``parley.settings``."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import av
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from media.tasks import recording_finalize
from media.tests.egress.conftest import free_port
from media.tests.egress.helpers import ROOT, record_then_kill
from rooms.models import Recording, RoomSessionEvent
from rooms.tests.factories import RoomSessionFactory

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]

BUCKET = "parley-recordings"
PREFIX = "tenant-a"


@pytest.fixture
def s3_endpoint(monkeypatch):
    """moto's S3 server on a loopback port, with a bucket and test credentials; stopped at teardown."""
    boto3 = pytest.importorskip("boto3", reason="needs boto3 (requirements.txt)")
    server_module = pytest.importorskip("moto.server", reason="needs moto[server] (requirements-dev.txt)")
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "parley-test"),
        ("AWS_SECRET_ACCESS_KEY", "parley-test-secret"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    port = free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    try:
        yield endpoint, client
    finally:
        server.stop()


@pytest.fixture
def s3_storage(s3_endpoint, settings):
    """The default storage as ``PARLEY_STORAGE=s3`` configures it, pointed at the moto server."""
    endpoint, client = s3_endpoint
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": endpoint,
                "region_name": "us-east-1",
                "location": PREFIX,
                "addressing_style": None,
                "default_acl": None,
                "file_overwrite": True,
            },
        },
    }
    return client


def object_keys(client) -> set[str]:
    return {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_a_finalised_recording_is_stored_in_s3_downloads_through_its_uri_and_is_deleted(owner, s3_storage):
    client = s3_storage
    session = RoomSessionFactory(room__project=owner.project, quality="360p", fps=15)
    recording = Recording.objects.create(project=owner.project, room_session=session)
    working = Path(settings.PARLEY_DATA_DIR) / "recordings" / f"{recording.id}.mp4"
    working.parent.mkdir(parents=True, exist_ok=True)
    record_then_kill(working, min_frames=15 * 2)
    Recording.objects.filter(id=recording.id).update(working_path=str(working), status=Recording.Status.PROCESSING)

    assert recording_finalize.delay(str(recording.id)).get() == Recording.Status.COMPLETED
    recording.refresh_from_db()
    assert recording.storage_name == f"recordings/{recording.id}.mp4"
    assert object_keys(client) == {
        f"{PREFIX}/recordings/{recording.id}.mp4",
        f"{PREFIX}/recordings/{recording.id}.jpg",
    }
    stored = client.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{recording.storage_name}")["Body"].read()
    assert len(stored) == recording.size_in_bytes and hashlib.sha256(stored).hexdigest() == recording.sha256
    assert not working.exists()

    # The signed uri (in the REST resource and in recording.ended) downloads the object without an API key.
    uri = owner.client.get(f"/api/video/room_recordings/{recording.id}").json()["uri"]
    ended = RoomSessionEvent.objects.get(name="recording.ended", recording_id=recording.id)
    assert urlsplit(ended.payload["recording"]["uri"]).path == urlsplit(uri).path
    parts = urlsplit(uri)
    response = APIClient().get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200 and response["Content-Type"] == "video/mp4"
    downloaded = Path(settings.PARLEY_DATA_DIR) / "downloaded.mp4"
    downloaded.write_bytes(b"".join(response.streaming_content))
    assert downloaded.read_bytes() == stored
    with av.open(str(downloaded)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
        frames = sum(1 for _ in container.decode(video=0))
        assert abs(container.duration / 1_000_000 - recording.duration) <= 0.1
    assert frames >= 15 * 2

    assert owner.client.delete(f"/api/video/room_recordings/{recording.id}").status_code == 204
    assert object_keys(client) == set()
    assert not Recording.objects.filter(id=recording.id).exists()
    assert APIClient().get(f"{parts.path}?{parts.query}").status_code == 404


def django_setup(env: dict, code: str = "") -> subprocess.CompletedProcess:
    """``django.setup()`` (then ``code``) in a fresh process with ``env``."""
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_parley_storage_s3_selects_django_storages_from_the_environment():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "parley.settings",
        "PARLEY_DATA_DIR": str(settings.PARLEY_DATA_DIR),
        "PARLEY_STORAGE": "s3",
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_S3_REGION_NAME": "eu-west-1",
        "PARLEY_STORAGE_PREFIX": PREFIX,
    }
    out = django_setup(
        env,
        "import json; from django.conf import settings; from django.core.files.storage import storages; "
        "print(json.dumps([type(storages['default']).__name__, settings.STORAGES['default']]))",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    kind, config = json.loads(out.stdout.strip().splitlines()[-1])
    assert kind == "S3Storage" and config["BACKEND"] == "storages.backends.s3.S3Storage"
    options = config["OPTIONS"]
    assert (options["bucket_name"], options["endpoint_url"], options["region_name"], options["location"]) == (
        BUCKET,
        "http://127.0.0.1:9000",
        "eu-west-1",
        PREFIX,
    )
    for bad in ({"AWS_STORAGE_BUCKET_NAME": ""}, {"PARLEY_STORAGE": "ftp"}):
        refused = django_setup({**env, **bad})
        assert refused.returncode != 0, bad
        assert "PARLEY_STORAGE must be 'local' or 's3' (with AWS_STORAGE_BUCKET_NAME)" in refused.stderr, bad

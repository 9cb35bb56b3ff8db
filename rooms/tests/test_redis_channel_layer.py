"""The tests' Redis channel layer (``redis_channel_layer`` in the root conftest) is the one ``parley.settings``
configures: an idle receive waits across channels-redis' blocking pops (5 s each) for as long as it takes."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer

pytestmark = pytest.mark.redis


async def test_an_idle_receive_outlasts_the_blocking_pop_of_the_test_layer(redis_channel_layer):
    layer = get_channel_layer()
    assert layer.prefix == redis_channel_layer
    assert layer.hosts[0]["socket_timeout"] == 30
    channel = await layer.new_channel()
    receiving = asyncio.ensure_future(layer.receive(channel))
    # Idle for longer than one blocking pop (and redis-py's 5 s socket read): the receive must still be waiting.
    await asyncio.wait({receiving}, timeout=layer.brpop_timeout + 3)
    assert not receiving.done(), receiving.exception()
    await layer.send(channel, {"type": "ping", "n": 1})
    assert await asyncio.wait_for(receiving, 60) == {"type": "ping", "n": 1}
    await layer.flush()

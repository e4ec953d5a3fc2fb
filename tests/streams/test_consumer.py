"""The market WebSocket consumer, driven with WebsocketCommunicator on the in-memory layer
(and once on Redis): auth, protocol, snapshots, group events, the slow-client policy."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from markets.cache import market_data_put
from streams.consumers import MarketStreamConsumer
from streams.groups import CONTROL_CHANNEL, StreamKey, group_name
from tests.streams.support import eventually, wait_until

ORIGIN = (b"origin", b"http://localhost")
PATH = "/ws/v1/market/"
BTC_TICKER = StreamKey("binance", "emulator", "ticker", "BTC/USDT")

pytestmark = pytest.mark.django_db(transaction=True)

# For the handshake (a token lookup in a worker thread) and the disconnect (leases released):
# the communicator's default is 1 s, which a loaded CI machine on PostgreSQL can overrun.
TIMEOUT = 10


def app() -> Any:
    from connector_site.asgi import application

    return application


def auth(key: str) -> tuple[bytes, bytes]:
    return (b"authorization", f"Bearer {key}".encode())


async def connect(
    *headers: tuple[bytes, bytes], path: str = PATH
) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    communicator = WebsocketCommunicator(app(), path, headers=[ORIGIN, *headers])
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    return communicator, await communicator.receive_json_from(timeout=10)


@pytest.fixture
def reader_key(owner: Any, make_token: Any) -> str:
    return make_token(owner, ["market:read"])[1]


async def drain_control() -> list[dict[str, Any]]:
    layer = get_channel_layer()
    messages = []
    while True:
        try:
            messages.append(await asyncio.wait_for(layer.receive(CONTROL_CHANNEL), 0.2))
        except TimeoutError:
            return messages


async def test_it_refuses_a_client_without_credentials_with_an_error_envelope_and_4401() -> None:
    communicator, frame = await connect()
    assert frame == {
        "type": "error",
        "error": {"code": "not_authenticated", "message": frame["error"]["message"], "field": None},
    }
    assert (await communicator.receive_output(timeout=10)) == {"type": "websocket.close", "code": 4401}


async def test_it_refuses_a_token_without_the_market_read_scope(owner: Any, make_token: Any) -> None:
    _, key = await sync_to_async(make_token)(owner, ["account:read"])
    communicator, frame = await connect(auth(key))
    assert frame["error"]["code"] == "permission_denied"
    assert (await communicator.receive_output(timeout=10))["code"] == 4403


async def test_it_refuses_a_revoked_or_unknown_token() -> None:
    communicator, frame = await connect(auth("nope.nope"))
    assert frame["error"]["code"] == "authentication_failed"
    assert (await communicator.receive_output(timeout=10))["code"] == 4401


async def test_it_rejects_a_foreign_origin_at_the_handshake(reader_key: str) -> None:
    communicator = WebsocketCommunicator(
        app(), PATH, headers=[(b"origin", b"https://evil.example"), auth(reader_key)]
    )
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert not connected


async def test_it_welcomes_a_token_holder_and_answers_ping(reader_key: str) -> None:
    communicator, frame = await connect(auth(reader_key))
    assert frame["type"] == "welcome"
    assert frame["user"] == "alice"
    assert "ticker" in frame["channels"]
    await communicator.send_json_to({"action": "ping", "id": 7})
    pong = await communicator.receive_json_from(timeout=10)
    assert pong["type"] == "pong" and pong["id"] == 7
    await communicator.disconnect(timeout=TIMEOUT)


async def test_it_accepts_a_browser_session(owner: Any) -> None:
    client = Client()
    await sync_to_async(client.force_login)(owner)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator, frame = await connect((b"cookie", cookie))
    assert frame["type"] == "welcome" and frame["user"] == "alice"
    await communicator.disconnect(timeout=TIMEOUT)


async def test_a_ticket_lets_a_client_in_once(reader_key: str) -> None:
    client = Client()
    response = await sync_to_async(client.post)(
        "/api/v1/streams/tickets/", HTTP_AUTHORIZATION=f"Bearer {reader_key}"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["expires_in"] == 30
    communicator, frame = await connect(path=f"{PATH}?ticket={body['ticket']}")
    assert frame["type"] == "welcome"
    await communicator.disconnect(timeout=TIMEOUT)
    _again, frame = await connect(path=f"{PATH}?ticket={body['ticket']}")
    assert frame["error"]["code"] == "authentication_failed"


@pytest.mark.parametrize(
    ("request_body", "code", "field"),
    [
        (
            {"action": "subscribe", "exchange": "kraken", "channel": "ticker", "symbol": "BTC/USDT"},
            "unknown_exchange",
            "exchange",
        ),
        (
            {"action": "subscribe", "exchange": "binance", "channel": "candles", "symbol": "BTC/USDT"},
            "unknown_channel",
            "channel",
        ),
        (
            {"action": "subscribe", "exchange": "binance", "channel": "ticker", "symbol": 42},
            "invalid_input",
            "symbol",
        ),
        ({"action": "dance"}, "unknown_action", "action"),
    ],
)
async def test_it_answers_bad_requests_with_the_error_envelope(
    reader_key: str, request_body: dict[str, Any], code: str, field: str
) -> None:
    communicator, _ = await connect(auth(reader_key))
    await communicator.send_json_to({**request_body, "id": "r1"})
    frame = await communicator.receive_json_from(timeout=10)
    assert frame["type"] == "error" and frame["id"] == "r1"
    assert frame["error"]["code"] == code and frame["error"]["field"] == field
    await communicator.disconnect(timeout=TIMEOUT)


async def test_it_rejects_frames_that_are_not_json(reader_key: str) -> None:
    communicator, _ = await connect(auth(reader_key))
    await communicator.send_to(text_data="{nope")
    assert (await communicator.receive_json_from(timeout=10))["error"]["code"] == "invalid_json"
    await communicator.disconnect(timeout=TIMEOUT)


async def test_it_rejects_a_symbol_the_venue_does_not_list(venue: Any, reader_key: str) -> None:
    communicator, _ = await connect(auth(reader_key))
    await communicator.send_json_to(
        {"action": "subscribe", "exchange": "binance", "channel": "ticker", "symbol": "NOPE/USDT"}
    )
    frame = await communicator.receive_json_from(timeout=10)
    assert frame["error"] == {
        "code": "unknown_symbol",
        "message": "'NOPE/USDT' is not a market of binance",
        "field": "symbol",
    }
    await communicator.disconnect(timeout=TIMEOUT)


async def subscribe(
    communicator: WebsocketCommunicator, channel: str = "ticker", symbol: str = "BTC/USDT"
) -> None:
    await communicator.send_json_to(
        {"action": "subscribe", "exchange": "binance", "channel": channel, "symbol": symbol}
    )
    frame = await communicator.receive_json_from(timeout=10)
    assert frame == {"type": "subscribed", "exchange": "binance", "channel": channel, "symbol": symbol}


async def test_subscribing_asks_the_manager_for_a_lease_and_sends_the_cached_snapshot(
    venue: Any, reader_key: str, settings: Any
) -> None:
    # The entry's age is measured against this test's own clock, not a fixed budget a
    # loaded machine can overrun; the stale limit is far above anything this test takes.
    settings.STREAMS_STALE_AFTER_S = 60.0
    put_at = time.time()
    await sync_to_async(market_data_put)(
        exchange="binance", environment="emulator", channel="ticker", symbol="BTC/USDT",
        data={"last": "101.5"}, source="stream", venue_time_ms=1, sequence=41,
    )  # fmt: skip
    communicator, _ = await connect(auth(reader_key))
    await subscribe(communicator)
    snapshot = await communicator.receive_json_from(timeout=10)
    elapsed_ms = (time.time() - put_at) * 1000
    assert snapshot["type"] == "snapshot"
    assert snapshot["seq"] == 41 and snapshot["data"] == {"last": "101.5"}
    assert snapshot["stale"] is False and 0 <= snapshot["age_ms"] <= elapsed_ms + 1
    control = await drain_control()
    assert control and control[0]["type"] == "lease.renew"
    assert control[0]["streams"] == [["binance", "ticker", "BTC/USDT"]]
    await communicator.disconnect(timeout=TIMEOUT)  # the release is sent while disconnecting
    released = await drain_control()
    assert released[-1]["type"] == "lease.release"
    assert released[-1]["streams"] == [["binance", "ticker", "BTC/USDT"]]


def update_event(seq: int, last: str) -> dict[str, Any]:
    frame = {"type": "update", "exchange": "binance", "channel": "ticker", "symbol": "BTC/USDT", "seq": seq,
             "data": {"last": last}}  # fmt: skip
    return {"type": "stream.update", "stream": BTC_TICKER.label(), "seq": seq, "text": json.dumps(frame)}


async def test_it_relays_group_updates_and_drops_older_ones(venue: Any, reader_key: str) -> None:
    communicator, _ = await connect(auth(reader_key))
    await subscribe(communicator)
    layer = get_channel_layer()
    await layer.group_send(group_name(BTC_TICKER), update_event(5, "100"))
    first = await communicator.receive_json_from(timeout=10)
    assert (first["seq"], first["data"]["last"]) == (5, "100")
    await layer.group_send(group_name(BTC_TICKER), update_event(4, "99"))  # late duplicate
    await layer.group_send(group_name(BTC_TICKER), update_event(6, "101"))
    second = await communicator.receive_json_from(timeout=10)
    assert (second["seq"], second["data"]["last"]) == (6, "101")
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect(timeout=TIMEOUT)


async def test_after_unsubscribing_no_more_updates_arrive(venue: Any, reader_key: str) -> None:
    communicator, _ = await connect(auth(reader_key))
    await subscribe(communicator)
    await communicator.send_json_to(
        {"action": "unsubscribe", "exchange": "binance", "channel": "ticker", "symbol": "BTC/USDT"}
    )
    assert (await communicator.receive_json_from(timeout=10))["type"] == "unsubscribed"
    await get_channel_layer().group_send(group_name(BTC_TICKER), update_event(9, "1"))
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect(timeout=TIMEOUT)


async def test_clients_of_one_process_share_one_group_membership(venue: Any, reader_key: str) -> None:
    """Each state reaches every local client, through one layer membership per stream
    (streams.fanout), which is given up when the last local client leaves."""
    layer = get_channel_layer()
    group = group_name(BTC_TICKER)
    first, _ = await connect(auth(reader_key))
    await subscribe(first)
    second, _ = await connect(auth(reader_key))
    await subscribe(second)
    assert len(layer.groups.get(group, {})) == 1
    await layer.group_send(group, update_event(7, "70"))
    for communicator in (first, second):
        frame = await communicator.receive_json_from(timeout=10)
        assert (frame["seq"], frame["data"]["last"]) == (7, "70")

    await first.disconnect(timeout=TIMEOUT)
    await layer.group_send(group, update_event(8, "80"))
    assert (await second.receive_json_from(timeout=10))["seq"] == 8
    assert len(layer.groups.get(group, {})) == 1

    await second.send_json_to(
        {"action": "unsubscribe", "exchange": "binance", "channel": "ticker", "symbol": "BTC/USDT"}
    )
    assert (await second.receive_json_from(timeout=10))["type"] == "unsubscribed"
    assert not layer.groups.get(group)
    await second.disconnect(timeout=TIMEOUT)


async def test_it_caps_subscriptions_per_connection(venue: Any, reader_key: str, settings: Any) -> None:
    settings.STREAMS_MAX_SUBSCRIPTIONS_PER_CLIENT = 1
    communicator, _ = await connect(auth(reader_key))
    await subscribe(communicator)
    await communicator.send_json_to(
        {"action": "subscribe", "exchange": "binance", "channel": "ticker", "symbol": "ETH/USDT"}
    )
    frame = await communicator.receive_json_from(timeout=10)
    assert frame["error"]["code"] == "too_many_subscriptions"
    await communicator.disconnect(timeout=TIMEOUT)


class BackedUpConsumer(MarketStreamConsumer):
    """A client whose socket does not drain: the server reports a large transport backlog
    until ``drained`` is set (what daphne's Twisted buffer reports for a reader that stopped)."""

    drained = asyncio.Event()
    instances: list[BackedUpConsumer] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instances.append(self)

    def backlog(self) -> int:
        return 0 if self.drained.is_set() else 10_000_000


async def test_a_slow_client_gets_the_newest_state_only_and_is_dropped_if_it_stays_behind(
    venue: Any, reader_key: str, settings: Any
) -> None:
    from channels.auth import AuthMiddlewareStack

    # Behind, but not for long enough to be dropped (however slow this machine is) ...
    settings.STREAMS_CLIENT_MAX_BEHIND_S = 60.0
    BackedUpConsumer.drained = asyncio.Event()
    BackedUpConsumer.instances = []
    communicator = WebsocketCommunicator(
        AuthMiddlewareStack(BackedUpConsumer.as_asgi()), PATH, headers=[auth(reader_key)]
    )
    assert (await communicator.connect(timeout=TIMEOUT))[0]
    assert (await communicator.receive_json_from(timeout=10))["type"] == "welcome"
    await subscribe(communicator)
    layer = get_channel_layer()
    for seq in range(1, 30):
        await layer.group_send(group_name(BTC_TICKER), update_event(seq, str(seq)))
    [consumer] = BackedUpConsumer.instances
    # The consumer takes every event (none can be written yet): wait until it has the last.
    assert await wait_until(lambda: consumer.outbox.get(BTC_TICKER.label(), (0, ""))[0] == 29, timeout=10), (
        consumer.outbox
    )
    BackedUpConsumer.drained.set()  # the client catches up: only the newest state is still pending
    frame = await communicator.receive_json_from(timeout=10)
    assert frame["seq"] == 29
    assert await communicator.receive_nothing(timeout=0.2)

    # ... then falls behind again, and stays there for longer than the limit.
    settings.STREAMS_CLIENT_MAX_BEHIND_S = 0.8
    BackedUpConsumer.drained.clear()
    await layer.group_send(group_name(BTC_TICKER), update_event(30, "30"))
    error = await communicator.receive_json_from(timeout=10)
    assert error["error"]["code"] == "slow_consumer"
    assert (await communicator.receive_output(timeout=10)) == {"type": "websocket.close", "code": 4008}


@pytest.mark.redis
async def test_updates_reach_the_client_over_the_redis_pubsub_layer(
    venue: Any, reader_key: str, settings: Any
) -> None:
    from channels.layers import channel_layers
    from redis.asyncio import Redis

    # A prefix of its own: pub/sub channels are server-wide, shared by every run on this Redis.
    prefix = f"test-streams-{uuid.uuid4().hex[:12]}"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [settings.REDIS_URL], "prefix": prefix},
        }
    }
    channel_layers.backends.clear()
    communicator, _ = await connect(auth(reader_key))
    await subscribe(communicator)
    layer = get_channel_layer()
    # The consumer's SUBSCRIBE reaches Redis asynchronously: wait until Redis has it.
    redis = Redis.from_url(settings.REDIS_URL)
    try:
        group_channel = f"{prefix}__group__{group_name(BTC_TICKER)}"
        [(_, subscribers)] = await eventually(
            lambda: redis.pubsub_numsub(group_channel), lambda n: n[0][1] >= 1, timeout=10
        )
        assert subscribers >= 1
    finally:
        await redis.aclose()
    await layer.group_send(group_name(BTC_TICKER), update_event(77, "123.4"))
    frame = await communicator.receive_json_from(timeout=10)
    assert (frame["seq"], frame["data"]["last"]) == (77, "123.4")
    await communicator.disconnect(timeout=TIMEOUT)
    await layer.flush()

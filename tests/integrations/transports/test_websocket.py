"""The WebSocket consumer against a real websockets server on loopback."""

import json
import socket
import threading
import time

import pytest
from websockets.sync.server import serve

from integrations import errors
from integrations.models import IntegrationLog
from integrations.transports.websocket import WebSocketConsumer

TOKEN = "tok_FEEDSECRET_4242"


class FeedServer:
    """A WebSocket server in a thread; `script(ws, n)` plays the n-th connection (from 1)."""

    def __init__(self, script, *, reject=None):
        self.script = script
        self.connections = 0
        self.headers = []  # the upgrade request's headers, per connection
        self.received = []  # what the consumer sent
        self.closed = threading.Event()

        def process_request(connection, request):
            self.headers.append(request.headers)
            if reject:
                return connection.respond(reject, "Forbidden\n")
            return None

        self.server = serve(self._handle, "127.0.0.1", 0, process_request=process_request)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handle(self, ws):
        self.connections += 1
        try:
            self.script(self, ws, self.connections)
        finally:
            self.closed.set()

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def feed():
    servers = []

    def start(script, **kwargs):
        server = FeedServer(script, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def provider(make_provider):
    def make(server, **config):
        configuration = {"reconnect_backoff": 0.01, "reconnect_backoff_max": 0.05, "timeout": 2, **config}
        credentials = {"token": TOKEN, "username": "ops"}
        return make_provider(base_url=f"ws://127.0.0.1:{server.port}/feed", configuration=configuration,
                             credentials=credentials)

    return make


def calls(integration, operation=None):
    rows = IntegrationLog.objects.filter(integration=integration).order_by("started_at", "id")
    return list(rows.filter(operation=operation) if operation else rows)


def send_all(*messages):
    def script(server, ws, n):
        for message in messages:
            ws.send(message)

    return script


def test_messages_arrive_in_order_and_each_is_one_logged_call_with_the_token_redacted(feed, provider):
    server = feed(send_all('{"n": 1}', f'{{"n": 2, "note": "token {TOKEN} leaked"}}', "plain 3"))
    integration = provider(server)
    seen = []
    received = WebSocketConsumer(integration, on_message=seen.append).run_once()

    assert received == 3
    assert seen == ['{"n": 1}', f'{{"n": 2, "note": "token {TOKEN} leaked"}}', "plain 3"]
    assert server.headers[0]["Authorization"] == f"Bearer {TOKEN}"
    rows = calls(integration)
    assert [r.operation for r in rows] == ["ws.connect", "ws.message", "ws.message", "ws.message", "ws.close"]
    assert {r.transport for r in rows} == {"ws"}
    assert all(r.status == "success" for r in rows)
    assert rows[1].response_body == '{"n": 1}' and rows[3].response_body == "plain 3"
    assert TOKEN not in rows[2].response_body and '"n": 2' in rows[2].response_body
    assert rows[0].endpoint == f"ws://127.0.0.1:{server.port}/feed"
    assert rows[0].response_status == 101
    assert TOKEN not in json.dumps(rows[0].request_headers)
    integration.refresh_from_db()
    assert integration.total_requests == 5


def test_after_the_server_closes_the_consumer_reconnects_and_receives_the_next_messages(feed, provider):
    def script(server, ws, n):
        ws.send(f"message {n}")  # then the handler returns: the server closes the connection

    server = feed(script)
    integration = provider(server)
    stop, seen = threading.Event(), []

    def handle(message):
        seen.append(message)
        if len(seen) == 3:
            stop.set()

    threading.Timer(2.5, stop.set).start()  # a safety net, never the way this test ends
    WebSocketConsumer(integration, on_message=handle).run(stop)
    assert seen == ["message 1", "message 2", "message 3"]
    assert server.connections == 3
    assert len(calls(integration, "ws.connect")) == 3


def test_abnormal_closes_count_towards_the_breaker_and_an_open_circuit_is_waited_out(feed, provider):
    def script(server, ws, n):
        ws.send("hello")
        raise RuntimeError("the provider's feed crashed")  # the server closes with 1011

    server = feed(script)
    integration = provider(server, circuit_breaker_threshold=2, circuit_breaker_cooldown=60)
    stop = threading.Event()
    consumer = WebSocketConsumer(integration, on_message=lambda m: None)
    threading.Timer(1.0, stop.set).start()
    consumer.run(stop)

    # Two abnormal closes open the circuit; the consumer then waits for the cooldown (60 s) instead
    # of connecting again.
    assert server.connections == 2
    assert consumer.breaker.state == "open"
    closes = calls(integration, "ws.close")
    assert [(c.status, c.response_status, c.error_code) for c in closes] == [("error", 1011, "ws_1011")] * 2


def test_an_upgrade_refused_with_403_is_an_auth_error_that_stops_the_consumer(feed, provider):
    server = feed(send_all("never"), reject=403)
    integration = provider(server)
    consumer = WebSocketConsumer(integration, on_message=lambda m: None)
    with pytest.raises(errors.ProviderAuthError) as caught:
        consumer.run(threading.Event())
    assert caught.value.status_code == 403
    assert server.connections == 0 and len(server.headers) == 1  # one attempt, no retry
    (row,) = calls(integration)
    assert (row.operation, row.status, row.response_status, row.error_code) == ("ws.connect", "error", 403, "http_403")
    assert consumer.breaker.state == "closed"  # a refusal is an answer, not an outage
    assert not consumer.breaker.before_call()  # and it counted no failure


def test_a_handler_error_is_logged_on_its_call_and_the_consumer_goes_on(feed, provider):
    server = feed(send_all("one", "two", "three"))
    integration = provider(server)
    seen = []

    def handle(message):
        if message == "two":
            raise ValueError("cannot parse two")
        seen.append(message)

    assert WebSocketConsumer(integration, on_message=handle).run_once() == 3
    assert seen == ["one", "three"]
    rows = calls(integration, "ws.message")
    assert [(r.response_body, r.status, r.error_code) for r in rows] == [
        ("one", "success", ""), ("two", "error", "ValueError"), ("three", "success", "")]
    assert "cannot parse two" in rows[1].error_message


def test_log_rows_are_written_as_soon_as_the_feed_pauses_not_only_when_it_ends(feed, provider):
    def script(server, ws, n):
        ws.send("first")
        time.sleep(0.4)
        ws.send("second")

    server = feed(script)
    integration = provider(server)
    logged_before_second = []

    def handle(message):
        if message == "second":
            logged_before_second.extend(r.response_body for r in calls(integration, "ws.message"))

    WebSocketConsumer(integration, on_message=handle).run_once()
    assert logged_before_second == ["first"]
    assert [r.response_body for r in calls(integration, "ws.message")] == ["first", "second"]


def test_the_stop_event_ends_run_within_a_second_and_closes_the_socket(feed, provider):
    def script(server, ws, n):
        for _message in ws:  # wait until the consumer closes
            pass

    server = feed(script)
    integration = provider(server)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    WebSocketConsumer(integration, on_message=lambda m: None).run(stop)
    assert time.monotonic() - started < 1.3
    assert server.closed.wait(1)


def test_a_message_bigger_than_the_limit_is_a_protocol_error(feed, provider):
    server = feed(send_all("x" * 500))
    integration = provider(server, max_message_size=100)
    with pytest.raises(errors.ProviderProtocolError):
        WebSocketConsumer(integration, on_message=lambda m: None).run_once()
    (close,) = calls(integration, "ws.close")
    assert (close.status, close.error_code) == ("error", "ws_1009")
    assert not calls(integration, "ws.message")


def test_the_token_can_go_as_the_first_message_and_is_redacted_in_the_log(feed, provider):
    def script(server, ws, n):
        server.received.append(ws.recv(timeout=2))
        ws.send("welcome")

    server = feed(script)
    integration = provider(server, ws_auth="message")
    WebSocketConsumer(integration, on_message=lambda m: None).run_once()
    assert json.loads(server.received[0]) == {"type": "auth", "token": TOKEN}
    assert "Authorization" not in server.headers[0]
    connect = calls(integration, "ws.connect")[0]
    assert TOKEN not in connect.request_body and '"type": "auth"' in connect.request_body


def test_a_server_that_is_down_is_unavailable_and_nothing_was_sent(make_provider):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    integration = make_provider(base_url=f"ws://127.0.0.1:{port}/feed")
    consumer = WebSocketConsumer(integration, on_message=lambda m: None)
    with pytest.raises(errors.ProviderUnavailable) as caught:
        consumer.run_once()
    assert caught.value.sent is False
    (row,) = calls(integration)
    assert (row.operation, row.status, row.error_code) == ("ws.connect", "error", "connection")
    assert consumer.breaker.before_call()  # one failure counted


def test_private_addresses_are_refused_when_connecting_and_no_connection_is_made(make_provider, settings):
    settings.PROVIDER_URL_ALLOW_PRIVATE = False
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.1)
        integration = make_provider(base_url=f"ws://127.0.0.1:{listener.getsockname()[1]}/feed")
        with pytest.raises(errors.ForbiddenDestination):
            WebSocketConsumer(integration, on_message=lambda m: None).run(threading.Event())
        with pytest.raises(TimeoutError):
            listener.accept()
    (row,) = calls(integration)
    assert (row.operation, row.error_code) == ("ws.connect", "forbidden")

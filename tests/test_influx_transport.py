"""The influxdb-client transport against a scripted HTTP server on 127.0.0.1: what each answer
means for the queued points (written, retried, or refused for good), and slow servers."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pue_monitor.exchange.influx import InfluxTransport, InfluxWriter, RejectedBatch
from pue_monitor.store.outbox import Outbox

TIMEOUT_S = 0.5
LINES = ["m,site=a v=1 1000000000", "m,site=a v=2 2000000000"]


class ScriptedInflux:
    """Answers each /api/v2/write with the next (status, delay_s) and records the bodies."""

    def __init__(self) -> None:
        self.script: list[tuple[int, float]] = []
        self.bodies: list[bytes] = []
        self.queries: list[str] = []
        self.release = threading.Event()  # ends a deliberately slow answer early
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.bodies.append(body)
                outer.queries.append(self.path)
                status, delay = outer.script.pop(0) if outer.script else (204, 0.0)
                outer.release.wait(delay)
                payload = b'{"code":"invalid","message":"unable to parse"}' if status >= 400 else b""
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedInflux:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture()
def influx():
    with ScriptedInflux() as server:
        yield server


@pytest.fixture()
def writer(tmp_path, influx):
    transport = InfluxTransport(influx.url, "tok", "org", "bucket", timeout_s=TIMEOUT_S)
    w = InfluxWriter(Outbox.open(tmp_path), transport, batch_size=10)
    w.submit(LINES)
    w.spool()
    yield w
    w.close()


def test_request_carries_bucket_org_precision_and_the_queued_lines(writer, influx):
    assert writer.send_batch() == 2
    assert influx.bodies == ["\n".join(LINES).encode()]
    query = influx.queries[0]
    assert query.startswith("/api/v2/write?")
    assert {"org=org", "bucket=bucket", "precision=ns"} <= set(query.split("?")[1].split("&"))


@pytest.mark.parametrize("status, outcome", [
    (204, "written"),
    (400, "rejected"),  # malformed points: the same bytes would fail again
    (422, "rejected"),
    (401, "retried"),  # a wrong token is fixed by the operator; keep the points meanwhile
    (404, "retried"),  # bucket not created yet
    (429, "retried"),
    (500, "retried"),
    (503, "retried"),
])
def test_answer_decides_what_happens_to_the_batch(writer, influx, status, outcome):
    influx.script = [(status, 0.0)]
    if outcome == "retried":
        with pytest.raises(Exception) as err:
            writer.send_batch()
        assert not isinstance(err.value, RejectedBatch)
        assert writer.outbox.queued() == 2
        assert writer.send_batch() == 2  # the next answer is 204
        assert influx.bodies[0] == influx.bodies[1]
    else:
        assert writer.send_batch() == (2 if outcome == "written" else 0)
        assert writer.outbox.queued() == 0
        assert writer.state().points_rejected_total == (2 if outcome == "rejected" else 0)
        assert len(influx.bodies) == 1


def test_a_slow_server_times_out_and_the_retry_repeats_the_same_bytes(writer, influx):
    # The first write reaches the server, which answers after the client gave up: it may
    # have landed. The retry sends identical lines, which InfluxDB stores as one point each.
    influx.script = [(204, 10 * TIMEOUT_S)]
    with pytest.raises(Exception):
        writer.send_batch()
    influx.release.set()
    assert writer.outbox.queued() == 2
    assert writer.send_batch() == 2
    assert len(influx.bodies) == 2 and influx.bodies[0] == influx.bodies[1]
    assert writer.outbox.queued() == 0

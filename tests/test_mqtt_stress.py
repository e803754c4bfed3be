"""firmware/drivers/mqtt.py under stress and bad input (the issue's MQTT tests not in tests/test_mqtt.py).

- QoS 1: 1,000 messages while the broker is stopped and restarted twice mid-stream; every one reaches a paho-mqtt
  subscriber at least once; duplicates are counted and reported.
- Keepalive: with the broker's max_keepalive set, idle clients stay connected for 3 keepalive periods.
- Bad input: oversized payloads (to a broker with max_packet_size, from a fake server), a server that closes or
  stalls during CONNACK, malformed packets from a fake server: a clear exception or a reconnect, never a hang.

The MicroPython side is tests/mp/mqtt_stress.py (run on the unix runtime, one process per scenario); the fake
server is a thread on 127.0.0.1 here. Every wait is bounded.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from mosquitto import Mosquitto
from test_mqtt import MpScenario, Peer, run_scenario

STRESS = "tests/mp/mqtt_stress.py"


class TunedMosquitto(Mosquitto):
    """Mosquitto with extra global config lines (max_keepalive, max_packet_size, queue limits)."""

    def __init__(self, extra: list[str], **kwargs: Any) -> None:
        self.extra = extra
        super().__init__(**kwargs)

    def _config(self) -> str:
        return super()._config() + "\n".join(self.extra) + "\n"


# --- QoS 1 through two broker restarts -------------------------------------------------------------------------

N_MESSAGES = 1000


def test_qos1_thousand_messages_survive_two_broker_restarts() -> None:
    # Where a message could be lost, and what covers it:
    # - in the client while the broker is down: its queue holds all 1,000 (asserted: dropped == 0), and in-flight
    #   QoS 1 messages go again (DUP) after the reconnect until PUBACK;
    # - in the broker between its PUBACK and the subscriber: persistence (saved at SIGTERM) keeps the
    #   subscriber's persistent session (clean_session=False) with its queued and in-flight messages;
    # - while paho is still reconnecting after a restart: its session queues them (max_queued_messages raised so
    #   the default limit of 1,000 cannot drop any);
    # - at the subscriber: QoS 1, so the broker resends anything paho had not acknowledged (a duplicate).
    marks = (300, 650)
    t_start = time.monotonic()
    with TunedMosquitto(["max_queued_messages 100000", "max_inflight_messages 20"], persistence=True) as broker:
        peer = Peer(broker.port, client_id=f"ts-stress-sub-{os.getpid()}", clean_session=False)
        scenario = MpScenario("qos1_thousand", file=STRESS, port=broker.port, N=N_MESSAGES,
                                MARKS=",".join(map(str, marks)))
        received_at_stop = []
        try:
            peer.subscribe("tinysense/stress", qos=1)
            for mark in marks:
                scenario.expect(f"AT {mark}", timeout=15)
                received_at_stop.append(len(peer.messages))
                broker.stop()
                time.sleep(0.5)  # the client queues meanwhile
                broker.start()
            result = scenario.finish(timeout=25)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with peer.cond:
                    if len({m[1] for m in peer.messages}) >= N_MESSAGES:
                        break
                time.sleep(0.05)
            time.sleep(0.3)  # late duplicates
            with peer.cond:
                messages = list(peer.messages)
        finally:
            scenario.close()
            peer.close()
    elapsed = time.monotonic() - t_start
    counts = Counter(int(payload) for _topic, payload, _qos, _retain in messages)
    missing = sorted(set(range(N_MESSAGES)) - set(counts))
    duplicates = sum(counts.values()) - len(counts)
    first_seen = list(dict.fromkeys(int(m[1]) for m in messages))
    out_of_order = sum(1 for a, b in zip(first_seen, first_seen[1:], strict=False) if b < a)
    print(f"\n1,000 QoS 1 messages, 2 broker restarts: {len(messages)} received, {len(counts)} distinct, "
          f"{duplicates} duplicates, {out_of_order} out of order, missing {len(missing)}; client: {result}; "
          f"{elapsed:.1f} s")
    assert result["acked"] is True and result["pending"] == 0, result
    assert result["dropped"] == 0 and result["reconnects"] == 2, result
    assert all(0 < n < N_MESSAGES for n in received_at_stop), received_at_stop  # restarts were mid-stream
    assert not missing, f"lost {len(missing)}: {missing[:20]}"
    assert set(counts) == set(range(N_MESSAGES))  # nothing else arrived either
    assert {m[0] for m in messages} == {"tinysense/stress"} and {m[2] for m in messages} == {1}
    assert elapsed < 30


# --- keepalive with max_keepalive -----------------------------------------------------------------------------


def test_keepalive_idle_for_three_periods_with_broker_max_keepalive() -> None:
    # mosquitto 2.0 accepts max_keepalive 10 ... 65535: one client uses exactly 10, one 2 s (3 periods = 6 s).
    with TunedMosquitto(["max_keepalive 10"]) as broker:
        peer = Peer(broker.port)
        try:
            peer.subscribe("tinysense/ka2", qos=1)
            t0 = time.monotonic()
            result = run_scenario("keepalive_idle", file=STRESS, port=broker.port, timeout=15, KEEPALIVE=2,
                                       MAX_KEEPALIVE=10)
            elapsed = time.monotonic() - t0
            got = peer.wait_for(1, timeout=3)
        finally:
            peer.close()
        log = broker.log_text()
    assert elapsed < 15
    assert result["idle_ms"] >= 3 * 2000, result
    assert result["connected_throughout"] is True, result
    assert result["short_reconnects"] == 0 and result["max_reconnects"] == 0, result
    assert result["short_pings"] >= 3, result  # a ping every keepalive / 2 of silence
    assert result["puback"] is True
    # The broker does enforce keepalive in this configuration: the client that never pings is dropped.
    assert result["silent_lost_ms"] is not None and 2500 <= result["silent_lost_ms"] <= 9000, result
    pid = os.getpid()
    assert f"ts-keepalive_idle-{pid}-silent has exceeded timeout" in log
    assert f"ts-keepalive_idle-{pid}-short has exceeded timeout" not in log
    assert f"ts-keepalive_idle-{pid}-max has exceeded timeout" not in log
    assert got == [("tinysense/ka2", b"still here", 1, False)]


# --- oversized payloads to a real broker -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_broker() -> Iterator[Mosquitto]:
    with TunedMosquitto(["max_packet_size 1000"]) as b:
        yield b


def test_oversized_qos0_publish_costs_a_reconnect_not_the_queue(small_broker: Mosquitto) -> None:
    peer = Peer(small_broker.port)
    try:
        peer.subscribe("tinysense/#", qos=1)
        t0 = time.monotonic()
        result = run_scenario("oversized_publish", file=STRESS, port=small_broker.port, QOS=0, SIZE=2000)
        got = peer.wait_for(1, timeout=2)
    finally:
        peer.close()
    assert time.monotonic() - t0 < 8
    assert result["raised"] is None and result["delivered"] is True, result
    assert result["reconnects"] >= 1, result  # the broker closed the connection on the oversized packet
    assert got == [("tinysense/after", b"next", 1, False)]


def test_oversized_qos1_publish_does_not_block_the_queue(small_broker: Mosquitto) -> None:
    peer = Peer(small_broker.port)
    try:
        peer.subscribe("tinysense/#", qos=1)
        t0 = time.monotonic()
        result = run_scenario("oversized_publish", file=STRESS, port=small_broker.port, QOS=1, SIZE=2000)
        got = peer.wait_for(1, timeout=2)
    finally:
        peer.close()
    assert time.monotonic() - t0 < 8  # bounded either way (the scenario gives up after 2 s)
    # Either publish refuses it at once (a clear exception), or it is given up so the next message goes.
    assert result["raised"] is not None or result["delivered"] is True, result
    assert got == [("tinysense/after", b"next", 1, False)]


# --- a fake server ---------------------------------------------------------------------------------------------

CONNACK = b"\x20\x02\x00\x00"


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def read_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("client closed")
        data += chunk
    return data


def read_packet(conn: socket.socket) -> bytes:
    first = read_exactly(conn, 1)
    n, shift, header = 0, 0, first
    while True:
        b = read_exactly(conn, 1)
        header += b
        n |= (b[0] & 0x7F) << shift
        if b[0] < 0x80:
            break
        shift += 7
    return header + read_exactly(conn, n)


Behaviour = Callable[[socket.socket, int, "FakeServer"], None]


class FakeServer:
    """A TCP server on 127.0.0.1 that reads each connection's CONNECT and then runs `behaviour(conn, index,
    server)`. Packets the client sends afterwards can be read with read_packet; everything is bounded by
    socket timeouts and stop()."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.connects: list[bytes] = []
        self.packets: list[bytes] = []  # what the behaviours read from the client after CONNECT
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.accepter = threading.Thread(target=self._accept, daemon=True)
        self.accepter.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            index = self.connections
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn, index), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket, index: int) -> None:
        conn.settimeout(5)
        try:
            self.connects.append(read_packet(conn))
            self.behaviour(conn, index, self)
        except (OSError, EOFError) as e:
            self.errors.append(repr(e))
        finally:
            conn.close()

    def hold(self, conn: socket.socket, seconds: float = 8.0) -> None:
        """Keep the connection open, reading (and recording) what the client sends, answering nothing."""
        deadline = time.monotonic() + seconds
        conn.settimeout(0.1)
        while time.monotonic() < deadline and not self.stopping.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            if not data:
                return
            self.packets.append(data)

    def suback(self, conn: socket.socket) -> None:
        """Answer the client's SUBSCRIBE (the fake_session scenario subscribes on every connection)."""
        conn.settimeout(3)
        pkt = read_packet(conn)
        assert pkt[0] == 0x82, pkt
        self.packets.append(pkt)
        i = 1
        while pkt[i] & 0x80:  # the packet id follows the fixed header
            i += 1
        pid = pkt[i + 1 : i + 3]
        conn.sendall(b"\x90\x03" + pid + b"\x01")

    def stop(self) -> None:
        self.stopping.set()
        self.sock.close()
        self.accepter.join(timeout=2)
        for t in self.threads:
            t.join(timeout=2)


@pytest.fixture
def fake_server() -> Iterator[Callable[[Behaviour], FakeServer]]:
    servers: list[FakeServer] = []

    def start(behaviour: Behaviour) -> FakeServer:
        servers.append(FakeServer(behaviour))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


def _close_at_once(conn: socket.socket, index: int, server: FakeServer) -> None:
    pass


def _half_connack(conn: socket.socket, index: int, server: FakeServer) -> None:
    conn.sendall(CONNACK[:2])


def _silent(conn: socket.socket, index: int, server: FakeServer) -> None:
    server.hold(conn, 4)


def _reset(conn: socket.socket, index: int, server: FakeServer) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close


def _send(data: bytes) -> Behaviour:
    def behaviour(conn: socket.socket, index: int, server: FakeServer) -> None:
        conn.sendall(data)
        server.hold(conn, 3)

    return behaviour


@pytest.mark.parametrize(
    ("behaviour", "expected", "max_ms"),
    [
        (_close_at_once, "EOFError", 800),  # closes during CONNACK: nothing sent
        (_half_connack, "EOFError", 800),  # closes half-way through CONNACK
        (_reset, ("EOFError", "OSError"), 800),  # connection reset instead of CONNACK
        (_silent, "OSError: [Errno 110] ETIMEDOUT", 1800),  # never answers: connect_timeout (1 s)
        (_send(b"\x20\x03\x00\x00\x00"), "MQTTException: malformed CONNACK", 800),
        (_send(b"\x30\x02\x00\x00"), "MQTTException: malformed CONNACK", 800),  # another packet instead
        (_send(b"\x20\x02\x00\x09"), "MQTTException: connection refused: CONNACK return code 9 (unknown)", 800),
    ],
    ids=["close", "half-connack", "reset", "silent", "connack-length", "not-connack", "unknown-code"],
)
def test_bad_connack_raises_clearly_and_in_time(fake_server: Callable[[Behaviour], FakeServer],
                                                behaviour: Behaviour, expected: str | tuple[str, ...],
                                                max_ms: int) -> None:
    server = fake_server(behaviour)
    result = run_scenario("fake_connect", file=STRESS, port=server.port, timeout=10)
    assert server.connections == 1 and server.connects[0][0] == 0x10  # it did send CONNECT
    assert result["connected"] is False
    assert result["error"] is not None and result["error"].startswith(expected), result
    assert result["ms"] < max_ms, result


def _after_suback(data: Callable[[int], bytes], then_close: bool = False) -> Behaviour:
    def behaviour(conn: socket.socket, index: int, server: FakeServer) -> None:
        conn.sendall(CONNACK)
        server.suback(conn)
        conn.sendall(data(index))
        if not then_close:
            server.hold(conn, 3)

    return behaviour


def _publish(topic: bytes, payload_len: int, qos: int, pid: int = 0, declared: int | None = None) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic + (pid.to_bytes(2, "big") if qos else b"")
    n = len(body) + payload_len if declared is None else declared
    return bytes((0x30 | qos << 1,)) + remaining_length(n) + body


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x30\xff\xff\xff\xff\x01", "MQTTException: malformed remaining length"),
        (CONNACK, "MQTTException: unexpected packet 0x20"),  # a second CONNACK
        (b"\x40\x03\x00\x01\x00", "MQTTException: unexpected packet 0x40"),  # PUBACK of the wrong length
        (b"\x34\x05\x00\x01t\x00\x01", "MQTTException: QoS 2 PUBLISH not supported"),
        (b"\x30\x05\x00\x64abc", "MQTTException: truncated PUBLISH"),  # topic length 100 in 3 bytes
    ],
    ids=["remaining-length", "second-connack", "bad-puback", "qos2", "truncated-publish"],
)
def test_malformed_packet_reconnects(fake_server: Callable[[Behaviour], FakeServer], data: bytes,
                                     expected: str) -> None:
    # The fake server keeps each connection open after the bad packet: only the client's own error handling
    # ends it, and run() reconnects to meet the same packet again (run() notices the loss at its next tick,
    # keepalive / 4 = 250 ms, then waits the 50 ms backoff).
    server = fake_server(_after_suback(lambda index: data))
    t0 = time.monotonic()
    result = run_scenario("fake_session", file=STRESS, port=server.port, timeout=10, DURATION_MS=1200, KEEPALIVE=1)
    assert time.monotonic() - t0 < 6
    assert result["run_done"] is False, result  # run() did not die
    assert result["reconnects"] >= 2 and server.connections >= 3, (result, server.connections)
    assert result["errors"] and all(e.startswith(expected) for e in result["errors"]), result


def test_oversized_incoming_publish_discarded_and_acknowledged(fake_server: Callable[[Behaviour], FakeServer]
                                                               ) -> None:
    # 50 kB QoS 1 PUBLISH to a client with max_packet=1000: skipped in pieces, counted, PUBACKed; the next
    # PUBLISH is delivered on the same connection.
    def behaviour(conn: socket.socket, index: int, server: FakeServer) -> None:
        conn.sendall(CONNACK)
        server.suback(conn)
        conn.sendall(_publish(b"t/big", 50_000, 1, 0x1234) + b"z" * 50_000)
        conn.sendall(_publish(b"t/ok", 10, 1, 7) + b"0123456789")
        conn.settimeout(3)
        server.packets.append(read_packet(conn))
        server.packets.append(read_packet(conn))
        server.hold(conn, 3)

    server = fake_server(behaviour)
    result = run_scenario("fake_session", file=STRESS, port=server.port, timeout=10, DURATION_MS=800)
    assert result["oversize"] == 1 and result["got"] == [["t/ok", 10]], result
    assert result["reconnects"] == 0 and result["errors"] == [], result
    assert server.connections == 1
    assert server.packets[1:3] == [b"\x40\x02\x12\x34", b"\x40\x02\x00\x07"]  # both acknowledged, in order


def test_oversized_incoming_publish_that_never_completes_is_cut_by_keepalive(
        fake_server: Callable[[Behaviour], FakeServer]) -> None:
    # A PUBLISH announcing 200 MB, then silence: the client must not wait for it forever. It pings after
    # keepalive / 2 and gives the connection up one keepalive later without PINGRESP, then reconnects.
    server = fake_server(_after_suback(lambda index: _publish(b"t/huge", 200_000_000, 0) + b"abc"))
    t0 = time.monotonic()
    result = run_scenario("fake_session", file=STRESS, port=server.port, timeout=12, DURATION_MS=3500, KEEPALIVE=1)
    assert time.monotonic() - t0 < 9
    assert result["run_done"] is False and result["oversize"] == 0, result
    assert result["reconnects"] >= 1 and server.connections >= 2, (result, server.connections)
    assert result["errors"] and set(result["errors"]) == {"MQTTException: no PINGRESP within keepalive"}, result
    assert any(p.startswith(b"\xc0\x00") for p in server.packets)  # it did ping


def test_random_garbage_then_close_never_hangs(fake_server: Callable[[Behaviour], FakeServer]) -> None:
    # Each connection gets 1 ... 64 random bytes (seeded per connection) after CONNACK and SUBACK, then the
    # server closes: every connection must end and be followed by a reconnect (about 3 a second, see above).
    def garbage(index: int) -> bytes:
        rng = random.Random(index)
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 65)))

    server = fake_server(_after_suback(garbage, then_close=True))
    t0 = time.monotonic()
    result = run_scenario("fake_session", file=STRESS, port=server.port, timeout=10, DURATION_MS=3000, KEEPALIVE=1)
    assert time.monotonic() - t0 < 8
    assert result["run_done"] is False, result
    assert server.connections >= 8 and result["reconnects"] >= 7, (result, server.connections)
    kinds = {e.split(":")[0] for e in result["errors"]}
    assert kinds <= {"EOFError", "MQTTException", "OSError"}, result

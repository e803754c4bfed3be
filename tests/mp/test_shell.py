# mptest: runtimes=unix
# apps.shell (the asyncio shell around the app cores) on the stock unix runtime. The test_* functions need no
# broker: outbox, rate limit, JSON encoding, settings, secrets, and a shell whose broker is unreachable. The
# scenario_* functions run against a real mosquitto started by tests/test_shell.py (environment as for
# tests/mp/test_mqtt.py: TINYSENSE_MQTT_PORT, _ID, _GATES, ...), which checks with paho-mqtt what arrived.
#
# The unix runtime has no tinysense C modules, so the app core here is CountingCore, a pure-Python stand-in with
# the same contract (chunk in -> list of message dicts out) and state that a rebuild would reset; the source is
# TimedSource, which produces a chunk every `period_ms` of real time into a FIFO of `depth` chunks and counts
# overruns when the shell does not read in time (as drivers.i2s_mic does). The real cores and sensors are tested
# in the host firmware (tests/mp/test_apps.py).
import array
import asyncio
import json
import os
import time

from apps import shell
from drivers import mqtt
from mptest import raises
from mqtt_scenario import bound_port, env, result, say, until

# --- stand-ins for the sensor side ------------------------------------------------------------------------------


class CountingCore:
    """One message per `per` chunks: {"interval": index since start, "sum": sum of the interval's samples}."""

    def __init__(self, per=1, burst=1):
        self.per = per
        self.burst = burst  # messages per interval (rate limit tests)
        self.k = 0
        self.interval = 0
        self.acc = 0
        self.fail_on = -1  # chunk number whose processing raises (error handling)
        self.chunks = 0

    def process(self, chunk):
        self.chunks += 1
        if self.chunks == self.fail_on:
            raise ValueError("bad chunk")
        for v in chunk:
            self.acc += v
        self.k += 1
        if self.k < self.per:
            return ()
        out = []
        for _ in range(self.burst):
            out.append({"interval": self.interval, "sum": self.acc})
            self.interval += 1
        self.k = 0
        self.acc = 0
        return out


class TimedSource:
    """A chunk of 4 samples (values 1, 2, 3, 4 + 4 * chunk index) every period_ms; a FIFO of `depth` chunks."""

    def __init__(self, period_ms=20, depth=8):
        self.period = period_ms
        self.depth = depth
        self.t0 = time.ticks_ms()
        self.made = 0  # chunks produced (including overrun ones)
        self.ready = 0
        self.overruns = 0
        self.buf = array.array("h", (0, 0, 0, 0))

    def read(self):
        due = time.ticks_diff(time.ticks_ms(), self.t0) // self.period
        if due > self.made:
            self.ready += due - self.made
            self.made = due
            if self.ready > self.depth:
                self.overruns += self.ready - self.depth
                self.ready = self.depth
        if not self.ready:
            return None
        index = self.made - self.ready
        self.ready -= 1
        for i in range(4):
            self.buf[i] = 4 * index + i + 1
        return self.buf


class StandInWifi:
    """The Wi-Fi stand-in (no Wi-Fi hardware here): connect() makes it 'associated' after up_ms; drop() loses it."""

    def __init__(self, up_ms=0, up=False):
        self.up_ms = up_ms
        self.up_at = time.ticks_ms() if up else None
        self.connects = 0

    def connect(self):
        self.connects += 1
        self.up_at = time.ticks_add(time.ticks_ms(), self.up_ms)

    def isconnected(self):
        return self.up_at is not None and time.ticks_diff(time.ticks_ms(), self.up_at) >= 0

    def drop(self):
        self.up_at = None


# --- no broker ----------------------------------------------------------------------------------------------------


def test_outbox_keeps_newest_in_order_and_counts_drops():
    box = shell.Outbox(3)
    assert len(box) == 0 and box.peek() is None
    with raises(IndexError, "empty"):
        box.pop()
    for i in range(5):
        box.put(i)
    assert (len(box), box.dropped, box.peek()) == (3, 2, 2)
    assert [box.pop(), box.pop()] == [2, 3]
    box.put(5)
    box.put(6)
    assert [box.pop() for _ in range(len(box))] == [4, 5, 6]
    assert box.dropped == 2
    with raises(ValueError, "at least 1"):
        shell.Outbox(0)


def test_rate_limit_token_bucket():
    now = [1000]
    lim = shell.RateLimit(4, burst=2, clock=lambda: now[0])  # 4 messages/s: one per 250 ms, 2 back to back
    assert [lim.take(), lim.take(), lim.take()] == [True, True, False]
    assert lim.wait_ms() == 250
    now[0] += 100
    assert not lim.take() and lim.wait_ms() == 150
    now[0] += 150
    assert lim.take() and not lim.take()
    now[0] += 10000  # a long pause refills only up to the burst
    assert [lim.take() for _ in range(3)] == [True, True, False]
    free = shell.RateLimit(0)
    assert all(free.take() for _ in range(1000)) and free.wait_ms() == 0
    slow = shell.RateLimit(0.5, clock=lambda: now[0])  # one message per 2 s
    assert slow.take() and slow.wait_ms() == 2000
    with raises(ValueError, "burst"):
        shell.RateLimit(1, burst=0)


def test_encode_json_with_sequence_number_and_null_for_non_finite():
    inf = float("inf")
    payload = shell.encode({"laeq": 61.5, "lafmin": None, "x": -inf, "y": inf - inf, "class": "walk"}, 7)
    assert isinstance(payload, bytes)
    assert json.loads(payload) == {"laeq": 61.5, "lafmin": None, "x": None, "y": None, "class": "walk", "n": 7}


def test_topics_and_settings():
    assert shell.topics("tinysense/node1", "soundlevel") == (
        "tinysense/node1/soundlevel/level", "tinysense/node1/soundlevel/status", "tinysense/node1/soundlevel/stats")
    assert shell.topics("t", "har")[0] == "t/har/activity"
    with raises(shell.ConfigError, "not one of"):
        shell.topics("t", "radio")
    # config.json as tinysense.device_config writes it today (no shell keys): the defaults
    config = {"schema": 1, "app": "soundlevel", "mqtt": {"host": "10.0.0.2", "port": 1883, "topic_prefix": "x"}}
    assert shell.settings(config) == shell.DEFAULTS
    config["mqtt"].update(max_rate=2, queue=5)
    s = shell.settings(config)
    assert s["max_rate"] == 2 and s["queue"] == 5 and s["qos"] == 1
    for key, bad in (("qos", 2), ("queue", 0), ("inflight", "8")):
        with raises(shell.ConfigError, key):
            shell.settings({"app": "har", "mqtt": {key: bad}})


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def test_secrets_file():
    base = "/tmp/tinysense_mptest_shell_%d" % time.ticks_us()
    assert shell.load_secrets(base + "_missing.json") == {}
    good = _write(base + "_good.json", '{"wifi": {"ssid": "lab", "password": "pw"}, "mqtt": {"user": "u"}}')
    assert shell.load_secrets(good) == {"wifi": {"ssid": "lab", "password": "pw"}, "mqtt": {"user": "u"}}
    for text, match in (("{", "not valid JSON"), ("[]", "not a JSON object"), ('{"wifi": 3}', "not an object"),
                        ('{"wifi": {"pass": "x"}}', "unknown key 'pass'"), ('{"mqtt": {"user": 7}}', "not a string")):
        with raises(shell.ConfigError, match):
            shell.load_secrets(_write(base + "_bad.json", text))
    for p in (good, base + "_bad.json"):
        os.remove(p)
    # On the unix runtime there is no `network` module: the host's network stands in for Wi-Fi.
    assert isinstance(shell.wifi_from({}), shell.HostNetwork)
    with raises(shell.ConfigError, "missing"):
        shell.build(base + "_none.json", base + "_none.json")


def test_unreachable_broker_sensor_loop_runs_queue_bounded():
    # Nobody listens on the port: the client keeps failing to connect (backoff 0.1 s); the sensor loop is not
    # held up (no overruns), the outbox keeps the newest 5, the rest are dropped and counted; a chunk that makes
    # the core raise is counted and skipped.
    holder, port = bound_port(47500, 47700)
    try:
        core = CountingCore(per=1)
        core.fail_on = 3
        source = TimedSource(period_ms=10, depth=4)
        client = mqtt.MQTTClient("c", "127.0.0.1", port, reconnect_backoff=(0.1,), connect_timeout=1)
        sh = shell.Shell("har", core, source, client, queue=5, stats_interval_s=0, wifi=StandInWifi(up=True))
        asyncio.run(sh.run(duration_ms=600))
    finally:
        holder.close()
    assert source.overruns == 0, source.overruns
    assert 40 <= sh.chunks <= 70, sh.chunks
    assert sh.errors == 1 and sh.sent == 0 and sh.connections == 0
    assert sh.produced == sh.chunks - 1 and len(sh.outbox) == 5 and sh.dropped == sh.produced - 5
    newest = [json.loads(sh.outbox.pop()) for _ in range(5)]
    assert [m["n"] for m in newest] == list(range(sh.produced - 5, sh.produced))
    assert [m["interval"] for m in newest] == [m["n"] for m in newest]
    assert isinstance(client.last_error, OSError) and not client.connected


# --- scenarios against a real broker (run by tests/test_shell.py) ------------------------------------------------


def _client(**kwargs):
    config = {"app": "soundlevel", "mqtt": {"host": "127.0.0.1", "port": int(env("PORT")),
                                            "topic_prefix": env("PREFIX")}}
    kwargs.setdefault("reconnect_backoff", (0.1, 0.2, 0.4))
    return shell.make_client(config, {}, env("ID"), **kwargs)


def _summary(sh, source):
    return dict(chunks=sh.chunks, produced=sh.produced, sent=sh.sent, dropped=sh.dropped, oversize=sh.oversize,
                errors=sh.errors, overruns=source.overruns, connections=sh.connections,
                reconnects=sh.client.reconnects, mqtt_dropped=sh.client.dropped, interval=sh.core.interval,
                queued=len(sh.outbox))


def scenario_flow():
    # Steady state: a message every 100 ms, stats every 500 ms; one message too large for max_payload.
    async def main():
        core = CountingCore(per=5)
        source = TimedSource(period_ms=20)
        sh = shell.Shell("soundlevel", core, source, _client(), prefix=env("PREFIX"), stats_interval_s=0.5,
                         max_payload=200)
        task = asyncio.create_task(sh.run())
        await asyncio.sleep_ms(700)
        sh.emit({"big": "x" * 300})  # dropped: over max_payload (its "n" is used up)
        await asyncio.sleep_ms(800)
        sh.stop()
        await task
        result(**_summary(sh, source))

    asyncio.run(main())


def scenario_outage():
    # The test stops the broker after UP and starts it again 1.5 s later. 20 messages/s, outbox of 10.
    async def main():
        core = CountingCore(per=1)
        source = TimedSource(period_ms=50, depth=5)
        sh = shell.Shell("soundlevel", core, source, _client(keepalive=5), prefix=env("PREFIX"), queue=10,
                         inflight=4, max_rate=0, stats_interval_s=0)
        task = asyncio.create_task(sh.run())
        assert await until(lambda: sh.sent >= 10, 5000), "nothing sent"
        say("UP")
        assert await until(lambda: not sh.client.connected, 5000), "broker stop not noticed"
        down_t, down_chunks = time.ticks_ms(), sh.chunks
        assert await until(lambda: sh.connections >= 2, 10000), "no reconnect"
        outage = dict(ms=time.ticks_diff(time.ticks_ms(), down_t), chunks=sh.chunks - down_chunks)
        assert await until(lambda: not len(sh.outbox) and not sh.client.pending, 5000), "queue not flushed"
        await asyncio.sleep_ms(300)
        sh.stop()
        await task
        result(outage=outage, **_summary(sh, source))

    asyncio.run(main())


def scenario_rate():
    # 30 messages at once; at most 20/s after a burst of 5: about 1.25 s to send them all.
    async def main():
        core = CountingCore(per=1, burst=30)
        source = TimedSource(period_ms=10000)
        source.ready = 1  # one chunk at once, the next in 10 s
        sh = shell.Shell("har", core, source, _client(), prefix=env("PREFIX"), max_rate=20, burst=5, queue=50,
                         inflight=8, stats_interval_s=0)
        task = asyncio.create_task(sh.run())
        assert await until(lambda: sh.connections >= 1, 3000)
        t0 = time.ticks_ms()
        assert await until(lambda: sh.sent == 30 and not sh.client.pending, 5000), sh.sent
        sent_ms = time.ticks_diff(time.ticks_ms(), t0)
        sh.stop()
        await task
        result(sent_ms=sent_ms, **_summary(sh, source))

    asyncio.run(main())


def scenario_wifi():
    # Wi-Fi is down at start and associates 300 ms after connect(); MQTT starts only then, and what the sensor
    # produced meanwhile is delivered. Then Wi-Fi drops: the shell calls connect() again. Calling connect()
    # restarts the association, so the shell must leave it time (wifi_backoff_ms) before trying again.
    async def main():
        wifi = StandInWifi(up_ms=300)
        core = CountingCore(per=5)
        source = TimedSource(period_ms=20)
        t0 = time.ticks_ms()
        sh = shell.Shell("soundlevel", core, source, _client(), prefix=env("PREFIX"), wifi=wifi,
                         stats_interval_s=0, wifi_backoff_ms=(1000,))
        task = asyncio.create_task(sh.run())
        assert await until(lambda: sh.client.connected, 3000), "no MQTT connection after Wi-Fi came up"
        produced_before = sh.produced
        started_ms = time.ticks_diff(sh.mqtt_started_ms, t0)
        assert await until(lambda: sh.produced >= produced_before + 3, 3000)
        connects_before_drop = wifi.connects
        wifi.drop()
        assert await until(lambda: wifi.connects > connects_before_drop and wifi.isconnected(), 3000)
        await asyncio.sleep_ms(300)
        sh.stop()
        await task
        result(started_ms=started_ms, produced_before=produced_before, wifi_connects=sh.wifi_connects,
                connects=wifi.connects, **_summary(sh, source))

    asyncio.run(main())


def scenario_files():
    # config.json and secrets.json written by tests/test_shell.py (tinysense.device_config + credentials of the
    # broker's password listener); the stand-in core and source instead of the board's sensors. The test kills
    # the process after READY (will: retained "offline").
    def stand_in_app(config):
        assert config["app"] == "soundlevel"
        return CountingCore(per=5), TimedSource(period_ms=20)

    async def main():
        sh = shell.build(env("CONFIG"), env("SECRETS"), app_factory=stand_in_app, stats_interval_s=0,
                         client={"reconnect_backoff": (0.2,)})
        task = asyncio.create_task(sh.run())
        ok = await until(lambda: sh.sent >= 5 and not sh.client.pending, 3000)
        result(ok=ok, topic=sh.topic, server=sh.client.server, error=repr(sh.client.last_error),
                client_id=sh.client.client_id, **_summary(sh, sh.source))
        say("READY")
        await asyncio.sleep_ms(10000)
        task.cancel()

    asyncio.run(main())

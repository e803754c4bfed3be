# mptest: runtimes=unix
# drivers.mqtt on the stock unix runtime. The test_* functions need no broker: packet encoding and decoding,
# topic matching, the backoff schedule and the outgoing queue's drop accounting. The scenario_* functions
# need a real mosquitto: tests/test_mqtt.py starts one and runs each of them as
#   micropython tests/mp/_mptest_runner.py tests/mp/test_mqtt.py scenario_NAME
# with TINYSENSE_MQTT_PORT (and _AUTH_PORT, _TLS_PORT, _CA, _USER, _PASSWORD, _ID) in the environment,
# checking with paho-mqtt what the broker saw. Lines "@@result {json}" report back to it.
import asyncio
import time

from drivers import mqtt
from mptest import heap_allocated_during, raises
from mqtt_scenario import bound_port, env, env_port, gate, result, say, until

# --- packets -------------------------------------------------------------------------------------------------


def test_remaining_length_vectors():
    vectors = [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16383, b"\xff\x7f"),
        (16384, b"\x80\x80\x01"),
        (2097151, b"\xff\xff\x7f"),
        (2097152, b"\x80\x80\x80\x01"),
        (268435455, b"\xff\xff\xff\x7f"),
    ]
    for n, encoded in vectors:
        assert mqtt.remaining_length(n) == encoded, n
        assert mqtt.decode_remaining_length(b"\x30" + encoded + b"zz", 1) == (n, 1 + len(encoded))
    with raises(ValueError, "range"):
        mqtt.remaining_length(268435456)
    with raises(ValueError, "range"):
        mqtt.remaining_length(-1)
    with raises(ValueError, "truncated"):
        mqtt.decode_remaining_length(b"\x80\x80")
    with raises(ValueError, "4 bytes"):
        mqtt.decode_remaining_length(b"\xff\xff\xff\xff\x01")


def test_connect_packet_minimal():
    assert mqtt.connect_packet("c1", 60) == b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02c1"


def test_connect_packet_full():
    pkt = mqtt.connect_packet("dev", 2, clean_session=False, user="u", password=b"pw",
                              will=(b"t/w", b"bye", 1, True))
    body = b"\x00\x04MQTT\x04" + bytes((0x80 | 0x40 | 0x20 | 0x08 | 0x04, 0, 2))
    body += b"\x00\x03dev" + b"\x00\x03t/w" + b"\x00\x03bye" + b"\x00\x01u" + b"\x00\x02pw"
    assert pkt == b"\x10" + bytes((len(body),)) + body
    with raises(ValueError, "keepalive"):
        mqtt.connect_packet("c", 70000)


def test_connack():
    assert mqtt.parse_connack(b"\x20\x02\x00\x00") == (False, 0)
    assert mqtt.parse_connack(b"\x20\x02\x01\x00") == (True, 0)
    assert mqtt.parse_connack(b"\x20\x02\x00\x05") == (False, 5)
    with raises(mqtt.MQTTException, "malformed CONNACK"):
        mqtt.parse_connack(b"\x30\x02\x00\x00")
    e = mqtt.connack_error(4)
    assert "CONNACK return code 4" in str(e) and "bad user name or password" in str(e)
    assert "CONNACK return code 9 (unknown)" in str(mqtt.connack_error(9))


def test_publish_packet():
    assert mqtt.publish_packet("a/b", b"hi") == b"\x30\x07\x00\x03a/bhi"
    assert mqtt.publish_packet("a/b", "hi", qos=1, retain=True, pid=0x1234) == b"\x33\x09\x00\x03a/b\x12\x34hi"
    assert mqtt.publish_packet("t", b"", qos=1, pid=1, dup=True) == b"\x3a\x05\x00\x01t\x00\x01"
    big = mqtt.publish_packet("t", b"x" * 200)
    assert big[:4] == b"\x30\xcb\x01\x00" and len(big) == 3 + 203
    assert isinstance(big, bytearray)  # the DUP bit is set in place on retransmission
    with raises(ValueError, "qos"):
        mqtt.publish_packet("t", b"", qos=2, pid=1)
    with raises(ValueError, "packet id"):
        mqtt.publish_packet("t", b"", qos=1, pid=0)
    for bad in ("", "a/+", "a/#"):
        with raises(ValueError, "invalid topic name"):
            mqtt.publish_packet(bad, b"")


def test_parse_publish_roundtrip():
    for qos, retain, dup, pid in ((0, False, False, 0), (1, True, False, 7), (1, False, True, 65535)):
        pkt = mqtt.publish_packet("s/x", b"\x00payload\xff", qos, retain, pid, dup)
        n, off = mqtt.decode_remaining_length(pkt, 1)
        assert off + n == len(pkt)
        assert mqtt.parse_publish(pkt[0], pkt[off:]) == (b"s/x", b"\x00payload\xff", qos, retain, dup, pid)
    with raises(mqtt.MQTTException, "QoS 2"):
        mqtt.parse_publish(0x34, b"\x00\x01t\x00\x01")
    with raises(mqtt.MQTTException, "truncated"):
        mqtt.parse_publish(0x32, b"\x00\x05ab")


def test_small_packets():
    assert mqtt.puback_packet(0x0102) == b"\x40\x02\x01\x02"
    assert mqtt.PINGREQ == b"\xc0\x00"
    assert mqtt.DISCONNECT == b"\xe0\x00"
    assert mqtt.subscribe_packet(10, [("a/+", 1), (b"b/#", 0)]) == b"\x82\x0e\x00\x0a\x00\x03a/+\x01\x00\x03b/#\x00"
    for bad in ("", "a/#/b", "a#", "a/b+", "+a"):
        with raises(ValueError, "invalid topic filter"):
            mqtt.subscribe_packet(1, [(bad, 0)])
    with raises(ValueError, "qos"):
        mqtt.subscribe_packet(1, [("a", 2)])


def test_topic_matches():
    cases = [
        (b"a/b", b"a/b", True),
        (b"a/b", b"a/c", False),
        (b"a/b", b"a/b/c", False),
        (b"a/b/c", b"a/b", False),
        (b"a/+", b"a/b", True),
        (b"a/+", b"a/", True),
        (b"a/+", b"a/b/c", False),
        (b"a/+/c", b"a/xyz/c", True),
        (b"+/+", b"a/b", True),
        (b"+", b"a/b", False),
        (b"a/#", b"a", True),
        (b"a/#", b"a/b/c", True),
        (b"a/#", b"ab", False),
        (b"#", b"a/b", True),
        (b"#", b"$SYS/x", False),
        (b"+/x", b"$SYS/x", False),
        (b"$SYS/#", b"$SYS/x", True),
        (b"a/+/#", b"a/b", True),
        (b"ab", b"a", False),
    ]
    for filt, topic, expected in cases:
        assert mqtt.topic_matches(filt, topic) == expected, (filt, topic)
    assert heap_allocated_during(lambda: mqtt.topic_matches(b"s/+/level/#", b"s/node7/level/a/b")) == 0


def test_backoff_schedule():
    schedule = (1, 2, 4, 8, 30)
    assert [mqtt.backoff_ms(schedule, i) for i in range(8)] == [1000, 2000, 4000, 8000] + [30000] * 4
    assert mqtt.backoff_ms((0.25,), 5) == 250


def test_client_arguments():
    with raises(ValueError, "client id"):
        mqtt.MQTTClient("", "127.0.0.1", clean_session=False)
    with raises(ValueError, "queue_size"):
        mqtt.MQTTClient("c", "127.0.0.1", queue_size=0)
    with raises(ValueError, "will qos"):
        mqtt.MQTTClient("c", "127.0.0.1", will=("t", "m", 2))
    with raises(ValueError, "invalid topic name"):
        mqtt.MQTTClient("c", "127.0.0.1", will=("t/#", "m"))
    with raises(ValueError, "will ="):
        mqtt.MQTTClient("c", "127.0.0.1", will=("t",))
    c = mqtt.MQTTClient("c", "127.0.0.1", will=("t", "m"))
    assert not c.connected and c.pending == 0 and c.dropped == 0


def test_queue_drops_oldest_and_counts():
    c = mqtt.MQTTClient("c", "127.0.0.1", queue_size=4)
    for i in range(6):
        c.publish_nowait("q/%d" % i, b"m%d" % i, qos=i % 2)
    assert (c.dropped, c.pending) == (2, 4)
    for k in range(4):
        i = k + 2
        e = c._q[k]
        assert bytes(e[0]) == mqtt.publish_packet("q/%d" % i, b"m%d" % i, i % 2, False, e[1]), i
    assert len(c._q) == 4  # capacity stays 4
    with raises(ValueError, "qos"):
        c.publish_nowait("q", b"", qos=2)
    assert (c.dropped, c.pending) == (2, 4)


def test_publish_waiting_for_puback_returns_false_when_dropped():
    c = mqtt.MQTTClient("c", "127.0.0.1", queue_size=2)

    async def main():
        tasks = [asyncio.create_task(c.publish("q", b"%d" % i, qos=1)) for i in range(3)]
        await asyncio.sleep_ms(20)
        assert tasks[0].done() and not tasks[1].done() and not tasks[2].done()
        assert await tasks[0] is False
        # A PUBACK for the second message completes it; the third stays queued.
        c._on_puback(c._q[0][1])
        await asyncio.sleep_ms(10)
        assert await tasks[1] is True
        assert not tasks[2].done() and c.pending == 1 and c.dropped == 1
        tasks[2].cancel()

    asyncio.run(main())


def test_connect_refused_raises_oserror():
    holder, port = bound_port(47300, 47500)
    c = mqtt.MQTTClient("c", "127.0.0.1", port, connect_timeout=3)

    async def main():
        t0 = time.ticks_ms()
        with raises(OSError):
            await c.connect()
        assert time.ticks_diff(time.ticks_ms(), t0) < 2000
        assert not c.connected

    try:
        asyncio.run(main())
    finally:
        holder.close()


# --- scenarios against a real broker (run by tests/test_mqtt.py) ---------------------------------------------


def scenario_publish():
    async def main():
        c = mqtt.MQTTClient(env("ID"), "127.0.0.1", env_port())
        present = await c.connect()
        assert c.connected and present is False
        assert await c.publish("tinysense/pub/q0", b"zero") is True
        assert await c.publish("tinysense/pub/q1", "one", qos=1) is True
        assert await c.publish("tinysense/pub/retained", b"kept", qos=1, retain=True) is True
        assert await c.publish("tinysense/pub/q1", b"\x00\xffbinary", qos=1) is True
        assert c.pending == 0
        await c.disconnect()
        assert not c.connected
        result(dropped=c.dropped, reconnects=c.reconnects, retransmits=c.retransmits)

    asyncio.run(main())


def scenario_subscribe():
    got = []

    def on_message(topic, msg, retained):
        got.append([topic, msg.decode(), retained])

    async def main():
        c = mqtt.MQTTClient(env("ID"), "127.0.0.1", env_port(), max_packet=100)
        await c.connect()
        assert await c.subscribe("tinysense/sub/+/x", 1, on_message) == 1
        assert await c.subscribe("tinysense/sub/tree/#", 0, on_message) == 0
        run = asyncio.create_task(c.run())
        say("READY")
        # tests/test_mqtt.py publishes messages of which some match, one too large, then "tinysense/sub/end/x".
        assert await until(lambda: got and got[-1][0] == "tinysense/sub/end/x", 5000), got
        await c.disconnect()
        await run
        result(got=got, reconnects=c.reconnects, callback_errors=c.callback_errors, oversize=c.oversize)

    asyncio.run(main())


def scenario_keepalive():
    async def main():
        pinging = mqtt.MQTTClient(env("ID") + "-ping", "127.0.0.1", env_port(), keepalive=2)
        silent = mqtt.MQTTClient(env("ID") + "-silent", "127.0.0.1", env_port(), keepalive=2)
        await pinging.connect()
        await silent.connect()  # never runs run(): no pings, so the broker drops it after 1.5 x 2 s
        run = asyncio.create_task(pinging.run())
        t0 = time.ticks_ms()
        # mosquitto checks keepalive once a second in whole seconds: the silent one goes after 3 ... 5 s.
        await until(lambda: not silent.connected, 6500, 50)
        silent_lost_ms = time.ticks_diff(time.ticks_ms(), t0)
        await asyncio.sleep_ms(max(0, 4000 - silent_lost_ms))
        values = dict(pinging_connected=pinging.connected, pings=pinging.pings, reconnects=pinging.reconnects,
                      silent_connected=silent.connected, silent_error=repr(silent.last_error),
                      silent_lost_ms=silent_lost_ms, idle_ms=time.ticks_diff(time.ticks_ms(), t0))
        values["puback"] = await asyncio.wait_for_ms(pinging.publish("tinysense/ka", b"alive", qos=1), 2000)
        await pinging.disconnect()
        await run
        result(**values)

    asyncio.run(main())


def scenario_will_killed():
    # The test kills this process after READY: the broker sees the socket close without DISCONNECT.
    async def main():
        c = mqtt.MQTTClient(env("ID"), "127.0.0.1", env_port(), will=("tinysense/will/killed", b"offline", 1, True))
        await c.connect()
        asyncio.create_task(c.run())
        say("READY")
        await asyncio.sleep_ms(10000)
        raise AssertionError("not killed")

    asyncio.run(main())


def scenario_will_closed():
    # One client drops its socket without DISCONNECT (will published), one disconnects cleanly (will discarded).
    async def main():
        dropped = mqtt.MQTTClient(env("ID") + "-drop", "127.0.0.1", env_port(), will=("tinysense/will/drop", "lost"))
        clean = mqtt.MQTTClient(env("ID") + "-clean", "127.0.0.1", env_port(), will=("tinysense/will/clean", "lost"))
        await dropped.connect()
        await clean.connect()
        dropped._close()
        await clean.disconnect()
        result(dropped_connected=dropped.connected, clean_connected=clean.connected)

    asyncio.run(main())


def scenario_reconnect():
    # The test stops the broker after UP, restarts it on the same port after QUEUED.
    got = []

    async def main():
        c = mqtt.MQTTClient(env("ID"), "127.0.0.1", env_port(), queue_size=4, keepalive=5,
                            reconnect_backoff=(0.2, 0.4, 0.8))
        await c.connect()
        await c.subscribe("tinysense/rcin", 1, lambda t, m, r: got.append(m.decode()))
        run = asyncio.create_task(c.run())
        assert await c.publish("tinysense/rc/before", b"b", qos=1) is True
        say("UP")
        assert await until(lambda: not c.connected, 8000), "broker stop not noticed"
        say("DOWN")
        tasks = [asyncio.create_task(c.publish("tinysense/rc/m", b"%d" % i, qos=1)) for i in range(6)]
        await asyncio.sleep_ms(50)
        queued = dict(dropped=c.dropped, pending=c.pending, first_two=[t.done() for t in tasks[:2]])
        say("QUEUED")
        t0 = time.ticks_ms()
        assert await until(lambda: c.pending == 0, 10000), "queue not delivered after the restart"
        delivered_ms = time.ticks_diff(time.ticks_ms(), t0)
        results = []
        for t in tasks:
            results.append(await t)
        # The subscription was made again on the new (clean) session: paho publishes to it now.
        say("DELIVERED")
        await until(lambda: got, 5000)
        result(queued=queued, results=results, reconnects=c.reconnects, dropped=c.dropped,
                delivered_ms=delivered_ms, got=got)
        await c.disconnect()
        await run

    asyncio.run(main())


def scenario_retransmit():
    # The test freezes the broker (SIGSTOP) at gate "paused": no PUBACK, so the message goes again with DUP
    # every ack_timeout; after RETRIED the broker resumes and acknowledges.
    async def main():
        c = mqtt.MQTTClient(env("ID"), "127.0.0.1", env_port(), keepalive=30, ack_timeout=0.4)
        await c.connect()
        run = asyncio.create_task(c.run())
        say("READY")
        await gate("paused")
        task = asyncio.create_task(c.publish("tinysense/rt", b"again", qos=1))
        assert await until(lambda: c.retransmits >= 2, 3000), c.retransmits
        say("RETRIED")
        puback = await asyncio.wait_for_ms(task, 5000)
        result(puback=puback, retransmits=c.retransmits, reconnects=c.reconnects, pending=c.pending)
        await c.disconnect()
        await run

    asyncio.run(main())


def scenario_stalled_broker():
    # The broker is frozen (SIGSTOP) between gates "paused" and "resumed": the TCP connection stays up but
    # PINGRESP never comes, so the client must give up on it, and reconnect once the broker answers again.
    async def main():
        c = mqtt.MQTTClient(env("ID"), "127.0.0.1", env_port(), keepalive=2, connect_timeout=1,
                            reconnect_backoff=(0.2,))
        await c.connect()
        run = asyncio.create_task(c.run())
        say("READY")
        await gate("paused")
        t0 = time.ticks_ms()
        assert await until(lambda: not c.connected, 6000), "a silent broker was not noticed"
        lost_ms = time.ticks_diff(time.ticks_ms(), t0)
        lost_error = repr(c.last_error)
        say("LOST")
        await gate("resumed")
        assert await until(lambda: c.connected, 6000), "no reconnect after the broker resumed"
        puback = await asyncio.wait_for_ms(c.publish("tinysense/stall", b"back", qos=1), 3000)
        result(lost_ms=lost_ms, lost_error=lost_error, puback=puback, reconnected=c.reconnects >= 1)
        await c.disconnect()
        await run

    asyncio.run(main())


def scenario_persistent_subscribe():
    async def main():
        c = mqtt.MQTTClient(env("ID"), "127.0.0.1", env_port(), clean_session=False)
        present = await c.connect()
        assert await c.subscribe("tinysense/ps/#", 1, lambda t, m, r: None) == 1
        await c.disconnect()
        result(session_present=present)

    asyncio.run(main())


def scenario_persistent_resume():
    # A fresh process (as after a reboot): callbacks are registered before connect(), the broker has the
    # session and delivers what was published meanwhile; wait a little for anything more.
    got = []

    async def main():
        c = mqtt.MQTTClient(env("ID"), "127.0.0.1", env_port(), clean_session=False)
        await c.subscribe("tinysense/ps/#", 1, lambda t, m, r: got.append([t, m.decode()]))
        present = await c.connect()
        run = asyncio.create_task(c.run())
        await until(lambda: len(got) >= int(env("EXPECT", "0")), 3000)
        await asyncio.sleep_ms(300)
        await c.disconnect()
        await run
        result(session_present=present, got=got)

    asyncio.run(main())


def scenario_credentials():
    async def main():
        port = env_port("AUTH_PORT")
        good = mqtt.MQTTClient(env("ID") + "-good", "127.0.0.1", port, user=env("USER"), password=env("PASSWORD"))
        await good.connect()
        assert await good.publish("tinysense/auth", b"ok", qos=1) is True
        await good.disconnect()
        errors = []
        for user, password in ((env("USER"), "wrong"), (None, None)):
            bad = mqtt.MQTTClient(env("ID") + "-bad", "127.0.0.1", port, user=user, password=password)
            try:
                await bad.connect()
                errors.append(None)
            except mqtt.MQTTException as e:
                errors.append(str(e))
            assert not bad.connected
        result(errors=errors)

    asyncio.run(main())


def scenario_tls():
    import ssl

    def context(cafile):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = ssl.CERT_REQUIRED
        if cafile:
            ctx.load_verify_locations(cafile=cafile)
        return ctx

    async def main():
        port = env_port("TLS_PORT")
        # Verified against the test CA; the certificate names localhost and 127.0.0.1 (the default hostname).
        for hostname in ("localhost", None):
            c = mqtt.MQTTClient(env("ID"), "127.0.0.1", port, ssl=context(env("CA")), server_hostname=hostname)
            await c.connect()
            assert await c.publish("tinysense/tls", b"secret", qos=1) is True
            await c.disconnect()
        rejected = []
        for hostname, cafile in (("wrong.example", env("CA")), ("localhost", None)):
            c = mqtt.MQTTClient(env("ID") + "-x", "127.0.0.1", port, ssl=context(cafile), server_hostname=hostname,
                                connect_timeout=3)
            try:
                await c.connect()
                rejected.append(None)
            except Exception as e:
                rejected.append(repr(e))
            assert not c.connected
        result(rejected=rejected)

    asyncio.run(main())

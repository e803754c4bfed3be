# MicroPython side of tests/test_mqtt_stress.py (not collected by itself: no test_ prefix). Each scenario_*
# function runs drivers.mqtt on the unix runtime against a real mosquitto or a fake TCP server started by the
# test, with TINYSENSE_MQTT_PORT (and _ID, _GATES, _N, ...) in the environment; "@@result {json}" reports back.
import asyncio
import time

from drivers import mqtt
from mqtt_scenario import env, result, say, until


def scenario_qos1_thousand():
    # 1,000 QoS 1 messages, one every 4 ms; "@@AT k" after the k-th (the test restarts the broker at two of
    # them). The queue holds them all, so nothing may be dropped here; then wait for every PUBACK.
    n = int(env("N"))
    marks = [int(k) for k in env("MARKS").split(",")]

    async def main():
        c = mqtt.MQTTClient(env("ID"), "127.0.0.1", int(env("PORT")), queue_size=n, keepalive=10,
                            reconnect_backoff=(0.05, 0.1, 0.2), ack_timeout=2, connect_timeout=2)
        await c.connect()
        run = asyncio.create_task(c.run())
        t0 = time.ticks_ms()
        for i in range(n):
            c.publish_nowait("tinysense/stress", b"%d" % i, qos=1)
            if i + 1 in marks:
                say("AT %d" % (i + 1))
            await asyncio.sleep_ms(4)
        published_ms = time.ticks_diff(time.ticks_ms(), t0)
        acked = await until(lambda: c.pending == 0, 20000)
        result(acked=acked, pending=c.pending, dropped=c.dropped, reconnects=c.reconnects,
                retransmits=c.retransmits, published_ms=published_ms, total_ms=time.ticks_diff(time.ticks_ms(), t0))
        await c.disconnect()
        await run

    asyncio.run(main())


def scenario_keepalive_idle():
    # keepalive = the broker's max_keepalive, then a shorter one: both idle (no publish) for 3 periods of the
    # short one. A third client never pings, to show the broker does enforce keepalive here.
    async def main():
        port = int(env("PORT"))
        ka = int(env("KEEPALIVE"))
        at_max = mqtt.MQTTClient(env("ID") + "-max", "127.0.0.1", port, keepalive=int(env("MAX_KEEPALIVE")))
        short = mqtt.MQTTClient(env("ID") + "-short", "127.0.0.1", port, keepalive=ka)
        silent = mqtt.MQTTClient(env("ID") + "-silent", "127.0.0.1", port, keepalive=ka)
        for c in (at_max, short, silent):
            await c.connect()
        runs = [asyncio.create_task(at_max.run()), asyncio.create_task(short.run())]
        t0 = time.ticks_ms()
        silent_lost = None
        connected_throughout = True
        idle = 3 * ka * 1000 + 500  # 3 periods; longer (up to 9 s) until the silent one is dropped
        while time.ticks_diff(time.ticks_ms(), t0) < (idle if silent_lost is not None else 9000):
            if silent_lost is None and not silent.connected:
                silent_lost = time.ticks_diff(time.ticks_ms(), t0)
            if not (at_max.connected and short.connected):
                connected_throughout = False
            await asyncio.sleep_ms(50)
        idle_ms = time.ticks_diff(time.ticks_ms(), t0)
        values = dict(idle_ms=idle_ms, connected_throughout=connected_throughout, silent_lost_ms=silent_lost,
                      short_pings=short.pings, short_reconnects=short.reconnects, max_reconnects=at_max.reconnects)
        values["puback"] = await asyncio.wait_for_ms(short.publish("tinysense/ka2", b"still here", qos=1), 2000)
        for c in (at_max, short):
            await c.disconnect()
        for r in runs:
            await r
        result(**values)

    asyncio.run(main())


def scenario_oversized_publish():
    # The broker refuses packets over its max_packet_size (it closes the connection). An oversized message must
    # not block the ones behind it: expected are a clear exception, or a reconnect and the next message delivered.
    qos = int(env("QOS"))

    async def main():
        c = mqtt.MQTTClient(env("ID"), "127.0.0.1", int(env("PORT")), keepalive=2, reconnect_backoff=(0.1,),
                            ack_timeout=1)
        await c.connect()
        run = asyncio.create_task(c.run())
        raised = None
        try:
            c.publish_nowait("tinysense/big", b"x" * int(env("SIZE")), qos=qos)
        except Exception as e:
            raised = repr(e)
        after = asyncio.create_task(c.publish("tinysense/after", b"next", qos=1))
        try:
            delivered = await asyncio.wait_for_ms(after, 2000)
        except asyncio.TimeoutError:
            delivered = None
        result(raised=raised, delivered=delivered, reconnects=c.reconnects, pending=c.pending,
                error=repr(c.last_error))
        await c.disconnect()
        await run

    asyncio.run(main())


def scenario_fake_connect():
    # connect() once against the fake server; report the exception (or None) and how long it took.
    async def main():
        c = mqtt.MQTTClient(env("ID"), "127.0.0.1", int(env("PORT")), connect_timeout=1)
        t0 = time.ticks_ms()
        try:
            await c.connect()
            error = None
            await c.disconnect()
        except Exception as e:
            error = "%s: %s" % (type(e).__name__, e)
        result(error=error, ms=time.ticks_diff(time.ticks_ms(), t0), connected=c.connected)

    asyncio.run(main())


def scenario_fake_session():
    # run() against the fake server for a while (it misbehaves after CONNACK); subscribe to `got`; report how
    # the client fared. Ends when the fake server has been connected to CONNECTIONS times (gate "done") or
    # after DURATION_MS.
    got = []

    async def main():
        c = mqtt.MQTTClient(env("ID"), "127.0.0.1", int(env("PORT")), keepalive=int(env("KEEPALIVE", "2")),
                            connect_timeout=1, reconnect_backoff=(0.05,), max_packet=int(env("MAX_PACKET", "1000")))
        await c.subscribe("t/#", 1, lambda t, m, r: got.append([t, len(m)]))
        errors = []
        run = asyncio.create_task(c.run())
        t0 = time.ticks_ms()
        last = None
        while time.ticks_diff(time.ticks_ms(), t0) < int(env("DURATION_MS")):
            if c.last_error is not None and c.last_error is not last:
                last = c.last_error
                errors.append(type(last).__name__ + ": " + str(last))
            await asyncio.sleep_ms(5)
        result(errors=errors, reconnects=c.reconnects, oversize=c.oversize, got=got, run_done=run.done(),
                ms=time.ticks_diff(time.ticks_ms(), t0))
        await c.disconnect()
        await asyncio.wait_for_ms(run, 2000)

    asyncio.run(main())

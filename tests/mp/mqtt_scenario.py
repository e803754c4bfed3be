# What every MicroPython MQTT scenario needs (tests/mp/test_mqtt.py, tests/mp/mqtt_stress.py,
# tests/mp/test_shell.py): the settings the pytest side passes in TINYSENSE_MQTT_* environment variables,
# "@@word" / "@@result {json}" lines it reads back, gates it opens (files it creates) and bounded waits.
# Not a test file itself (no test_ prefix).
import asyncio
import json
import os
import socket
import time


def env(name, default=None):
    value = os.getenv("TINYSENSE_MQTT_" + name)
    if value is None and default is None:
        raise AssertionError("TINYSENSE_MQTT_%s is not set (run the scenario through its tests/test_*.py)" % name)
    return value if value is not None else default


def env_port(name="PORT"):
    return int(env(name))


def say(word):
    print("@@" + word)


def result(**values):
    print("@@result", json.dumps(values))


async def until(cond, timeout_ms, step_ms=20):
    """Poll cond() until it holds (True) or timeout_ms passes (False)."""
    t0 = time.ticks_ms()
    while not cond():
        if time.ticks_diff(time.ticks_ms(), t0) > timeout_ms:
            return False
        await asyncio.sleep_ms(step_ms)
    return True


def gate_open(name):
    try:
        os.stat(env("GATES") + "/" + name)
        return True
    except OSError:
        return False


async def gate(name, timeout_ms=10000):
    """Wait for the pytest side to open gate `name` (it creates a file)."""
    assert await until(lambda: gate_open(name), timeout_ms), "gate %s not opened" % name


def bound_port(first, last):
    """A port in [first, last) that nobody listens on: bound, never listened on, and kept bound (the caller
    closes the socket) so nobody else takes it meanwhile."""
    for candidate in range(first, last):
        s = socket.socket()
        try:
            s.bind(socket.getaddrinfo("127.0.0.1", candidate)[0][-1])
        except OSError:
            s.close()
            continue
        return s, candidate
    raise AssertionError("no free port in %d..%d" % (first, last))

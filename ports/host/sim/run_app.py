# Run a tinysense app as the device does, on recordings, in the host firmware (`tinysense simulate`).
#
#   micropython run_app.py JOB        (MICROPYPATH: ports/host/sim, firmware, boards/<board>)
#
# JOB is a file holding a Python literal (written by tinysense.simulation):
#   {"recordings": [{"config": {...}, "path": "x.wav"}
#                   | {"config": {...}, "frames": ["a.pgm", ...]}   (imageclass: camera frames)
#                   | {"config": {...}, "path": "x.bin", "rows": 1000, "rate": 100, "axes": 3 | 6,
#                      "accel_range_g": 2, "gyro_range_dps": 250}, ...]}
# config: the device's config.json, its "models" paths pointing at files readable here; .bin: int16 rows (accel
# x y z [gyro x y z] counts at the given full-scale ranges).
#
# Per recording, the device's own code runs against the simulated hardware: the recording is put behind the
# simulated sensor (soundlevel: a WAV on machine.I2S; har: int16 rows in the MPU6886 register model on the
# board's I2C bus), apps.shell.device_app(config) builds the core and the driver source from board_pins, and an
# apps.shell.Shell (its topics, message numbering, JSON encoding, outbox and rate limit, on the simulated clock)
# publishes to a stand-in client that prints. The loop is the shell's sensor task without asyncio: every
# `poll_ms` of virtual time (one loop pass) the source is read until it has nothing, each chunk goes through
# core.process() and its messages through shell.emit(); the sender hands queued payloads on while the rate limit
# allows (the broker acknowledges at once). The recording's end cuts the chunk holding it (no message for the
# silence or held samples the simulated sensor gives afterwards).
#
# Output lines:
#   rec <i>                                   a recording starts (a fresh device: clock 0, new core)
#   pub <qos> <retain> <topic> <payload>      a message the device publishes
#   steady <passes> <checked> <bytes> <changed>
#                                             loop passes (every read of one poll, each chunk processed) that
#                                             produced no message; how many of them were checked (gc.mem_alloc()
#                                             before/after; the job's "check_every" spreads the checks), the heap
#                                             bytes they allocated, and how many changed gc.mem_alloc() at all
#   end <i> <samples> <overruns> <dropped>    samples processed, sensor overruns, outbox drops
import gc
import sys


class _Json:
    """json.dumps for the shell's payloads: the host firmware has no json module. Same text as MicroPython's
    json.dumps (", " and ": " separators, float repr, the dict's own order)."""

    @staticmethod
    def dumps(obj):
        out = []
        _Json._dump(obj, out)
        return "".join(out)

    @staticmethod
    def _dump(obj, out):
        if obj is None:
            out.append("null")
        elif obj is True:
            out.append("true")
        elif obj is False:
            out.append("false")
        elif isinstance(obj, str):
            out.append('"')
            for ch in obj:
                if ch == '"' or ch == "\\":
                    out.append("\\" + ch)
                elif ch == "\n":
                    out.append("\\n")
                elif ch == "\r":
                    out.append("\\r")
                elif ch == "\t":
                    out.append("\\t")
                elif ord(ch) < 32:
                    out.append(f"\\u{ord(ch):04x}")
                else:
                    out.append(ch)
            out.append('"')
        elif isinstance(obj, (int, float)):
            out.append(repr(obj))
        elif isinstance(obj, dict):
            out.append("{")
            first = True
            for key in obj:
                if not first:
                    out.append(", ")
                first = False
                _Json._dump(str(key), out)
                out.append(": ")
                _Json._dump(obj[key], out)
            out.append("}")
        elif isinstance(obj, (list, tuple)):
            out.append("[")
            for i, v in enumerate(obj):
                if i:
                    out.append(", ")
                _Json._dump(v, out)
            out.append("]")
        else:
            raise TypeError(f"not JSON serializable: {obj!r}")


class _NoAsyncio:
    """apps.shell imports asyncio for its tasks; this runner drives the shell's pieces itself."""


if "json" not in sys.modules:
    try:
        import json  # noqa: F401  (a firmware that has one uses it)
    except ImportError:
        sys.modules["json"] = _Json
if "asyncio" not in sys.modules:
    try:
        import asyncio  # noqa: F401
    except ImportError:
        sys.modules["asyncio"] = _NoAsyncio

import board_pins  # noqa: E402
import machine  # noqa: E402
import sim_mpu6886  # noqa: E402
from apps import shell  # noqa: E402


class PrintClient:
    """Stands in for drivers.mqtt.MQTTClient: connected from the start, every message acknowledged at once."""

    def __init__(self, server, port):
        self.server = server
        self.port = port
        self.connected = True
        self.pending = 0
        self.dropped = 0
        self.reconnects = 0
        self.retransmits = 0

    def publish_nowait(self, topic, payload, qos=0, retain=False):
        if isinstance(payload, (bytes, bytearray)):
            payload = payload.decode()
        print("pub", qos, 1 if retain else 0, topic, payload)


def attach(config, rec):
    """Put the recording behind the simulated sensor the app reads; returns its length in samples (frames/rows)."""
    app = config.get("app")
    if app == "soundlevel":
        return machine.sim_attach_i2s(board_pins.I2S_MIC["id"], rec["path"]).n_frames
    if app == "har":
        with open(rec["path"], "rb") as f:
            data = f.read()
        import array

        samples = array.array("h", data)
        # the recording's counts are at the ranges it was made with (the model's): no rescaling unless the
        # config sets the IMU to other ranges
        imu = sim_mpu6886.MPU6886(samples, samplerate=rec["rate"], axes=rec["axes"],
                                  accel_range_g=rec.get("accel_range_g", 2),
                                  gyro_range_dps=rec.get("gyro_range_dps", 250))
        machine.sim_attach_i2c(board_pins.I2C["id"], imu, board_pins.IMU["addr"])
        return rec["rows"]
    if app == "imageclass":  # PGM/PPM frames of the configured frame size, each captured once, in order
        import camera

        camera.sim_reset()
        camera.sim_set_frames(rec["frames"], loop=False)
        return len(rec["frames"])
    raise shell.ConfigError(f"app {app!r} cannot be simulated")


def run_one(config, rec):
    machine.sim_reset()
    rows = attach(config, rec)
    core, source = shell.device_app(config)
    app = config["app"]
    if app == "har":
        # Sample k (k = 1, 2, ...) of the IMU falls at k * period and takes recording row
        # floor(k * period * rate / 1e6) - 1: the samples that lie inside the recording.
        period = source.imu.period_us
        a = (rows + 1) * 1000000
        b = period * rec["rate"]
        total = (a + b - 1) // b - 1
        channels = core.channels
    elif app == "imageclass":
        source.clock = machine.sim_ticks_us  # frames paced on the simulated clock
        total = rows
        channels = 0  # a chunk is one whole frame
    else:
        total = rows
        channels = 1
    opts = shell.settings(config)
    del opts["keepalive"]
    mqtt = config.get("mqtt", {})
    client = PrintClient(mqtt.get("host", "localhost"), mqtt.get("port", 1883))
    sh = shell.Shell(app, core, source, client, prefix=mqtt.get("topic_prefix", "tinysense"),
                     wifi=shell.HostNetwork(), clock=machine.sim_ticks_ms, **opts)
    client.publish_nowait(sh.status_topic, b"online", 1, True)  # on connection (Wi-Fi up at once here)
    sh.connections = 1
    poll_ms = sh.poll_ms
    stats_at = sh.stats_ms
    limit_ms = int(total * 1000 / getattr(core, "samplerate", 1)) + 60000
    every = rec.get("check_every", 1)  # check the heap on every `every`-th loop pass (gc.mem_alloc() is slow)
    passes = 0  # loop passes (reads until the source has nothing) that produced no message
    checked = 0
    allocated = 0
    changed = 0
    box = sh.outbox
    mem_alloc = gc.mem_alloc
    while core.samples < total:
        if machine.sim_ticks_ms() > limit_ms:
            raise RuntimeError(f"the simulated sensor stopped delivering ({core.samples} of {total} samples)")
        machine.sim_advance_ms(poll_ms)
        check = passes % every == 0
        if check:
            before = mem_alloc()
        produced = sh.produced
        last = False
        while core.samples < total:  # the sensor task until the source has nothing
            chunk = source.read()
            if chunk is None:
                break
            n = len(chunk) // channels if channels else 1
            left = total - core.samples
            if n > left:  # the recording ends inside this chunk
                chunk = memoryview(chunk)[:left * channels]
                last = True
            sh.chunks += 1
            for m in core.process(chunk):
                sh.emit(m)
        if sh.produced == produced and not last:
            if check:
                after = mem_alloc()
                checked += 1
                if after != before:
                    changed += 1
                    if after > before:
                        allocated += after - before
            passes += 1
        while len(box) and sh.limit.take():  # the sender task (connected, nothing in flight)
            client.publish_nowait(sh.topic, box.pop(), sh.qos)
            sh.sent += 1
        if sh.stats_ms and machine.sim_ticks_ms() >= stats_at:
            stats_at += sh.stats_ms
            client.publish_nowait(sh.stats_topic, shell.json.dumps(sh.stats()), 0)
    overruns = getattr(source, "overruns", None)  # while the recording played (not during the drain below)
    if overruns is None:
        overruns = getattr(getattr(source, "imu", None), "overflows", 0)
    while len(box):  # what is left goes out as the rate limit allows
        wait = sh.limit.wait_ms()
        if wait:
            machine.sim_advance_ms(wait)
        if sh.limit.take():
            client.publish_nowait(sh.topic, box.pop(), sh.qos)
            sh.sent += 1
    print("steady", passes, checked, allocated, changed)
    print("end", rec["index"], core.samples, overruns, sh.dropped)
    stop = getattr(source, "stop", None)
    if stop is not None:
        stop()


def main():
    with open(sys.argv[1]) as f:
        job = eval(f.read())
    for i, rec in enumerate(job["recordings"]):
        rec["index"] = i
        print("rec", i)
        run_one(rec["config"], rec)


main()

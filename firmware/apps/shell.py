# The thin asyncio shell shared by the apps: it owns Wi-Fi and MQTT around a synchronous app core
# (apps.soundlevel.SoundLevelApp, apps.har.HarApp, apps.imageclass.ImageClassApp: sensor chunk -- or camera frame --
# in -> message dicts out).
#
#   sensor task   source.read() -> chunk or None; core.process(chunk) -> messages; each one is JSON-encoded
#                 (with "n", its sequence number since start) into the outbox. Never waits on the network.
#   sender task   outbox -> MQTT client, in order, at most `rate` messages/s (token bucket, `burst`), and
#                 only while connected with fewer than `inflight` messages awaiting PUBACK.
#   link task     Wi-Fi bring-up and reconnect (backoff); starts the MQTT client's run() (keepalive, reconnect)
#                 once Wi-Fi is up; publishes the retained status "online" on every connection (the last
#                 will publishes "offline") and a stats message every `stats_interval_s`.
#
# Outage handling: while Wi-Fi or the broker is down the sensor loop keeps running and messages wait in the
# outbox (bounded: the oldest is dropped and counted in `dropped`); the ones already handed to the client stay
# in its queue and go again on reconnect, so everything kept is delivered in order. The app core is never
# rebuilt, so its state (e.g. the sound level interval) carries on across reconnects.
#
# Topics: <topic_prefix>/<app>/<kind> (soundlevel/level, har/activity, imageclass/class), <topic_prefix>/<app>/status
# (retained "online"/"offline"), <topic_prefix>/<app>/stats (JSON counters).
#
# Files: /config.json (tinysense.device_config) and /secrets.json, kept out of config.json:
#   {"wifi": {"ssid": "...", "password": "..."}, "mqtt": {"user": "...", "password": "...", "client_id": "..."}}
# On the device `main()` builds everything from them; tests build a Shell from their own pieces.
import asyncio
import json
import sys
from time import ticks_add, ticks_diff, ticks_ms

KINDS = {"soundlevel": "level", "har": "activity", "imageclass": "class"}

# Shell settings: config.json "mqtt" keys (when the schema allows them) override these.
DEFAULTS = {
    "qos": 1,
    "keepalive": 30,
    "max_rate": 10,  # messages/s to the broker (0: unlimited)
    "burst": 10,  # messages sent back to back before the rate applies
    "queue": 100,  # outbox size (messages) for outages
    "inflight": 8,  # messages handed to the MQTT client and not yet acknowledged
    "max_payload": 2048,  # bytes; a larger message is dropped and counted (`oversize`)
    "stats_interval_s": 60,  # 0: no stats messages
}
# How long to let an association attempt run before wifi.connect() again (connect() restarts it: the ESP32
# needs a few seconds to associate and get an address), the last entry repeating.
WIFI_BACKOFF_MS = (10000, 15000, 30000)


class ConfigError(ValueError):
    pass


# --- files ----------------------------------------------------------------------------------------------------


def load_json(path, what):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise ConfigError("%s %s is missing or unreadable" % (what, path))
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigError("%s %s is not valid JSON" % (what, path))
    if not isinstance(data, dict):
        raise ConfigError("%s %s: the top level is not a JSON object" % (what, path))
    return data


def load_secrets(path="/secrets.json"):
    """Wi-Fi and MQTT credentials: {} if the file does not exist; ConfigError if it is malformed."""
    try:
        open(path).close()
    except OSError:
        return {}
    secrets = load_json(path, "secrets file")
    for section, keys in (("wifi", ("ssid", "password")), ("mqtt", ("user", "password", "client_id"))):
        value = secrets.get(section, {})
        if not isinstance(value, dict):
            raise ConfigError("secrets %s: %r is not an object" % (section, value))
        for key in value:
            if key not in keys:
                raise ConfigError("secrets %s: unknown key %r (known: %s)" % (section, key, ", ".join(keys)))
            if not isinstance(value[key], str):
                raise ConfigError("secrets %s.%s is not a string" % (section, key))
    return secrets


def settings(config):
    """The shell's settings: DEFAULTS overridden by config["mqtt"] keys of the same names."""
    out = dict(DEFAULTS)
    mqtt = config.get("mqtt", {})
    for key in DEFAULTS:
        if key in mqtt:
            out[key] = mqtt[key]
    if out["qos"] not in (0, 1):
        raise ConfigError("mqtt.qos must be 0 or 1")
    for key in ("queue", "inflight", "max_payload"):
        if not isinstance(out[key], int) or out[key] < 1:
            raise ConfigError("mqtt.%s must be a positive integer" % key)
    return out


def topics(prefix, app):
    """(data, status, stats) topics of an app."""
    if app not in KINDS:
        raise ConfigError("app %r is not one of %s" % (app, ", ".join(KINDS)))
    base = "%s/%s/" % (prefix, app)
    return base + KINDS[app], base + "status", base + "stats"


# --- pieces ---------------------------------------------------------------------------------------------------


def encode(msg, n):
    """JSON bytes of a message dict with its sequence number n; non-finite floats become null."""
    msg["n"] = n
    for key in list(msg):
        v = msg[key]
        if isinstance(v, float) and (v != v or v - v != 0):  # nan, or +-inf (inf - inf is nan)
            msg[key] = None
    return json.dumps(msg).encode()


class Outbox:
    """Bounded FIFO of payloads: putting into a full one drops the oldest and counts it."""

    def __init__(self, size):
        if size < 1:
            raise ValueError("outbox size must be at least 1")
        self._buf = [None] * size
        self._head = 0  # oldest
        self._len = 0
        self.dropped = 0

    def __len__(self):
        return self._len

    def put(self, item):
        size = len(self._buf)
        if self._len == size:
            self._head = (self._head + 1) % size
            self._len -= 1
            self.dropped += 1
        self._buf[(self._head + self._len) % size] = item
        self._len += 1

    def peek(self):
        return self._buf[self._head] if self._len else None

    def pop(self):
        if not self._len:
            raise IndexError("outbox is empty")
        item = self._buf[self._head]
        self._buf[self._head] = None
        self._head = (self._head + 1) % len(self._buf)
        self._len -= 1
        return item


class RateLimit:
    """Token bucket: `rate` messages/s on average, up to `burst` back to back. Integer arithmetic
    (1 message = 1,000,000 units) so steady state allocates nothing; rate 0 or None = no limit."""

    def __init__(self, rate, burst=1, clock=ticks_ms):
        if rate is not None and rate < 0:
            raise ValueError("rate must be >= 0")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self._per_ms = int(rate * 1000) if rate else 0  # units per ms
        self._cap = int(burst) * 1000000
        self._tokens = self._cap
        self._clock = clock
        self._t = clock()

    def _refill(self):
        now = self._clock()
        dt = ticks_diff(now, self._t)
        if dt > 0:
            self._t = now
            self._tokens = min(self._cap, self._tokens + dt * self._per_ms)

    def take(self):
        """True (and one token used) if a message may go now."""
        if not self._per_ms:
            return True
        self._refill()
        if self._tokens >= 1000000:
            self._tokens -= 1000000
            return True
        return False

    def wait_ms(self):
        """Milliseconds until take() can succeed (0: now)."""
        if not self._per_ms:
            return 0
        self._refill()
        missing = 1000000 - self._tokens
        return 0 if missing <= 0 else (missing + self._per_ms - 1) // self._per_ms


class HostNetwork:
    """Stand-in for Wi-Fi where there is none to bring up (the unix runtime: the host's network is up)."""

    def connect(self):
        pass

    def isconnected(self):
        return True


class Wifi:
    """network.WLAN(network.STA_IF) with the credentials of /secrets.json. connect() returns at once; the
    association happens in the background (poll isconnected())."""

    def __init__(self, ssid, password=None):
        import network

        self.ssid = ssid
        self.password = password
        self.wlan = network.WLAN(network.STA_IF)

    def connect(self):
        self.wlan.active(True)
        try:
            self.wlan.disconnect()  # the ESP32 refuses connect() while an attempt is still running
        except OSError:
            pass
        self.wlan.connect(self.ssid, self.password)

    def isconnected(self):
        return self.wlan.isconnected()


def wifi_from(secrets):
    """Wifi on a device (needs wifi.ssid in secrets), HostNetwork where there is no `network` module."""
    try:
        import network  # noqa: F401
    except ImportError:
        return HostNetwork()
    wifi = secrets.get("wifi", {})
    if not wifi.get("ssid"):
        raise ConfigError("no Wi-Fi credentials: put {\"wifi\": {\"ssid\": ..., \"password\": ...}} in /secrets.json")
    return Wifi(wifi["ssid"], wifi.get("password"))


def _is_ip(host):
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() for p in parts)


# --- the shell ------------------------------------------------------------------------------------------------


class Shell:
    """core: .process(chunk) -> list of message dicts; source: .read() -> chunk or None (non-blocking);
    client: drivers.mqtt.MQTTClient (its will should be (status topic, b"offline", 1, True): make_client);
    wifi: .connect() / .isconnected()."""

    def __init__(self, app, core, source, client, *, prefix="tinysense", wifi=None, qos=1, max_rate=10, burst=10,
                 queue=100, inflight=8, max_payload=2048, stats_interval_s=60, poll_ms=10, clock=ticks_ms,
                 wifi_backoff_ms=WIFI_BACKOFF_MS):
        self.app = app
        self.topic, self.status_topic, self.stats_topic = topics(prefix, app)
        self.core = core
        self.source = source
        self.client = client
        self.wifi = wifi if wifi is not None else HostNetwork()
        self.qos = qos
        self.outbox = Outbox(queue)
        self.limit = RateLimit(max_rate, burst, clock)
        self.inflight = inflight
        self.max_payload = max_payload
        self.stats_ms = int(stats_interval_s * 1000)
        self.poll_ms = poll_ms
        self.clock = clock
        self.wifi_backoff_ms = wifi_backoff_ms
        self.resolve = not _is_ip(client.server)
        self._resolve_at = clock()
        # counters
        self.chunks = 0  # sensor chunks processed
        self.produced = 0  # messages the core produced (the next one's "n")
        self.sent = 0  # messages handed to the MQTT client
        self.oversize = 0  # messages over max_payload, dropped
        self.wifi_connects = 0  # wifi.connect() calls
        self.wifi_errors = 0
        self.connections = 0  # MQTT connections seen (the first and every reconnect)
        self.errors = 0  # exceptions from the core or the source (logged, the loop goes on)
        self.mqtt_started_ms = None  # clock() when the MQTT client was started (Wi-Fi up)
        self._running = False
        self._tasks = []
        self._status = None  # task publishing "online"

    @property
    def dropped(self):
        return self.outbox.dropped

    def stats(self):
        c = self.client
        return {"chunks": self.chunks, "produced": self.produced, "sent": self.sent, "queued": len(self.outbox),
                "dropped": self.outbox.dropped, "oversize": self.oversize, "errors": self.errors,
                "mqtt_dropped": c.dropped, "reconnects": c.reconnects, "retransmits": c.retransmits,
                "wifi_connects": self.wifi_connects}

    # --- tasks ----------------------------------------------------------------------------------------------

    def emit(self, msg):
        """Queue one message of the core for publishing."""
        payload = encode(msg, self.produced)
        self.produced += 1
        if len(payload) > self.max_payload:
            self.oversize += 1
            return
        self.outbox.put(payload)

    async def _sensor(self):
        while self._running:
            try:
                chunk = self.source.read()
                if chunk is None:
                    await asyncio.sleep_ms(self.poll_ms)
                    continue
                self.chunks += 1
                for msg in self.core.process(chunk):
                    self.emit(msg)
            except Exception as e:  # a bad chunk must not stop the meter; keep count and go on
                self.errors += 1
                sys.print_exception(e)
                await asyncio.sleep_ms(self.poll_ms)
            await asyncio.sleep_ms(0)  # let the network tasks run between chunks

    async def _sender(self):
        c = self.client
        box = self.outbox
        while self._running:
            if len(box) and c.connected and c.pending < self.inflight:
                wait = self.limit.wait_ms()
                if wait == 0 and self.limit.take():
                    c.publish_nowait(self.topic, box.pop(), self.qos)
                    self.sent += 1
                    await asyncio.sleep_ms(0)
                    continue
                await asyncio.sleep_ms(min(max(wait, 1), 50))
                continue
            await asyncio.sleep_ms(20)

    async def _link(self):
        c = self.client
        attempt = 0
        retry_at = self.clock()
        was_connected = False
        stats_at = None
        while self._running:
            now = self.clock()
            if not self.wifi.isconnected():
                if ticks_diff(now, retry_at) >= 0:
                    try:
                        self.wifi_connects += 1
                        self.wifi.connect()
                    except OSError as e:
                        self.wifi_errors += 1
                        sys.print_exception(e)
                    sched = self.wifi_backoff_ms
                    retry_at = ticks_add(now, sched[min(attempt, len(sched) - 1)])
                    attempt += 1
            else:
                attempt = 0
                retry_at = now
                if self.resolve and ticks_diff(now, self._resolve_at) >= 0:
                    self._resolve_at = ticks_add(now, 5000)
                    self._resolve()
                if self.mqtt_started_ms is None:
                    self.mqtt_started_ms = now
                    self._tasks.append(asyncio.create_task(c.run()))
            if c.connected and not was_connected:
                self.connections += 1
                if self._status is None or self._status.done():
                    self._status = asyncio.create_task(c.publish(self.status_topic, b"online", 1, True))
                stats_at = ticks_add(now, self.stats_ms)
            was_connected = c.connected
            if self.stats_ms and stats_at is not None and c.connected and ticks_diff(now, stats_at) >= 0:
                stats_at = ticks_add(now, self.stats_ms)
                if c.pending < self.inflight:
                    c.publish_nowait(self.stats_topic, json.dumps(self.stats()), 0)
            await asyncio.sleep_ms(50)

    def _resolve(self):
        # drivers.mqtt resolves its server on every connection attempt; on the device that is a blocking DNS
        # lookup, which would stall the sensor loop while the broker is away. Resolve a name once, here.
        try:
            import socket

            addr = socket.getaddrinfo(self.client.server, self.client.port, socket.AF_INET, socket.SOCK_STREAM)[0][-1]
            if isinstance(addr, tuple):  # the ESP32: ("192.168.1.10", 1883)
                ip = addr[0]
            else:  # the unix runtime: a raw sockaddr_in
                ip = socket.inet_ntop(socket.AF_INET, bytes(addr[4:8]))
            self.client.server = ip
            self.resolve = False
        except (OSError, IndexError, ValueError) as e:  # no DNS yet: the client looks up itself; try again later
            self.wifi_errors += 1
            sys.print_exception(e)

    # --- control --------------------------------------------------------------------------------------------

    async def run(self, duration_ms=None):
        """Run until stop() (or for duration_ms); then disconnect cleanly."""
        self._running = True
        self._tasks = [asyncio.create_task(self._sensor()), asyncio.create_task(self._sender())]
        link = asyncio.create_task(self._link())
        try:
            if duration_ms is None:
                await link
            else:
                t0 = self.clock()
                while self._running and ticks_diff(self.clock(), t0) < duration_ms:
                    await asyncio.sleep_ms(min(50, duration_ms))
        finally:
            self._running = False
            await self.close()
            if self._status is not None:
                self._tasks.append(self._status)
            for t in self._tasks + [link]:
                if not t.done():
                    t.cancel()
            self._tasks = []

    def stop(self):
        self._running = False

    async def close(self, timeout_ms=2000):
        """Retained "offline", then DISCONNECT (the broker discards the will)."""
        c = self.client
        if c.connected:
            try:
                await asyncio.wait_for_ms(c.publish(self.status_topic, b"offline", 1, True), timeout_ms)
            except (asyncio.TimeoutError, OSError):
                pass
        await c.disconnect()


def make_client(config, secrets, client_id=None, **options):
    """The MQTT client of config.json / secrets.json, its will the retained "offline" status."""
    from drivers.mqtt import MQTTClient

    app = config.get("app")
    mqtt = config.get("mqtt", {})
    cred = secrets.get("mqtt", {})
    _, status, _ = topics(mqtt.get("topic_prefix", "tinysense"), app)
    if client_id is None:
        client_id = cred.get("client_id") or _device_id(app)
    options.setdefault("keepalive", settings(config)["keepalive"])
    options.setdefault("queue_size", settings(config)["inflight"] + 4)
    return MQTTClient(client_id, mqtt.get("host", "localhost"), mqtt.get("port", 1883), user=cred.get("user"),
                      password=cred.get("password"), will=(status, b"offline", 1, True), **options)


def _device_id(app):
    try:
        import machine

        uid = machine.unique_id()
        return "tinysense-%s-%s" % (app, "".join("%02x" % b for b in uid))
    except (ImportError, AttributeError):
        return "tinysense-" + app


# --- the device -----------------------------------------------------------------------------------------------


class ImuSource:
    """drivers.mpu6886.MPU6886 FIFO as a source: read() -> the samples since the last call (a view of the
    driver's buffer, no allocation) or None."""

    def __init__(self, imu):
        self.imu = imu
        mv = memoryview(imu.fifo_buf)
        ch = imu.channels
        self._views = [mv[: k * ch] for k in range(len(imu.fifo_buf) // ch + 1)]

    def read(self):
        n = self.imu.read_fifo()
        return self._views[n] if n else None


def device_app(config):
    """(core, source) of the configured app on the board's sensors (board_pins)."""
    import board_pins

    app = config.get("app")
    own = config.get(app) or {}
    rate = config.get("sample_rate")
    if app == "soundlevel":
        from apps.soundlevel import SoundLevelApp
        from drivers.i2s_mic import I2SMic

        mic_pins = dict(board_pins.I2S_MIC)
        if rate:
            mic_pins["rate"] = int(rate)
        core_config = dict(own)
        core_config["samplerate"] = mic_pins["rate"]
        core = SoundLevelApp(core_config)
        mic = I2SMic({"I2S_MIC": mic_pins}, chunk=own.get("chunk", 1024), n_chunks=own.get("n_chunks", 8))
        mic.start()
        return core, mic
    if app == "har":
        from apps.har import HarApp
        from drivers.mpu6886 import MPU6886

        models = config.get("models") or ()
        if not models:
            raise ConfigError("har needs a model: bundle one with --model")
        with open(models[0], "rb") as f:
            model = f.read()
        core_config = dict(own)
        if rate:
            core_config["samplerate"] = rate
        try:
            core = HarApp(core_config, model)
        except KeyError as e:
            raise ConfigError("config.json \"har\" needs %s (and window, hop, classes)" % e)
        except ValueError as e:  # section and model disagree: a reset would not help, stop with the reason
            raise ConfigError("%s (bundle the model with its metadata: `tinysense bundle` writes the section)" % e)
        # The IMU delivers what the model was trained on: the same sensors, at the same full-scale ranges (the
        # model's int16 counts), interleaved accel [gyro] as HarApp reads them.
        imu = MPU6886.from_pins(board_pins, odr_hz=int(core.samplerate), gyro="gyro" in core.sensors,
                                accel_range_g=core.accel_range_g, gyro_range_dps=core.gyro_range_dps)
        if imu.channels != core.channels:
            raise ConfigError("har: the IMU gives %d values per sample, the app reads %d" % (imu.channels,
                                                                                          core.channels))
        imu.fifo_start()
        return core, ImuSource(imu)
    if app == "imageclass":
        return imageclass_app(config, own, rate)
    raise ConfigError("app %r has no shell on this firmware" % (app,))


def imageclass_app(config, own, rate):
    """(core, source) of the image classifier: the board's camera (own "frame_size", "pixel_format" names of
    camera.FrameSize / PixelFormat, default R96X96 / GRAYSCALE) read at `rate` frames/s (default 1)."""
    import board_pins
    import camera
    from apps.imageclass import ImageClassApp
    from drivers.camera import Camera, FrameSource

    models = config.get("models") or ()
    if not models:
        raise ConfigError("imageclass needs a model: bundle one with --model")
    with open(models[0], "rb") as f:
        model = f.read()
    names = {}
    for key, enum, default in (("frame_size", camera.FrameSize, "R96X96"),
                               ("pixel_format", camera.PixelFormat, "GRAYSCALE")):
        name = own.get(key, default)
        value = getattr(enum, str(name), None)
        if not isinstance(value, int):
            raise ConfigError("config.json \"imageclass\" %s %r is not a camera.%s name" % (key, name,
                                                                                            enum.__name__))
        names[key] = value
    cam = Camera.from_pins(board_pins, pixel_format=names["pixel_format"], frame_size=names["frame_size"],
                           byteswap=bool(own.get("byteswap", False)))
    try:
        core = ImageClassApp(own, model, cam.width, cam.height, cam.format, fps=float(rate or 1),
                             byteswap=cam.byteswap)
    except ValueError as e:
        raise ConfigError(str(e))
    return core, FrameSource(cam, core.fps)


def build(config_path="/config.json", secrets_path="/secrets.json", wifi=None, app_factory=device_app, **options):
    """A Shell from the files on the device filesystem."""
    config = load_json(config_path, "config file")
    if "app" not in config:
        raise ConfigError("config file %s names no app" % config_path)
    secrets = load_secrets(secrets_path)
    opts = settings(config)
    del opts["keepalive"]  # the client's
    opts.update(options)
    client = make_client(config, secrets, **opts.pop("client", {}))
    if wifi is None:
        wifi = wifi_from(secrets)
    core, source = app_factory(config)
    prefix = config.get("mqtt", {}).get("topic_prefix", "tinysense")
    return Shell(config["app"], core, source, client, prefix=prefix, wifi=wifi, **opts)


def main(config_path="/config.json", secrets_path="/secrets.json"):
    """Entry point of /main.py: run the configured app until reset."""
    shell = build(config_path, secrets_path)
    print("tinysense: %s -> %s (mqtt %s:%d)" % (shell.app, shell.topic, shell.client.server, shell.client.port))
    asyncio.run(shell.run())

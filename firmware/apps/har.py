# Human activity recognition app core: IMU samples in (int16 counts, interleaved as the MPU6886 FIFO gives them:
# accelerometer x y z, then gyroscope x y z when it is on) -> sliding windows per sensor -> C features
# (tinysense_features, once per sensor, side by side) -> C trees (emlearn_trees) -> one message per window:
#   {"class": label, "confidence": p, "t": ms of the window's last sample + 1 period}.
# Each sensor's windows are kept in a doubled ring (every sample written twice) so each window is a contiguous
# view made once at start-up: nothing is allocated unless a message is produced.
#
# Units: the model is trained on what the device computes, the MPU6886's int16 counts at the configured full-scale
# ranges (accel_range_g: 32768 / range LSB per g; gyro_range_dps: 32768 / range LSB per deg/s, as
# drivers.mpu6886 scales them). `tinysense train` converts physical-unit datasets to these counts and records the
# ranges in the model metadata; `tinysense bundle` writes them into this section, and the shell sets the IMU to them.
#
# config (a dict, e.g. the "har" object of config.json):
#   window (samples per window), hop (samples between windows), samplerate (100), classes (labels in the model's
#   class order), sensors (["accel"] or ["accel", "gyro"]: what each sample holds, 3 values per sensor),
#   axes (features from the first 1..3 axes of each sensor, 3), accel_range_g (2), gyro_range_dps (250),
#   spectral (true), magnitude (null: default of the features)
# model_bytes: the binary model from `tinysense convert` (tinysense.trees.convert), or emlearn CSV (str/bytes).
import array
import struct

import emlearn_trees
from tinysense_features import Features

_NONE = ()
_HEADER = "<4sBBBBHHHHIII"  # tinysense.trees.HEADER
_LEAF_CLASS = 0
SENSORS = ("accel", "gyro")  # in the order the MPU6886 FIFO delivers them (drivers.mpu6886.read_fifo)


def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


def model_capacity(model):
    """(max_trees, max_nodes, max_leaves, max_features, max_classes) that hold a binary (TSTR) or CSV model."""
    if isinstance(model, (bytes, bytearray)) and model[:4] == b"TSTR":
        (_m, _v, _k, leaf_bits, _fm, n_features, n_classes, n_trees, _r, n_nodes, n_leaves,
         n_table) = struct.unpack(_HEADER, model[:struct.calcsize(_HEADER)])
        leaf_values = n_leaves * (1 if leaf_bits == _LEAF_CLASS else n_classes)
        return (max(n_trees, 1), max(n_nodes, n_table, 1), max(leaf_values, 1), max(n_features, 1),
                max(n_classes, 1))
    text = model.decode() if isinstance(model, (bytes, bytearray)) else model
    counts = {"r": 0, "n": 0, "q": 0, "l": 0}
    meta = {"f": 1, "c": 1}
    for line in text.split("\n"):
        kind = line.split(",", 1)[0]
        if kind in counts:
            counts[kind] += 1
        elif kind in meta:
            meta[kind] = int(line.split(",", 1)[1])
    return (max(counts["r"], 1), max(counts["n"], counts["q"], 1), max(counts["l"], 1), max(meta["f"], 1),
            max(meta["c"], 1))


def _sensors(value):
    sensors = list(value)
    if sensors not in (["accel"], ["accel", "gyro"]):
        raise ValueError("har: sensors must be [\"accel\"] or [\"accel\", \"gyro\"] (the MPU6886 FIFO order), got %r"
                         % (value,))
    return sensors


class HarApp:
    def __init__(self, config, model_bytes, t0_ms=0):
        if "har" in config:
            config = config["har"]
        self.window = int(config["window"])
        self.hop = int(config["hop"])
        self.samplerate = config.get("samplerate", 100)
        self.sensors = _sensors(config.get("sensors", ("accel",)))
        self.axes = int(config.get("axes", 3))
        self.accel_range_g = config.get("accel_range_g", 2)
        self.gyro_range_dps = config.get("gyro_range_dps", 250)
        self.classes = list(config["classes"])
        if self.hop < 1 or self.window < 4:
            raise ValueError("har: window must be >= 4 and hop >= 1")
        if not 1 <= self.axes <= 3:
            raise ValueError("har: axes must be 1, 2 or 3 (per sensor), got %d" % self.axes)
        self.channels = 3 * len(self.sensors)  # values per input sample
        self.features = Features(self.window, self.axes, samplerate=self.samplerate,
                                 spectral=config.get("spectral", True), magnitude=config.get("magnitude"))
        per_sensor = self.features.n_features()
        n_features = per_sensor * len(self.sensors)
        nt, nn, nl, nf, nc = model_capacity(model_bytes)
        self.model = emlearn_trees.new(nt, nn, nl, max_features=nf, max_classes=nc)
        emlearn_trees.load_model(self.model, model_bytes)
        if self.model.features() != n_features:
            raise ValueError("har: the model takes %d features, the window gives %d (check sensors/axes/spectral/"
                             "magnitude)" % (self.model.features(), n_features))
        if self.model.outputs() != len(self.classes):
            raise ValueError("har: the model has %d classes, config lists %d" % (self.model.outputs(),
                                                                                 len(self.classes)))
        self.x = array.array("f", bytes(4 * n_features))
        xv = memoryview(self.x)
        self._x_parts = [xv[k * per_sensor:(k + 1) * per_sensor] for k in range(len(self.sensors))]
        self.proba = array.array("f", bytes(4 * self.model.outputs()))
        w, ax = self.window, self.axes
        self._rings = []
        self._views = {}  # ring start -> [window view of each sensor]
        for _ in self.sensors:
            self._rings.append(array.array("h", bytes(2 * 2 * w * ax)))
        for k in range(w // _gcd(w, self.hop)):
            s = k * self.hop % w
            self._views[s] = [memoryview(ring)[s * ax:(s + w) * ax] for ring in self._rings]
        self.t0_ms = t0_ms
        self.samples = 0  # samples consumed since start
        self._pos = 0  # ring position of the next sample
        self._since = -self.window  # samples since the last window (negative: first window not full yet)
        self.windows = 0

    def _classify(self):
        views = self._views[self._pos]  # the oldest sample of the window sits where the next one will go
        parts = self._x_parts
        for k in range(len(parts)):
            self.features.compute(views[k], parts[k])
        cls = self.model.predict(self.x, self.proba)
        self.windows += 1
        return {"class": self.classes[cls], "confidence": self.proba[cls],
                "t": self.t0_ms + self.samples * 1000 // self.samplerate}

    def process(self, samples, n=None):
        """Feed n samples (default: all) of interleaved int16 data (`channels` values each: accel x y z
        [gyro x y z]); returns a list of messages or ()."""
        ch = self.channels
        if n is None:
            n = len(samples) // ch
        rings = self._rings
        ax = self.axes
        w = self.window
        second = w * ax
        messages = _NONE
        j = 0
        for _ in range(n):
            base = self._pos * ax
            src = j
            for ring in rings:
                for a in range(ax):
                    v = samples[src + a]
                    ring[base + a] = v
                    ring[base + second + a] = v
                src += 3
            j += ch
            self._pos += 1
            if self._pos == w:
                self._pos = 0
            self.samples += 1
            self._since += 1
            if self._since == 0 or self._since == self.hop:
                self._since = 0
                if messages is _NONE:
                    messages = []
                messages.append(self._classify())
        return messages

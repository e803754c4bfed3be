# Human activity recognition app core: IMU samples in (int16, interleaved x y z [..] as the MPU6886 FIFO gives
# them) -> sliding windows -> C features (tinysense_features) -> C trees (emlearn_trees) -> one message per
# window:  {"class": label, "confidence": p, "t": ms of the window's last sample + 1 period}.
# Windows are kept in a doubled ring (every sample written twice) so each window is a contiguous view made
# once at start-up: nothing is allocated unless a message is produced.
#
# config (a dict, e.g. the "har" object of config.json):
#   window (samples per window), hop (samples between windows), samplerate (100), axes (3),
#   classes (labels in the model's class order), spectral (true), magnitude (null: default of the features)
# model_bytes: the binary model from `tinysense convert` (tinysense.trees.convert), or emlearn CSV (str/bytes).
import array
import struct

import emlearn_trees
from tinysense_features import Features

_NONE = ()
_HEADER = "<4sBBBBHHHHIII"  # tinysense.trees.HEADER
_LEAF_CLASS = 0


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


class HarApp:
    def __init__(self, config, model_bytes, t0_ms=0):
        if "har" in config:
            config = config["har"]
        self.window = int(config["window"])
        self.hop = int(config["hop"])
        self.samplerate = config.get("samplerate", 100)
        self.axes = int(config.get("axes", 3))
        self.classes = list(config["classes"])
        if self.hop < 1 or self.window < 4:
            raise ValueError("har: window must be >= 4 and hop >= 1")
        self.features = Features(self.window, self.axes, samplerate=self.samplerate,
                                 spectral=config.get("spectral", True), magnitude=config.get("magnitude"))
        nt, nn, nl, nf, nc = model_capacity(model_bytes)
        self.model = emlearn_trees.new(nt, nn, nl, max_features=nf, max_classes=nc)
        emlearn_trees.load_model(self.model, model_bytes)
        if self.model.features() != self.features.n_features():
            raise ValueError("har: the model takes %d features, the window gives %d (check axes/spectral/magnitude)"
                             % (self.model.features(), self.features.n_features()))
        if self.model.outputs() != len(self.classes):
            raise ValueError("har: the model has %d classes, config lists %d" % (self.model.outputs(),
                                                                                 len(self.classes)))
        self.x = array.array("f", bytes(4 * self.features.n_features()))
        self.proba = array.array("f", bytes(4 * self.model.outputs()))
        w, ax = self.window, self.axes
        self._ring = array.array("h", bytes(2 * 2 * w * ax))
        mv = memoryview(self._ring)
        self._views = {}
        for k in range(w // _gcd(w, self.hop)):
            s = k * self.hop % w
            self._views[s] = mv[s * ax:(s + w) * ax]
        self.t0_ms = t0_ms
        self.samples = 0  # samples consumed since start
        self._pos = 0  # ring position of the next sample
        self._since = -self.window  # samples since the last window (negative: first window not full yet)
        self.windows = 0

    def _classify(self):
        start = self._pos  # the oldest sample of the window sits where the next one will go
        self.features.compute(self._views[start], self.x)
        cls = self.model.predict(self.x, self.proba)
        self.windows += 1
        return {"class": self.classes[cls], "confidence": self.proba[cls],
                "t": self.t0_ms + self.samples * 1000 // self.samplerate}

    def process(self, samples, n=None):
        """Feed n samples (default: all) of interleaved int16 data; returns a list of messages or ()."""
        ax = self.axes
        if n is None:
            n = len(samples) // ax
        ring = self._ring
        w = self.window
        second = w * ax
        messages = _NONE
        j = 0
        for _ in range(n):
            base = self._pos * ax
            for a in range(ax):
                v = samples[j]
                ring[base + a] = v
                ring[base + second + a] = v
                j += 1
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

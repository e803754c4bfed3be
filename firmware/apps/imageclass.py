# Image classifier app core: raw camera frames in (GRAYSCALE or RGB565, the camera's frame size) -> tinysense_image
# (gray, exact area downscale to the model's input H x W, optional normalisation; in C, straight from the frame
# buffer) -> emlearn_cnn (int8 or float32, ending in softmax) -> at most one message per frame:
#   {"class": label, "confidence": p, "t": ms of the frame}
# A frame gives a message when its top probability is >= `threshold` and the rate limit allows: at most
# `max_messages` messages in every `interval_s` (fixed windows of interval_s * fps frames from the start). Frames
# are counted, not timed: the frame rate (config.json "sample_rate", frames/s) sets the clock of "t" and of the
# windows. Nothing is allocated unless a message is produced.
#
# config (a dict, e.g. the "imageclass" object of config.json):
#   labels (required: the model's class names in output order), threshold (0.5), interval_s (10.0),
#   max_messages (1), normalize (null | "minmax" | "mean_std", as the model was trained), mean (128), std (64),
#   input ([h, w] or [h, w, 1], optional: checked against the model)
#   (the shell also reads frame_size, e.g. "R96X96" or "QVGA", pixel_format "GRAYSCALE" | "RGB565", byteswap)
# model_bytes: the model file from `tinysense train --model cnn` (tinysense.cnn.write); kept referenced, not copied.
import array

import emlearn_cnn
import tinysense_image
from emlearn_arrayutils import linear_map

_NONE = ()
_SOFTMAX = 8  # tinysense.cnn.model.SOFTMAX
_HEADER = 48  # tinysense.cnn.model.HEADER.size; then 32 bytes per layer, the type first
_LAYER = 32
# Probabilities are compared as integers: reading a float out of an array makes a float object on the heap,
# an int below 2**30 does not. linear_map (float32) maps 0..1 to 0..SCALE; two probabilities closer than about
# 1e-7 can map to one value, and then the lower class index wins (as numpy's argmax on equal values).
_SCALE = 1000000000

DEFAULTS = {"threshold": 0.5, "interval_s": 10.0, "max_messages": 1, "normalize": None, "mean": 128, "std": 64}
NORMALIZE = (None, "minmax", "mean_std")


def _get(config, key):
    return config.get(key, DEFAULTS[key])


def last_layer_type(model_bytes):
    """The type code of the model file's last layer (0 if the file is too short to say)."""
    n = model_bytes[6] if len(model_bytes) > 6 else 0
    at = _HEADER + _LAYER * (n - 1)
    return model_bytes[at] if n and len(model_bytes) > at else 0


class ImageClassApp:
    def __init__(self, config, model_bytes, frame_width, frame_height, pixel_format=tinysense_image.GRAYSCALE,
                 fps=1.0, byteswap=False, t0_ms=0):
        if "imageclass" in config:
            config = config["imageclass"]
        if "labels" not in config:
            raise ValueError("imageclass: config needs \"labels\" (the model's class names in output order)")
        self.labels = [str(label) for label in config["labels"]]
        self.threshold = float(_get(config, "threshold"))
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError("imageclass: threshold must be a probability 0..1, got %r" % (self.threshold,))
        self.fps = float(fps)
        if not self.fps > 0:
            raise ValueError("imageclass: the frame rate must be positive")
        self.samplerate = self.fps  # frames per second (the simulator's name for the sensor rate)
        self.interval = max(1, int(round(float(_get(config, "interval_s")) * self.fps)))  # frames per window
        self.max_messages = int(_get(config, "max_messages"))
        if self.max_messages < 1:
            raise ValueError("imageclass: max_messages must be at least 1")
        self.normalize = _get(config, "normalize")
        if self.normalize not in NORMALIZE:
            raise ValueError("imageclass: normalize must be null, \"minmax\" or \"mean_std\", got %r"
                             % (self.normalize,))
        self.mean = int(_get(config, "mean"))
        self.std = int(_get(config, "std"))
        if pixel_format not in (tinysense_image.GRAYSCALE, tinysense_image.RGB565):
            raise ValueError("imageclass: pixel format %r; use GRAYSCALE or RGB565" % (pixel_format,))
        self.frame_width = int(frame_width)
        self.frame_height = int(frame_height)
        self.pixel_format = pixel_format
        self.byteswap = bool(byteswap)

        if last_layer_type(model_bytes) != _SOFTMAX:
            raise ValueError("imageclass: the model does not end in softmax, so it gives no confidence; convert it "
                             "with a Softmax last (tinysense train --model cnn does)")
        self.model = emlearn_cnn.new(model_bytes)
        h, w, c = self.model.input_shape()
        if c != 1:
            raise ValueError("imageclass: the model takes %d channels; the camera preprocessing gives 1 (gray): "
                             "train it on grayscale images" % c)
        want = config.get("input")
        if want is not None and (list(want)[:2] != [h, w] or (len(want) > 2 and want[2] != c)):
            raise ValueError("imageclass: config input %r but the model takes %dx%dx%d" % (want, h, w, c))
        n = 1
        for d in self.model.output_dimensions():
            n *= d
        if n != len(self.labels):
            raise ValueError("imageclass: the model has %d outputs, config lists %d labels" % (n, len(self.labels)))
        self.width, self.height = w, h
        self.image = bytearray(w * h)  # the model's input, preprocessed from each frame
        self.proba = array.array("f", bytes(4 * n))
        self.score = array.array("i", bytes(4 * n))  # proba * SCALE as integers (see _SCALE)
        self._threshold = int(self.threshold * _SCALE)
        self.t0_ms = t0_ms
        self.samples = 0  # frames classified since start
        self.below = 0  # frames whose top probability was under the threshold
        self.limited = 0  # frames over the threshold not published (rate limit)
        self._pos = 0  # frame index in the current rate-limit window
        self._sent = 0  # messages in the current window

    def classify(self, frame):
        """Preprocess one raw frame and run the model; returns the class index (probabilities in self.proba)."""
        tinysense_image.preprocess(frame, self.pixel_format, self.frame_width, self.frame_height, self.image,
                                   self.width, self.height, byteswap=self.byteswap, normalize=self.normalize,
                                   mean=self.mean, std=self.std)
        self.model.run(self.image, self.proba)
        score = self.score
        linear_map(self.proba, score, 0.0, 1.0, 0, _SCALE)
        best = 0
        top = score[0]
        for i in range(1, len(score)):
            if score[i] > top:
                best = i
                top = score[i]
        return best

    def process(self, frame):
        """Feed one raw frame (the camera's buffer); returns [message] or ()."""
        best = self.classify(frame)
        t_frames = self.samples
        self.samples += 1
        if self._pos == self.interval:
            self._pos = 0
            self._sent = 0
        self._pos += 1
        if self.score[best] < self._threshold:
            self.below += 1
            return _NONE
        if self._sent >= self.max_messages:
            self.limited += 1
            return _NONE
        self._sent += 1
        return [{"class": self.labels[best], "confidence": self.proba[best],
                 "t": self.t0_ms + int(t_frames * 1000 / self.fps)}]

# Sound level meter app core: int16 microphone chunks in -> one message per interval out:
#   {"laeq": dB, "lafmax": dB, "lafmin": dB, "t": ms}
# (the letters follow the configured weighting; keys stay laeq/lafmax/lafmin; None = nothing to report yet:
# Lmin waits 5 Fast time constants after the start, as the meter does). Levels come from the C meter
# tinysense_soundlevel.SoundLevel (Fast time weighting for max/min). Intervals are exact sample counts, so a
# chunk that crosses an interval boundary is split there. Nothing is allocated unless a message is produced.
#
# config (a dict, e.g. the "soundlevel" object of config.json):
#   samplerate (16000), weighting ("A"), interval_s (1.0), mic_sensitivity_dbfs (-26.0)
from tinysense_soundlevel import SoundLevel

_NONE = ()

DEFAULTS = {"samplerate": 16000, "weighting": "A", "interval_s": 1.0, "mic_sensitivity_dbfs": -26.0}


def _get(config, key):
    return config.get(key, DEFAULTS[key])


class SoundLevelApp:
    def __init__(self, config=None, t0_ms=0):
        config = config or {}
        if "soundlevel" in config:
            config = config["soundlevel"]
        self.samplerate = int(_get(config, "samplerate"))
        self.weighting = _get(config, "weighting")
        interval_s = float(_get(config, "interval_s"))
        self.interval = int(round(interval_s * self.samplerate))
        if self.interval < 1:
            raise ValueError("interval_s too short for the sample rate")
        self.meter = SoundLevel(self.samplerate, self.weighting,
                                mic_sensitivity_dbfs=float(_get(config, "mic_sensitivity_dbfs")))
        self.t0_ms = t0_ms
        self.samples = 0  # samples processed since start
        self._n = 0  # samples in the current interval

    def _message(self):
        m = self.meter
        msg = {"laeq": m.leq(), "lafmax": m.lmax(), "lafmin": m.lmin(),
               "t": self.t0_ms + self.samples * 1000 // self.samplerate}
        m.reset_interval()
        self._n = 0
        return msg

    def process(self, chunk):
        """Feed one chunk (array('h') or a memoryview of one); returns a list of messages, or () if none."""
        n = len(chunk)
        left = self.interval - self._n
        if n < left:
            self.meter.process(chunk)
            self._n += n
            self.samples += n
            return _NONE
        messages = []
        mv = memoryview(chunk)
        pos = 0
        while n - pos >= left:
            self.meter.process(mv[pos:pos + left])
            pos += left
            self.samples += left
            messages.append(self._message())
            left = self.interval
        if pos < n:
            self.meter.process(mv[pos:])
            self._n = n - pos
            self.samples += n - pos
        return messages

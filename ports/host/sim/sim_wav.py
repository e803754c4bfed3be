# RIFF/WAVE reader for the simulator: PCM 16-bit, mono or stereo, streamed from the file frame by frame.
import array
import struct


class WavError(ValueError):
    pass


class WavSource:
    """Frames of a PCM 16-bit WAV file. read_frame(out) fills out[0] (and out[1] for stereo; mono files
    repeat the sample) and returns False once the file is exhausted (then silence, or the start again
    when loop=True)."""

    BLOCK = 256  # frames per file read

    def __init__(self, path, loop=False):
        self.path = path
        self.loop = loop
        self._f = open(path, "rb")
        head = self._f.read(12)
        if len(head) < 12 or head[0:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise WavError("%s: not a RIFF/WAVE file" % path)
        fmt = None
        while True:
            chunk = self._f.read(8)
            if len(chunk) < 8:
                raise WavError("%s: no 'data' chunk" % path)
            cid, size = chunk[0:4], struct.unpack("<I", chunk[4:8])[0]
            if cid == b"fmt ":
                body = self._f.read(size + (size & 1))
                if len(body) < 16:
                    raise WavError("%s: 'fmt ' chunk too short" % path)
                fmt = struct.unpack("<HHIIHH", body[0:16])
            elif cid == b"data":
                if fmt is None:
                    raise WavError("%s: 'data' before 'fmt '" % path)
                self._data_start = self._f.tell()
                self._data_size = size
                break
            else:
                self._f.read(size + (size & 1))
        tag, channels, rate, _byte_rate, align, bits = fmt
        if tag != 1:
            raise WavError("%s: format tag %d is not PCM (1); only PCM 16-bit is supported" % (path, tag))
        if bits != 16:
            raise WavError("%s: %d-bit samples; only PCM 16-bit is supported" % (path, bits))
        if channels not in (1, 2):
            raise WavError("%s: %d channels; only mono or stereo is supported" % (path, channels))
        self.channels = channels
        self.rate = rate
        self.n_frames = self._data_size // (2 * channels)
        self.frames_read = 0
        self.exhausted = False
        self._block = array.array("h", bytes(2 * channels * self.BLOCK))
        self._block_len = 0
        self._block_pos = 0

    def _refill(self):
        left = self.n_frames - self.frames_read
        if left <= 0:
            if not self.loop:
                self.exhausted = True
                return False
            self._f.seek(self._data_start)
            self.frames_read = 0
            left = self.n_frames
            if left == 0:
                self.exhausted = True
                return False
        n = min(left, self.BLOCK)
        got = self._f.readinto(self._block) if n == self.BLOCK else None
        if got is None:
            data = self._f.read(n * 2 * self.channels)
            for i in range(len(data) // 2):
                self._block[i] = struct.unpack_from("<h", data, 2 * i)[0]
        self._block_len = n
        self._block_pos = 0
        return True

    def read_frame(self, out):
        if self._block_pos >= self._block_len and not self._refill():
            out[0] = 0
            out[1] = 0
            return False
        i = self._block_pos * self.channels
        out[0] = self._block[i]
        out[1] = self._block[i + 1] if self.channels == 2 else out[0]
        self._block_pos += 1
        self.frames_read += 1
        return True

    def close(self):
        self._f.close()


def write_wav(path, samples, rate, channels=1, tag=1, bits=16):
    """Write interleaved int16 samples (array('h') or a sequence) as a RIFF/WAVE file (tests; tag/bits
    other than 1/16 write a header the reader must refuse)."""
    data = array.array("h", samples)
    size = len(data) * 2
    block = channels * bits // 8
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 36 + size) + b"WAVE")
        f.write(b"fmt " + struct.pack("<IHHIIHH", 16, tag, channels, rate, rate * block, block, bits))
        f.write(b"data" + struct.pack("<I", size))
        f.write(bytes(data))

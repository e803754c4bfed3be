# Reads the fuzz cases written by tests/fuzzing.py: 3-byte little-endian length + bytes, per case.


def cases(path, n):
    with open(path, "rb") as f:
        blob = f.read()
    pos = 0
    for _ in range(n):
        size = blob[pos] | (blob[pos + 1] << 8) | (blob[pos + 2] << 16)
        yield bytes(blob[pos + 3 : pos + 3 + size])
        pos += 3 + size

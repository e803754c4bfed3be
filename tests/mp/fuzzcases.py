# Reads the fuzz cases written by tests/fuzzing.py: 3-byte little-endian length + bytes, per case.
#
# One read per case, not one read of the whole file: a stream read of unknown length grows its buffer a
# chunk at a time (copying it each time), which made reading a 10,000-case file (~13 MB) quadratic; in the
# sanitize build that took far longer than the fuzzing itself.


def cases(path, n):
    with open(path, "rb") as f:
        for _ in range(n):
            head = f.read(3)
            size = head[0] | (head[1] << 8) | (head[2] << 16)
            data = f.read(size) if size else b""
            if len(data) != size:
                raise ValueError("fuzz cases file is truncated")
            yield data


def run(path, n, load, prefix, exercise):
    """Load every case with load(data); a rejected one must raise a ValueError whose message starts with
    `prefix` (it names the problem); exercise(model) runs each loaded one. Prints "fuzz <loaded> <rejected>"."""
    loaded = rejected = 0
    for data in cases(path, n):
        try:
            model = load(data)
        except ValueError as e:
            assert str(e).startswith(prefix), e
            rejected += 1
            continue
        loaded += 1
        exercise(model)
    print("fuzz", loaded, rejected)

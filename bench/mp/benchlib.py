# Benchmark protocol for MicroPython-side benchmark scripts (run by bench/run.py).
#
#   micropython bench/mp/bench_x.py CASE N
#
# runs case CASE N times after one warm-up call and prints "us_per_call <float>".
# With N = 0 it only sets up, so that callgrind runs at N and at 0 give the
# instructions of N calls by difference, without start-up and set-up costs.
import sys
import time


def main(cases, realtime_us=None):
    """cases: a list of (name, setup) pairs, the baseline (the MicroPython peer) first;
    setup() prepares the data and returns the function to time.
    realtime_us: the duration of the signal one call processes (e.g. 100000 for 0.1 s of
    audio), so the results can say which fraction of real time a call takes."""
    name, repeat = sys.argv[1], int(sys.argv[2])
    if name == "--list":
        print(" ".join(case for case, _ in cases))
        if realtime_us:
            print("realtime_us", realtime_us)
        return
    fn = dict(cases)[name]()
    if repeat == 0:
        return
    fn()
    start = time.ticks_us()
    for _ in range(repeat):
        fn()
    elapsed = time.ticks_diff(time.ticks_us(), start)
    print("us_per_call", elapsed / repeat)

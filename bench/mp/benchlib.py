# Benchmark protocol for MicroPython-side benchmark scripts (run by bench/run.py).
#
#   micropython bench/mp/bench_x.py CASE N
#
# runs case CASE N times after one warm-up call and prints "us_per_call <float>". bench/run.py counts
# callgrind instructions at two values of N and divides the difference by the difference of N: start-up,
# set-up, the warm-up call, the clock reads and the final print cancel out, so only the calls are counted.
#
# A case's setup() returns either a function (each call is fn()) or a pair (fn, inputs): each call is then
# fn(x) with x the next item of inputs, cycling. The pair form is the lean loop for "one prediction per
# call on the next test row": a counting loop and a subscript add a few hundred instructions per call, far
# less than a Python closure that keeps its own row counter, and every case of a script goes through the
# very same loop.
import sys
import time


def _run_inputs(fn, inputs, repeat):
    # Counting loops over indices allocate nothing (a slice for the remainder would, and the allocator's
    # search for a free block costs more or less depending on its size, which differs between the runs).
    n = len(inputs)
    rounds, rest = divmod(repeat, n)
    for _ in range(rounds):
        for i in range(n):
            fn(inputs[i])
    for i in range(rest):
        fn(inputs[i])


def _run_plain(fn, repeat):
    for _ in range(repeat):
        fn()


def main(cases, realtime_us=None, callgrind_calls=None):
    """cases: a list of (name, setup) pairs, the baseline (the MicroPython peer) first;
    setup() prepares the data and returns the function to time, or (fn, inputs) (see above).
    realtime_us: the duration of the signal one call processes (e.g. 100000 for 0.1 s of
    audio), so the results can say which fraction of real time a call takes.
    callgrind_calls: how many calls bench/run.py should count under callgrind (default: its own);
    e.g. the number of test rows, so that every row is predicted exactly once."""
    name, repeat = sys.argv[1], int(sys.argv[2])
    if name == "--list":
        print(" ".join(case for case, _ in cases))
        if realtime_us:
            print("realtime_us", realtime_us)
        if callgrind_calls:
            print("callgrind_calls", callgrind_calls)
        return
    case = dict(cases)[name]()
    if repeat == 0:
        return
    if isinstance(case, tuple):
        fn, inputs = case
        fn(inputs[0])
        start = time.ticks_us()
        _run_inputs(fn, inputs, repeat)
    else:
        case()
        start = time.ticks_us()
        _run_plain(case, repeat)
    elapsed = time.ticks_diff(time.ticks_us(), start)
    # Integer formatting: its cost hardly depends on the value, so it cancels out between the two callgrind
    # runs (printing a float costs thousands of instructions more or less depending on its digits).
    print("us_per_call", "%d.%03d" % divmod(elapsed * 1000 // repeat, 1000))


def read_array(path, typecode):
    # A whole binary file as an array (test rows, model weights written by the host-side benchmark).
    import array

    with open(path, "rb") as f:
        return array.array(typecode, f.read())


def split_rows(flat, n_features):
    # One array (a slice: its own buffer) per row of a row-major matrix.
    return [flat[i * n_features:(i + 1) * n_features] for i in range(len(flat) // n_features)]


def agree(predict, rows, expected):
    # Prints "agree <predictions equal to expected> <rows>" (the reference's predictions, e.g. scikit-learn's).
    same = 0
    for i in range(len(rows)):
        if predict(rows[i]) == expected[i]:
            same += 1
    print("agree", same, len(rows))


def paired_cases(names, python_setup, tinysense_setup):
    # One model size after another: the plain-MicroPython peer first, then our C module (python_<name>,
    # tinysense_<name>); *_setup(name) returns the case's setup function.
    out = []
    for name in names:
        out += [("python_" + name, python_setup(name)), ("tinysense_" + name, tinysense_setup(name))]
    return out


def models_main(cases, loop_only, expected):
    # The entry point of scripts that compare models per size (bench_neighbors.py, bench_net.py):
    #   CASE N          the protocol above, with a loop_only case (the loop around a no-op builtin)
    #   --agree CASE    prints the case's agreement with expected(CASE) on every test row
    if sys.argv[1] == "--agree":
        predict, rows = dict(cases)[sys.argv[2]]()
        agree(predict, rows, expected(sys.argv[2]))
    else:
        main(cases + [("loop_only", loop_only)])

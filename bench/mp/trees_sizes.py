# emlearn_trees instructions per prediction by model size (digits, RandomForestClassifier with T trees and at
# most L leaves per tree: bench/results/trees/size_t<T>_l<L>.bin from bench/peers.py). benchlib protocol;
# run by bench/trees_size.py, which reports callgrind instructions per call for every case.
from bench_trees import PEERS, _meta, _rows, load_tinysense
from benchlib import main


def _case(name):
    def setup():
        return load_tinysense(name).predict, _rows()

    return setup


with open(PEERS + "/capacity.txt") as f:
    names = [line.split()[0] for line in f.read().splitlines() if line.startswith("size_")]
main([(name[5:-4], _case(name)) for name in names], callgrind_calls=_meta()[0])

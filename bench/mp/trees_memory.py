# Heap held after loading each trees model (gc.mem_alloc() after a collect, before vs after), and each case's
# agreement with scikit-learn's predict on the held-out rows. Run by bench/trees_size.py:
#   micropython trees_memory.py CASE
# CASE: tinysense_bin (soft vote), tinysense_class (hard vote), tinysense_csv, tinysense_soft_csv, m2cgen_mpy,
# everywhereml_mpy
import array
import gc
import sys

import bench_trees

case = sys.argv[1]
rows = bench_trees._rows()
with open(bench_trees.PEERS + "/digits_y.bin", "rb") as f:
    expected = array.array("h", f.read())
gc.collect()
before = gc.mem_alloc()
if case.startswith("tinysense"):
    files = {"tinysense_bin": "tinysense_rf.bin", "tinysense_class": "tinysense_rf_class.bin",
             "tinysense_csv": "tinysense_rf.csv", "tinysense_soft_csv": "tinysense_rf_soft.csv"}
    model = bench_trees.load_tinysense(files[case])
    predict = model.predict
elif case == "m2cgen_mpy":
    module = bench_trees._import_peer("m2cgen_rf")

    def predict(x):
        p = module.score(x)
        return p.index(max(p))
else:
    predict = bench_trees._import_peer("everywhereml_rf").RandomForestClassifier().predict
gc.collect()
held = gc.mem_alloc() - before
if not case.startswith("tinysense"):
    rows = [list(r) for r in rows]
agree = sum(1 for i in range(len(rows)) if predict(rows[i]) == expected[i])
print("held", held, "agree", agree, len(rows))

#!/usr/bin/python3
"""Baseline for `asyncmb bench parse`: scikit-learn's load_svmlight_file.

Usage: /usr/bin/python3 svmlight_sklearn.py [--reps N] [--warmup N] FILE...

For each LIBSVM FILE it times sklearn.datasets.load_svmlight_file(FILE) (a
Cython/C++ parser returning a scipy CSR matrix and a label vector) from the
page cache: --warmup untimed calls (the first one also warms the cache), then
--reps timed calls; it reports the fastest and the median. It also reports
what was parsed (rows, largest index, nonzeros, sums of values and labels) so
the caller can check both parsers read the same data.

Output: a first line {"versions": {...}}, then one JSON object per file:
  {"file": "testdata/a9a", "bytes": 2329875, "best_ns": ..., "median_ns": ...,
   "rows": 32561, "max_index": 123, "nnz": 451592, "sum_values": ..., "sum_labels": ...}
"""
import json
import os
import sys
import time


def main(argv):
    reps, warmup, files = 5, 1, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--reps", "--warmup"):
            if i + 1 >= len(argv):
                sys.exit("svmlight_sklearn.py: %s needs a value" % a)
            v = int(argv[i + 1])
            if v < (1 if a == "--reps" else 0):
                sys.exit("svmlight_sklearn.py: bad %s %d" % (a, v))
            if a == "--reps":
                reps = v
            else:
                warmup = v
            i += 2
            continue
        files.append(a)
        i += 1
    if not files:
        sys.exit(__doc__)

    import numpy
    import scipy
    import sklearn
    from sklearn.datasets import load_svmlight_file

    print(json.dumps({"versions": {"python": sys.version.split()[0], "numpy": numpy.__version__,
                                   "scipy": scipy.__version__, "sklearn": sklearn.__version__}}))
    for path in files:
        for _ in range(warmup):
            load_svmlight_file(path)
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter_ns()
            X, y = load_svmlight_file(path)
            ts.append(time.perf_counter_ns() - t0)
        ts.sort()
        X.sort_indices()
        max_index = int(X.indices.max()) + 1 if X.nnz else 0
        print(json.dumps({
            "file": path,
            "bytes": os.path.getsize(path),
            "best_ns": float(ts[0]),
            "median_ns": float(ts[len(ts) // 2]),
            "rows": int(X.shape[0]),
            "max_index": max_index,
            "nnz": int(X.nnz),
            "sum_values": float(numpy.sum(X.data)),
            "sum_labels": float(numpy.sum(y)),
        }), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

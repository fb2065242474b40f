#!/usr/bin/python3
"""Baseline for `asyncmb bench kernels`: scipy.sparse and numpy/OpenBLAS products.

Usage: /usr/bin/python3 kernels_scipy.py [--reps N] [--warmup N] FILE... [--dense ROWSxCOLS]

For each LIBSVM FILE (read with sklearn.datasets.load_svmlight_file) it times
y = A @ x and z = A.T @ r on the CSR matrix, and for --dense a random C-order
float64 matrix of that shape it times A @ x and A.T @ r with numpy (OpenBLAS
dgemv). Every figure is the median of --reps timed calls after --warmup untimed
ones. For the sparse products two forms are timed: the public `A @ x` (which
allocates its result) and scipy's C++ kernel `_sparsetools.csr_matvec` /
`csc_matvec` writing into a preallocated, zeroed vector; the faster of the two
is reported as scipy's time, so the comparison is against scipy at its best.

Output: one JSON object per line:
  {"case": "a9a", "op": "Ax", "ns": 123456.0, "form": "csr_matvec", "nnz": 451592}
and a first line {"versions": {...}} with the numpy, scipy and sklearn versions.
"""
import json
import sys
import time


def median_ns(f, reps, warmup):
    for _ in range(warmup):
        f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        f()
        ts.append(time.perf_counter_ns() - t0)
    ts.sort()
    return float(ts[len(ts) // 2])


def best(forms, reps, warmup):
    """Times each (name, f) and returns (name, ns) of the fastest."""
    timed = [(name, median_ns(f, reps, warmup)) for name, f in forms]
    return min(timed, key=lambda t: t[1])


def main(argv):
    import numpy as np
    import scipy
    import scipy.sparse
    import sklearn
    from scipy.sparse import _sparsetools
    from sklearn.datasets import load_svmlight_file

    reps, warmup, files, dense = 50, 5, [], []
    it = iter(argv)
    for a in it:
        if a == "--reps":
            reps = int(next(it))
        elif a == "--warmup":
            warmup = int(next(it))
        elif a == "--dense":
            r, c = next(it).lower().split("x")
            dense.append((int(r), int(c)))
        else:
            files.append(a)

    print(json.dumps({"versions": {"numpy": np.__version__, "scipy": scipy.__version__,
                                   "sklearn": sklearn.__version__}}), flush=True)
    rng = np.random.default_rng(1)
    for path in files:
        A, _ = load_svmlight_file(path)
        A = scipy.sparse.csr_matrix(A, dtype=np.float64)
        A.sort_indices()
        n, d = A.shape
        x = rng.standard_normal(d)
        r = rng.standard_normal(n)
        At = A.T  # a CSC view sharing A's arrays: scipy's A^T r is csc_matvec
        y = np.zeros(n)
        z = np.zeros(d)
        name = path.rstrip("/").split("/")[-1]

        def raw_ax():
            y.fill(0)
            _sparsetools.csr_matvec(n, d, A.indptr, A.indices, A.data, x, y)

        def raw_atr():
            z.fill(0)
            _sparsetools.csc_matvec(d, n, At.indptr, At.indices, At.data, r, z)

        # Check the raw forms compute what the public ones do.
        raw_ax()
        raw_atr()
        assert np.allclose(y, A @ x) and np.allclose(z, At @ r)
        form, ns = best([("A@x", lambda: A @ x), ("csr_matvec", raw_ax)], reps, warmup)
        print(json.dumps({"case": name, "op": "Ax", "ns": ns, "form": form, "nnz": int(A.nnz)}), flush=True)
        form, ns = best([("A.T@r", lambda: At @ r), ("csc_matvec", raw_atr)], reps, warmup)
        print(json.dumps({"case": name, "op": "ATr", "ns": ns, "form": form, "nnz": int(A.nnz)}), flush=True)

    for rows, cols in dense:
        A = rng.standard_normal((rows, cols))
        x = rng.standard_normal(cols)
        r = rng.standard_normal(rows)
        name = "dense%dx%d" % (rows, cols)
        ns = median_ns(lambda: A @ x, reps, warmup)
        print(json.dumps({"case": name, "op": "Ax", "ns": ns, "form": "numpy A@x", "nnz": rows * cols}), flush=True)
        ns = median_ns(lambda: A.T @ r, reps, warmup)
        print(json.dumps({"case": name, "op": "ATr", "ns": ns, "form": "numpy A.T@r", "nnz": rows * cols}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env python3
"""numpy (OpenBLAS) side of `npm run bench:kernels`.

A line protocol, so the benchmark can interleave numpy and Lumen measurements of each case (the
machine is shared; interleaving exposes both to the same load). It first prints one JSON line
describing the BLAS (core type, thread count); then, for each JSON line read from stdin,
{"name", "m", "n", "k", "transA", "transB", "min_reps", "min_time"}, it times `op(A) @ op(B)` on
float32 operands laid out exactly as Lumen's (a transposed operand is the transpose view of a
contiguous array, so OpenBLAS gets the transpose flag), after a warm-up, and prints one JSON line
with the GFLOP/s of every repetition. Operands are cached per case between calls.

The thread count comes from OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, set by the caller.
"""
import ctypes
import glob
import json
import os
import sys
import time

import numpy as np


def blas_info():
    """OpenBLAS core name and threads, read from the library numpy bundles (no threadpoolctl needed)."""
    info = {"numpy": np.__version__}
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "*openblas*"))
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
            for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", "64_"), ("openblas", "")):
                core = getattr(lib, f"{prefix}_get_corename{suffix}", None)
                nthreads = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if core is not None:
                    core.restype = ctypes.c_char_p
                    info["blas"] = f"OpenBLAS {core().decode()}"
                    if nthreads is not None:
                        info["blas_threads"] = int(nthreads())
                    return info
        except OSError:
            continue
    info["blas"] = "unknown BLAS"
    return info


def operand(rows, cols, trans, rng):
    """A (rows, cols) float32 operand; when trans, the transpose view of a contiguous (cols, rows) array."""
    if trans:
        return rng.standard_normal((cols, rows), dtype=np.float32).T
    return rng.standard_normal((rows, cols), dtype=np.float32)


CACHE = {}


def time_case(c, min_reps, min_time, rng):
    key = (c["m"], c["n"], c["k"], c["transA"], c["transB"])
    if key not in CACHE:
        CACHE.clear()
        a = operand(c["m"], c["k"], c["transA"], rng)
        b = operand(c["k"], c["n"], c["transB"], rng)
        CACHE[key] = (a, b, np.empty((c["m"], c["n"]), dtype=np.float32))
    a, b, out = CACHE[key]
    np.matmul(a, b, out=out)  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < min_time and len(times) < 50):
        t = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - t)
    flops = 2.0 * c["m"] * c["n"] * c["k"]
    return {"name": c["name"], "gflops": [flops / t / 1e9 for t in times]}


def main():
    rng = np.random.default_rng(0)
    print(json.dumps({"info": blas_info()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        c = json.loads(line)
        print(json.dumps(time_case(c, c.get("min_reps", 3), c.get("min_time", 0.1), rng)), flush=True)


if __name__ == "__main__":
    main()

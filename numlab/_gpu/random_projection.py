"""CuPy kernels of the counter-based very sparse random projection.

Same definition as :mod:`numlab.random_projection._hash` and the Numba kernels in
:mod:`numlab._cpu.random_projection`: splitmix64 draws, geometric gaps looked up in the
host-computed float64 table. One thread per output row adds the products in the order
of the CPU kernel and the code is compiled with ``--fmad=false``, so the projections are
bit-for-bit those of the Numba kernels.
"""

from __future__ import annotations

import cupy
import numpy as np

_SOURCE = r"""
typedef unsigned long long u64;

__device__ __forceinline__ u64 mix64(u64 z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

__device__ __forceinline__ u64 column_key(u64 seed, long long j) {
    return mix64(seed + (u64)(j + 1) * 0xD1B54A32D192ED03ull);
}

// Draw t of a column: the uniform in (0, 1] and the sign bit.
__device__ __forceinline__ double draw(u64 key, long long t, int* bit) {
    u64 h = mix64(key + (u64)(t + 1) * 0x9E3779B97F4A7C15ull);
    *bit = (int)(h & 1ull);
    return (double)((h >> 11) + 1ull) * 1.1102230246251565e-16;  // 2**-53
}

// The next position after pos (>= k ends the column): the gap is
// 1 + #{g : table[g] >= u} for the decreasing table; a gap of m = k - 1 - pos or more
// ends the column, which one comparison decides.
__device__ __forceinline__ long long advance(const double* table, long long k, long long pos, double u) {
    long long m = k - 1 - pos;
    if (m <= 0 || table[m - 1] >= u) return k;
    long long lo = 0, hi = m - 1;
    while (lo < hi) {
        long long mid = (lo + hi) >> 1;
        if (table[mid] >= u) lo = mid + 1; else hi = mid;
    }
    return pos + lo + 1;
}

extern "C" __global__ void rp_column_counts(u64 seed, const double* table, long long k,
                                            long long n_features, long long* counts) {
    long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n_features) return;
    u64 key = column_key(seed, j);
    long long pos = -1, t = 0, n = 0;
    int bit;
    while (true) {
        double u = draw(key, t++, &bit);
        pos = advance(table, k, pos, u);
        if (pos >= k) break;
        n++;
    }
    counts[j + 1] = n;
}

extern "C" __global__ void rp_fill_columns(u64 seed, const double* table, long long k,
                                           long long n_features, const long long* indptr,
                                           int* indices, signed char* signs) {
    long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n_features) return;
    u64 key = column_key(seed, j);
    long long pos = -1, t = 0, out = indptr[j];
    int bit;
    while (true) {
        double u = draw(key, t++, &bit);
        pos = advance(table, k, pos, u);
        if (pos >= k) break;
        indices[out] = (int)pos;
        signs[out] = bit ? -1 : 1;
        out++;
    }
}

template <typename T>
__global__ void rp_project_csr(u64 seed, const double* table, long long k, long long n_rows,
                               const long long* indptr, const long long* indices, const T* data,
                               T scale, T* out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_rows) return;
    T* row = out + i * k;
    for (long long p = indptr[i]; p < indptr[i + 1]; p++) {
        T x = data[p];
        u64 key = column_key(seed, indices[p]);
        long long pos = -1, t = 0;
        int bit;
        while (true) {
            double u = draw(key, t++, &bit);
            pos = advance(table, k, pos, u);
            if (pos >= k) break;
            row[pos] = row[pos] + x * (bit ? -scale : scale);
        }
    }
}

template <typename T>
__global__ void rp_project_dense(u64 seed, const double* table, long long k, long long n_rows,
                                 long long n_features, const T* X, T scale, T* out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_rows) return;
    T* row = out + i * k;
    for (long long j = 0; j < n_features; j++) {
        T x = X[i * n_features + j];
        if (x == (T)0) continue;
        u64 key = column_key(seed, j);
        long long pos = -1, t = 0;
        int bit;
        while (true) {
            double u = draw(key, t++, &bit);
            pos = advance(table, k, pos, u);
            if (pos >= k) break;
            row[pos] = row[pos] + x * (bit ? -scale : scale);
        }
    }
}

template <typename T>
__global__ void rp_csr_times_columns(long long n_rows, long long k, const long long* indptr,
                                     const long long* indices, const T* data,
                                     const long long* col_indptr, const long long* col_indices,
                                     const T* col_values, T* out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_rows) return;
    T* row = out + i * k;
    for (long long p = indptr[i]; p < indptr[i + 1]; p++) {
        T x = data[p];
        long long j = indices[p];
        for (long long q = col_indptr[j]; q < col_indptr[j + 1]; q++) {
            row[col_indices[q]] = row[col_indices[q]] + x * col_values[q];
        }
    }
}
"""

_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_THREADS = 128


_OPTIONS = ("--std=c++11", "--fmad=false")
_NAME_EXPRESSIONS = [
    f"rp_{kind}<{t}>" for kind in ("project_csr", "project_dense", "csr_times_columns") for t in _TYPES.values()
]


@cupy.memoize(for_each_device=True)
def _module():
    return cupy.RawModule(code=_SOURCE, options=_OPTIONS, name_expressions=_NAME_EXPRESSIONS)


def _kernel(name):
    return _module().get_function(name)


def _blocks(n):
    return (max(1, (n + _THREADS - 1) // _THREADS),)


def hash_columns(seed, table, n_features):
    """CuPy version of :func:`numlab.random_projection._hash.hash_columns`."""
    table = cupy.ascontiguousarray(table, dtype=cupy.float64)
    k = np.int64(table.shape[0])
    n = np.int64(n_features)
    counts = cupy.zeros(n_features + 1, dtype=cupy.int64)
    _kernel("rp_column_counts")(_blocks(n_features), (_THREADS,), (np.uint64(seed), table, k, n, counts))
    indptr = cupy.cumsum(counts)
    total = int(indptr[-1])
    indices = cupy.empty(total, dtype=cupy.int32)
    signs = cupy.empty(total, dtype=cupy.int8)
    _kernel("rp_fill_columns")(
        _blocks(n_features), (_THREADS,), (np.uint64(seed), table, k, n, indptr, indices, signs)
    )
    return indptr, indices, signs


def hash_project_csr(seed, table, indptr, indices, data, n_features, scale):
    """CuPy version of :func:`numlab.random_projection._hash.hash_project_csr`."""
    dtype = np.dtype(data.dtype)
    table = cupy.ascontiguousarray(table, dtype=cupy.float64)
    n_rows = indptr.shape[0] - 1
    out = cupy.zeros((n_rows, table.shape[0]), dtype=dtype)
    _kernel(f"rp_project_csr<{_TYPES[dtype]}>")(
        _blocks(n_rows),
        (_THREADS,),
        (
            np.uint64(seed),
            table,
            np.int64(table.shape[0]),
            np.int64(n_rows),
            cupy.ascontiguousarray(indptr, dtype=cupy.int64),
            cupy.ascontiguousarray(indices, dtype=cupy.int64),
            cupy.ascontiguousarray(data),
            dtype.type(scale),
            out,
        ),
    )
    return out


def hash_project_dense(seed, table, X, scale):
    """CuPy version of :func:`numlab.random_projection._hash.hash_project_dense`."""
    dtype = np.dtype(X.dtype)
    table = cupy.ascontiguousarray(table, dtype=cupy.float64)
    X = cupy.ascontiguousarray(X)
    out = cupy.zeros((X.shape[0], table.shape[0]), dtype=dtype)
    _kernel(f"rp_project_dense<{_TYPES[dtype]}>")(
        _blocks(X.shape[0]),
        (_THREADS,),
        (
            np.uint64(seed),
            table,
            np.int64(table.shape[0]),
            np.int64(X.shape[0]),
            np.int64(X.shape[1]),
            X,
            dtype.type(scale),
            out,
        ),
    )
    return out


def csr_times_columns(indptr, indices, data, col_indptr, col_indices, col_values, n_components):
    """CuPy version of :func:`numlab.random_projection._hash.csr_times_columns`."""
    dtype = np.dtype(data.dtype)
    n_rows = indptr.shape[0] - 1
    out = cupy.zeros((n_rows, n_components), dtype=dtype)
    _kernel(f"rp_csr_times_columns<{_TYPES[dtype]}>")(
        _blocks(n_rows),
        (_THREADS,),
        (
            np.int64(n_rows),
            np.int64(n_components),
            cupy.ascontiguousarray(indptr, dtype=cupy.int64),
            cupy.ascontiguousarray(indices, dtype=cupy.int64),
            cupy.ascontiguousarray(data),
            cupy.ascontiguousarray(col_indptr, dtype=cupy.int64),
            cupy.ascontiguousarray(col_indices, dtype=cupy.int64),
            cupy.ascontiguousarray(col_values, dtype=dtype),
            out,
        ),
    )
    return out

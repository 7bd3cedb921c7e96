// Embedding gather out[t, :] = table[ids[t], :] (table [V, D], out [T, D]) and its backward.
#include "tttbench_hip.h"

// An id outside [0, V) writes NaN rather than reading out of bounds, so a verify run sees it.
template <typename T>
__device__ void embedding_impl(const int* __restrict__ ids, const T* __restrict__ table, T* __restrict__ out,
                               int tokens, int dim, int vocab) {
    const long n = (long)tokens * dim;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        const long t = i / dim;
        const long d = i - t * dim;
        const int id = ids[t];
        float v = (id >= 0 && id < vocab) ? ttt_load(table[(long)id * dim + d]) : __int_as_float(0x7fc00000);
        ttt_store(out + i, v);
    }
}

// Backward of the gather: dtable[id, :] += sum of dout[t, :] over the tokens t with that id. The
// host groups the token ids once, in setup (they are known then): `order` lists the tokens
// sorted by id (ascending t within an id), segment u holds the tokens order[start[u] ..
// start[u+1]) of id ids[u]. One thread sums one (segment, channel) in token order and adds it to
// the table once: no atomics, the same bits every run.
template <typename T>
__device__ void embedding_backward_impl(const int* __restrict__ order, const int* __restrict__ ids,
                                        const int* __restrict__ start, int segments, const T* __restrict__ dout,
                                        T* __restrict__ dtable, int dim) {
    const long n = (long)segments * dim;
    for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
        const int u = (int)(e / dim);
        const int d = (int)(e - (long)u * dim);
        float s = 0.0f;
        for (int i = start[u]; i < start[u + 1]; ++i) s += ttt_load(dout[(long)order[i] * dim + d]);
        T* row = dtable + (long)ids[u] * dim;
        ttt_store(row + d, ttt_load(row[d]) + s);
    }
}

#define EMBEDDING(T, S)                                                                                   \
    extern "C" __global__ void embedding_forward_##S(const int* ids, const T* table, T* out, int tokens,  \
                                                     int dim, int vocab) {                                \
        embedding_impl<T>(ids, table, out, tokens, dim, vocab);                                           \
    }                                                                                                     \
    extern "C" __global__ void embedding_backward_##S(const int* order, const int* ids, const int* start, \
                                                      int segments, const T* dout, T* dtable, int dim) {  \
        embedding_backward_impl<T>(order, ids, start, segments, dout, dtable, dim);                       \
    }
TTT_FOR_EACH_TYPE(EMBEDDING)

// Grid-stride: the forward over N = tokens * D elements, the backward over N = segments * D.
TTT_LAUNCH(embedding_forward, TTT_STRIDE_THREADS, 1, TTT_STRIDE_GRID(N), 1, 0)
TTT_LAUNCH(embedding_backward, TTT_STRIDE_THREADS, 1, TTT_STRIDE_GRID(N), 1, 0)

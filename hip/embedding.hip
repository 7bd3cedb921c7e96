// Embedding gather: out[t, :] = table[ids[t], :], table [V, D], out [T, D].
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

#define EMBEDDING(T, S)                                                                               \
    extern "C" __global__ void embedding_##S(const int* ids, const T* table, T* out, int tokens, int dim, \
                                             int vocab) {                                              \
        embedding_impl<T>(ids, table, out, tokens, dim, vocab);                                         \
    }
TTT_FOR_EACH_TYPE(EMBEDDING)

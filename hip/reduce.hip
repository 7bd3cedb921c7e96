// Fixed-order sums of float32 partials into a gradient. Backward kernels that reduce over
// many rows (norm gains, learning-rate weights, inner-loop parameters summed over the batch)
// write one partial per chunk of rows instead of adding into the gradient with atomics; this
// kernel adds the partials in index order, so a gradient is bit-identical from run to run.
#include "tttbench_hip.h"

// out[r * cols + c] (+)= sum over t in [0, terms) of part[t * term_stride + r * row_stride + c],
// t ascending. One thread per output element, adjacent threads on adjacent c (coalesced).
template <typename T>
__device__ void sum_partials_impl(const float* __restrict__ part, T* __restrict__ out, int terms, int term_stride,
                                  int rows, int row_stride, int cols, int accumulate) {
    const long n = (long)rows * cols;
    for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
        const long r = e / cols;
        const long c = e - r * cols;
        const float* p = part + r * row_stride + c;
        float s = 0.0f;
        for (int t = 0; t < terms; ++t) s += p[(long)t * term_stride];
        ttt_store(out + e, accumulate ? ttt_load(out[e]) + s : s);
    }
}

#define REDUCE(T, S)                                                                                   \
    extern "C" __global__ void sum_partials_##S(const float* part, T* out, int terms, int term_stride,  \
                                                int rows, int row_stride, int cols, int accumulate) {   \
        sum_partials_impl<T>(part, out, terms, term_stride, rows, row_stride, cols, accumulate);        \
    }
TTT_FOR_EACH_TYPE(REDUCE)

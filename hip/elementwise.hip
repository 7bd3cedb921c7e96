// Elementwise ops over flat arrays of n elements: fill, residual add, SwiGLU and its backward,
// and the fixed-order sums of float32 partials that every backward reducing over many rows
// ends with. Grid-stride loops, so the host may launch fewer blocks than elements / blockDim.
#include "tttbench_hip.h"

template <typename T>
__device__ void fill_impl(T* out, float value, int n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        ttt_store(out + i, value);
    }
}

// out may alias a or b (the residual stream is updated in place), so no __restrict__.
template <typename T>
__device__ void add_impl(const T* a, const T* b, T* out, int n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        ttt_store(out + i, ttt_load(a[i]) + ttt_load(b[i]));
    }
}

// out = silu(gate) * up, silu(g) = g / (1 + exp(-g)).
template <typename T>
__device__ void swiglu_impl(const T* gate, const T* up, T* out, int n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        float g = ttt_load(gate[i]);
        ttt_store(out + i, g / (1.0f + expf(-g)) * ttt_load(up[i]));
    }
}

// Backward of swiglu. (fill needs none; the residual add's backward is the identity, which the
// model applies by accumulating into one gradient.)
// out = silu(g) * u with silu(g) = g * s, s = sigmoid(g):
//   dgate = dout * u * s * (1 + g * (1 - s)),  dup = dout * g * s   (both overwritten)
template <typename T>
__device__ void swiglu_backward_impl(const T* __restrict__ gate, const T* __restrict__ up, const T* __restrict__ dout,
                                     T* __restrict__ dgate, T* __restrict__ dup, int n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        const float g = ttt_load(gate[i]);
        const float u = ttt_load(up[i]);
        const float dy = ttt_load(dout[i]);
        const float s = 1.0f / (1.0f + expf(-g));
        ttt_store(dgate + i, dy * u * s * (1.0f + g * (1.0f - s)));
        ttt_store(dup + i, dy * g * s);
    }
}

// Fixed-order sums of float32 partials into a gradient. Backward kernels that reduce over
// many rows (norm gains, learning-rate weights, inner-loop parameters summed over the batch)
// write one partial per chunk of rows instead of adding into the gradient with atomics; this
// kernel adds the partials in index order, so a gradient is bit-identical from run to run.
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

#define ELEMENTWISE(T, S)                                                                                   \
    extern "C" __global__ void elementwise_fill_##S(T* out, float value, int n) {                           \
        fill_impl<T>(out, value, n);                                                                        \
    }                                                                                                       \
    extern "C" __global__ void elementwise_add_##S(const T* a, const T* b, T* out, int n) {                 \
        add_impl<T>(a, b, out, n);                                                                          \
    }                                                                                                       \
    extern "C" __global__ void elementwise_swiglu_##S(const T* gate, const T* up, T* out, int n) {          \
        swiglu_impl<T>(gate, up, out, n);                                                                   \
    }                                                                                                       \
    extern "C" __global__ void elementwise_swiglu_backward_##S(const T* gate, const T* up, const T* dout,   \
                                                               T* dgate, T* dup, int n) {                   \
        swiglu_backward_impl<T>(gate, up, dout, dgate, dup, n);                                             \
    }                                                                                                       \
    extern "C" __global__ void elementwise_sum_partials_##S(const float* part, T* out, int terms,           \
                                                            int term_stride, int rows, int row_stride,      \
                                                            int cols, int accumulate) {                     \
        sum_partials_impl<T>(part, out, terms, term_stride, rows, row_stride, cols, accumulate);            \
    }
TTT_FOR_EACH_TYPE(ELEMENTWISE)

// All grid-stride over N elements: N = n for all but sum_partials, whose N is rows * cols.
TTT_LAUNCH(elementwise_fill, TTT_STRIDE_THREADS, 1, TTT_STRIDE_GRID(N), 1, 0)
TTT_LAUNCH(elementwise_add, TTT_STRIDE_THREADS, 1, TTT_STRIDE_GRID(N), 1, 0)
TTT_LAUNCH(elementwise_swiglu, TTT_STRIDE_THREADS, 1, TTT_STRIDE_GRID(N), 1, 0)
TTT_LAUNCH(elementwise_swiglu_backward, TTT_STRIDE_THREADS, 1, TTT_STRIDE_GRID(N), 1, 0)
TTT_LAUNCH(elementwise_sum_partials, TTT_STRIDE_THREADS, 1, TTT_STRIDE_GRID(N), 1, 0)

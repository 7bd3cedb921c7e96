// Elementwise ops over flat arrays of n elements: fill, residual add, SwiGLU.
// Grid-stride loops, so the host may launch fewer blocks than elements / blockDim.
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

#define ELEMENTWISE(T, S)                                                                  \
    extern "C" __global__ void fill_##S(T* out, float value, int n) {                      \
        fill_impl<T>(out, value, n);                                                       \
    }                                                                                      \
    extern "C" __global__ void add_##S(const T* a, const T* b, T* out, int n) {            \
        add_impl<T>(a, b, out, n);                                                         \
    }                                                                                      \
    extern "C" __global__ void swiglu_##S(const T* gate, const T* up, T* out, int n) {     \
        swiglu_impl<T>(gate, up, out, n);                                                  \
    }
TTT_FOR_EACH_TYPE(ELEMENTWISE)

// out = parts[0] + ... + parts[count-1] (+ out when accumulate), each part a slice of n at a stride:
// the partial products of a matrix product split along its inner dimension, added in slice order.
// float32 only: the parts of a reduced-precision product would be rounded before the sum.
__device__ void sum_parts_impl(const float* __restrict__ parts, int count, int stride, float* __restrict__ out,
                               int n, int accumulate) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        float s = parts[i];
        for (int j = 1; j < count; j++) s += parts[(long)j * stride + i];
        if (accumulate) s += out[i];
        out[i] = s;
    }
}

extern "C" __global__ void sum_parts_f32(const float* parts, int count, int stride, float* out, int n, int accumulate) {
    sum_parts_impl(parts, count, stride, out, n, accumulate);
}

// Backward of the elementwise ops of elementwise.hip: SwiGLU. (fill needs none; the residual
// add's backward is the identity, which the model applies by accumulating into one gradient.)
#include "tttbench_hip.h"

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

#define ELEMENTWISE_BACKWARD(T, S)                                                                     \
    extern "C" __global__ void swiglu_backward_##S(const T* gate, const T* up, const T* dout, T* dgate, \
                                                   T* dup, int n) {                                     \
        swiglu_backward_impl<T>(gate, up, dout, dgate, dup, n);                                         \
    }
TTT_FOR_EACH_TYPE(ELEMENTWISE_BACKWARD)

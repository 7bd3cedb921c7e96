// Two tiny kernels for the runtime's own checks (GpuSmoke, the runtime tests): not part of the model.
#include "tttbench_hip.h"

// y = a * x + y over n elements, grid-stride.
extern "C" __global__ void smoke_axpy(float a, const float* x, float* y, int n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        y[i] = a * x[i] + y[i];
    }
}

// The warp size the device reports to kernels, to compare with the runtime's own answer.
extern "C" __global__ void smoke_warp_size(int* out) {
    if (blockIdx.x == 0 && threadIdx.x == 0) *out = warpSize;
}

// smoke_axpy is grid-stride over N = n; smoke_warp_size needs one thread (one wave of 64).
TTT_LAUNCH(smoke_axpy, TTT_STRIDE_THREADS, 1, TTT_STRIDE_GRID(N), 1, 0)
TTT_LAUNCH(smoke_warp_size, 64, 1, 1, 1, 0)

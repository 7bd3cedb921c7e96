// Row norms over x [rows, dim], one block per row (grid-stride over rows), float32 sums.
// The saved statistics (rstd, mean) are float32 whatever the stored type; a null pointer
// skips saving them.
#include "tttbench_hip.h"

// out = x / sqrt(mean(x^2) + eps) * gain.
template <typename T>
__device__ void rmsnorm_impl(const T* __restrict__ x, const T* __restrict__ gain, T* __restrict__ out,
                             float* __restrict__ rstd, int rows, int dim, float eps) {
    __shared__ float scratch[32];
    for (int row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* xr = x + (long)row * dim;
        T* outr = out + (long)row * dim;
        float ss = 0.0f;
        for (int d = threadIdx.x; d < dim; d += blockDim.x) {
            float v = ttt_load(xr[d]);
            ss += v * v;
        }
        ss = ttt_block_sum(ss, scratch);
        // 1/sqrtf rather than rsqrtf: rsqrtf is an approximation on both vendors.
        const float r = 1.0f / sqrtf(ss / dim + eps);
        for (int d = threadIdx.x; d < dim; d += blockDim.x) {
            ttt_store(outr + d, ttt_load(xr[d]) * r * ttt_load(gain[d]));
        }
        if (rstd != nullptr && threadIdx.x == 0) rstd[row] = r;
    }
}

// sum = a + b (the residual stream, stored), then out = rmsnorm(sum): the add and the norm that
// reads it in one pass. The norm reads the sum as stored (rounded to T), as the two ops would;
// each thread reads back only elements it wrote itself. sum may alias a or b.
template <typename T>
__device__ void add_rmsnorm_impl(const T* a, const T* b, T* sum, const T* __restrict__ gain,
                                 T* __restrict__ out, float* __restrict__ rstd, int rows, int dim, float eps) {
    __shared__ float scratch[32];
    for (int row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* ar = a + (long)row * dim;
        const T* br = b + (long)row * dim;
        T* sr = sum + (long)row * dim;
        T* outr = out + (long)row * dim;
        float ss = 0.0f;
        for (int d = threadIdx.x; d < dim; d += blockDim.x) {
            ttt_store(sr + d, ttt_load(ar[d]) + ttt_load(br[d]));
            float v = ttt_load(sr[d]);
            ss += v * v;
        }
        ss = ttt_block_sum(ss, scratch);
        const float r = 1.0f / sqrtf(ss / dim + eps);
        for (int d = threadIdx.x; d < dim; d += blockDim.x) {
            ttt_store(outr + d, ttt_load(sr[d]) * r * ttt_load(gain[d]));
        }
        if (rstd != nullptr && threadIdx.x == 0) rstd[row] = r;
    }
}

// out = (x - mean) * rstd * weight + bias, biased variance; two passes over the row (mean,
// then the centred squares) rather than E[x^2] - E[x]^2, which cancels badly.
template <typename T>
__device__ void layernorm_impl(const T* __restrict__ x, const T* __restrict__ weight, const T* __restrict__ bias,
                               T* __restrict__ out, float* __restrict__ mean_out, float* __restrict__ rstd_out,
                               int rows, int dim, float eps) {
    __shared__ float scratch[32];
    for (int row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* xr = x + (long)row * dim;
        T* outr = out + (long)row * dim;
        float s = 0.0f;
        for (int d = threadIdx.x; d < dim; d += blockDim.x) s += ttt_load(xr[d]);
        const float mu = ttt_block_sum(s, scratch) / dim;
        float ss = 0.0f;
        for (int d = threadIdx.x; d < dim; d += blockDim.x) {
            float c = ttt_load(xr[d]) - mu;
            ss += c * c;
        }
        const float r = 1.0f / sqrtf(ttt_block_sum(ss, scratch) / dim + eps);
        for (int d = threadIdx.x; d < dim; d += blockDim.x) {
            ttt_store(outr + d, (ttt_load(xr[d]) - mu) * r * ttt_load(weight[d]) + ttt_load(bias[d]));
        }
        if (threadIdx.x == 0) {
            if (mean_out != nullptr) mean_out[row] = mu;
            if (rstd_out != nullptr) rstd_out[row] = r;
        }
    }
}

#define NORMS(T, S)                                                                                     \
    extern "C" __global__ void rmsnorm_##S(const T* x, const T* gain, T* out, float* rstd, int rows,    \
                                           int dim, float eps) {                                        \
        rmsnorm_impl<T>(x, gain, out, rstd, rows, dim, eps);                                            \
    }                                                                                                   \
    extern "C" __global__ void add_rmsnorm_##S(const T* a, const T* b, T* sum, const T* gain, T* out,   \
                                               float* rstd, int rows, int dim, float eps) {             \
        add_rmsnorm_impl<T>(a, b, sum, gain, out, rstd, rows, dim, eps);                                \
    }                                                                                                   \
    extern "C" __global__ void layernorm_##S(const T* x, const T* weight, const T* bias, T* out,        \
                                             float* mean, float* rstd, int rows, int dim, float eps) {  \
        layernorm_impl<T>(x, weight, bias, out, mean, rstd, rows, dim, eps);                            \
    }
TTT_FOR_EACH_TYPE(NORMS)

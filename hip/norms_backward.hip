// Backward of the row norms of norms.hip. One block per chunk of consecutive rows: it writes
// the input gradient of each row and, for the gain (and bias) gradients, one float32 partial
// per chunk and channel, which reduce.hip's sum_partials adds in chunk order. Channel d of a
// row is always handled by thread d mod blockDim.x, so the per-chunk sums in shared memory
// need no atomics. Dynamic shared memory: one float per channel (two for LayerNorm).
#include "tttbench_hip.h"

// y = x r g with r = (mean(x^2) + eps)^(-1/2), r saved by the forward:
//   dx += r g dy - r^3 x sum(g dy x) / D;   partial[chunk][d] = sum over the chunk's rows of dy x r.
template <typename T>
__device__ void rmsnorm_backward_impl(const T* __restrict__ x, const T* __restrict__ gain, const float* __restrict__ rstd,
                                      const T* __restrict__ dout, T* __restrict__ dx, float* __restrict__ partial,
                                      int rows, int dim, int chunk_rows) {
    extern __shared__ float4 norms_smem[];
    float* dgain = reinterpret_cast<float*>(norms_smem);
    __shared__ float scratch[32];
    const int row0 = blockIdx.x * chunk_rows;
    const int row1 = min(rows, row0 + chunk_rows);
    for (int d = threadIdx.x; d < dim; d += blockDim.x) dgain[d] = 0.0f;
    for (int row = row0; row < row1; ++row) {
        const T* xr = x + (long)row * dim;
        const T* dyr = dout + (long)row * dim;
        T* dxr = dx + (long)row * dim;
        const float r = rstd[row];
        float dot = 0.0f;
        for (int d = threadIdx.x; d < dim; d += blockDim.x) dot += ttt_load(gain[d]) * ttt_load(dyr[d]) * ttt_load(xr[d]);
        dot = ttt_block_sum(dot, scratch);
        const float c = r * r * r * dot / dim;
        for (int d = threadIdx.x; d < dim; d += blockDim.x) {
            const float xv = ttt_load(xr[d]);
            const float dy = ttt_load(dyr[d]);
            ttt_store(dxr + d, ttt_load(dxr[d]) + r * ttt_load(gain[d]) * dy - c * xv);
            dgain[d] += dy * xv * r;
        }
    }
    for (int d = threadIdx.x; d < dim; d += blockDim.x) partial[(long)blockIdx.x * dim + d] = dgain[d];
}

// y = xh w + b with xh = (x - mu) r (mu, r saved by the forward):
//   dx = r (dy w - mean(dy w) - xh mean(dy w xh))   (overwritten)
//   partial_w[chunk][d] = sum dy xh,  partial_b[chunk][d] = sum dy   (partial_b = partial_w + chunks * dim)
template <typename T>
__device__ void layernorm_backward_impl(const T* __restrict__ x, const T* __restrict__ weight,
                                        const float* __restrict__ mean, const float* __restrict__ rstd,
                                        const T* __restrict__ dout, T* __restrict__ dx, float* __restrict__ partial,
                                        int rows, int dim, int chunk_rows) {
    extern __shared__ float4 norms_smem[];
    float* dw = reinterpret_cast<float*>(norms_smem);
    float* db = dw + dim;
    __shared__ float scratch[32];
    const int row0 = blockIdx.x * chunk_rows;
    const int row1 = min(rows, row0 + chunk_rows);
    for (int d = threadIdx.x; d < dim; d += blockDim.x) {
        dw[d] = 0.0f;
        db[d] = 0.0f;
    }
    for (int row = row0; row < row1; ++row) {
        const T* xr = x + (long)row * dim;
        const T* dyr = dout + (long)row * dim;
        T* dxr = dx + (long)row * dim;
        const float mu = mean[row];
        const float r = rstd[row];
        float m1 = 0.0f;
        float m2 = 0.0f;
        for (int d = threadIdx.x; d < dim; d += blockDim.x) {
            const float dxh = ttt_load(dyr[d]) * ttt_load(weight[d]);
            m1 += dxh;
            m2 += dxh * (ttt_load(xr[d]) - mu) * r;
        }
        m1 = ttt_block_sum(m1, scratch) / dim;
        m2 = ttt_block_sum(m2, scratch) / dim;
        for (int d = threadIdx.x; d < dim; d += blockDim.x) {
            const float xh = (ttt_load(xr[d]) - mu) * r;
            const float dy = ttt_load(dyr[d]);
            ttt_store(dxr + d, r * (dy * ttt_load(weight[d]) - m1 - xh * m2));
            dw[d] += dy * xh;
            db[d] += dy;
        }
    }
    const int chunks = gridDim.x;
    for (int d = threadIdx.x; d < dim; d += blockDim.x) {
        partial[(long)blockIdx.x * dim + d] = dw[d];
        partial[((long)chunks + blockIdx.x) * dim + d] = db[d];
    }
}

#define NORMS_BACKWARD(T, S)                                                                                   \
    extern "C" __global__ void rmsnorm_backward_##S(const T* x, const T* gain, const float* rstd, const T* dout, \
                                                    T* dx, float* partial, int rows, int dim, int chunk_rows) {  \
        rmsnorm_backward_impl<T>(x, gain, rstd, dout, dx, partial, rows, dim, chunk_rows);                     \
    }                                                                                                          \
    extern "C" __global__ void layernorm_backward_##S(const T* x, const T* weight, const float* mean,           \
                                                      const float* rstd, const T* dout, T* dx, float* partial,   \
                                                      int rows, int dim, int chunk_rows) {                       \
        layernorm_backward_impl<T>(x, weight, mean, rstd, dout, dx, partial, rows, dim, chunk_rows);           \
    }
TTT_FOR_EACH_TYPE(NORMS_BACKWARD)

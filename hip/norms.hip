// Row norms over x [rows, dim] and their backward. The forward runs one block per row
// (grid-stride over rows), float32 sums; the saved statistics (rstd, mean) are float32 whatever
// the stored type, and a null pointer skips saving them.
//
// The backward runs one block per chunk of CHUNK consecutive rows: it writes the input gradient
// of each row and, for the gain (and bias) gradients, one float32 partial per chunk and
// channel, which elementwise_sum_partials adds in chunk order. Channel d of a row is always
// handled by thread d mod blockDim.x, so the per-chunk sums in shared memory need no atomics.
// Dynamic shared memory: one float per channel (two for LayerNorm).
#include "tttbench_hip.h"

// The backward's partials, floats: chunks * D (RMSNorm) and, for LayerNorm, the weight's then
// the bias's, 2 * chunks * D; and its dynamic shared memory, floats.
#define TTT_NORMS_CHUNKS(ROWS, CHUNK) cdiv(ROWS, CHUNK)
#define TTT_NORMS_RMSNORM_BACKWARD_PARTIAL_FLOATS(ROWS, D, CHUNK) (TTT_NORMS_CHUNKS(ROWS, CHUNK) * (D))
#define TTT_NORMS_LAYERNORM_BACKWARD_PARTIAL_FLOATS(ROWS, D, CHUNK) (2 * TTT_NORMS_CHUNKS(ROWS, CHUNK) * (D))
#define TTT_NORMS_RMSNORM_BACKWARD_SMEM_FLOATS(D) (D)
#define TTT_NORMS_LAYERNORM_BACKWARD_SMEM_FLOATS(D) (2 * (D))

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

// Backward. y = x r g with r = (mean(x^2) + eps)^(-1/2), r saved by the forward:
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

#define NORMS(T, S)                                                                                     \
    extern "C" __global__ void norms_rmsnorm_##S(const T* x, const T* gain, T* out, float* rstd, int rows, \
                                                 int dim, float eps) {                                  \
        rmsnorm_impl<T>(x, gain, out, rstd, rows, dim, eps);                                            \
    }                                                                                                   \
    extern "C" __global__ void norms_add_rmsnorm_##S(const T* a, const T* b, T* sum, const T* gain,      \
                                                     T* out, float* rstd, int rows, int dim, float eps) { \
        add_rmsnorm_impl<T>(a, b, sum, gain, out, rstd, rows, dim, eps);                                \
    }                                                                                                   \
    extern "C" __global__ void norms_layernorm_##S(const T* x, const T* weight, const T* bias, T* out,  \
                                                   float* mean, float* rstd, int rows, int dim,         \
                                                   float eps) {                                         \
        layernorm_impl<T>(x, weight, bias, out, mean, rstd, rows, dim, eps);                            \
    }                                                                                                   \
    extern "C" __global__ void norms_rmsnorm_backward_##S(const T* x, const T* gain, const float* rstd,  \
                                                          const T* dout, T* dx, float* partial,          \
                                                          int rows, int dim, int chunk_rows) {           \
        rmsnorm_backward_impl<T>(x, gain, rstd, dout, dx, partial, rows, dim, chunk_rows);              \
    }                                                                                                   \
    extern "C" __global__ void norms_layernorm_backward_##S(const T* x, const T* weight,                \
                                                            const float* mean, const float* rstd,       \
                                                            const T* dout, T* dx, float* partial,       \
                                                            int rows, int dim, int chunk_rows) {        \
        layernorm_backward_impl<T>(x, weight, mean, rstd, dout, dx, partial, rows, dim, chunk_rows);    \
    }
TTT_FOR_EACH_TYPE(NORMS)

// The forward: one block a row, ROWS rows of D. The backward: one block per chunk of CHUNK rows.
TTT_LAUNCH(norms_rmsnorm, 256, 1, TTT_ROW_GRID(ROWS), 1, 0)
TTT_LAUNCH(norms_add_rmsnorm, 256, 1, TTT_ROW_GRID(ROWS), 1, 0)
TTT_LAUNCH(norms_layernorm, 256, 1, TTT_ROW_GRID(ROWS), 1, 0)
TTT_LAUNCH(norms_rmsnorm_backward, 256, 1, TTT_NORMS_CHUNKS(ROWS, CHUNK), 1, 4 * TTT_NORMS_RMSNORM_BACKWARD_SMEM_FLOATS(D))
TTT_LAUNCH(norms_layernorm_backward, 256, 1, TTT_NORMS_CHUNKS(ROWS, CHUNK), 1, 4 * TTT_NORMS_LAYERNORM_BACKWARD_SMEM_FLOATS(D))
TTT_SIZE(norms_rmsnorm_backward_partial_floats, TTT_NORMS_RMSNORM_BACKWARD_PARTIAL_FLOATS(ROWS, D, CHUNK))
TTT_SIZE(norms_layernorm_backward_partial_floats, TTT_NORMS_LAYERNORM_BACKWARD_PARTIAL_FLOATS(ROWS, D, CHUNK))

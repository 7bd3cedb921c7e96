// Backward of ttt_inputs.hip: the per-head split with RoPE, the per-token learning rates and
// the token eta.
#include "tttbench_hip.h"

// dheads [B, H, L, F] -> dx [B*L, D] (overwritten). RoPE is a rotation of each channel pair,
// so its transpose rotates by the opposite angle: the same angle as the forward, computed the
// same way. One thread per channel pair.
template <typename T>
__device__ void split_heads_backward_impl(const T* __restrict__ dheads, T* __restrict__ dx, int batch, int seq_len,
                                          int num_heads, int head_dim, int mini_batch, int rope, float theta) {
    const int pairs = head_dim / 2;
    const int dim = num_heads * head_dim;
    const long n = (long)batch * num_heads * seq_len * pairs;
    for (long idx = blockIdx.x * (long)blockDim.x + threadIdx.x; idx < n; idx += (long)gridDim.x * blockDim.x) {
        const int p = (int)(idx % pairs);
        const long rest = idx / pairs;
        const int t = (int)(rest % seq_len);
        const long bh = rest / seq_len;
        const int h = (int)(bh % num_heads);
        const long b = bh / num_heads;
        const T* src = dheads + (bh * seq_len + t) * head_dim + 2 * p;
        T* dst = dx + (b * seq_len + t) * dim + h * head_dim + 2 * p;
        float d0 = ttt_load(src[0]);
        float d1 = ttt_load(src[1]);
        if (rope) {
            const float angle = (float)(t % mini_batch) * powf(theta, -(float)(2 * p) / (float)head_dim);
            float s, c;
            sincosf(angle, &s, &c);
            const float r0 = d0 * c + d1 * s;
            const float r1 = d1 * c - d0 * s;
            d0 = r0;
            d1 = r1;
        }
        ttt_store(dst, d0);
        ttt_store(dst + 1, d1);
    }
}

// lr = scale sigmoid(z), z = x . w[h] + bias[h]:  dz = dlr lr (1 - lr / scale).
// One block per token (grid-stride): dz of every head into dz_out [B*L, H] (float32, for the
// parameter gradients below), then dx[t, :] += sum_h dz[h] w[h, :], heads in order.
// Dynamic shared memory: one float per head.
template <typename T>
__device__ void ttt_lr_backward_impl(const T* __restrict__ weight, const T* __restrict__ lr, const T* __restrict__ dlr,
                                     T* __restrict__ dx, float* __restrict__ dz_out, int batch, int seq_len,
                                     int num_heads, int dim, float scale) {
    extern __shared__ float4 lr_smem[];
    float* dz = reinterpret_cast<float*>(lr_smem);
    const int tokens = batch * seq_len;
    for (int token = blockIdx.x; token < tokens; token += gridDim.x) {
        const int b = token / seq_len;
        const int t = token - b * seq_len;
        __syncthreads();  // dz of the previous token is still being read
        for (int h = threadIdx.x; h < num_heads; h += blockDim.x) {
            const long i = ((long)b * num_heads + h) * seq_len + t;
            const float rate = ttt_load(lr[i]);
            const float g = ttt_load(dlr[i]) * rate * (1.0f - rate / scale);
            dz[h] = g;
            dz_out[(long)token * num_heads + h] = g;
        }
        __syncthreads();
        T* dxr = dx + (long)token * dim;
        for (int d = threadIdx.x; d < dim; d += blockDim.x) {
            float s = 0.0f;
            for (int h = 0; h < num_heads; ++h) s += dz[h] * ttt_load(weight[(long)h * dim + d]);
            ttt_store(dxr + d, ttt_load(dxr[d]) + s);
        }
    }
}

// Partial sums over one chunk of tokens (blockIdx.y) of the weight and bias gradients:
// partial[chunk][h][d] = sum_t dz[t, h] x[t, d] for d < D, and sum_t dz[t, h] at d = D.
// reduce.hip adds the chunks in order. One thread per (h, d), adjacent threads on adjacent d.
template <typename T>
__device__ void ttt_lr_backward_params_impl(const T* __restrict__ x, const float* __restrict__ dz,
                                            float* __restrict__ partial, int tokens, int num_heads, int dim,
                                            int chunk_tokens) {
    const int chunk = blockIdx.y;
    const int t0 = chunk * chunk_tokens;
    const int t1 = min(tokens, t0 + chunk_tokens);
    const int cols = dim + 1;
    const long n = (long)num_heads * cols;
    for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
        const int h = (int)(e / cols);
        const int d = (int)(e - (long)h * cols);
        float s = 0.0f;
        if (d < dim) {
            for (int t = t0; t < t1; ++t) s += dz[(long)t * num_heads + h] * ttt_load(x[(long)t * dim + d]);
        } else {
            for (int t = t0; t < t1; ++t) s += dz[(long)t * num_heads + h];
        }
        partial[(long)chunk * n + e] = s;
    }
}

// tok = max(0, 1/(k+1) + idx): the gradient passes where the clamp's input is >= 0, as the
// reference's clamp_min does.
template <typename T>
__device__ void token_eta_backward_impl(const T* __restrict__ token_idx, const T* __restrict__ dtok,
                                        T* __restrict__ dtoken_idx, int mini_batch) {
    for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < mini_batch; k += gridDim.x * blockDim.x) {
        if (1.0f / (float)(k + 1) + ttt_load(token_idx[k]) >= 0.0f) {
            ttt_store(dtoken_idx + k, ttt_load(dtoken_idx[k]) + ttt_load(dtok[k]));
        }
    }
}

#define TTT_INPUTS_BACKWARD(T, S)                                                                              \
    extern "C" __global__ void split_heads_backward_##S(const T* dheads, T* dx, int batch, int seq_len,        \
                                                        int num_heads, int head_dim, int mini_batch, int rope, \
                                                        float theta) {                                         \
        split_heads_backward_impl<T>(dheads, dx, batch, seq_len, num_heads, head_dim, mini_batch, rope, theta); \
    }                                                                                                          \
    extern "C" __global__ void ttt_lr_backward_##S(const T* weight, const T* lr, const T* dlr, T* dx,          \
                                                   float* dz, int batch, int seq_len, int num_heads, int dim,  \
                                                   float scale) {                                              \
        ttt_lr_backward_impl<T>(weight, lr, dlr, dx, dz, batch, seq_len, num_heads, dim, scale);               \
    }                                                                                                          \
    extern "C" __global__ void ttt_lr_backward_params_##S(const T* x, const float* dz, float* partial,         \
                                                          int tokens, int num_heads, int dim,                  \
                                                          int chunk_tokens) {                                  \
        ttt_lr_backward_params_impl<T>(x, dz, partial, tokens, num_heads, dim, chunk_tokens);                  \
    }                                                                                                          \
    extern "C" __global__ void token_eta_backward_##S(const T* token_idx, const T* dtok, T* dtoken_idx,        \
                                                      int mini_batch) {                                        \
        token_eta_backward_impl<T>(token_idx, dtok, dtoken_idx, mini_batch);                                   \
    }
TTT_FOR_EACH_TYPE(TTT_INPUTS_BACKWARD)

// What the inner scan reads, made from the TTT layer's projections (SPEC §3 steps 2 and 3):
// per-head split with RoPE, the per-token learning rates, and the per-slot token eta.
#include "tttbench_hip.h"

// x [B*L, D] -> heads [B, H, L, F]; with rope, channel pairs (2i, 2i+1) are rotated by
// (t mod K) * theta^(-2i/F): the position inside the mini-batch, not in the sequence.
// One thread per channel pair.
template <typename T>
__device__ void split_heads_impl(const T* __restrict__ x, T* __restrict__ heads, int batch, int seq_len,
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
        const T* src = x + (b * seq_len + t) * dim + h * head_dim + 2 * p;
        T* dst = heads + (bh * seq_len + t) * head_dim + 2 * p;
        float x0 = ttt_load(src[0]);
        float x1 = ttt_load(src[1]);
        if (rope) {
            const float angle = (float)(t % mini_batch) * powf(theta, -(float)(2 * p) / (float)head_dim);
            float s, c;
            sincosf(angle, &s, &c);
            const float r0 = x0 * c - x1 * s;
            const float r1 = x1 * c + x0 * s;
            x0 = r0;
            x1 = r1;
        }
        ttt_store(dst, x0);
        ttt_store(dst + 1, x1);
    }
}

// lr[b, h, t] = sigmoid(x[b*L + t, :] . weight[h, :] + bias[h]) * scale, scale = base_lr / F.
// One block per token (grid-stride), one warp per head at a time.
template <typename T>
__device__ void ttt_lr_impl(const T* __restrict__ x, const T* __restrict__ weight, const T* __restrict__ bias,
                            T* __restrict__ lr, int batch, int seq_len, int num_heads, int dim, float scale) {
    const int lane = threadIdx.x % warpSize;
    const int warp = threadIdx.x / warpSize;
    const int warps = blockDim.x / warpSize;
    const int tokens = batch * seq_len;
    for (int token = blockIdx.x; token < tokens; token += gridDim.x) {
        const T* xr = x + (long)token * dim;
        const int b = token / seq_len;
        const int t = token - b * seq_len;
        for (int h = warp; h < num_heads; h += warps) {
            const T* wr = weight + (long)h * dim;
            float s = 0.0f;
            for (int d = lane; d < dim; d += warpSize) s += ttt_load(xr[d]) * ttt_load(wr[d]);
            s = ttt_warp_sum(s) + ttt_load(bias[h]);
            if (lane == 0) ttt_store(lr + ((long)b * num_heads + h) * seq_len + t, scale / (1.0f + expf(-s)));
        }
    }
}

// tok[k] = max(0, 1/(k+1) + token_idx[k]).
template <typename T>
__device__ void token_eta_impl(const T* __restrict__ token_idx, T* __restrict__ tok, int mini_batch) {
    for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < mini_batch; k += gridDim.x * blockDim.x) {
        ttt_store(tok + k, fmaxf(0.0f, 1.0f / (float)(k + 1) + ttt_load(token_idx[k])));
    }
}

#define TTT_INPUTS(T, S)                                                                                     \
    extern "C" __global__ void split_heads_##S(const T* x, T* heads, int batch, int seq_len, int num_heads,  \
                                               int head_dim, int mini_batch, int rope, float theta) {        \
        split_heads_impl<T>(x, heads, batch, seq_len, num_heads, head_dim, mini_batch, rope, theta);         \
    }                                                                                                        \
    extern "C" __global__ void ttt_lr_##S(const T* x, const T* weight, const T* bias, T* lr, int batch,      \
                                          int seq_len, int num_heads, int dim, float scale) {                \
        ttt_lr_impl<T>(x, weight, bias, lr, batch, seq_len, num_heads, dim, scale);                          \
    }                                                                                                        \
    extern "C" __global__ void token_eta_##S(const T* token_idx, T* tok, int mini_batch) {                   \
        token_eta_impl<T>(token_idx, tok, mini_batch);                                                       \
    }
TTT_FOR_EACH_TYPE(TTT_INPUTS)

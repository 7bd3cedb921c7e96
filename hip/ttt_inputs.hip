// What the inner scan reads, made from the TTT layer's projections (SPEC §3 steps 2 and 3):
// per-head split with RoPE, the per-token learning rates, and the per-slot token eta; and the
// backward of each.
#include "tttbench_hip.h"

// The learning rates' backward: dz [TOKENS, H] float32 between its two launches, the partial
// sums of the weight and bias gradients per chunk of CHUNK tokens (H (D + 1) floats a chunk),
// and the first launch's dynamic shared memory (one float per head).
#define TTT_INPUTS_LR_BACKWARD_DZ_FLOATS(TOKENS, H) ((TOKENS) * (H))
#define TTT_INPUTS_LR_CHUNKS(TOKENS, CHUNK) cdiv(TOKENS, CHUNK)
#define TTT_INPUTS_LR_BACKWARD_PARTIAL_FLOATS(TOKENS, H, D, CHUNK) (TTT_INPUTS_LR_CHUNKS(TOKENS, CHUNK) * (H) * ((D) + 1))
#define TTT_INPUTS_LR_BACKWARD_SMEM_FLOATS(H) (H)

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

// Backward of split_heads: dheads [B, H, L, F] -> dx [B*L, D] (overwritten). RoPE is a rotation of each channel pair,
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
// elementwise_sum_partials adds the chunks in order. One thread per (h, d), adjacent threads on adjacent d.
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

#define TTT_INPUTS(T, S)                                                                                       \
    extern "C" __global__ void ttt_inputs_split_heads_##S(const T* x, T* heads, int batch, int seq_len,         \
                                                          int num_heads, int head_dim, int mini_batch,        \
                                                          int rope, float theta) {                            \
        split_heads_impl<T>(x, heads, batch, seq_len, num_heads, head_dim, mini_batch, rope, theta);           \
    }                                                                                                          \
    extern "C" __global__ void ttt_inputs_lr_##S(const T* x, const T* weight, const T* bias, T* lr, int batch, \
                                                 int seq_len, int num_heads, int dim, float scale) {           \
        ttt_lr_impl<T>(x, weight, bias, lr, batch, seq_len, num_heads, dim, scale);                            \
    }                                                                                                          \
    extern "C" __global__ void ttt_inputs_token_eta_##S(const T* token_idx, T* tok, int mini_batch) {          \
        token_eta_impl<T>(token_idx, tok, mini_batch);                                                         \
    }                                                                                                          \
    extern "C" __global__ void ttt_inputs_split_heads_backward_##S(const T* dheads, T* dx, int batch,           \
                                                                   int seq_len, int num_heads, int head_dim,  \
                                                                   int mini_batch, int rope, float theta) {   \
        split_heads_backward_impl<T>(dheads, dx, batch, seq_len, num_heads, head_dim, mini_batch, rope, theta); \
    }                                                                                                          \
    extern "C" __global__ void ttt_inputs_lr_backward_##S(const T* weight, const T* lr, const T* dlr, T* dx,   \
                                                          float* dz, int batch, int seq_len, int num_heads,    \
                                                          int dim, float scale) {                              \
        ttt_lr_backward_impl<T>(weight, lr, dlr, dx, dz, batch, seq_len, num_heads, dim, scale);               \
    }                                                                                                          \
    extern "C" __global__ void ttt_inputs_lr_backward_params_##S(const T* x, const float* dz, float* partial,  \
                                                                 int tokens, int num_heads, int dim,           \
                                                                 int chunk_tokens) {                           \
        ttt_lr_backward_params_impl<T>(x, dz, partial, tokens, num_heads, dim, chunk_tokens);                  \
    }                                                                                                          \
    extern "C" __global__ void ttt_inputs_token_eta_backward_##S(const T* token_idx, const T* dtok,            \
                                                                 T* dtoken_idx, int mini_batch) {              \
        token_eta_backward_impl<T>(token_idx, dtok, dtoken_idx, mini_batch);                                   \
    }
TTT_FOR_EACH_TYPE(TTT_INPUTS)

// split_heads and its backward are grid-stride over N = B H L F / 2 channel pairs, token_eta and
// its backward over the K slots; lr and lr_backward run one block a token (TOKENS = B L, D = H F);
// lr_backward_params one thread per (head, channel or bias) in x and one chunk of CHUNK tokens
// in y.
TTT_LAUNCH(ttt_inputs_split_heads, TTT_STRIDE_THREADS, 1, TTT_STRIDE_GRID(N), 1, 0)
TTT_LAUNCH(ttt_inputs_lr, 256, 1, TTT_ROW_GRID(TOKENS), 1, 0)
TTT_LAUNCH(ttt_inputs_token_eta, TTT_STRIDE_THREADS, 1, TTT_STRIDE_GRID(K), 1, 0)
TTT_LAUNCH(ttt_inputs_split_heads_backward, TTT_STRIDE_THREADS, 1, TTT_STRIDE_GRID(N), 1, 0)
TTT_LAUNCH(ttt_inputs_lr_backward, 256, 1, TTT_ROW_GRID(TOKENS), 1, 4 * TTT_INPUTS_LR_BACKWARD_SMEM_FLOATS(H))
TTT_LAUNCH(ttt_inputs_lr_backward_params, TTT_STRIDE_THREADS, 1, TTT_STRIDE_GRID(H * (D + 1)), TTT_INPUTS_LR_CHUNKS(TOKENS, CHUNK), 0)
TTT_LAUNCH(ttt_inputs_token_eta_backward, TTT_STRIDE_THREADS, 1, TTT_STRIDE_GRID(K), 1, 0)
TTT_SIZE(ttt_inputs_lr_backward_dz_floats, TTT_INPUTS_LR_BACKWARD_DZ_FLOATS(TOKENS, H))
TTT_SIZE(ttt_inputs_lr_backward_params_partial_floats, TTT_INPUTS_LR_BACKWARD_PARTIAL_FLOATS(TOKENS, H, D, CHUNK))

// The TTT-Linear inner scan (SPEC §3 step 4): one launch for the whole sequence, one block
// per (batch, head), the state W [F, F], b [F] kept in float32 across all mini-batches.
//
// Per mini-batch, with eta[i][j] = tok[i] lr[j] for j <= i:
//   A: Z = K W + b, ZB = Q W + b, M = eta o (tril(Q K^T) + 1)     (M folds both eta terms of Zb)
//   B: G = lnL2grad(Z, V - K) in place; K rows scaled by eta[K-1][j] for the update
//   C: ZB -= M G;  W -= (eta_last K)^T G;  b -= sum_j eta_last_j G_j
//   D: out = Q + LN(ZB)
#include "ttt_scan.h"

namespace ttt_scan {

// The layout, in floats; GpuBackend mirrors these formulas to size shared memory and the workspace.
__device__ __forceinline__ int linear_state_floats(int F) { return F * (F + 4) + F; }
__device__ __forceinline__ int linear_scratch_floats(int F, int K) {
    return 5 * K * (F + 4) + K * (K + 4) + 2 * K + 2 * F;
}

template <typename T, int PLACEMENT>
__device__ void linear_scan(const T* __restrict__ xq, const T* __restrict__ xk, const T* __restrict__ xv,
                            const T* __restrict__ lr, const T* __restrict__ tok, const T* __restrict__ w1,
                            const T* __restrict__ b1, const T* __restrict__ norm_w, const T* __restrict__ norm_b,
                            T* __restrict__ out, float* __restrict__ checkpoints, int interval,
                            float* __restrict__ last_state, float* workspace, int ws_floats, int smem_bytes,
                            int heads, int seq_len, int F, int K, float eps) {
    extern __shared__ float4 smem_f4[];
    float* smem = reinterpret_cast<float*>(smem_f4);
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    const int bh = blockIdx.x;
    const int h = bh % heads;
    const int b = bh / heads;
    const int dim = heads * F;
    T* out_bh = out + (long)b * seq_len * dim + (long)h * F;

    const int state_floats = linear_state_floats(F);
    const int scratch_floats = linear_scratch_floats(F, K);
    const int need_smem = 4 * (PLACEMENT == kAllShared ? state_floats + scratch_floats
                               : PLACEMENT == kStateGlobal ? scratch_floats : 0);
    const int need_ws = PLACEMENT == kAllShared ? 0 : PLACEMENT == kStateGlobal ? state_floats
                                                                                 : state_floats + scratch_floats;
    if (K % 4 != 0 || F % 4 != 0 || seq_len % K != 0 || need_smem > smem_bytes || need_ws != ws_floats) {
        poison_output(out_bh, seq_len, dim, F);
        return;
    }
    float* ws = workspace + (long)bh * ws_floats;
    float* state = PLACEMENT == kAllShared ? smem : ws;
    float* scratch = PLACEMENT == kAllShared ? smem + state_floats : PLACEMENT == kStateGlobal ? smem : ws + state_floats;

    const int ld = F + 4;
    const int ldm = K + 4;
    float* W = state;               // [F][ld]
    float* bias = W + F * ld;       // [F]
    float* Qs = scratch;            // [K][ld]
    float* Ks = Qs + K * ld;        // [K][ld], scaled by eta_last after phase A
    float* Ts = Ks + K * ld;        // [K][ld] target V - K
    float* Zs = Ts + K * ld;        // [K][ld] Z, then G
    float* ZB = Zs + K * ld;        // [K][ld]
    float* M = ZB + K * ld;         // [K][ldm]
    float* lr_s = M + K * ldm;      // [K]
    float* tok_s = lr_s + K;        // [K]
    float* gam = tok_s + K;         // [F]
    float* bet = gam + F;           // [F]

    unpack_rows(W, w1 + (long)h * F * F, F, F, ld);
    load_vector(bias, b1 + (long)h * F, F);
    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    load_vector(tok_s, tok, K);

    const int rtn = K / 4;           // row tiles of a [K, *] result
    const int ftn = F / 4;           // column tiles over F
    const int tiles = rtn * ftn;     // tiles of a [K, F] result
    const int mtiles = rtn * rtn;    // tiles of a [K, K] result
    const int wtiles = ftn * ftn;    // tiles of the [F, F] update
    const int state_size = F * F + F;
    const int mini_batches = seq_len / K;
    const long in_bh = (long)bh * seq_len * F;

    for (int n = 0; n < mini_batches; ++n) {
        const long in = in_bh + (long)n * K * F;
        load_mini_batch(xq + in, xk + in, xv + in, lr + (long)bh * seq_len + (long)n * K, Qs, Ks, Ts, lr_s, K, F, ld);
        if (checkpoints != nullptr && n % interval == 0) {
            float* dst = checkpoints + ((long)(n / interval) * gridDim.x + bh) * state_size;
            pack_rows(dst, W, F, F, ld);
            pack_rows(dst + F * F, bias, 1, F, F);
        }
        __syncthreads();

        // A: Z = K W + b and ZB = Q W + b (old W, old b); M from Q K^T.
        for (int u = tid; u < 2 * tiles + mtiles; u += nt) {
            float acc[4][4];
            zero(acc);
            if (u < 2 * tiles) {
                const int t = u % tiles;
                const int rt = t % rtn;
                const int c0 = (t / rtn) * 4;
                const bool query = u >= tiles;
                tile_mma<false, false>(acc, query ? Qs : Ks, ld, rt, rtn, W, ld, c0, 0, F);
                float* C = query ? ZB : Zs;
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    const int i = rt + r * rtn;
#pragma unroll
                    for (int c = 0; c < 4; ++c) C[i * ld + c0 + c] = acc[r][c] + bias[c0 + c];
                }
            } else {
                const int t = u - 2 * tiles;
                const int rt = t % rtn;
                const int c0 = (t / rtn) * 4;
                tile_mma<false, true>(acc, Qs, ld, rt, rtn, Ks, ld, c0, 0, F);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    const int i = rt + r * rtn;
#pragma unroll
                    for (int c = 0; c < 4; ++c) {
                        const int j = c0 + c;
                        M[i * ldm + j] = j <= i ? tok_s[i] * lr_s[j] * (acc[r][c] + 1.0f) : 0.0f;
                    }
                }
            }
        }
        __syncthreads();

        // B: G in place of Z; K rows scaled by eta[K-1][j] (K is not read again unscaled).
        {
            const int warp = tid / warpSize;
            const int warps = nt / warpSize;
            for (int i = warp; i < K; i += warps) {
                ln_l2_grad_row(Zs + i * ld, Ts + i * ld, gam, bet, F, eps, nullptr, 0.0f);
            }
            const float tok_last = tok_s[K - 1];
            for (int e = tid; e < K * F; e += nt) {
                const int i = e / F;
                Ks[i * ld + e - i * F] *= tok_last * lr_s[i];
            }
        }
        __syncthreads();

        // C: ZB -= M G; W -= Ks^T G; b -= sum_j eta_last_j G_j.
        for (int u = tid; u < tiles + wtiles + F; u += nt) {
            float acc[4][4];
            zero(acc);
            if (u < tiles) {
                const int rt = u % rtn;
                const int c0 = (u / rtn) * 4;
                tile_mma<false, false>(acc, M, ldm, rt, rtn, Zs, ld, c0, 0, K);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    const int i = rt + r * rtn;
#pragma unroll
                    for (int c = 0; c < 4; ++c) ZB[i * ld + c0 + c] -= acc[r][c];
                }
            } else if (u < tiles + wtiles) {
                const int t = u - tiles;
                const int r0 = (t % ftn) * 4;
                const int c0 = (t / ftn) * 4;
                tile_mma<true, false>(acc, Ks, ld, r0, 1, Zs, ld, c0, 0, K);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
#pragma unroll
                    for (int c = 0; c < 4; ++c) W[(r0 + r) * ld + c0 + c] -= acc[r][c];
                }
            } else {
                const int f = u - tiles - wtiles;
                const float tok_last = tok_s[K - 1];
                float s = 0.0f;
                for (int j = 0; j < K; ++j) s += tok_last * lr_s[j] * Zs[j * ld + f];
                bias[f] -= s;
            }
        }
        __syncthreads();

        // D: out = Q + LN(ZB).
        {
            const int warp = tid / warpSize;
            const int warps = nt / warpSize;
            for (int i = warp; i < K; i += warps) {
                ln_out_row(ZB + i * ld, Qs + i * ld, gam, bet, F, eps, out_bh + (long)(n * K + i) * dim);
            }
        }
        __syncthreads();
    }
    if (last_state != nullptr) {
        float* dst = last_state + (long)bh * state_size;
        pack_rows(dst, W, F, F, ld);
        pack_rows(dst + F * F, bias, 1, F, F);
    }
}

}  // namespace ttt_scan

// Entry points ttt_linear_{shared,stateglobal,global}_{f32,bf16,f16}. 512 threads at most
// per block keeps 128 registers per thread available to the 4x4 tiles.
#define TTT_LINEAR_ENTRY(T, S, NAME, PLACEMENT)                                                               \
    extern "C" __global__ void __launch_bounds__(512) ttt_linear_##NAME##_##S(                                \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* w1, const T* b1,           \
        const T* norm_w, const T* norm_b, T* out, float* checkpoints, int interval, float* last_state,        \
        float* workspace, int ws_floats, int smem_bytes, int heads, int seq_len, int F, int K, float eps) {    \
        ttt_scan::linear_scan<T, PLACEMENT>(xq, xk, xv, lr, tok, w1, b1, norm_w, norm_b, out, checkpoints,    \
                                            interval, last_state, workspace, ws_floats, smem_bytes, heads,    \
                                            seq_len, F, K, eps);                                              \
    }
#define TTT_LINEAR(T, S)                                                \
    TTT_LINEAR_ENTRY(T, S, shared, ttt_scan::kAllShared)                \
    TTT_LINEAR_ENTRY(T, S, stateglobal, ttt_scan::kStateGlobal)         \
    TTT_LINEAR_ENTRY(T, S, global, ttt_scan::kAllGlobal)
TTT_FOR_EACH_TYPE(TTT_LINEAR)

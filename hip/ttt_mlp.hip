// The TTT-MLP inner scan (SPEC §3 step 4): one launch for the whole sequence, one block per
// (batch, head), the state W1 [F, F1], b1 [F1], W2 [F1, F], b2 [F] (F1 = 4F) kept in float32
// across all mini-batches.
//
// Per mini-batch, with eta[i][j] = tok[i] lr[j] for j <= i and eta_last[j] = eta[K-1][j]:
//   A: Z1 = K W1 + b1 -> X2 = gelu(Z1), GP = gelu'(Z1); M = eta o (tril(Q K^T) + 1)
//   B: partial sums of X2 W2 over two halves of F1; K rows scaled by eta_last
//   C: G2 = lnL2grad(X2 W2 + b2, V - K) and EG2 = eta_last o G2
//   D: G1 = (G2 W2^T) o GP in place of GP
//   E: XB = gelu(Q W1 + b1 - M G1)                         (Zb1 with both eta terms folded in M)
//   F: W1 -= Ks^T G1, b1 -= sum eta_last G1; partial sums of XB W2 and XB X2^T
//   G: ZB2 = XB W2 + b2; M = eta o (tril(XB X2^T) + 1)
//   H: ZB2 -= M G2; W2 -= X2^T EG2; b2 -= sum EG2
//   I: out = Q + LN(ZB2)
// The two products that reduce over F1 into a small result (XB W2, XB X2^T) are split over
// the reduction so that enough threads share the work; their partial sums are added in a
// fixed order, so results do not depend on scheduling.
#include "ttt_scan.h"

namespace ttt_scan {

constexpr int kSplitW2 = 2;    // split of the F1 reduction of X2 W2 and XB W2
constexpr int kSplitAttn = 4;  // split of the F1 reduction of XB X2^T

// The layout, in floats; GpuBackend mirrors these formulas to size shared memory and the workspace.
__device__ __forceinline__ int mlp_state_floats(int F) {
    const int F1 = 4 * F;
    return F * (F1 + 4) + F1 + F1 * (F + 4) + F;
}
__device__ __forceinline__ int mlp_scratch_floats(int F, int K) {
    const int F1 = 4 * F;
    return (5 + kSplitW2) * K * (F + 4) + 3 * K * (F1 + 4) + (1 + kSplitAttn) * K * (K + 4) + 2 * K + 2 * F;
}

template <typename T, int PLACEMENT>
__device__ void mlp_scan(const T* __restrict__ xq, const T* __restrict__ xk, const T* __restrict__ xv,
                         const T* __restrict__ lr, const T* __restrict__ tok, const T* __restrict__ w1,
                         const T* __restrict__ b1, const T* __restrict__ w2, const T* __restrict__ b2,
                         const T* __restrict__ norm_w, const T* __restrict__ norm_b, T* __restrict__ out,
                         float* __restrict__ checkpoints, int interval, float* __restrict__ last_state,
                         float* workspace, int ws_floats, int smem_bytes, int heads, int seq_len, int F, int K,
                         float eps) {
    extern __shared__ float4 smem_f4[];
    float* smem = reinterpret_cast<float*>(smem_f4);
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    const int bh = blockIdx.x;
    const int h = bh % heads;
    const int b = bh / heads;
    const int dim = heads * F;
    const int F1 = 4 * F;
    T* out_bh = out + (long)b * seq_len * dim + (long)h * F;

    const int state_floats = mlp_state_floats(F);
    const int scratch_floats = mlp_scratch_floats(F, K);
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
    const int ld1 = F1 + 4;
    const int ldm = K + 4;
    float* W1 = state;                  // [F][ld1]
    float* B1 = W1 + F * ld1;           // [F1]
    float* W2 = B1 + F1;                // [F1][ld]
    float* B2 = W2 + F1 * ld;           // [F]
    float* Qs = scratch;                // [K][ld]
    float* Ks = Qs + K * ld;            // [K][ld], scaled by eta_last in phase B
    float* Ts = Ks + K * ld;            // [K][ld] target V - K; ZB2 from phase G on
    float* G2 = Ts + K * ld;            // [K][ld] Z2, then G2
    float* EG2 = G2 + K * ld;           // [K][ld]
    float* P = EG2 + K * ld;            // [kSplitW2][K][ld] partial sums
    float* X2 = P + kSplitW2 * K * ld;  // [K][ld1]
    float* GP = X2 + K * ld1;           // [K][ld1] gelu'(Z1), then G1
    float* XB = GP + K * ld1;           // [K][ld1]
    float* M = XB + K * ld1;            // [K][ldm]
    float* PA = M + K * ldm;            // [kSplitAttn][K][ldm] partial sums
    float* lr_s = PA + kSplitAttn * K * ldm;  // [K]
    float* tok_s = lr_s + K;            // [K]
    float* gam = tok_s + K;             // [F]
    float* bet = gam + F;               // [F]
    float* ZB2 = Ts;

    unpack_rows(W1, w1 + (long)h * F * F1, F, F1, ld1);
    load_vector(B1, b1 + (long)h * F1, F1);
    unpack_rows(W2, w2 + (long)h * F1 * F, F1, F, ld);
    load_vector(B2, b2 + (long)h * F, F);
    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    load_vector(tok_s, tok, K);

    const int warp = tid / warpSize;
    const int warps = nt / warpSize;
    const int rtn = K / 4;             // row tiles of a [K, *] result
    const int ftn = F / 4;             // column tiles over F
    const int f1tn = F1 / 4;           // column tiles over F1
    const int tiles_f = rtn * ftn;     // tiles of a [K, F] result
    const int tiles_f1 = rtn * f1tn;   // tiles of a [K, F1] result
    const int tiles_m = rtn * rtn;     // tiles of a [K, K] result
    const int tiles_w = ftn * f1tn;    // tiles of the [F, F1] and [F1, F] updates
    const int half = F1 / kSplitW2;
    const int quarter = F1 / kSplitAttn;
    const int state_size = F * F1 + F1 + F1 * F + F;
    const int mini_batches = seq_len / K;
    const long in_bh = (long)bh * seq_len * F;

    for (int n = 0; n < mini_batches; ++n) {
        const long in = in_bh + (long)n * K * F;
        load_mini_batch(xq + in, xk + in, xv + in, lr + (long)bh * seq_len + (long)n * K, Qs, Ks, Ts, lr_s, K, F, ld);
        if (checkpoints != nullptr && n % interval == 0) {
            float* dst = checkpoints + ((long)(n / interval) * gridDim.x + bh) * state_size;
            pack_rows(dst, W1, F, F1, ld1);
            pack_rows(dst + F * F1, B1, 1, F1, F1);
            pack_rows(dst + F * F1 + F1, W2, F1, F, ld);
            pack_rows(dst + F * F1 + F1 + F1 * F, B2, 1, F, F);
        }
        __syncthreads();

        // A: X2, GP from Z1 = K W1 + b1; M from Q K^T.
        for (int u = tid; u < tiles_f1 + tiles_m; u += nt) {
            float acc[4][4];
            zero(acc);
            const int t = u < tiles_f1 ? u : u - tiles_f1;
            const int rt = t % rtn;
            const int c0 = (t / rtn) * 4;
            if (u < tiles_f1) {
                tile_mma<false, false>(acc, Ks, ld, rt, rtn, W1, ld1, c0, 0, F);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    const int i = rt + r * rtn;
#pragma unroll
                    for (int c = 0; c < 4; ++c) {
                        gelu_and_grad(acc[r][c] + B1[c0 + c], X2[i * ld1 + c0 + c], GP[i * ld1 + c0 + c]);
                    }
                }
            } else {
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

        // B: P[s] = X2 W2 over half s of F1; K rows scaled by eta_last (K is not read again unscaled).
        for (int u = tid; u < kSplitW2 * tiles_f; u += nt) {
            float acc[4][4];
            zero(acc);
            const int s = u / tiles_f;
            const int t = u - s * tiles_f;
            const int rt = t % rtn;
            const int c0 = (t / rtn) * 4;
            tile_mma<false, false>(acc, X2, ld1, rt, rtn, W2, ld, c0, s * half, (s + 1) * half);
            float* C = P + s * K * ld;
#pragma unroll
            for (int r = 0; r < 4; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) C[(rt + r * rtn) * ld + c0 + c] = acc[r][c];
            }
        }
        {
            const float tok_last = tok_s[K - 1];
            for (int e = tid; e < K * F; e += nt) {
                const int i = e / F;
                Ks[i * ld + e - i * F] *= tok_last * lr_s[i];
            }
        }
        __syncthreads();

        // C: G2 = lnL2grad(Z2, V - K), EG2 = eta_last G2, one warp per row.
        for (int i = warp; i < K; i += warps) {
            float* z = G2 + i * ld;
            for (int f = tid % warpSize; f < F; f += warpSize) {
                float s = B2[f];
                for (int p = 0; p < kSplitW2; ++p) s += P[p * K * ld + i * ld + f];
                z[f] = s;
            }
            ln_l2_grad_row(z, Ts + i * ld, gam, bet, F, eps, EG2 + i * ld, tok_s[K - 1] * lr_s[i]);
        }
        __syncthreads();

        // D: G1 = (G2 W2^T) o gelu'(Z1), in place of GP.
        for (int u = tid; u < tiles_f1; u += nt) {
            float acc[4][4];
            zero(acc);
            const int rt = u % rtn;
            const int c0 = (u / rtn) * 4;
            tile_mma<false, true>(acc, G2, ld, rt, rtn, W2, ld, c0, 0, F);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int i = rt + r * rtn;
#pragma unroll
                for (int c = 0; c < 4; ++c) GP[i * ld1 + c0 + c] *= acc[r][c];
            }
        }
        __syncthreads();

        // E: XB = gelu(Q W1 + b1 - M G1), with the old W1 and b1.
        for (int u = tid; u < tiles_f1; u += nt) {
            float acc[4][4];
            float corr[4][4];
            zero(acc);
            zero(corr);
            const int rt = u % rtn;
            const int c0 = (u / rtn) * 4;
            tile_mma<false, false>(acc, Qs, ld, rt, rtn, W1, ld1, c0, 0, F);
            tile_mma<false, false>(corr, M, ldm, rt, rtn, GP, ld1, c0, 0, K);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int i = rt + r * rtn;
#pragma unroll
                for (int c = 0; c < 4; ++c) XB[i * ld1 + c0 + c] = gelu(acc[r][c] + B1[c0 + c] - corr[r][c]);
            }
        }
        __syncthreads();

        // F: P[s] = XB W2 over half s of F1 and PA[s] = XB X2^T over quarter s (the larger
        // work first, so it spreads over the most threads); W1 -= Ks^T G1; b1 -= sum eta_last G1.
        {
            const int n_p = kSplitW2 * tiles_f;
            const int n_pa = kSplitAttn * tiles_m;
            const int n_w = tiles_w;
            for (int u = tid; u < n_p + n_pa + n_w + F1; u += nt) {
                float acc[4][4];
                zero(acc);
                if (u < n_p) {
                    const int s = u / tiles_f;
                    const int t = u - s * tiles_f;
                    const int rt = t % rtn;
                    const int c0 = (t / rtn) * 4;
                    tile_mma<false, false>(acc, XB, ld1, rt, rtn, W2, ld, c0, s * half, (s + 1) * half);
                    float* C = P + s * K * ld;
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) C[(rt + r * rtn) * ld + c0 + c] = acc[r][c];
                    }
                } else if (u < n_p + n_pa) {
                    const int v = u - n_p;
                    const int s = v / tiles_m;
                    const int t = v - s * tiles_m;
                    const int rt = t % rtn;
                    const int c0 = (t / rtn) * 4;
                    tile_mma<false, true>(acc, XB, ld1, rt, rtn, X2, ld1, c0, s * quarter, (s + 1) * quarter);
                    float* C = PA + s * K * ldm;
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) C[(rt + r * rtn) * ldm + c0 + c] = acc[r][c];
                    }
                } else if (u < n_p + n_pa + n_w) {
                    const int t = u - n_p - n_pa;
                    const int r0 = (t % ftn) * 4;
                    const int c0 = (t / ftn) * 4;
                    tile_mma<true, false>(acc, Ks, ld, r0, 1, GP, ld1, c0, 0, K);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) W1[(r0 + r) * ld1 + c0 + c] -= acc[r][c];
                    }
                } else {
                    const int c = u - n_p - n_pa - n_w;
                    const float tok_last = tok_s[K - 1];
                    float s = 0.0f;
                    for (int j = 0; j < K; ++j) s += tok_last * lr_s[j] * GP[j * ld1 + c];
                    B1[c] -= s;
                }
            }
        }
        __syncthreads();

        // G: ZB2 = XB W2 + b2; M = eta o (tril(XB X2^T) + 1).
        for (int e = tid; e < K * F + K * K; e += nt) {
            if (e < K * F) {
                const int i = e / F;
                const int f = e - i * F;
                float s = B2[f];
                for (int p = 0; p < kSplitW2; ++p) s += P[p * K * ld + i * ld + f];
                ZB2[i * ld + f] = s;
            } else {
                const int i = (e - K * F) / K;
                const int j = (e - K * F) - i * K;
                float a = 0.0f;
                for (int p = 0; p < kSplitAttn; ++p) a += PA[p * K * ldm + i * ldm + j];
                M[i * ldm + j] = j <= i ? tok_s[i] * lr_s[j] * (a + 1.0f) : 0.0f;
            }
        }
        __syncthreads();

        // H: ZB2 -= M G2; W2 -= X2^T EG2; b2 -= sum EG2.
        for (int u = tid; u < tiles_w + tiles_f + F; u += nt) {
            float acc[4][4];
            zero(acc);
            if (u < tiles_w) {
                const int r0 = (u % f1tn) * 4;
                const int c0 = (u / f1tn) * 4;
                tile_mma<true, false>(acc, X2, ld1, r0, 1, EG2, ld, c0, 0, K);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
#pragma unroll
                    for (int c = 0; c < 4; ++c) W2[(r0 + r) * ld + c0 + c] -= acc[r][c];
                }
            } else if (u < tiles_w + tiles_f) {
                const int t = u - tiles_w;
                const int rt = t % rtn;
                const int c0 = (t / rtn) * 4;
                tile_mma<false, false>(acc, M, ldm, rt, rtn, G2, ld, c0, 0, K);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    const int i = rt + r * rtn;
#pragma unroll
                    for (int c = 0; c < 4; ++c) ZB2[i * ld + c0 + c] -= acc[r][c];
                }
            } else {
                const int f = u - tiles_w - tiles_f;
                float s = 0.0f;
                for (int j = 0; j < K; ++j) s += EG2[j * ld + f];
                B2[f] -= s;
            }
        }
        __syncthreads();

        // I: out = Q + LN(ZB2).
        for (int i = warp; i < K; i += warps) {
            ln_out_row(ZB2 + i * ld, Qs + i * ld, gam, bet, F, eps, out_bh + (long)(n * K + i) * dim);
        }
        __syncthreads();
    }
    if (last_state != nullptr) {
        float* dst = last_state + (long)bh * state_size;
        pack_rows(dst, W1, F, F1, ld1);
        pack_rows(dst + F * F1, B1, 1, F1, F1);
        pack_rows(dst + F * F1 + F1, W2, F1, F, ld);
        pack_rows(dst + F * F1 + F1 + F1 * F, B2, 1, F, F);
    }
}

}  // namespace ttt_scan

// Entry points ttt_mlp_{shared,stateglobal,global}_{f32,bf16,f16}.
#define TTT_MLP_ENTRY(T, S, NAME, PLACEMENT)                                                                  \
    extern "C" __global__ void __launch_bounds__(512) ttt_mlp_##NAME##_##S(                                   \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* w1, const T* b1,           \
        const T* w2, const T* b2, const T* norm_w, const T* norm_b, T* out, float* checkpoints, int interval, \
        float* last_state, float* workspace, int ws_floats, int smem_bytes, int heads, int seq_len, int F,    \
        int K, float eps) {                                                                                   \
        ttt_scan::mlp_scan<T, PLACEMENT>(xq, xk, xv, lr, tok, w1, b1, w2, b2, norm_w, norm_b, out,            \
                                         checkpoints, interval, last_state, workspace, ws_floats, smem_bytes, \
                                         heads, seq_len, F, K, eps);                                          \
    }
#define TTT_MLP(T, S)                                             \
    TTT_MLP_ENTRY(T, S, shared, ttt_scan::kAllShared)             \
    TTT_MLP_ENTRY(T, S, stateglobal, ttt_scan::kStateGlobal)      \
    TTT_MLP_ENTRY(T, S, global, ttt_scan::kAllGlobal)
TTT_FOR_EACH_TYPE(TTT_MLP)

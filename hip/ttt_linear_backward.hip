// Backward of the TTT-Linear inner scan (SPEC §4, inner backward): one launch for the whole
// sequence, one block per (batch, head), mini-batches in reverse (see ttt_scan_backward.h).
// The math is the CPU reference's (backend/cpu/LinearStep.java), in float32.
//
// Per mini-batch, from its state W, b (eta[i][j] = tok[i] lr[j], e[j] = eta[K-1][j]):
//   recompute  Z = K W + b;  G = lnL2grad(Z, V - K);  A = Q K^T;  M = tril(eta o (A + 1))
//              ZB = Q W + b - M G;  xh = LN(ZB)
//   backward   (dW', db': the gradient of the state after the mini-batch; dW, db: before it)
//              dZB = LN'(dout);  P = K dW' + db';  dM = -dZB G^T on the tril
//              dG = -e o P - M^T dZB;  deta = dM o (A + 1), and row K-1 also -sum(G o P);  dA = dM o eta
//              dZ, dV = lnL2grad'(dG)
//              dQ = dout + dZB W^T + dA K;  dK = -e o (G dW'^T) + dA^T Q + dZ W^T - dV
//              dW = dW' + Q^T dZB + K^T dZ;  db = db' + sum dZB + sum dZ
//              dlr[j] = sum_i deta[i][j] tok[i];  dtok[i] += sum_j deta[i][j] lr[j]
#include "ttt_scan_backward.h"

namespace ttt_bwd {

// The layout, in floats; GpuBackwardOps mirrors these formulas (InnerBackwardLayout).
// State: W [F][F+4], b [F], then its gradient dW, db in the same shape.
__device__ __forceinline__ int linear_bwd_state_floats(int F) { return 2 * (F * (F + 4) + F); }
// Scratch: 14 matrices [K][F+4], 5 matrices [K][K+4], 3 vectors [K], 4 vectors [F], dtok [K].
__device__ __forceinline__ int linear_bwd_scratch_floats(int F, int K) {
    return 14 * K * (F + 4) + 5 * K * (K + 4) + 4 * K + 4 * F;
}

template <typename T, int PLACEMENT>
__device__ void linear_scan_backward(const T* __restrict__ xq, const T* __restrict__ xk, const T* __restrict__ xv,
                                     const T* __restrict__ lr, const T* __restrict__ tok,
                                     const T* __restrict__ norm_w, const T* __restrict__ norm_b,
                                     const T* __restrict__ dout, const float* __restrict__ checkpoints, int interval,
                                     T* __restrict__ dxq, T* __restrict__ dxk, T* __restrict__ dxv,
                                     T* __restrict__ dlr, float* __restrict__ partials, float* workspace,
                                     int ws_floats, int rs_slots, int smem_bytes, int heads, int seq_len, int F,
                                     int K, float eps) {
    extern __shared__ float4 smem_f4[];
    float* smem = reinterpret_cast<float*>(smem_f4);
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    const int bh = blockIdx.x;
    const int h = bh % heads;
    const int b = bh / heads;
    const int dim = heads * F;
    const int S = F * F + F;                // a packed state
    const int part_floats = S + 2 * F + K;  // dW, db, dgamma, dbeta, dtok of this (b, h)
    const long in_bh = (long)bh * seq_len * F;
    float* part = partials + (long)bh * part_floats;

    const int state_floats = linear_bwd_state_floats(F);
    const int scratch_floats = linear_bwd_scratch_floats(F, K);
    const int need_smem = 4 * (PLACEMENT == kAllShared ? state_floats + scratch_floats
                               : PLACEMENT == kStateGlobal ? scratch_floats : 0);
    const int need_ws = PLACEMENT == kAllShared ? 0 : PLACEMENT == kStateGlobal ? state_floats
                                                                                 : state_floats + scratch_floats;
    if (K % 4 != 0 || F % 4 != 0 || seq_len % K != 0 || interval < 1 || need_smem > smem_bytes ||
        need_ws != ws_floats || rs_slots < interval - 2 || nt % warpSize != 0) {
        poison_gradients(dxq + in_bh, dxk + in_bh, dxv + in_bh, dlr + (long)bh * seq_len, part, seq_len, F,
                         part_floats);
        return;
    }
    float* ws = workspace + (long)bh * (ws_floats + (long)rs_slots * S);
    float* rs = ws + ws_floats;  // the states recomputed inside the current segment, packed
    float* state = PLACEMENT == kAllShared ? smem : ws;
    float* scratch = PLACEMENT == kAllShared ? smem + state_floats : PLACEMENT == kStateGlobal ? smem : ws + state_floats;

    const int ld = F + 4;
    const int ldm = K + 4;
    float* W = state;              // [F][ld]
    float* bias = W + F * ld;      // [F]
    float* dW = bias + F;          // [F][ld]
    float* db = dW + F * ld;       // [F]
    float* Qs = scratch;           // [K][ld]
    float* Ks = Qs + K * ld;
    float* Ts = Ks + K * ld;       // target V - K
    float* ZH = Ts + K * ld;       // Z, then zh
    float* G = ZH + K * ld;        // lnL2grad(Z)
    float* ZB = G + K * ld;        // ZB, then LN's xh
    float* DZB = ZB + K * ld;
    float* P = DZB + K * ld;       // K dW' + db'
    float* DG = P + K * ld;        // dG; e o G while a state is updated
    float* DQ = DG + K * ld;
    float* DK = DQ + K * ld;
    float* DZ = DK + K * ld;
    float* DV = DZ + K * ld;
    float* DGG = DV + K * ld;      // dg of the lnL2grad backward, for dgamma and dbeta
    float* A = DGG + K * ld;       // [K][ldm] Q K^T
    float* M = A + K * ldm;
    float* DZG = M + K * ldm;      // dZB G^T
    float* DETA = DZG + K * ldm;
    float* DA = DETA + K * ldm;
    float* lr_s = DA + K * ldm;    // [K]
    float* tok_s = lr_s + K;       // [K]
    float* sig = tok_s + K;        // [K] sigma of Z's rows
    float* gam = sig + K;          // [F]
    float* bet = gam + F;          // [F]
    float* dgam = bet + F;         // [F]  dgam, dbet, dtok: the tail of the partial, in its order
    float* dbet = dgam + F;        // [F]
    float* dtok = dbet + F;        // [K]

    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    load_vector(tok_s, tok, K);
    zero_floats(dW, F * ld + F);  // dW and db: the final state is not an output
    zero_floats(dgam, 2 * F + K);

    const int warp = tid / warpSize;
    const int lane = tid % warpSize;
    const int warps = nt / warpSize;
    const int tiles = (K / 4) * (F / 4);   // 4x4 tiles of a [K, F] result
    const int mtiles = (K / 4) * (K / 4);  // of a [K, K] result
    const int wtiles = (F / 4) * (F / 4);  // of an [F, F] result
    const int mini_batches = seq_len / K;
    const int slots = (mini_batches + interval - 1) / interval;

    for (int slot = slots - 1; slot >= 0; --slot) {
        const int first = slot * interval;
        const int last = min(mini_batches, first + interval);
        const float* ck = checkpoints + ((long)slot * gridDim.x + bh) * S;
        __syncthreads();  // W is still read by the previous mini-batch's backward
        linear_load_state(W, bias, ck, F);

        // The states inside the segment: the state before mini-batch n > first goes to
        // rs[n - first - 1]; the one before the segment's last mini-batch stays in W.
        for (int n = first; n < last - 1; ++n) {
            const long in = in_bh + (long)n * K * F;
            if (n > first) linear_store_state(rs + (long)(n - first - 1) * S, W, bias, F);
            load_mini_batch(xq + in, xk + in, xv + in, lr + (long)bh * seq_len + (long)n * K, Qs, Ks, Ts, lr_s, K,
                            F, ld);
            __syncthreads();
            // Z = K W + b
            for (int u = tid; u < tiles; u += nt) {
                float acc[4][4];
                zero(acc);
                const Tile tl(u, K, false);
                tile_mma<false, false>(acc, Ks, ld, tl.r0, tl.rs, W, ld, tl.c0, 0, F);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
#pragma unroll
                    for (int c = 0; c < 4; ++c) ZH[tl.row(r) * ld + tl.c0 + c] = acc[r][c] + bias[tl.c0 + c];
                }
            }
            __syncthreads();
            // G = lnL2grad(Z), and e o G for the update
            for (int i = warp; i < K; i += warps) {
                ln_l2_grad_row_keep(ZH + i * ld, Ts + i * ld, gam, bet, F, eps, G + i * ld, sig + i, DG + i * ld,
                                    tok_s[K - 1] * lr_s[i]);
            }
            __syncthreads();
            // W -= K^T (e o G);  b -= sum_j e_j G_j
            for (int u = tid; u < wtiles + F; u += nt) {
                if (u < wtiles) {
                    float acc[4][4];
                    zero(acc);
                    const Tile tl(u, F, true);
                    tile_mma<true, false>(acc, Ks, ld, tl.r0, 1, DG, ld, tl.c0, 0, K);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) W[tl.row(r) * ld + tl.c0 + c] -= acc[r][c];
                    }
                } else {
                    const int f = u - wtiles;
                    float s = 0.0f;
                    for (int j = 0; j < K; ++j) s += DG[j * ld + f];
                    bias[f] -= s;
                }
            }
            __syncthreads();
        }

        for (int n = last - 1; n >= first; --n) {
            const long in = in_bh + (long)n * K * F;
            const T* dout_n = dout + ((long)b * seq_len + (long)n * K) * dim + (long)h * F;  // row i at i * dim
            if (n < last - 1) {
                __syncthreads();  // W is still read by the backward of n + 1
                linear_load_state(W, bias, n == first ? ck : rs + (long)(n - first - 1) * S, F);
            }
            load_mini_batch(xq + in, xk + in, xv + in, lr + (long)bh * seq_len + (long)n * K, Qs, Ks, Ts, lr_s, K, F,
                            ld);
            __syncthreads();

            // Z = K W + b;  ZB = Q W + b;  A = Q K^T
            for (int u = tid; u < 2 * tiles + mtiles; u += nt) {
                float acc[4][4];
                zero(acc);
                if (u < 2 * tiles) {
                    const bool query = u >= tiles;
                    const Tile tl(query ? u - tiles : u, K, false);
                    tile_mma<false, false>(acc, query ? Qs : Ks, ld, tl.r0, tl.rs, W, ld, tl.c0, 0, F);
                    float* C = query ? ZB : ZH;
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) C[tl.row(r) * ld + tl.c0 + c] = acc[r][c] + bias[tl.c0 + c];
                    }
                } else {
                    const Tile tl(u - 2 * tiles, K, false);
                    tile_mma<false, true>(acc, Qs, ld, tl.r0, tl.rs, Ks, ld, tl.c0, 0, F);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) A[tl.row(r) * ldm + tl.c0 + c] = acc[r][c];
                    }
                }
            }
            __syncthreads();

            // G = lnL2grad(Z), keeping zh and sigma;  M = tril(eta o (A + 1))
            for (int i = warp; i < K; i += warps) {
                ln_l2_grad_row_keep(ZH + i * ld, Ts + i * ld, gam, bet, F, eps, G + i * ld, sig + i, nullptr, 0.0f);
            }
            for (int e = tid; e < K * K; e += nt) {
                const int i = e / K;
                const int j = e - i * K;
                M[i * ldm + j] = j <= i ? tok_s[i] * lr_s[j] * (A[i * ldm + j] + 1.0f) : 0.0f;
            }
            __syncthreads();

            // ZB -= M G, row by row (K terms per element), then out = Q + LN(ZB): xh in place
            // of ZB, and dZB
            for (int i = warp; i < K; i += warps) {
                for (int f = lane; f < F; f += warpSize) {
                    float z = ZB[i * ld + f];
                    for (int j = 0; j <= i; ++j) z -= M[i * ldm + j] * G[j * ld + f];
                    ZB[i * ld + f] = z;
                }
                out_norm_backward_row(ZB + i * ld, dout_n + (long)i * dim, gam, F, eps, DZB + i * ld);
            }
            __syncthreads();

            // P = K dW' + db';  dK = -e o (G dW'^T);  dQ = dout + dZB W^T;  dZG = dZB G^T;
            // dgamma, dbeta of the output norm
            {
                const float tok_last = tok_s[K - 1];
                for (int u = tid; u < 3 * tiles + mtiles + F; u += nt) {
                    float acc[4][4];
                    zero(acc);
                    if (u < 3 * tiles) {
                        const int which = u / tiles;
                        const Tile tl(u - which * tiles, K, false);
                        if (which == 0) {
                            tile_mma<false, false>(acc, Ks, ld, tl.r0, tl.rs, dW, ld, tl.c0, 0, F);
                        } else if (which == 1) {
                            tile_mma<false, true>(acc, G, ld, tl.r0, tl.rs, dW, ld, tl.c0, 0, F);
                        } else {
                            tile_mma<false, true>(acc, DZB, ld, tl.r0, tl.rs, W, ld, tl.c0, 0, F);
                        }
#pragma unroll
                        for (int r = 0; r < 4; ++r) {
                            const int i = tl.row(r);
#pragma unroll
                            for (int c = 0; c < 4; ++c) {
                                const int f = tl.c0 + c;
                                if (which == 0) {
                                    P[i * ld + f] = acc[r][c] + db[f];
                                } else if (which == 1) {
                                    DK[i * ld + f] = -(tok_last * lr_s[i]) * acc[r][c];
                                } else {
                                    DQ[i * ld + f] = ttt_load(dout_n[(long)i * dim + f]) + acc[r][c];
                                }
                            }
                        }
                    } else if (u < 3 * tiles + mtiles) {
                        const Tile tl(u - 3 * tiles, K, false);
                        tile_mma<false, true>(acc, DZB, ld, tl.r0, tl.rs, G, ld, tl.c0, 0, F);
#pragma unroll
                        for (int r = 0; r < 4; ++r) {
#pragma unroll
                            for (int c = 0; c < 4; ++c) DZG[tl.row(r) * ldm + tl.c0 + c] = acc[r][c];
                        }
                    } else {
                        const int f = u - 3 * tiles - mtiles;
                        float sw = 0.0f;
                        float sb = 0.0f;
                        for (int i = 0; i < K; ++i) {
                            const float dy = ttt_load(dout_n[(long)i * dim + f]);
                            sw += dy * ZB[i * ld + f];
                            sb += dy;
                        }
                        dgam[f] += sw;
                        dbet[f] += sb;
                    }
                }
            }
            __syncthreads();

            // dG = -e o P - M^T dZB;  deta and dA from dM = -dZG on the tril
            {
                const float tok_last = tok_s[K - 1];
                for (int u = tid; u < tiles + K * K; u += nt) {
                    if (u < tiles) {
                        float acc[4][4];
                        zero(acc);
                        const Tile tl(u, K, true);
                        tile_mma<true, false>(acc, M, ldm, tl.r0, 1, DZB, ld, tl.c0, 0, K);
#pragma unroll
                        for (int r = 0; r < 4; ++r) {
                            const int i = tl.row(r);
#pragma unroll
                            for (int c = 0; c < 4; ++c) {
                                DG[i * ld + tl.c0 + c] = -(tok_last * lr_s[i]) * P[i * ld + tl.c0 + c] - acc[r][c];
                            }
                        }
                    } else {
                        const int e = u - tiles;
                        const int i = e / K;
                        const int j = e - i * K;
                        float deta = 0.0f;
                        float da = 0.0f;
                        if (j <= i) {
                            const float dm = -DZG[i * ldm + j];
                            deta = dm * (A[i * ldm + j] + 1.0f);
                            da = dm * tok_s[i] * lr_s[j];
                        }
                        if (i == K - 1) {
                            // e scales the state update, whose gradient reaches it through P.
                            float s = 0.0f;
                            for (int f = 0; f < F; ++f) s += G[j * ld + f] * P[j * ld + f];
                            deta -= s;
                        }
                        DETA[i * ldm + j] = deta;
                        DA[i * ldm + j] = da;
                    }
                }
            }
            __syncthreads();

            // dQ += dA K;  dK += dA^T Q;  dZ, dV = lnL2grad'(dG)
            for (int u = tid; u < 2 * tiles; u += nt) {
                float acc[4][4];
                zero(acc);
                if (u < tiles) {
                    const Tile tl(u, K, false);
                    tile_mma<false, false>(acc, DA, ldm, tl.r0, tl.rs, Ks, ld, tl.c0, 0, K);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) DQ[tl.row(r) * ld + tl.c0 + c] += acc[r][c];
                    }
                } else {
                    const Tile tl(u - tiles, K, true);
                    tile_mma<true, false>(acc, DA, ldm, tl.r0, 1, Qs, ld, tl.c0, 0, K);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) DK[tl.row(r) * ld + tl.c0 + c] += acc[r][c];
                    }
                }
            }
            for (int i = warp; i < K; i += warps) {
                ln_l2_grad_backward_row(DG + i * ld, ZH + i * ld, Ts + i * ld, G + i * ld, gam, bet, F, sig[i],
                                        DZ + i * ld, DV + i * ld, DGG + i * ld);
            }
            __syncthreads();

            // dK += dZ W^T - dV;  dW += Q^T dZB + K^T dZ;  db += sum dZB + sum dZ;
            // dgamma, dbeta of lnL2grad;  dlr;  dtok
            for (int u = tid; u < tiles + wtiles + 2 * F + 2 * K; u += nt) {
                if (u < tiles) {
                    float acc[4][4];
                    zero(acc);
                    const Tile tl(u, K, false);
                    tile_mma<false, true>(acc, DZ, ld, tl.r0, tl.rs, W, ld, tl.c0, 0, F);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
                        const int i = tl.row(r);
#pragma unroll
                        for (int c = 0; c < 4; ++c) DK[i * ld + tl.c0 + c] += acc[r][c] - DV[i * ld + tl.c0 + c];
                    }
                } else if (u < tiles + wtiles) {
                    float acc[4][4];
                    zero(acc);
                    const Tile tl(u - tiles, F, true);
                    tile_mma<true, false>(acc, Qs, ld, tl.r0, 1, DZB, ld, tl.c0, 0, K);
                    tile_mma<true, false>(acc, Ks, ld, tl.r0, 1, DZ, ld, tl.c0, 0, K);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) dW[tl.row(r) * ld + tl.c0 + c] += acc[r][c];
                    }
                } else if (u < tiles + wtiles + F) {
                    const int f = u - tiles - wtiles;
                    float s = 0.0f;
                    for (int i = 0; i < K; ++i) s += DZB[i * ld + f];
                    for (int i = 0; i < K; ++i) s += DZ[i * ld + f];
                    db[f] += s;
                } else if (u < tiles + wtiles + 2 * F) {
                    const int f = u - tiles - wtiles - F;
                    float sw = 0.0f;
                    float sb = 0.0f;
                    for (int i = 0; i < K; ++i) {
                        const float dg = DGG[i * ld + f];
                        sw += dg * (2.0f * gam[f] * ZH[i * ld + f] + bet[f] - Ts[i * ld + f]);
                        sb += dg * gam[f];
                    }
                    dgam[f] += sw;
                    dbet[f] += sb;
                } else if (u < tiles + wtiles + 2 * F + K) {
                    const int j = u - tiles - wtiles - 2 * F;
                    float s = 0.0f;
                    for (int i = 0; i < K; ++i) s += DETA[i * ldm + j] * tok_s[i];
                    ttt_store(dlr + (long)bh * seq_len + (long)n * K + j, s);
                } else {
                    const int i = u - tiles - wtiles - 2 * F - K;
                    float s = 0.0f;
                    for (int j = 0; j < K; ++j) s += DETA[i * ldm + j] * lr_s[j];
                    dtok[i] += s;
                }
            }
            __syncthreads();

            // dQ, dK, dV of the mini-batch. The next step's first barrier orders these reads
            // before DQ, DK and DV are written again.
            for (int e = tid; e < K * F; e += nt) {
                const int i = e / F;
                const int f = e - i * F;
                ttt_store(dxq + in + e, DQ[i * ld + f]);
                ttt_store(dxk + in + e, DK[i * ld + f]);
                ttt_store(dxv + in + e, DV[i * ld + f]);
            }
        }
    }
    __syncthreads();
    linear_store_state(part, dW, db, F);
    for (int e = tid; e < 2 * F + K; e += nt) part[S + e] = dgam[e];
}

}  // namespace ttt_bwd

// Entry points ttt_linear_backward_{shared,stateglobal,global}_{f32,bf16,f16}.
#define TTT_LINEAR_BWD_ENTRY(T, S, NAME, PLACEMENT)                                                             \
    extern "C" __global__ void __launch_bounds__(256) ttt_linear_backward_##NAME##_##S(                         \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,     \
        const T* dout, const float* checkpoints, int interval, T* dxq, T* dxk, T* dxv, T* dlr, float* partials, \
        float* workspace, int ws_floats, int rs_slots, int smem_bytes, int heads, int seq_len, int F, int K,    \
        float eps) {                                                                                            \
        ttt_bwd::linear_scan_backward<T, PLACEMENT>(xq, xk, xv, lr, tok, norm_w, norm_b, dout, checkpoints,     \
                                                    interval, dxq, dxk, dxv, dlr, partials, workspace,          \
                                                    ws_floats, rs_slots, smem_bytes, heads, seq_len, F, K, eps); \
    }
#define TTT_LINEAR_BWD(T, S)                                             \
    TTT_LINEAR_BWD_ENTRY(T, S, shared, ttt_bwd::kAllShared)              \
    TTT_LINEAR_BWD_ENTRY(T, S, stateglobal, ttt_bwd::kStateGlobal)       \
    TTT_LINEAR_BWD_ENTRY(T, S, global, ttt_bwd::kAllGlobal)
TTT_FOR_EACH_TYPE(TTT_LINEAR_BWD)

// Backward of the TTT-MLP inner scan (SPEC §4, inner backward): one launch for the whole
// sequence, one block per (batch, head), mini-batches in reverse (see ttt_scan_backward.h).
// The math is the CPU reference's (backend/cpu/MlpStep.java), in float32. F1 = 4F.
//
// Per mini-batch, from its state W1, b1, W2, b2 (eta[i][j] = tok[i] lr[j], e[j] = eta[K-1][j]):
//   recompute  Z1 = K W1 + b1;  X2 = gelu(Z1);  Z2 = X2 W2 + b2;  G2 = lnL2grad(Z2, V - K)
//              P1 = G2 W2^T;  G1 = P1 o gelu'(Z1);  A1 = Q K^T;  M1 = tril(eta o (A1 + 1))
//              ZB1 = Q W1 + b1 - M1 G1;  XB = gelu(ZB1);  A2 = XB X2^T;  M2 = tril(eta o (A2 + 1))
//              ZB2 = XB W2 + b2 - M2 G2;  xh = LN(ZB2)
//   backward   (dW1', db1', dW2', db2': the gradient of the state after the mini-batch)
//              dZB2 = LN'(dout);  dG1 = -e o (K dW1' + db1');  dK = -e o (G1 dW1'^T)
//              PU2 = X2 dW2' + db2';  dG2 = -e o PU2;  dX2 = -e o (G2 dW2'^T)
//              dXB = dZB2 W2^T + dA2 X2;  dG2 -= M2^T dZB2;  dM2 = -dZB2 G2^T;  dX2 += dA2^T XB
//              dZB1 = dXB o gelu_grad(ZB1);  dQ = dout + dZB1 W1^T + dA1 K;  dG1 -= M1^T dZB1
//              dM1 = -dZB1 G1^T;  dK += dA1^T Q;  (dA = dM o eta, deta = dM o (A + 1) on the tril)
//              dP1 = gelu'(Z1) o dG1;  dZ1 = gelu''(Z1) o dG1 o P1;  dG2 += dP1 W2
//              dZ2, dV = lnL2grad'(dG2);  dK -= dV;  dX2 += dZ2 W2^T;  dZ1 += gelu_grad(Z1) o dX2
//              dK += dZ1 W1^T;  dW1 = dW1' + Q^T dZB1 + K^T dZ1;  db1 = db1' + sum dZB1 + sum dZ1
//              dW2 = dW2' + XB^T dZB2 + dP1^T G2 + X2^T dZ2;  db2 = db2' + sum dZB2 + sum dZ2
//              deta row K-1 also -(sum G1 o (K dW1' + db1') + sum G2 o PU2)
//              dlr[j] = sum_i deta[i][j] tok[i];  dtok[i] += sum_j deta[i][j] lr[j]
#include "ttt_scan_backward.h"

namespace ttt_bwd {

// The layout, in floats; GpuBackwardOps mirrors these formulas (InnerBackwardLayout).
// State: W1 [F][F1+4], b1 [F1], W2 [F1][F+4], b2 [F], then its gradient in the same shape.
__device__ __forceinline__ int mlp_bwd_state_floats(int F) {
    const int F1 = 4 * F;
    return 2 * (F * (F1 + 4) + F1 + F1 * (F + 4) + F);
}
// Scratch: 13 matrices [K][F+4], 9 matrices [K][F1+4], 9 matrices [K][K+4], 3 vectors [K],
// 4 vectors [F], dtok [K].
__device__ __forceinline__ int mlp_bwd_scratch_floats(int F, int K) {
    const int F1 = 4 * F;
    return 13 * K * (F + 4) + 9 * K * (F1 + 4) + 9 * K * (K + 4) + 4 * K + 4 * F;
}

// A packed float32 state (W1 [F*F1], b1 [F1], W2 [F1*F], b2 [F]) to the padded layout, and back.
__device__ __forceinline__ void mlp_load_state(float* W1, float* B1, float* W2, float* B2, const float* src, int F) {
    const int F1 = 4 * F;
    unpack_rows(W1, src, F, F1, F1 + 4);
    unpack_rows(B1, src + F * F1, 1, F1, F1);
    unpack_rows(W2, src + F * F1 + F1, F1, F, F + 4);
    unpack_rows(B2, src + 2 * F * F1 + F1, 1, F, F);
}

__device__ __forceinline__ void mlp_store_state(float* dst, const float* W1, const float* B1, const float* W2,
                                                const float* B2, int F) {
    const int F1 = 4 * F;
    pack_rows(dst, W1, F, F1, F1 + 4);
    pack_rows(dst + F * F1, B1, 1, F1, F1);
    pack_rows(dst + F * F1 + F1, W2, F1, F, F + 4);
    pack_rows(dst + 2 * F * F1 + F1, B2, 1, F, F);
}

// One of four buffers by index: where partial sum s of a split product goes.
__device__ __forceinline__ float* pick(int s, float* a, float* b, float* c, float* d) {
    return s == 0 ? a : s == 1 ? b : s == 2 ? c : d;
}

template <typename T, int PLACEMENT>
__device__ void mlp_scan_backward(const T* __restrict__ xq, const T* __restrict__ xk, const T* __restrict__ xv,
                                  const T* __restrict__ lr, const T* __restrict__ tok, const T* __restrict__ norm_w,
                                  const T* __restrict__ norm_b, const T* __restrict__ dout,
                                  const float* __restrict__ checkpoints, int interval, T* __restrict__ dxq,
                                  T* __restrict__ dxk, T* __restrict__ dxv, T* __restrict__ dlr,
                                  float* __restrict__ partials, float* workspace, int ws_floats, int rs_slots,
                                  int smem_bytes, int heads, int seq_len, int F, int K, float eps) {
    extern __shared__ float4 smem_f4[];
    float* smem = reinterpret_cast<float*>(smem_f4);
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    const int bh = blockIdx.x;
    const int h = bh % heads;
    const int b = bh / heads;
    const int dim = heads * F;
    const int F1 = 4 * F;
    const int S = 2 * F * F1 + F1 + F;      // a packed state
    const int part_floats = S + 2 * F + K;  // dW1, db1, dW2, db2, dgamma, dbeta, dtok of this (b, h)
    const long in_bh = (long)bh * seq_len * F;
    float* part = partials + (long)bh * part_floats;

    const int state_floats = mlp_bwd_state_floats(F);
    const int scratch_floats = mlp_bwd_scratch_floats(F, K);
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
    const int ld1 = F1 + 4;
    const int ldm = K + 4;
    const int state_size = F * ld1 + F1 + F1 * ld + F;  // one padded state
    float* W1 = state;                 // [F][ld1]
    float* B1 = W1 + F * ld1;          // [F1]
    float* W2 = B1 + F1;               // [F1][ld]
    float* B2 = W2 + F1 * ld;          // [F]
    float* dW1 = state + state_size;   // the gradient, same shapes
    float* dB1 = dW1 + F * ld1;
    float* dW2 = dB1 + F1;
    float* dB2 = dW2 + F1 * ld;
    // [K][ld] matrices. Where two names share a buffer, their lifetimes in a step do not overlap.
    float* Qs = scratch;
    float* Ks = Qs + K * ld;
    float* Ts = Ks + K * ld;           // target V - K
    float* ZH2 = Ts + K * ld;          // Z2, then zh
    float* G2 = ZH2 + K * ld;          // lnL2grad(Z2)
    float* ZB2 = G2 + K * ld;          // ZB2, then LN's xh (read last by the output norm's dgamma)
    float* DG2 = ZB2;                  // written from then on
    float* DZB2 = ZB2 + K * ld;
    float* GD1 = DZB2 + K * ld;        // G1 dW1'^T
    float* DGG2 = GD1;                 // dg of the lnL2grad backward, written once GD1 is read
    float* PU2 = GD1 + K * ld;         // X2 dW2' + db2'
    float* DQ = PU2 + K * ld;
    float* EG2 = DQ;                   // e o G2 while a state is updated (no backward then)
    float* DK = DQ + K * ld;
    float* DZ2 = DK + K * ld;
    float* DV = DZ2 + K * ld;
    // [K][ld1] matrices.
    float* Z1 = DV + K * ld;
    float* X2 = Z1 + K * ld1;          // gelu(Z1)
    float* P1 = X2 + K * ld1;          // G2 W2^T, then dZ1
    float* G1 = P1 + K * ld1;
    float* ZB1 = G1 + K * ld1;
    float* XB = ZB1 + K * ld1;         // gelu(ZB1)
    float* DG1 = XB + K * ld1;         // dG1, then dP1 (e o G1 while a state is updated)
    float* DXB = DG1 + K * ld1;        // dXB, then dZB1
    float* DX2 = DXB + K * ld1;
    // [K][ldm] matrices.
    float* A1 = DX2 + K * ld1;         // Q K^T
    float* M1 = A1 + K * ldm;
    float* A2 = M1 + K * ldm;          // XB X2^T
    float* M2 = A2 + K * ldm;
    float* DZG2 = M2 + K * ldm;        // dZB2 G2^T
    float* DZG1 = DZG2 + K * ldm;      // dZB1 G1^T
    float* DETA = DZG1 + K * ldm;
    float* DA2 = DETA + K * ldm;
    float* DA1 = DA2 + K * ldm;
    float* lr_s = DA1 + K * ldm;       // [K]
    float* tok_s = lr_s + K;           // [K]
    float* sig2 = tok_s + K;           // [K] sigma of Z2's rows
    float* gam = sig2 + K;             // [F]
    float* bet = gam + F;              // [F]
    float* dgam = bet + F;             // [F]  dgam, dbet, dtok: the tail of the partial, in its order
    float* dbet = dgam + F;            // [F]
    float* dtok = dbet + F;            // [K]

    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    load_vector(tok_s, tok, K);
    zero_floats(dW1, state_size);  // the final state is not an output
    zero_floats(dgam, 2 * F + K);

    const int warp = tid / warpSize;
    const int lane = tid % warpSize;
    const int warps = nt / warpSize;
    const int tf = (K / 4) * (F / 4);     // 4x4 tiles of a [K, F] result
    const int tf1 = (K / 4) * (F1 / 4);   // of a [K, F1] result
    const int tm = (K / 4) * (K / 4);     // of a [K, K] result
    const int tw = (F / 4) * (F1 / 4);    // of an [F, F1] or [F1, F] result
    const int mini_batches = seq_len / K;
    const int slots = (mini_batches + interval - 1) / interval;

    // Products that reduce over F1 into a [K, F] or [K, K] result have few tiles; they are split
    // over the reduction into partial sums in buffers free at that point, added in a fixed order
    // by their consumer, so that every thread has work.
    const int c3 = ((F1 / 4 + 2) / 3) * 4;  // a third of F1, rounded up to whole float4 steps

    for (int slot = slots - 1; slot >= 0; --slot) {
        const int first = slot * interval;
        const int last = min(mini_batches, first + interval);
        const float* ck = checkpoints + ((long)slot * gridDim.x + bh) * S;
        __syncthreads();  // the state is still read by the previous mini-batch's backward
        mlp_load_state(W1, B1, W2, B2, ck, F);

        // The states inside the segment: the state before mini-batch n > first goes to
        // rs[n - first - 1]; the one before the segment's last mini-batch stays on chip.
        for (int n = first; n < last - 1; ++n) {
            const long in = in_bh + (long)n * K * F;
            if (n > first) mlp_store_state(rs + (long)(n - first - 1) * S, W1, B1, W2, B2, F);
            load_mini_batch(xq + in, xk + in, xv + in, lr + (long)bh * seq_len + (long)n * K, Qs, Ks, Ts, lr_s, K,
                            F, ld);
            __syncthreads();
            // Z1 = K W1 + b1;  X2 = gelu(Z1)
            for (int u = tid; u < tf1; u += nt) {
                float acc[4][4];
                zero(acc);
                const Tile tl(u, K, false);
                tile_mma<false, false>(acc, Ks, ld, tl.r0, tl.rs, W1, ld1, tl.c0, 0, F);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
#pragma unroll
                    for (int c = 0; c < 4; ++c) {
                        const float z = acc[r][c] + B1[tl.c0 + c];
                        Z1[tl.row(r) * ld1 + tl.c0 + c] = z;
                        X2[tl.row(r) * ld1 + tl.c0 + c] = gelu(z);
                    }
                }
            }
            __syncthreads();
            // X2 W2 in four partial sums over F1
            for (int u = tid; u < 4 * tf; u += nt) {
                float acc[4][4];
                zero(acc);
                const int s = u / tf;
                const Tile tl(u - s * tf, K, false);
                tile_mma<false, false>(acc, X2, ld1, tl.r0, tl.rs, W2, ld, tl.c0, s * F, (s + 1) * F);
                float* part4 = pick(s, DQ, DK, DZ2, DV);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
#pragma unroll
                    for (int c = 0; c < 4; ++c) part4[tl.row(r) * ld + tl.c0 + c] = acc[r][c];
                }
            }
            __syncthreads();
            // Z2 = b2 + the partial sums;  G2 = lnL2grad(Z2), and e o G2 for the update (in DQ,
            // where each lane overwrites only the partial sums it has read)
            for (int i = warp; i < K; i += warps) {
                for (int f = lane; f < F; f += warpSize) {
                    const int at = i * ld + f;
                    ZH2[at] = B2[f] + DQ[at] + DK[at] + DZ2[at] + DV[at];
                }
                ln_l2_grad_row_keep(ZH2 + i * ld, Ts + i * ld, gam, bet, F, eps, G2 + i * ld, sig2 + i, EG2 + i * ld,
                                    tok_s[K - 1] * lr_s[i]);
            }
            __syncthreads();
            // G1 = (G2 W2^T) o gelu'(Z1), and e o G1 for the update
            for (int u = tid; u < tf1; u += nt) {
                float acc[4][4];
                zero(acc);
                const Tile tl(u, K, false);
                tile_mma<false, true>(acc, G2, ld, tl.r0, tl.rs, W2, ld, tl.c0, 0, F);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    const int i = tl.row(r);
                    const float e = tok_s[K - 1] * lr_s[i];
#pragma unroll
                    for (int c = 0; c < 4; ++c) {
                        const float g1 = acc[r][c] * gelu_bwd(Z1[i * ld1 + tl.c0 + c]);
                        DG1[i * ld1 + tl.c0 + c] = e * g1;
                    }
                }
            }
            __syncthreads();
            // W1 -= K^T (e o G1);  b1 -= sum e o G1;  W2 -= X2^T (e o G2);  b2 -= sum e o G2
            for (int u = tid; u < 2 * tw + F1 + F; u += nt) {
                if (u < 2 * tw) {
                    float acc[4][4];
                    zero(acc);
                    if (u < tw) {
                        const Tile tl(u, F, true);
                        tile_mma<true, false>(acc, Ks, ld, tl.r0, 1, DG1, ld1, tl.c0, 0, K);
#pragma unroll
                        for (int r = 0; r < 4; ++r) {
#pragma unroll
                            for (int c = 0; c < 4; ++c) W1[tl.row(r) * ld1 + tl.c0 + c] -= acc[r][c];
                        }
                    } else {
                        const Tile tl(u - tw, F1, true);
                        tile_mma<true, false>(acc, X2, ld1, tl.r0, 1, EG2, ld, tl.c0, 0, K);
#pragma unroll
                        for (int r = 0; r < 4; ++r) {
#pragma unroll
                            for (int c = 0; c < 4; ++c) W2[tl.row(r) * ld + tl.c0 + c] -= acc[r][c];
                        }
                    }
                } else if (u < 2 * tw + F1) {
                    const int c = u - 2 * tw;
                    float s = 0.0f;
                    for (int j = 0; j < K; ++j) s += DG1[j * ld1 + c];
                    B1[c] -= s;
                } else {
                    const int f = u - 2 * tw - F1;
                    float s = 0.0f;
                    for (int j = 0; j < K; ++j) s += EG2[j * ld + f];
                    B2[f] -= s;
                }
            }
            __syncthreads();
        }

        for (int n = last - 1; n >= first; --n) {
            const long in = in_bh + (long)n * K * F;
            const T* dout_n = dout + ((long)b * seq_len + (long)n * K) * dim + (long)h * F;  // row i at i * dim
            const float tok_last = tok_s[K - 1];
            if (n < last - 1) {
                __syncthreads();  // the state is still read by the backward of n + 1
                mlp_load_state(W1, B1, W2, B2, n == first ? ck : rs + (long)(n - first - 1) * S, F);
            }
            load_mini_batch(xq + in, xk + in, xv + in, lr + (long)bh * seq_len + (long)n * K, Qs, Ks, Ts, lr_s, K, F,
                            ld);
            __syncthreads();

            // Z1 = K W1 + b1, X2 = gelu(Z1);  A1 = Q K^T, M1
            for (int u = tid; u < tf1 + tm; u += nt) {
                float acc[4][4];
                zero(acc);
                if (u < tf1) {
                    const Tile tl(u, K, false);
                    tile_mma<false, false>(acc, Ks, ld, tl.r0, tl.rs, W1, ld1, tl.c0, 0, F);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) {
                            const float z = acc[r][c] + B1[tl.c0 + c];
                            Z1[tl.row(r) * ld1 + tl.c0 + c] = z;
                            X2[tl.row(r) * ld1 + tl.c0 + c] = gelu(z);
                        }
                    }
                } else {
                    const Tile tl(u - tf1, K, false);
                    tile_mma<false, true>(acc, Qs, ld, tl.r0, tl.rs, Ks, ld, tl.c0, 0, F);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
                        const int i = tl.row(r);
#pragma unroll
                        for (int c = 0; c < 4; ++c) {
                            const int j = tl.c0 + c;
                            A1[i * ldm + j] = acc[r][c];
                            M1[i * ldm + j] = j <= i ? tok_s[i] * lr_s[j] * (acc[r][c] + 1.0f) : 0.0f;
                        }
                    }
                }
            }
            __syncthreads();

            // X2 W2 in four partial sums over F1
            for (int u = tid; u < 4 * tf; u += nt) {
                float acc[4][4];
                zero(acc);
                const int s = u / tf;
                const Tile tl(u - s * tf, K, false);
                tile_mma<false, false>(acc, X2, ld1, tl.r0, tl.rs, W2, ld, tl.c0, s * F, (s + 1) * F);
                float* part4 = pick(s, DQ, DK, DZ2, DV);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
#pragma unroll
                    for (int c = 0; c < 4; ++c) part4[tl.row(r) * ld + tl.c0 + c] = acc[r][c];
                }
            }
            __syncthreads();

            // Z2 = b2 + the partial sums;  G2 = lnL2grad(Z2), keeping zh and sigma
            for (int i = warp; i < K; i += warps) {
                for (int f = lane; f < F; f += warpSize) {
                    const int at = i * ld + f;
                    ZH2[at] = B2[f] + DQ[at] + DK[at] + DZ2[at] + DV[at];
                }
                ln_l2_grad_row_keep(ZH2 + i * ld, Ts + i * ld, gam, bet, F, eps, G2 + i * ld, sig2 + i, nullptr, 0.0f);
            }
            __syncthreads();

            // P1 = G2 W2^T;  G1 = P1 o gelu'(Z1)
            for (int u = tid; u < tf1; u += nt) {
                float acc[4][4];
                zero(acc);
                const Tile tl(u, K, false);
                tile_mma<false, true>(acc, G2, ld, tl.r0, tl.rs, W2, ld, tl.c0, 0, F);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    const int i = tl.row(r);
#pragma unroll
                    for (int c = 0; c < 4; ++c) {
                        const int f = tl.c0 + c;
                        P1[i * ld1 + f] = acc[r][c];
                        G1[i * ld1 + f] = acc[r][c] * gelu_bwd(Z1[i * ld1 + f]);
                    }
                }
            }
            __syncthreads();

            // ZB1 = Q W1 + b1 - M1 G1;  XB = gelu(ZB1)
            for (int u = tid; u < tf1; u += nt) {
                float acc[4][4];
                float corr[4][4];
                zero(acc);
                zero(corr);
                const Tile tl(u, K, false);
                tile_mma<false, false>(acc, Qs, ld, tl.r0, tl.rs, W1, ld1, tl.c0, 0, F);
                tile_mma<false, false>(corr, M1, ldm, tl.r0, tl.rs, G1, ld1, tl.c0, 0, K);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
#pragma unroll
                    for (int c = 0; c < 4; ++c) {
                        const float z = acc[r][c] + B1[tl.c0 + c] - corr[r][c];
                        ZB1[tl.row(r) * ld1 + tl.c0 + c] = z;
                        XB[tl.row(r) * ld1 + tl.c0 + c] = gelu(z);
                    }
                }
            }
            __syncthreads();

            // XB W2 and XB X2^T, each in four partial sums over F1
            for (int u = tid; u < 4 * tf + 4 * tm; u += nt) {
                float acc[4][4];
                zero(acc);
                if (u < 4 * tf) {
                    const int s = u / tf;
                    const Tile tl(u - s * tf, K, false);
                    tile_mma<false, false>(acc, XB, ld1, tl.r0, tl.rs, W2, ld, tl.c0, s * F, (s + 1) * F);
                    float* part4 = pick(s, DQ, DK, DZ2, DV);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) part4[tl.row(r) * ld + tl.c0 + c] = acc[r][c];
                    }
                } else {
                    const int v = u - 4 * tf;
                    const int s = v / tm;
                    const Tile tl(v - s * tm, K, false);
                    tile_mma<false, true>(acc, XB, ld1, tl.r0, tl.rs, X2, ld1, tl.c0, s * F, (s + 1) * F);
                    float* part4 = pick(s, DZG2, DZG1, DA2, DA1);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) part4[tl.row(r) * ldm + tl.c0 + c] = acc[r][c];
                    }
                }
            }
            __syncthreads();

            // A2 = XB X2^T and M2 from their partial sums;  ZB2 = b2 + XB W2 - M2 G2, row by row
            // (each lane forms the M2 coefficients it needs);  out = Q + LN(ZB2): xh, dZB2
            for (int i = warp; i < K; i += warps) {
                const float* pa = DZG2 + i * ldm;
                const float* pb = DZG1 + i * ldm;
                const float* pc = DA2 + i * ldm;
                const float* pd = DA1 + i * ldm;
                for (int j = lane; j < K; j += warpSize) {
                    const float a = pa[j] + pb[j] + pc[j] + pd[j];
                    A2[i * ldm + j] = a;
                    M2[i * ldm + j] = j <= i ? tok_s[i] * lr_s[j] * (a + 1.0f) : 0.0f;
                }
                for (int f = lane; f < F; f += warpSize) {
                    const int at = i * ld + f;
                    float z = B2[f] + DQ[at] + DK[at] + DZ2[at] + DV[at];
                    for (int j = 0; j <= i; ++j) {
                        const float a = pa[j] + pb[j] + pc[j] + pd[j];
                        z -= tok_s[i] * lr_s[j] * (a + 1.0f) * G2[j * ld + f];
                    }
                    ZB2[at] = z;
                }
                out_norm_backward_row(ZB2 + i * ld, dout_n + (long)i * dim, gam, F, eps, DZB2 + i * ld);
            }
            __syncthreads();

            // GD1 = G1 dW1'^T and PU2 = X2 dW2' + db2' in three partial sums over F1 each (the
            // longest work first);  dG1 = -e o (K dW1' + db1');  dX2 = -e o (G2 dW2'^T);
            // dXB = dZB2 W2^T;  dZG2 = dZB2 G2^T;  dgamma, dbeta of the output norm
            for (int u = tid; u < 6 * tf + 3 * tf1 + tm + F; u += nt) {
                float acc[4][4];
                zero(acc);
                if (u < 6 * tf) {
                    const int s = u / tf;  // 0-2: GD1, 3-5: PU2
                    const int k0 = min(F1, (s % 3) * c3);
                    const int k1 = min(F1, (s % 3 + 1) * c3);
                    const Tile tl(u - s * tf, K, false);
                    if (s < 3) {
                        tile_mma<false, true>(acc, G1, ld1, tl.r0, tl.rs, dW1, ld1, tl.c0, k0, k1);
                    } else {
                        tile_mma<false, false>(acc, X2, ld1, tl.r0, tl.rs, dW2, ld, tl.c0, k0, k1);
                    }
                    float* part3 = s < 3 ? pick(s, GD1, DQ, DK, nullptr) : pick(s - 3, PU2, DZ2, DV, nullptr);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) {
                            const int f = tl.c0 + c;
                            part3[tl.row(r) * ld + f] = acc[r][c] + (s == 3 ? dB2[f] : 0.0f);
                        }
                    }
                } else if (u < 6 * tf + 3 * tf1) {
                    const int v = u - 6 * tf;
                    const int which = v / tf1;
                    const Tile tl(v - which * tf1, K, false);
                    if (which == 0) {
                        tile_mma<false, false>(acc, Ks, ld, tl.r0, tl.rs, dW1, ld1, tl.c0, 0, F);
                    } else if (which == 1) {
                        tile_mma<false, true>(acc, G2, ld, tl.r0, tl.rs, dW2, ld, tl.c0, 0, F);
                    } else {
                        tile_mma<false, true>(acc, DZB2, ld, tl.r0, tl.rs, W2, ld, tl.c0, 0, F);
                    }
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
                        const int i = tl.row(r);
                        const float e = tok_last * lr_s[i];
#pragma unroll
                        for (int c = 0; c < 4; ++c) {
                            const int f = tl.c0 + c;
                            if (which == 0) {
                                DG1[i * ld1 + f] = -e * (acc[r][c] + dB1[f]);
                            } else if (which == 1) {
                                DX2[i * ld1 + f] = -e * acc[r][c];
                            } else {
                                DXB[i * ld1 + f] = acc[r][c];
                            }
                        }
                    }
                } else if (u < 6 * tf + 3 * tf1 + tm) {
                    const Tile tl(u - 6 * tf - 3 * tf1, K, false);
                    tile_mma<false, true>(acc, DZB2, ld, tl.r0, tl.rs, G2, ld, tl.c0, 0, F);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) DZG2[tl.row(r) * ldm + tl.c0 + c] = acc[r][c];
                    }
                } else {
                    const int f = u - 6 * tf - 3 * tf1 - tm;
                    float sw = 0.0f;
                    float sb = 0.0f;
                    for (int i = 0; i < K; ++i) {
                        const float dy = ttt_load(dout_n[(long)i * dim + f]);
                        sw += dy * ZB2[i * ld + f];
                        sb += dy;
                    }
                    dgam[f] += sw;
                    dbet[f] += sb;
                }
            }
            __syncthreads();

            // GD1, PU2: their partial sums added
            for (int e = tid; e < K * F; e += nt) {
                const int at = (e / F) * ld + e % F;
                GD1[at] = GD1[at] + DQ[at] + DK[at];
                PU2[at] = PU2[at] + DZ2[at] + DV[at];
            }
            __syncthreads();

            // dG2 = -e o PU2 - M2^T dZB2;  deta, dA2 from dM2 = -dZG2 (row K-1: the update's
            // terms);  dQ = dout;  dK = -e o GD1
            for (int u = tid; u < tf + K * K + K * F; u += nt) {
                if (u < tf) {
                    float acc[4][4];
                    zero(acc);
                    const Tile tl(u, K, true);
                    tile_mma<true, false>(acc, M2, ldm, tl.r0, 1, DZB2, ld, tl.c0, 0, K);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
                        const int i = tl.row(r);
#pragma unroll
                        for (int c = 0; c < 4; ++c) {
                            DG2[i * ld + tl.c0 + c] = -(tok_last * lr_s[i]) * PU2[i * ld + tl.c0 + c] - acc[r][c];
                        }
                    }
                } else if (u < tf + K * K) {
                    const int e = u - tf;
                    const int i = e / K;
                    const int j = e - i * K;
                    float deta = 0.0f;
                    float da = 0.0f;
                    if (j <= i) {
                        const float dm = -DZG2[i * ldm + j];
                        deta = dm * (A2[i * ldm + j] + 1.0f);
                        da = dm * tok_s[i] * lr_s[j];
                    }
                    if (i == K - 1) {
                        // sum_c G1[j][c] (K dW1' + db1')[j][c] = sum_r K[j][r] GD1[j][r] + G1[j] . db1'
                        float s = 0.0f;
                        for (int r = 0; r < F; ++r) s += Ks[j * ld + r] * GD1[j * ld + r];
                        for (int c = 0; c < F1; ++c) s += G1[j * ld1 + c] * dB1[c];
                        for (int f = 0; f < F; ++f) s += G2[j * ld + f] * PU2[j * ld + f];
                        deta -= s;
                    }
                    DETA[i * ldm + j] = deta;
                    DA2[i * ldm + j] = da;
                } else {
                    const int e = u - tf - K * K;
                    const int i = e / F;
                    const int f = e - i * F;
                    DQ[i * ld + f] = ttt_load(dout_n[(long)i * dim + f]);
                    DK[i * ld + f] = -(tok_last * lr_s[i]) * GD1[i * ld + f];
                }
            }
            __syncthreads();

            // dZB1 = (dXB + dA2 X2) o gelu_grad(ZB1);  dX2 += dA2^T XB
            for (int u = tid; u < 2 * tf1; u += nt) {
                float acc[4][4];
                zero(acc);
                if (u < tf1) {
                    const Tile tl(u, K, false);
                    tile_mma<false, false>(acc, DA2, ldm, tl.r0, tl.rs, X2, ld1, tl.c0, 0, K);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) {
                            const int at = tl.row(r) * ld1 + tl.c0 + c;
                            DXB[at] = (DXB[at] + acc[r][c]) * gelu_grad(ZB1[at]);
                        }
                    }
                } else {
                    const Tile tl(u - tf1, K, true);
                    tile_mma<true, false>(acc, DA2, ldm, tl.r0, 1, XB, ld1, tl.c0, 0, K);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) DX2[tl.row(r) * ld1 + tl.c0 + c] += acc[r][c];
                    }
                }
            }
            __syncthreads();
            float* DZB1 = DXB;

            // dG1 -= M1^T dZB1, then dP1 = gelu'(Z1) o dG1 in place of dG1 and gelu''(Z1) o dG1 o P1
            // in place of P1;  dZB1 G1^T in four partial sums over F1 (in buffers read last by
            // the step before)
            for (int u = tid; u < tf1 + 4 * tm; u += nt) {
                float acc[4][4];
                zero(acc);
                if (u < tf1) {
                    const Tile tl(u, K, true);
                    tile_mma<true, false>(acc, M1, ldm, tl.r0, 1, DZB1, ld1, tl.c0, 0, K);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) {
                            const int at = tl.row(r) * ld1 + tl.c0 + c;
                            const float dg1 = DG1[at] - acc[r][c];
                            const float z = Z1[at];
                            DG1[at] = gelu_bwd(z) * dg1;
                            P1[at] = gelu_bwd_grad(z) * dg1 * P1[at];
                        }
                    }
                } else {
                    const int v = u - tf1;
                    const int s = v / tm;
                    const Tile tl(v - s * tm, K, false);
                    tile_mma<false, true>(acc, DZB1, ld1, tl.r0, tl.rs, G1, ld1, tl.c0, s * F, (s + 1) * F);
                    float* part4 = pick(s, DZG2, DA2, A2, M2);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) part4[tl.row(r) * ldm + tl.c0 + c] = acc[r][c];
                    }
                }
            }
            __syncthreads();
            float* DP1 = DG1;

            // deta, dA1 from dM1 = -dZB1 G1^T;  dZB1 W1^T (for dQ) and dP1 W2 (for dG2) in two
            // partial sums over F1 each
            for (int u = tid; u < 4 * tf + K * K; u += nt) {
                if (u < 4 * tf) {
                    float acc[4][4];
                    zero(acc);
                    const int s = u / tf;  // 0-1: dQ, 2-3: dG2
                    const int k0 = (s % 2) * (F1 / 2);
                    const Tile tl(u - s * tf, K, false);
                    if (s < 2) {
                        tile_mma<false, true>(acc, DZB1, ld1, tl.r0, tl.rs, W1, ld1, tl.c0, k0, k0 + F1 / 2);
                    } else {
                        tile_mma<false, false>(acc, DP1, ld1, tl.r0, tl.rs, W2, ld, tl.c0, k0, k0 + F1 / 2);
                    }
                    float* part4 = pick(s, PU2, GD1, DZ2, DV);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) part4[tl.row(r) * ld + tl.c0 + c] = acc[r][c];
                    }
                } else {
                    const int e = u - 4 * tf;
                    const int i = e / K;
                    const int j = e - i * K;
                    const int at = i * ldm + j;
                    float da = 0.0f;
                    if (j <= i) {
                        const float dm = -(DZG2[at] + DA2[at] + A2[at] + M2[at]);
                        DETA[at] += dm * (A1[at] + 1.0f);
                        da = dm * tok_s[i] * lr_s[j];
                    }
                    DA1[at] = da;
                }
            }
            __syncthreads();

            // dK += dA1^T Q;  rows: dQ += its partial sums, dG2 += its partial sums, then
            // dZ2, dV = lnL2grad'(dG2) (each lane reads the partial sums it then overwrites)
            for (int u = tid; u < tf; u += nt) {
                float acc[4][4];
                zero(acc);
                const Tile tl(u, K, true);
                tile_mma<true, false>(acc, DA1, ldm, tl.r0, 1, Qs, ld, tl.c0, 0, K);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
#pragma unroll
                    for (int c = 0; c < 4; ++c) DK[tl.row(r) * ld + tl.c0 + c] += acc[r][c];
                }
            }
            for (int i = warp; i < K; i += warps) {
                for (int f = lane; f < F; f += warpSize) {
                    const int at = i * ld + f;
                    DQ[at] += PU2[at] + GD1[at];
                    DG2[at] += DZ2[at] + DV[at];
                }
                ln_l2_grad_backward_row(DG2 + i * ld, ZH2 + i * ld, Ts + i * ld, G2 + i * ld, gam, bet, F, sig2[i],
                                        DZ2 + i * ld, DV + i * ld, DGG2 + i * ld);
            }
            __syncthreads();

            // dX2 += dZ2 W2^T, then dZ1 = P1 + gelu_grad(Z1) o dX2 in place of P1;  dQ += dA1 K;
            // dgamma, dbeta of lnL2grad;  dlr;  dtok
            for (int u = tid; u < tf1 + tf + F + 2 * K; u += nt) {
                if (u < tf1) {
                    float acc[4][4];
                    zero(acc);
                    const Tile tl(u, K, false);
                    tile_mma<false, true>(acc, DZ2, ld, tl.r0, tl.rs, W2, ld, tl.c0, 0, F);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) {
                            const int at = tl.row(r) * ld1 + tl.c0 + c;
                            P1[at] += gelu_grad(Z1[at]) * (DX2[at] + acc[r][c]);
                        }
                    }
                } else if (u < tf1 + tf) {
                    float acc[4][4];
                    zero(acc);
                    const Tile tl(u - tf1, K, false);
                    tile_mma<false, false>(acc, DA1, ldm, tl.r0, tl.rs, Ks, ld, tl.c0, 0, K);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) DQ[tl.row(r) * ld + tl.c0 + c] += acc[r][c];
                    }
                } else if (u < tf1 + tf + F) {
                    const int f = u - tf1 - tf;
                    float sw = 0.0f;
                    float sb = 0.0f;
                    for (int i = 0; i < K; ++i) {
                        const float dg = DGG2[i * ld + f];
                        sw += dg * (2.0f * gam[f] * ZH2[i * ld + f] + bet[f] - Ts[i * ld + f]);
                        sb += dg * gam[f];
                    }
                    dgam[f] += sw;
                    dbet[f] += sb;
                } else if (u < tf1 + tf + F + K) {
                    const int j = u - tf1 - tf - F;
                    float s = 0.0f;
                    for (int i = 0; i < K; ++i) s += DETA[i * ldm + j] * tok_s[i];
                    ttt_store(dlr + (long)bh * seq_len + (long)n * K + j, s);
                } else {
                    const int i = u - tf1 - tf - F - K;
                    float s = 0.0f;
                    for (int j = 0; j < K; ++j) s += DETA[i * ldm + j] * lr_s[j];
                    dtok[i] += s;
                }
            }
            __syncthreads();
            float* DZ1 = P1;

            // dZ1 W1^T (for dK) in two partial sums over F1;  dW1 += Q^T dZB1 + K^T dZ1;
            // dW2 += XB^T dZB2 + dP1^T G2 + X2^T dZ2;  db1 += sum dZB1 + sum dZ1;  db2 += sum dZB2 + sum dZ2
            for (int u = tid; u < 2 * tf + 2 * tw + F1 + F; u += nt) {
                float acc[4][4];
                zero(acc);
                if (u < 2 * tf) {
                    const int s = u / tf;
                    const Tile tl(u - s * tf, K, false);
                    tile_mma<false, true>(acc, DZ1, ld1, tl.r0, tl.rs, W1, ld1, tl.c0, s * (F1 / 2), (s + 1) * (F1 / 2));
                    float* part2 = s == 0 ? PU2 : GD1;
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) part2[tl.row(r) * ld + tl.c0 + c] = acc[r][c];
                    }
                } else if (u < 2 * tf + tw) {
                    const Tile tl(u - 2 * tf, F, true);
                    tile_mma<true, false>(acc, Qs, ld, tl.r0, 1, DZB1, ld1, tl.c0, 0, K);
                    tile_mma<true, false>(acc, Ks, ld, tl.r0, 1, DZ1, ld1, tl.c0, 0, K);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) dW1[tl.row(r) * ld1 + tl.c0 + c] += acc[r][c];
                    }
                } else if (u < 2 * tf + 2 * tw) {
                    const Tile tl(u - 2 * tf - tw, F1, true);
                    tile_mma<true, false>(acc, XB, ld1, tl.r0, 1, DZB2, ld, tl.c0, 0, K);
                    tile_mma<true, false>(acc, DP1, ld1, tl.r0, 1, G2, ld, tl.c0, 0, K);
                    tile_mma<true, false>(acc, X2, ld1, tl.r0, 1, DZ2, ld, tl.c0, 0, K);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) dW2[tl.row(r) * ld + tl.c0 + c] += acc[r][c];
                    }
                } else if (u < 2 * tf + 2 * tw + F1) {
                    const int c = u - 2 * tf - 2 * tw;
                    float s = 0.0f;
                    for (int i = 0; i < K; ++i) s += DZB1[i * ld1 + c];
                    for (int i = 0; i < K; ++i) s += DZ1[i * ld1 + c];
                    dB1[c] += s;
                } else {
                    const int f = u - 2 * tf - 2 * tw - F1;
                    float s = 0.0f;
                    for (int i = 0; i < K; ++i) s += DZB2[i * ld + f];
                    for (int i = 0; i < K; ++i) s += DZ2[i * ld + f];
                    dB2[f] += s;
                }
            }
            __syncthreads();

            // dQ, dK (with the two partial sums of dZ1 W1^T), dV of the mini-batch. The next
            // step's first barrier orders these reads before the buffers are written again.
            for (int e = tid; e < K * F; e += nt) {
                const int at = (e / F) * ld + e % F;
                ttt_store(dxq + in + e, DQ[at]);
                ttt_store(dxk + in + e, DK[at] + PU2[at] + GD1[at] - DV[at]);
                ttt_store(dxv + in + e, DV[at]);
            }
        }
    }
    __syncthreads();
    mlp_store_state(part, dW1, dB1, dW2, dB2, F);
    for (int e = tid; e < 2 * F + K; e += nt) part[S + e] = dgam[e];
}

}  // namespace ttt_bwd

// Entry points ttt_mlp_backward_{shared,stateglobal,global}_{f32,bf16,f16}.
#define TTT_MLP_BWD_ENTRY(T, S, NAME, PLACEMENT)                                                                \
    extern "C" __global__ void __launch_bounds__(256) ttt_mlp_backward_##NAME##_##S(                            \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,     \
        const T* dout, const float* checkpoints, int interval, T* dxq, T* dxk, T* dxv, T* dlr, float* partials, \
        float* workspace, int ws_floats, int rs_slots, int smem_bytes, int heads, int seq_len, int F, int K,    \
        float eps) {                                                                                            \
        ttt_bwd::mlp_scan_backward<T, PLACEMENT>(xq, xk, xv, lr, tok, norm_w, norm_b, dout, checkpoints,        \
                                                 interval, dxq, dxk, dxv, dlr, partials, workspace, ws_floats,  \
                                                 rs_slots, smem_bytes, heads, seq_len, F, K, eps);              \
    }
#define TTT_MLP_BWD(T, S)                                             \
    TTT_MLP_BWD_ENTRY(T, S, shared, ttt_bwd::kAllShared)              \
    TTT_MLP_BWD_ENTRY(T, S, stateglobal, ttt_bwd::kStateGlobal)       \
    TTT_MLP_BWD_ENTRY(T, S, global, ttt_bwd::kAllGlobal)
TTT_FOR_EACH_TYPE(TTT_MLP_BWD)

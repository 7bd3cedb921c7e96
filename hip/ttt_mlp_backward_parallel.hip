// The TTT-MLP inner backward when the forward kept every state (checkpoint interval 1), in three
// launches, as ttt_linear_backward_parallel.hip does for TTT-Linear: the local gradients of all
// mini-batches at once, only the recurrence of the state's gradient sequential, the rest at once.
// The math is the CPU reference's (backend/cpu/MlpStep.java); F1 = 4F.
//
//   local   one block per (mini-batch, batch·head), the kept state read from its checkpoint slot:
//           the forward's intermediates (Z1, X2, Z2, G2, P1, G1, ZB1, XB, ZB2, A1, A2), then
//           dZB2 = LN'(dout);  dXB = dZB2 W2^T + dA2 X2;  dZB1 = dXB o gelu'(ZB1)
//           dQ = dout + dZB1 W1^T + dA1 K (final);  dK_local = dA1^T Q
//           dG1_local = -M1^T dZB1;  dX2_local = dA2^T XB;  dG2_local = -M2^T dZB2;  deta_local
//   chain   one block per batch·head, mini-batches in reverse, dW1', db1', dW2', db2' in global memory:
//           dG1 = dG1_local - e o (K dW1' + db1') -> dP1 = gelu'(Z1) o dG1, dZ1 = gelu''(Z1) o dG1 o P1
//           dX2 = dX2_local - e o (G2 dW2'^T);  PU2 = X2 dW2' + db2';  dK += -e o (G1 dW1'^T)
//           dG2 = dG2_local - e o PU2 + dP1 W2;  dZ2, dV = lnL2grad'(dG2);  deta[K-1] -= the update's terms
//           dX2 += dZ2 W2^T;  dZ1 += gelu_grad(Z1) o dX2
//           dW1 += Q^T dZB1 + K^T dZ1;  dW2 += XB^T dZB2 + dP1^T G2 + X2^T dZ2;  db1, db2 likewise
//   finish  one block per (mini-batch, batch·head): dK += dZ1 W1^T - dV;  dlr, the partials
#include "ttt_scan_backward.h"

namespace ttt_bwd {

// The record, floats: [K][F1] packed X2, G1, Z1, P1, XB, DZB1, DG1, DX2, DZ1; [K][F] packed G2,
// ZH2, DG2, DZB2, DK, DV, DGG2; then DETA [K][K], SIG2 [K], DGB [2F]. GpuBackwardOps mirrors
// these formulas (InnerBackwardLayout).
__device__ __forceinline__ int mpar_record_floats(int F, int K) { return 9 * K * 4 * F + 7 * K * F + K * K + K + 2 * F; }
__device__ __forceinline__ int mpar_local_floats(int F, int K) {
    return 13 * K * (F + 4) + 9 * K * (4 * F + 4) + 11 * K * (K + 4) + 3 * K + 2 * F;
}
__device__ __forceinline__ int mpar_chain_floats(int F, int K) { return 13 * K * (F + 4) + 8 * K * (4 * F + 4) + 3 * K + 2 * F; }
__device__ __forceinline__ int mpar_finish_floats(int F, int K) { return K * (4 * F + 4) + 2 * K + 2 * F; }

enum WidePart { wX2 = 0, wG1, wZ1, wP1, wXB, wDZB1, wDG1, wDX2, wDZ1 };
enum NarrowPart { nG2 = 0, nZH2, nDG2, nDZB2, nDK, nDV, nDGG2 };

__device__ __forceinline__ float* wide(float* rec, WidePart p, int F, int K) { return rec + p * K * 4 * F; }
__device__ __forceinline__ float* narrow(float* rec, NarrowPart p, int F, int K) { return rec + 9 * K * 4 * F + p * K * F; }
__device__ __forceinline__ float* rec_deta(float* rec, int F, int K) { return rec + 9 * K * 4 * F + 7 * K * F; }

__device__ __forceinline__ float* pick4(int s, float* a, float* b, float* c, float* d) {
    return s == 0 ? a : s == 1 ? b : s == 2 ? c : d;
}

template <typename T>
__device__ void mlp_bwd_local(const T* __restrict__ xq, const T* __restrict__ xk, const T* __restrict__ xv,
                              const T* __restrict__ lr, const T* __restrict__ tok, const T* __restrict__ norm_w,
                              const T* __restrict__ norm_b, const T* __restrict__ dout,
                              const float* __restrict__ checkpoints, T* __restrict__ dxq, float* __restrict__ records,
                              int smem_bytes, int heads, int seq_len, int F, int K, float eps) {
    extern __shared__ float4 smem_f4[];
    float* smem = reinterpret_cast<float*>(smem_f4);
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    const int bh = blockIdx.x;
    const int n = blockIdx.y;
    const int pairs = gridDim.x;
    const int h = bh % heads;
    const int b = bh / heads;
    const int dim = heads * F;
    const int F1 = 4 * F;
    const int S = 2 * F * F1 + F1 + F;
    const long in = ((long)bh * seq_len + (long)n * K) * F;
    float* rec = records + ((long)n * pairs + bh) * mpar_record_floats(F, K);
    if (K % 4 != 0 || F % 4 != 0 || seq_len % K != 0 || 4 * mpar_local_floats(F, K) > smem_bytes || nt % warpSize != 0) {
        const float nan = __int_as_float(0x7fc00000);
        for (int e = tid; e < K * F; e += nt) ttt_store(dxq + in + e, nan);
        for (int e = tid; e < mpar_record_floats(F, K); e += nt) rec[e] = nan;
        return;
    }
    // The state, read in place from the checkpoint (packed: W1 [F][F1], b1, W2 [F1][F], b2).
    const float* st = checkpoints + ((long)n * pairs + bh) * S;
    const float* W1 = st;
    const float* B1 = W1 + F * F1;
    const float* W2 = B1 + F1;
    const float* B2 = W2 + F1 * F;
    const int ld = F + 4;
    const int ld1 = F1 + 4;
    const int ldm = K + 4;
    float* Qs = smem;                  // [K][ld]
    float* Ks = Qs + K * ld;
    float* Ts = Ks + K * ld;
    float* ZH2 = Ts + K * ld;          // Z2, then zh
    float* G2 = ZH2 + K * ld;
    float* ZB2 = G2 + K * ld;          // ZB2, then xh
    float* DZB2 = ZB2 + K * ld;
    float* DG2 = DZB2 + K * ld;
    float* DK = DG2 + K * ld;
    float* P0 = DK + K * ld;           // four partial sums of products over F1
    float* P1s = P0 + K * ld;
    float* P2s = P1s + K * ld;
    float* P3s = P2s + K * ld;
    float* Z1 = P3s + K * ld;          // [K][ld1]
    float* X2 = Z1 + K * ld1;
    float* P1 = X2 + K * ld1;          // G2 W2^T
    float* G1 = P1 + K * ld1;
    float* ZB1 = G1 + K * ld1;
    float* XB = ZB1 + K * ld1;
    float* DXB = XB + K * ld1;         // dXB, then dZB1
    float* DX2 = DXB + K * ld1;
    float* DG1 = DX2 + K * ld1;
    float* A1 = DG1 + K * ld1;         // [K][ldm]
    float* M1 = A1 + K * ldm;
    float* A2 = M1 + K * ldm;
    float* M2 = A2 + K * ldm;
    float* DETA = M2 + K * ldm;
    float* DA2 = DETA + K * ldm;
    float* DA1 = DA2 + K * ldm;
    float* PA0 = DA1 + K * ldm;        // four partial sums of [K, K] products over F1
    float* PA1 = PA0 + K * ldm;
    float* PA2 = PA1 + K * ldm;
    float* PA3 = PA2 + K * ldm;
    float* lr_s = PA3 + K * ldm;       // [K]
    float* tok_s = lr_s + K;
    float* sig2 = tok_s + K;
    float* gam = sig2 + K;             // [F]
    float* bet = gam + F;

    const T* dout_n = dout + ((long)b * seq_len + (long)n * K) * dim + (long)h * F;  // row i at i * dim
    const int warp = tid / warpSize;
    const int lane = tid % warpSize;
    const int warps = nt / warpSize;
    const int tf = (K / 4) * (F / 4);
    const int tf1 = (K / 4) * (F1 / 4);
    const int tm = (K / 4) * (K / 4);

    load_mini_batch(xq + in, xk + in, xv + in, lr + (long)bh * seq_len + (long)n * K, Qs, Ks, Ts, lr_s, K, F, ld);
    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    load_vector(tok_s, tok, K);
    __syncthreads();

    // Z1 = K W1 + b1, X2 = gelu(Z1);  A1 = Q K^T, M1
    for (int u = tid; u < tf1 + tm; u += nt) {
        float acc[4][4];
        zero(acc);
        if (u < tf1) {
            const Tile tl(u, K, false);
            tile_mma<false, false>(acc, Ks, ld, tl.r0, tl.rs, W1, F1, tl.c0, 0, F);
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
        tile_mma<false, false>(acc, X2, ld1, tl.r0, tl.rs, W2, F, tl.c0, s * F, (s + 1) * F);
        float* part4 = pick4(s, P0, P1s, P2s, P3s);
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
            ZH2[at] = B2[f] + P0[at] + P1s[at] + P2s[at] + P3s[at];
        }
        ln_l2_grad_row_keep(ZH2 + i * ld, Ts + i * ld, gam, bet, F, eps, G2 + i * ld, sig2 + i, nullptr, 0.0f);
    }
    __syncthreads();

    // P1 = G2 W2^T;  G1 = P1 o gelu'(Z1)
    for (int u = tid; u < tf1; u += nt) {
        float acc[4][4];
        zero(acc);
        const Tile tl(u, K, false);
        tile_mma<false, true>(acc, G2, ld, tl.r0, tl.rs, W2, F, tl.c0, 0, F);
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
        tile_mma<false, false>(acc, Qs, ld, tl.r0, tl.rs, W1, F1, tl.c0, 0, F);
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
            tile_mma<false, false>(acc, XB, ld1, tl.r0, tl.rs, W2, F, tl.c0, s * F, (s + 1) * F);
            float* part4 = pick4(s, P0, P1s, P2s, P3s);
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
            float* part4 = pick4(s, PA0, PA1, PA2, PA3);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) part4[tl.row(r) * ldm + tl.c0 + c] = acc[r][c];
            }
        }
    }
    __syncthreads();

    // A2, M2 from their partial sums;  ZB2 = b2 + XB W2 - M2 G2 row by row;  out = Q + LN(ZB2): xh, dZB2
    for (int i = warp; i < K; i += warps) {
        const float* pa = PA0 + i * ldm;
        const float* pb = PA1 + i * ldm;
        const float* pc = PA2 + i * ldm;
        const float* pd = PA3 + i * ldm;
        for (int j = lane; j < K; j += warpSize) {
            const float a = pa[j] + pb[j] + pc[j] + pd[j];
            A2[i * ldm + j] = a;
            M2[i * ldm + j] = j <= i ? tok_s[i] * lr_s[j] * (a + 1.0f) : 0.0f;
        }
        for (int f = lane; f < F; f += warpSize) {
            const int at = i * ld + f;
            float z = B2[f] + P0[at] + P1s[at] + P2s[at] + P3s[at];
            for (int j = 0; j <= i; ++j) {
                const float a = pa[j] + pb[j] + pc[j] + pd[j];
                z -= tok_s[i] * lr_s[j] * (a + 1.0f) * G2[j * ld + f];
            }
            ZB2[at] = z;
        }
        out_norm_backward_row(ZB2 + i * ld, dout_n + (long)i * dim, gam, F, eps, DZB2 + i * ld);
    }
    __syncthreads();

    // dXB = dZB2 W2^T;  dM2 = -dZB2 G2^T -> deta, dA2;  dG2_local = -M2^T dZB2;  output norm's dgamma, dbeta
    float* dgb = rec_deta(rec, F, K) + K * K + K;
    for (int u = tid; u < tf1 + tm + tf + F; u += nt) {
        float acc[4][4];
        zero(acc);
        if (u < tf1) {
            const Tile tl(u, K, false);
            tile_mma<false, true>(acc, DZB2, ld, tl.r0, tl.rs, W2, F, tl.c0, 0, F);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) DXB[tl.row(r) * ld1 + tl.c0 + c] = acc[r][c];
            }
        } else if (u < tf1 + tm) {
            const Tile tl(u - tf1, K, false);
            tile_mma<false, true>(acc, DZB2, ld, tl.r0, tl.rs, G2, ld, tl.c0, 0, F);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int i = tl.row(r);
#pragma unroll
                for (int c = 0; c < 4; ++c) {
                    const int j = tl.c0 + c;
                    const float dm = -acc[r][c];
                    DETA[i * ldm + j] = j <= i ? dm * (A2[i * ldm + j] + 1.0f) : 0.0f;
                    DA2[i * ldm + j] = j <= i ? dm * tok_s[i] * lr_s[j] : 0.0f;
                }
            }
        } else if (u < tf1 + tm + tf) {
            const Tile tl(u - tf1 - tm, K, true);
            tile_mma<true, false>(acc, M2, ldm, tl.r0, 1, DZB2, ld, tl.c0, 0, K);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) DG2[tl.row(r) * ld + tl.c0 + c] = -acc[r][c];
            }
        } else {
            const int f = u - tf1 - tm - tf;
            float sw = 0.0f;
            float sb = 0.0f;
            for (int i = 0; i < K; ++i) {
                const float dy = ttt_load(dout_n[(long)i * dim + f]);
                sw += dy * ZB2[i * ld + f];
                sb += dy;
            }
            dgb[f] = sw;
            dgb[F + f] = sb;
        }
    }
    __syncthreads();

    // dZB1 = (dXB + dA2 X2) o gelu_grad(ZB1);  dX2_local = dA2^T XB
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
                for (int c = 0; c < 4; ++c) DX2[tl.row(r) * ld1 + tl.c0 + c] = acc[r][c];
            }
        }
    }
    __syncthreads();
    float* DZB1 = DXB;

    // dG1_local = -M1^T dZB1;  dZB1 G1^T in four partial sums over F1;  dZB1 W1^T in two
    for (int u = tid; u < tf1 + 4 * tm + 2 * tf; u += nt) {
        float acc[4][4];
        zero(acc);
        if (u < tf1) {
            const Tile tl(u, K, true);
            tile_mma<true, false>(acc, M1, ldm, tl.r0, 1, DZB1, ld1, tl.c0, 0, K);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) DG1[tl.row(r) * ld1 + tl.c0 + c] = -acc[r][c];
            }
        } else if (u < tf1 + 4 * tm) {
            const int v = u - tf1;
            const int s = v / tm;
            const Tile tl(v - s * tm, K, false);
            tile_mma<false, true>(acc, DZB1, ld1, tl.r0, tl.rs, G1, ld1, tl.c0, s * F, (s + 1) * F);
            float* part4 = pick4(s, PA0, PA1, PA2, PA3);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) part4[tl.row(r) * ldm + tl.c0 + c] = acc[r][c];
            }
        } else {
            const int v = u - tf1 - 4 * tm;
            const int s = v / tf;
            const Tile tl(v - s * tf, K, false);
            tile_mma<false, true>(acc, DZB1, ld1, tl.r0, tl.rs, W1, F1, tl.c0, s * (F1 / 2), (s + 1) * (F1 / 2));
            float* part2 = s == 0 ? P0 : P1s;
#pragma unroll
            for (int r = 0; r < 4; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) part2[tl.row(r) * ld + tl.c0 + c] = acc[r][c];
            }
        }
    }
    __syncthreads();

    // deta, dA1 from dM1 = -dZB1 G1^T
    for (int e = tid; e < K * K; e += nt) {
        const int i = e / K;
        const int j = e - i * K;
        const int at = i * ldm + j;
        float da = 0.0f;
        if (j <= i) {
            const float dm = -(PA0[at] + PA1[at] + PA2[at] + PA3[at]);
            DETA[at] += dm * (A1[at] + 1.0f);
            da = dm * tok_s[i] * lr_s[j];
        }
        DA1[at] = da;
    }
    __syncthreads();

    // dQ = dout + dZB1 W1^T + dA1 K (final);  dK_local = dA1^T Q;  the record
    for (int u = tid; u < 2 * tf; u += nt) {
        float acc[4][4];
        zero(acc);
        if (u < tf) {
            const Tile tl(u, K, false);
            tile_mma<false, false>(acc, DA1, ldm, tl.r0, tl.rs, Ks, ld, tl.c0, 0, K);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int i = tl.row(r);
#pragma unroll
                for (int c = 0; c < 4; ++c) {
                    const int f = tl.c0 + c;
                    const float q = ttt_load(dout_n[(long)i * dim + f]) + P0[i * ld + f] + P1s[i * ld + f] + acc[r][c];
                    ttt_store(dxq + in + i * F + f, q);
                }
            }
        } else {
            const Tile tl(u - tf, K, true);
            tile_mma<true, false>(acc, DA1, ldm, tl.r0, 1, Qs, ld, tl.c0, 0, K);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) DK[tl.row(r) * ld + tl.c0 + c] = acc[r][c];
            }
        }
    }
    pack_rows(wide(rec, wX2, F, K), X2, K, F1, ld1);
    pack_rows(wide(rec, wG1, F, K), G1, K, F1, ld1);
    pack_rows(wide(rec, wZ1, F, K), Z1, K, F1, ld1);
    pack_rows(wide(rec, wP1, F, K), P1, K, F1, ld1);
    pack_rows(wide(rec, wXB, F, K), XB, K, F1, ld1);
    pack_rows(wide(rec, wDZB1, F, K), DZB1, K, F1, ld1);
    pack_rows(wide(rec, wDG1, F, K), DG1, K, F1, ld1);
    pack_rows(wide(rec, wDX2, F, K), DX2, K, F1, ld1);
    pack_rows(narrow(rec, nG2, F, K), G2, K, F, ld);
    pack_rows(narrow(rec, nZH2, F, K), ZH2, K, F, ld);
    pack_rows(narrow(rec, nDG2, F, K), DG2, K, F, ld);
    pack_rows(narrow(rec, nDZB2, F, K), DZB2, K, F, ld);
    pack_rows(rec_deta(rec, F, K), DETA, K, K, ldm);
    for (int e = tid; e < K; e += nt) rec_deta(rec, F, K)[K * K + e] = sig2[e];
    __syncthreads();
    pack_rows(narrow(rec, nDK, F, K), DK, K, F, ld);
}

template <typename T>
__device__ void mlp_bwd_chain(const T* __restrict__ xq, const T* __restrict__ xk, const T* __restrict__ xv,
                              const T* __restrict__ lr, const T* __restrict__ tok, const T* __restrict__ norm_w,
                              const T* __restrict__ norm_b, const float* __restrict__ checkpoints,
                              float* __restrict__ records, float* __restrict__ partials, int smem_bytes, int heads,
                              int seq_len, int F, int K, float eps) {
    extern __shared__ float4 smem_f4[];
    float* smem = reinterpret_cast<float*>(smem_f4);
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    const int bh = blockIdx.x;
    const int pairs = gridDim.x;
    const int h = bh % heads;
    const int F1 = 4 * F;
    const int S = 2 * F * F1 + F1 + F;
    const int R = mpar_record_floats(F, K);
    // The state's gradient, packed as a state, lives in this (batch, head)'s partial: what the
    // host sums over the batch when the chain is done.
    float* dW1 = partials + (long)bh * S;
    float* dB1 = dW1 + F * F1;
    float* dW2 = dB1 + F1;
    float* dB2 = dW2 + F1 * F;
    if (K % 4 != 0 || F % 4 != 0 || seq_len % K != 0 || 4 * mpar_chain_floats(F, K) > smem_bytes || nt % warpSize != 0) {
        const float nan = __int_as_float(0x7fc00000);
        for (int e = tid; e < S; e += nt) dW1[e] = nan;
        return;
    }
    const int ld = F + 4;
    const int ld1 = F1 + 4;
    float* Qs = smem;                  // [K][ld]
    float* Ks = Qs + K * ld;
    float* Ts = Ks + K * ld;
    float* G2 = Ts + K * ld;
    float* ZH2 = G2 + K * ld;
    float* DG2 = ZH2 + K * ld;         // dG2_local, then dG2
    float* DZB2 = DG2 + K * ld;
    float* GD0 = DZB2 + K * ld;        // G1 dW1'^T in two partial sums, then summed in GD0
    float* GD1 = GD0 + K * ld;
    float* PU0 = GD1 + K * ld;         // X2 dW2' + db2' in two partial sums, then summed in PU0
    float* PU1 = PU0 + K * ld;
    float* DZ2 = PU1 + K * ld;         // a partial sum of dP1 W2, then dZ2
    float* DPW = DZ2 + K * ld;         // the other partial sum of dP1 W2
    float* X2 = DPW + K * ld;          // [K][ld1]
    float* G1 = X2 + K * ld1;
    float* Z1 = G1 + K * ld1;
    float* P1 = Z1 + K * ld1;          // P1, then gelu''(Z1) o dG1 o P1, then dZ1
    float* XB = P1 + K * ld1;
    float* DZB1 = XB + K * ld1;
    float* DG1 = DZB1 + K * ld1;       // dG1_local, then dP1
    float* DX2 = DG1 + K * ld1;        // dX2_local, then dX2
    float* lr_s = DX2 + K * ld1;       // [K]
    float* sig2 = lr_s + K;
    float* tok_s = sig2 + K;
    float* gam = tok_s + K;            // [F]
    float* bet = gam + F;

    const int warp = tid / warpSize;
    const int lane = tid % warpSize;
    const int warps = nt / warpSize;
    const int tf = (K / 4) * (F / 4);
    const int tf1 = (K / 4) * (F1 / 4);
    const int tw = (F / 4) * (F1 / 4);
    const int mini_batches = seq_len / K;
    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    load_vector(tok_s, tok, K);
    zero_floats(dW1, S);  // the final state is not an output

    for (int n = mini_batches - 1; n >= 0; --n) {
        const long in = ((long)bh * seq_len + (long)n * K) * F;
        float* rec = records + ((long)n * pairs + bh) * R;
        const float* W2 = checkpoints + ((long)n * pairs + bh) * S + F * F1 + F1;  // the kept W2, packed [F1][F]
        __syncthreads();  // the buffers (and the gradient in global memory) are still used by the previous step
        load_mini_batch(xq + in, xk + in, xv + in, lr + (long)bh * seq_len + (long)n * K, Qs, Ks, Ts, lr_s, K, F, ld);
        unpack_rows(X2, wide(rec, wX2, F, K), K, F1, ld1);
        unpack_rows(G1, wide(rec, wG1, F, K), K, F1, ld1);
        unpack_rows(Z1, wide(rec, wZ1, F, K), K, F1, ld1);
        unpack_rows(P1, wide(rec, wP1, F, K), K, F1, ld1);
        unpack_rows(XB, wide(rec, wXB, F, K), K, F1, ld1);
        unpack_rows(DZB1, wide(rec, wDZB1, F, K), K, F1, ld1);
        unpack_rows(DG1, wide(rec, wDG1, F, K), K, F1, ld1);
        unpack_rows(DX2, wide(rec, wDX2, F, K), K, F1, ld1);
        unpack_rows(G2, narrow(rec, nG2, F, K), K, F, ld);
        unpack_rows(ZH2, narrow(rec, nZH2, F, K), K, F, ld);
        unpack_rows(DG2, narrow(rec, nDG2, F, K), K, F, ld);
        unpack_rows(DZB2, narrow(rec, nDZB2, F, K), K, F, ld);
        for (int e = tid; e < K; e += nt) sig2[e] = rec_deta(rec, F, K)[K * K + e];
        __syncthreads();
        const float tok_last = tok_s[K - 1];

        // dG1 = dG1_local - e o (K dW1' + db1') -> dP1, gelu''(Z1) o dG1 o P1;  dX2 -= e o (G2 dW2'^T);
        // G1 dW1'^T and X2 dW2' + db2' in two partial sums each
        for (int u = tid; u < 2 * tf1 + 4 * tf; u += nt) {
            float acc[4][4];
            zero(acc);
            if (u < 2 * tf1) {
                const bool x2 = u >= tf1;
                const Tile tl(x2 ? u - tf1 : u, K, false);
                if (!x2) {
                    tile_mma<false, false>(acc, Ks, ld, tl.r0, tl.rs, dW1, F1, tl.c0, 0, F);
                } else {
                    tile_mma<false, true>(acc, G2, ld, tl.r0, tl.rs, dW2, F, tl.c0, 0, F);
                }
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    const int i = tl.row(r);
                    const float e = tok_last * lr_s[i];
#pragma unroll
                    for (int c = 0; c < 4; ++c) {
                        const int at = i * ld1 + tl.c0 + c;
                        if (!x2) {
                            const float dg1 = DG1[at] - e * (acc[r][c] + dB1[tl.c0 + c]);
                            const float z = Z1[at];
                            DG1[at] = gelu_bwd(z) * dg1;
                            P1[at] = gelu_bwd_grad(z) * dg1 * P1[at];
                        } else {
                            DX2[at] -= e * acc[r][c];
                        }
                    }
                }
            } else {
                const int v = u - 2 * tf1;
                const int s = v / tf;  // 0-1: G1 dW1'^T, 2-3: X2 dW2'
                const int k0 = (s % 2) * (F1 / 2);
                const Tile tl(v - s * tf, K, false);
                if (s < 2) {
                    tile_mma<false, true>(acc, G1, ld1, tl.r0, tl.rs, dW1, F1, tl.c0, k0, k0 + F1 / 2);
                } else {
                    tile_mma<false, false>(acc, X2, ld1, tl.r0, tl.rs, dW2, F, tl.c0, k0, k0 + F1 / 2);
                }
                float* part = pick4(s, GD0, GD1, PU0, PU1);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
#pragma unroll
                    for (int c = 0; c < 4; ++c) {
                        part[tl.row(r) * ld + tl.c0 + c] = acc[r][c] + (s == 2 ? dB2[tl.c0 + c] : 0.0f);
                    }
                }
            }
        }
        __syncthreads();
        float* DP1 = DG1;

        // dP1 W2 in two partial sums;  GD = G1 dW1'^T summed -> dK += -e o GD;  PU2 summed;
        // dG2 = dG2_local - e o PU2 (dP1 W2 is added by the row pass)
        {
            float* dk = narrow(rec, nDK, F, K);
            for (int u = tid; u < 2 * tf + K * F; u += nt) {
                if (u < 2 * tf) {
                    float acc[4][4];
                    zero(acc);
                    const int s = u / tf;
                    const Tile tl(u - s * tf, K, false);
                    tile_mma<false, false>(acc, DP1, ld1, tl.r0, tl.rs, W2, F, tl.c0, s * (F1 / 2), (s + 1) * (F1 / 2));
                    float* part = s == 0 ? DZ2 : DPW;
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) part[tl.row(r) * ld + tl.c0 + c] = acc[r][c];
                    }
                } else {
                    const int e = u - 2 * tf;
                    const int i = e / F;
                    const int f = e - i * F;
                    const int at = i * ld + f;
                    const float ei = tok_last * lr_s[i];
                    const float gd = GD0[at] + GD1[at];
                    const float pu = PU0[at] + PU1[at];
                    GD0[at] = gd;
                    PU0[at] = pu;
                    dk[i * F + f] += -ei * gd;
                    DG2[at] -= ei * pu;
                }
            }
        }
        __syncthreads();

        // dG2 += dP1 W2 (its partial sums, each lane reading what it then overwrites);  dZ2, dV =
        // lnL2grad'(dG2);  deta[K-1][i] -= sum G1[i] (K dW1' + db1')[i] + sum G2[i] PU2[i]
        {
            float* deta_last = rec_deta(rec, F, K) + (K - 1) * K;
            for (int i = warp; i < K; i += warps) {
                for (int f = lane; f < F; f += warpSize) {
                    const int at = i * ld + f;
                    DG2[at] += DZ2[at] + DPW[at];
                }
                ln_l2_grad_backward_row(DG2 + i * ld, ZH2 + i * ld, Ts + i * ld, G2 + i * ld, gam, bet, F, sig2[i],
                                        DZ2 + i * ld, narrow(rec, nDV, F, K) + i * F, narrow(rec, nDGG2, F, K) + i * F);
                // sum_c G1[i][c] (K dW1' + db1')[i][c] = sum_r K[i][r] GD[i][r] + G1[i] . db1'
                float s = 0.0f;
                for (int r = lane; r < F; r += warpSize) s += Ks[i * ld + r] * GD0[i * ld + r] + G2[i * ld + r] * PU0[i * ld + r];
                for (int c = lane; c < F1; c += warpSize) s += G1[i * ld1 + c] * dB1[c];
                s = ttt_warp_sum(s);
                if (lane == 0) deta_last[i] -= s;
            }
        }
        __syncthreads();

        // dX2 += dZ2 W2^T, then dZ1 = P1 + gelu_grad(Z1) o dX2 in place of P1
        for (int u = tid; u < tf1; u += nt) {
            float acc[4][4];
            zero(acc);
            const Tile tl(u, K, false);
            tile_mma<false, true>(acc, DZ2, ld, tl.r0, tl.rs, W2, F, tl.c0, 0, F);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) {
                    const int at = tl.row(r) * ld1 + tl.c0 + c;
                    P1[at] += gelu_grad(Z1[at]) * (DX2[at] + acc[r][c]);
                }
            }
        }
        __syncthreads();
        float* DZ1 = P1;

        // dW1 += Q^T dZB1 + K^T dZ1;  dW2 += XB^T dZB2 + dP1^T G2 + X2^T dZ2;  db1, db2;  dZ1 to the record
        for (int u = tid; u < 2 * tw + F1 + F; u += nt) {
            float acc[4][4];
            zero(acc);
            if (u < tw) {
                const Tile tl(u, F, true);
                tile_mma<true, false>(acc, Qs, ld, tl.r0, 1, DZB1, ld1, tl.c0, 0, K);
                tile_mma<true, false>(acc, Ks, ld, tl.r0, 1, DZ1, ld1, tl.c0, 0, K);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
#pragma unroll
                    for (int c = 0; c < 4; ++c) dW1[tl.row(r) * F1 + tl.c0 + c] += acc[r][c];
                }
            } else if (u < 2 * tw) {
                const Tile tl(u - tw, F1, true);
                tile_mma<true, false>(acc, XB, ld1, tl.r0, 1, DZB2, ld, tl.c0, 0, K);
                tile_mma<true, false>(acc, DP1, ld1, tl.r0, 1, G2, ld, tl.c0, 0, K);
                tile_mma<true, false>(acc, X2, ld1, tl.r0, 1, DZ2, ld, tl.c0, 0, K);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
#pragma unroll
                    for (int c = 0; c < 4; ++c) dW2[tl.row(r) * F + tl.c0 + c] += acc[r][c];
                }
            } else if (u < 2 * tw + F1) {
                const int c = u - 2 * tw;
                float s = 0.0f;
                for (int i = 0; i < K; ++i) s += DZB1[i * ld1 + c];
                for (int i = 0; i < K; ++i) s += DZ1[i * ld1 + c];
                dB1[c] += s;
            } else {
                const int f = u - 2 * tw - F1;
                float s = 0.0f;
                for (int i = 0; i < K; ++i) s += DZB2[i * ld + f];
                for (int i = 0; i < K; ++i) s += DZ2[i * ld + f];
                dB2[f] += s;
            }
        }
        pack_rows(wide(rec, wDZ1, F, K), DZ1, K, F1, ld1);
    }
}

template <typename T>
__device__ void mlp_bwd_finish(const T* __restrict__ xk, const T* __restrict__ xv, const T* __restrict__ lr,
                               const T* __restrict__ tok, const T* __restrict__ norm_w, const T* __restrict__ norm_b,
                               const float* __restrict__ checkpoints, const float* __restrict__ records,
                               T* __restrict__ dxk, T* __restrict__ dxv, T* __restrict__ dlr,
                               float* __restrict__ partials, int smem_bytes, int heads, int seq_len, int F, int K) {
    extern __shared__ float4 smem_f4[];
    float* smem = reinterpret_cast<float*>(smem_f4);
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    const int bh = blockIdx.x;
    const int n = blockIdx.y;
    const int pairs = gridDim.x;
    const int h = bh % heads;
    const int F1 = 4 * F;
    const int S = 2 * F * F1 + F1 + F;
    const long in = ((long)bh * seq_len + (long)n * K) * F;
    float* rec = const_cast<float*>(records) + ((long)n * pairs + bh) * mpar_record_floats(F, K);
    float* part = partials + ((long)n * pairs + bh) * (2 * F + K);  // dgamma, dbeta, dtok of this mini-batch
    if (K % 4 != 0 || F % 4 != 0 || seq_len % K != 0 || 4 * mpar_finish_floats(F, K) > smem_bytes) {
        const float nan = __int_as_float(0x7fc00000);
        for (int e = tid; e < K * F; e += nt) {
            ttt_store(dxk + in + e, nan);
            ttt_store(dxv + in + e, nan);
        }
        for (int e = tid; e < 2 * F + K; e += nt) part[e] = nan;
        return;
    }
    const int ld1 = F1 + 4;
    const float* W1 = checkpoints + ((long)n * pairs + bh) * S;  // the kept W1, packed [F][F1]
    float* DZ1 = smem;             // [K][ld1]
    float* lr_s = DZ1 + K * ld1;   // [K]
    float* tok_s = lr_s + K;
    float* gam = tok_s + K;        // [F]
    float* bet = gam + F;
    unpack_rows(DZ1, wide(rec, wDZ1, F, K), K, F1, ld1);
    load_vector(lr_s, lr + (long)bh * seq_len + (long)n * K, K);
    load_vector(tok_s, tok, K);
    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    __syncthreads();

    const float* dk = narrow(rec, nDK, F, K);
    const float* dv = narrow(rec, nDV, F, K);
    const float* dgg = narrow(rec, nDGG2, F, K);
    const float* zh = narrow(rec, nZH2, F, K);
    const float* deta = rec_deta(rec, F, K);
    const float* dgb = deta + K * K + K;
    const int tf = (K / 4) * (F / 4);
    // dK = dK_local + dK_chain + dZ1 W1^T - dV;  dV;  dlr;  dtok, dgamma, dbeta of this mini-batch
    for (int u = tid; u < tf + K * F + 2 * K + F; u += nt) {
        if (u < tf) {
            float acc[4][4];
            zero(acc);
            const Tile tl(u, K, false);
            tile_mma<false, true>(acc, DZ1, ld1, tl.r0, tl.rs, W1, F1, tl.c0, 0, F1);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int at = tl.row(r) * F + tl.c0;
#pragma unroll
                for (int c = 0; c < 4; ++c) ttt_store(dxk + in + at + c, dk[at + c] + acc[r][c] - dv[at + c]);
            }
        } else if (u < tf + K * F) {
            const int e = u - tf;
            ttt_store(dxv + in + e, dv[e]);
        } else if (u < tf + K * F + K) {
            const int j = u - tf - K * F;
            float s = 0.0f;
            for (int i = 0; i < K; ++i) s += deta[i * K + j] * tok_s[i];
            ttt_store(dlr + (long)bh * seq_len + (long)n * K + j, s);
        } else if (u < tf + K * F + 2 * K) {
            const int i = u - tf - K * F - K;
            float s = 0.0f;
            for (int j = 0; j < K; ++j) s += deta[i * K + j] * lr_s[j];
            part[2 * F + i] = s;
        } else {
            const int f = u - tf - K * F - 2 * K;
            float sw = dgb[f];
            float sb = dgb[F + f];
            for (int i = 0; i < K; ++i) {
                const float dg = dgg[i * F + f];
                const float t = ttt_load(xv[in + i * F + f]) - ttt_load(xk[in + i * F + f]);
                sw += dg * (2.0f * gam[f] * zh[i * F + f] + bet[f] - t);
                sb += dg * gam[f];
            }
            part[f] = sw;
            part[F + f] = sb;
        }
    }
}


// ---------------------------------------------------------------- the chain on a cluster (Hopper)
//
// The chain above reads the state's gradient (dW1 [F][F1], dW2 [F1][F], their biases) and W2 from
// global memory in every product of every step: 133 KB a head at F = 64 do not fit in one block's
// shared memory beside the step's buffers. Here a cluster of C blocks runs one (batch, head), block
// r owning hidden columns [r F1/C, (r + 1) F1/C) of everything that is F1 wide: its share of dW1
// (columns), db1, dW2 and W2 (rows), and of the record's [K][F1] rows. db2 and the [K][F] rows are
// whole in every block. A step of the chain then needs the other blocks only for the three
// products that sum over the hidden layer (G1 dW1'^T, X2 dW2', dP1 W2) and one sum of G1 . db1'
// per row: each block writes its partial sums to its own shared memory, one cluster barrier, and
// every block adds up the C partials through distributed shared memory, in rank order (so all
// hold the same bits), and runs the row pass itself. The partial sums alternate between two sets
// by step, so a block may write the next step's while the others still read this one's, and the
// set not being read holds dZ2 meanwhile. Per step:
//   load  the record's rows (own columns), W2 (own rows), the mini-batch      [block barrier]
//   1a    dG1 -> dP1, gelu''(Z1) o dG1 o P1;  dX2 -= e o (G2 dW2'^T)  (own columns);
//         partial sums of G1 dW1'^T, X2 dW2' (+ db2' in block 0), G1 . db1'  [block barrier]
//   1b    partial sum of dP1 W2 (four lanes a tile, summed by shuffles)      [cluster barrier]
//   2     the row pass on the sums: dK, dG2, lnL2grad' -> dZ2, dV, deta      [block barrier]
//         (the record's rows written by the block that owns the row, i mod C)
//   3     dZ1 = P1 + gelu_grad(Z1) o (dX2 + dZ2 W2^T)  (own columns)         [block barrier]
//   4     dW1, db1, dW2 (own share), db2 += ...;  dZ1 to the record
// All products are 4x4 register tiles from shared memory, as above.

// Floats of one block's shared memory for a cluster of C (InnerBackwardLayout mirrors it).
__device__ __forceinline__ int mpar_cluster_chain_floats(int F, int K, int C) {
    const int F1c = 4 * F / C;
    return 13 * K * (F + 4) + 8 * K * (F1c + 4) + F1c * (F + 4) + F * (F1c + 4) + F1c * (F + 4) + F1c + F + 3 * K
           + 2 * F;
}

#if TTT_HAS_CLUSTERS
// 16 bytes from global to shared memory; on the device without staging in registers, so that a
// step's loads are all in flight at once (cp.async, finished by copy_wait).
__device__ __forceinline__ void copy16(float* dst, const float* src) {
#if defined(TTT_EMULATION)
    *reinterpret_cast<float4*>(dst) = *reinterpret_cast<const float4*>(src);
#else
    const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(d), "l"(src));
#endif
}

__device__ __forceinline__ void copy_wait() {
#if !defined(TTT_EMULATION)
    asm volatile("cp.async.wait_all;\n" ::: "memory");
#endif
}

// dst[r][c] (leading dimension ld) = src[r * sld + c] for c < cols (a multiple of 4).
__device__ __forceinline__ void copy_block(float* dst, int ld, const float* src, int sld, int rows, int cols) {
    const int q = cols / 4;
    for (int e = threadIdx.x; e < rows * q; e += blockDim.x) {
        const int r = e / q;
        const int c = (e - r * q) * 4;
        copy16(dst + r * ld + c, src + (long)r * sld + c);
    }
}

// The sum of a tile over the four lanes of an aligned group (each summed a quarter of the range).
__device__ __forceinline__ void sum4(float (&acc)[4][4]) {
#pragma unroll
    for (int r = 0; r < 4; ++r) {
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            acc[r][c] += TTT_SHFL_XOR(acc[r][c], 1);
            acc[r][c] += TTT_SHFL_XOR(acc[r][c], 2);
        }
    }
}
#endif

template <typename T, int C>
__device__ void mlp_bwd_chain_cluster(const T* __restrict__ xq, const T* __restrict__ xk, const T* __restrict__ xv,
                                      const T* __restrict__ lr, const T* __restrict__ tok, const T* __restrict__ norm_w,
                                      const T* __restrict__ norm_b, const float* __restrict__ checkpoints,
                                      float* __restrict__ records, float* __restrict__ partials, int smem_bytes,
                                      int heads, int seq_len, int F, int K, float eps) {
    extern __shared__ float4 smem_f4[];
    float* smem = reinterpret_cast<float*>(smem_f4);
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    const int bh = blockIdx.x / C;
    const int pairs = gridDim.x / C;
    const int h = bh % heads;
    const int F1 = 4 * F;
    const int F1c = F1 / C;
    const int S = 2 * F * F1 + F1 + F;
    const int R = mpar_record_floats(F, K);
    float* dW1g = partials + (long)bh * S;
    // Every block of a cluster sees the same arguments, so all return here or none does.
    if (!TTT_HAS_CLUSTERS || K % 4 != 0 || F % 16 != 0 || F % (4 * C) != 0 || seq_len % K != 0
        || 4 * mpar_cluster_chain_floats(F, K, C) > smem_bytes || nt % warpSize != 0 || gridDim.x % C != 0) {
        const float nan = __int_as_float(0x7fc00000);
        for (int e = tid; e < S; e += nt) dW1g[e] = nan;
        return;
    }
#if TTT_HAS_CLUSTERS
    float* dB1g = dW1g + F * F1;
    float* dW2g = dB1g + F1;
    float* dB2g = dW2g + F1 * F;
    const int rank = ttt_cluster_rank();
    const int c0 = rank * F1c;
    const int ld = F + 4;
    const int ldc = F1c + 4;
    const int KL = K * ld;
    float* Qs = smem;                  // [K][ld]
    float* Ks = Qs + KL;
    float* Ts = Ks + KL;
    float* G2 = Ts + KL;
    float* ZH2 = G2 + KL;
    float* DG2 = ZH2 + KL;             // dG2_local, then dG2
    float* DZB2 = DG2 + KL;
    float* PART = DZB2 + KL;           // two sets of {G1 dW1'^T (column F: G1 . db1'), X2 dW2', dP1 W2}
    float* X2 = PART + 6 * KL;         // [K][ldc], own columns
    float* G1 = X2 + K * ldc;
    float* Z1 = G1 + K * ldc;
    float* P1 = Z1 + K * ldc;          // P1, then gelu''(Z1) o dG1 o P1, then dZ1
    float* XB = P1 + K * ldc;
    float* DZB1 = XB + K * ldc;
    float* DG1 = DZB1 + K * ldc;       // dG1_local, then dP1
    float* DX2 = DG1 + K * ldc;        // dX2_local, then dX2
    float* W2s = DX2 + K * ldc;        // [F1c][ld]: own rows of the kept W2
    float* dW1 = W2s + F1c * ld;       // [F][ldc]: own columns of the state's gradient
    float* dW2 = dW1 + F * ldc;        // [F1c][ld]: own rows
    float* dB1 = dW2 + F1c * ld;       // [F1c]
    float* dB2 = dB1 + F1c;            // [F], whole in every block
    float* lr_s = dB2 + F;             // [K]
    float* sig2 = lr_s + K;
    float* tok_s = sig2 + K;
    float* gam = tok_s + K;            // [F]
    float* bet = gam + F;

    const int warp = tid / warpSize;
    const int lane = tid % warpSize;
    const int warps = nt / warpSize;
    const int tf = (K / 4) * (F / 4);
    const int tfc = (K / 4) * (F1c / 4);
    const int twc = (F / 4) * (F1c / 4);
    const int mini_batches = seq_len / K;
    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    load_vector(tok_s, tok, K);
    zero_floats(dW1, F * ldc);  // the final state is not an output
    zero_floats(dW2, F1c * ld);
    zero_floats(dB1, F1c + F);

    for (int n = mini_batches - 1; n >= 0; --n) {
        const int set = n & 1;
        float* GD = PART + 3 * set * KL;
        float* DZ2 = PART + 3 * (1 - set) * KL;  // the set no block reads in this step
        float* spare_dv = DZ2 + KL;              // rows the blocks that do not own them write
        float* spare_dg = DZ2 + 2 * KL;
        const long in = ((long)bh * seq_len + (long)n * K) * F;
        float* rec = records + ((long)n * pairs + bh) * R;
        const float* W2g = checkpoints + ((long)n * pairs + bh) * S + F * F1 + F1;  // the kept W2, packed [F1][F]
        __syncthreads();  // the buffers are still used by the previous step
        copy_block(X2, ldc, wide(rec, wX2, F, K) + c0, F1, K, F1c);
        copy_block(G1, ldc, wide(rec, wG1, F, K) + c0, F1, K, F1c);
        copy_block(Z1, ldc, wide(rec, wZ1, F, K) + c0, F1, K, F1c);
        copy_block(P1, ldc, wide(rec, wP1, F, K) + c0, F1, K, F1c);
        copy_block(XB, ldc, wide(rec, wXB, F, K) + c0, F1, K, F1c);
        copy_block(DZB1, ldc, wide(rec, wDZB1, F, K) + c0, F1, K, F1c);
        copy_block(DG1, ldc, wide(rec, wDG1, F, K) + c0, F1, K, F1c);
        copy_block(DX2, ldc, wide(rec, wDX2, F, K) + c0, F1, K, F1c);
        copy_block(G2, ld, narrow(rec, nG2, F, K), F, K, F);
        copy_block(ZH2, ld, narrow(rec, nZH2, F, K), F, K, F);
        copy_block(DG2, ld, narrow(rec, nDG2, F, K), F, K, F);
        copy_block(DZB2, ld, narrow(rec, nDZB2, F, K), F, K, F);
        copy_block(W2s, ld, W2g + (long)c0 * F, F, F1c, F);
        load_mini_batch(xq + in, xk + in, xv + in, lr + (long)bh * seq_len + (long)n * K, Qs, Ks, Ts, lr_s, K, F, ld);
        for (int e = tid; e < K; e += nt) sig2[e] = rec_deta(rec, F, K)[K * K + e];
        copy_wait();
        __syncthreads();
        const float tok_last = tok_s[K - 1];

        // 1a: dG1 = dG1_local - e o (K dW1' + db1') -> dP1, gelu''(Z1) o dG1 o P1;  dX2 -= e o (G2 dW2'^T);
        // partial sums of G1 dW1'^T, X2 dW2' + db2', G1 . db1'
        {
            float* PU = GD + KL;
            for (int u = tid; u < 2 * tfc + 2 * tf + K; u += nt) {
                float acc[4][4];
                zero(acc);
                if (u < 2 * tfc) {
                    const bool x2 = u >= tfc;
                    const Tile tl(x2 ? u - tfc : u, K, false);
                    if (!x2) {
                        tile_mma<false, false>(acc, Ks, ld, tl.r0, tl.rs, dW1, ldc, tl.c0, 0, F);
                    } else {
                        tile_mma<false, true>(acc, G2, ld, tl.r0, tl.rs, dW2, ld, tl.c0, 0, F);
                    }
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
                        const int i = tl.row(r);
                        const float e = tok_last * lr_s[i];
#pragma unroll
                        for (int c = 0; c < 4; ++c) {
                            const int at = i * ldc + tl.c0 + c;
                            if (!x2) {
                                const float dg1 = DG1[at] - e * (acc[r][c] + dB1[tl.c0 + c]);
                                const float z = Z1[at];
                                DG1[at] = gelu_bwd(z) * dg1;
                                P1[at] = gelu_bwd_grad(z) * dg1 * P1[at];
                            } else {
                                DX2[at] -= e * acc[r][c];
                            }
                        }
                    }
                } else if (u < 2 * tfc + 2 * tf) {
                    const int v = u - 2 * tfc;
                    const bool pu = v >= tf;
                    const Tile tl(pu ? v - tf : v, K, false);
                    if (!pu) {
                        tile_mma<false, true>(acc, G1, ldc, tl.r0, tl.rs, dW1, ldc, tl.c0, 0, F1c);
                    } else {
                        tile_mma<false, false>(acc, X2, ldc, tl.r0, tl.rs, dW2, ld, tl.c0, 0, F1c);
                    }
                    float* part = pu ? PU : GD;
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) {
                            part[tl.row(r) * ld + tl.c0 + c] = acc[r][c] + (pu && rank == 0 ? dB2[tl.c0 + c] : 0.0f);
                        }
                    }
                } else {
                    const int i = u - 2 * tfc - 2 * tf;
                    float s = 0.0f;
                    for (int c = 0; c < F1c; ++c) s += G1[i * ldc + c] * dB1[c];
                    GD[i * ld + F] = s;  // in the padding column
                }
            }
        }
        __syncthreads();
        float* DP1 = DG1;

        // 1b: the partial sum of dP1 W2, each tile summed by four lanes over a quarter of the
        // block's hidden columns; the loop runs whole warps, as the shuffles need
        {
            float* DPW = GD + 2 * KL;
            const int quarter = F1c / 4;
            for (int base = tid - lane; base < 4 * tf; base += nt) {
                const int u = base + lane;
                const bool on = u < 4 * tf;
                const int q = u & 3;
                const Tile tl(on ? u >> 2 : 0, K, false);
                float acc[4][4];
                zero(acc);
                if (on) tile_mma<false, false>(acc, DP1, ldc, tl.r0, tl.rs, W2s, ld, tl.c0, q * quarter, (q + 1) * quarter);
                sum4(acc);
                if (on && q == 0) {
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) DPW[tl.row(r) * ld + tl.c0 + c] = acc[r][c];
                    }
                }
            }
        }
        ttt_cluster_sync();

        // 2: the sums over the cluster;  dK += -e o GD;  dG2 = dG2_local - e o PU2 + dP1 W2;  dZ2, dV =
        // lnL2grad'(dG2);  deta[K-1][i] -= sum K[i] GD[i] + sum G2[i] PU2[i] + sum G1[i] . db1'
        {
            const float* sets[C];
#pragma unroll
            for (int q = 0; q < C; ++q) sets[q] = ttt_cluster_map(GD, q);
            float* dk = narrow(rec, nDK, F, K);
            float* deta_last = rec_deta(rec, F, K) + (K - 1) * K;
            for (int i = warp; i < K; i += warps) {
                const bool mine = i % C == rank;
                const float ei = tok_last * lr_s[i];
                float s = 0.0f;
                for (int f = lane; f < F; f += warpSize) {
                    const int at = i * ld + f;
                    float gd = 0.0f;
                    float pu = 0.0f;
                    float dpw = 0.0f;
#pragma unroll
                    for (int q = 0; q < C; ++q) {
                        gd += sets[q][at];
                        pu += sets[q][KL + at];
                        dpw += sets[q][2 * KL + at];
                    }
                    if (mine) dk[i * F + f] += -ei * gd;
                    DG2[at] += dpw - ei * pu;
                    s += Ks[at] * gd + G2[at] * pu;
                }
                s = ttt_warp_sum(s);
                float sg = 0.0f;
#pragma unroll
                for (int q = 0; q < C; ++q) sg += sets[q][i * ld + F];
                ln_l2_grad_backward_row(DG2 + i * ld, ZH2 + i * ld, Ts + i * ld, G2 + i * ld, gam, bet, F, sig2[i],
                                        DZ2 + i * ld, mine ? narrow(rec, nDV, F, K) + i * F : spare_dv + i * ld,
                                        mine ? narrow(rec, nDGG2, F, K) + i * F : spare_dg + i * ld);
                if (lane == 0 && mine) deta_last[i] -= s + sg;
            }
        }
        __syncthreads();

        // 3: dZ1 = P1 + gelu_grad(Z1) o (dX2 + dZ2 W2^T) in place of P1, four lanes a tile
        {
            const int quarter = F / 4;
            for (int base = tid - lane; base < 4 * tfc; base += nt) {
                const int u = base + lane;
                const bool on = u < 4 * tfc;
                const int q = u & 3;
                const Tile tl(on ? u >> 2 : 0, K, false);
                float acc[4][4];
                zero(acc);
                if (on) tile_mma<false, true>(acc, DZ2, ld, tl.r0, tl.rs, W2s, ld, tl.c0, q * quarter, (q + 1) * quarter);
                sum4(acc);
                if (on && q == 0) {
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
#pragma unroll
                        for (int c = 0; c < 4; ++c) {
                            const int at = tl.row(r) * ldc + tl.c0 + c;
                            P1[at] += gelu_grad(Z1[at]) * (DX2[at] + acc[r][c]);
                        }
                    }
                }
            }
        }
        __syncthreads();
        float* DZ1 = P1;

        // 4: dW1 += Q^T dZB1 + K^T dZ1;  dW2 += XB^T dZB2 + dP1^T G2 + X2^T dZ2;  db1, db2;  dZ1 to the record
        for (int u = tid; u < 2 * twc + F1c + F; u += nt) {
            float acc[4][4];
            zero(acc);
            if (u < twc) {
                const Tile tl(u, F, true);
                tile_mma<true, false>(acc, Qs, ld, tl.r0, 1, DZB1, ldc, tl.c0, 0, K);
                tile_mma<true, false>(acc, Ks, ld, tl.r0, 1, DZ1, ldc, tl.c0, 0, K);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
#pragma unroll
                    for (int c = 0; c < 4; ++c) dW1[tl.row(r) * ldc + tl.c0 + c] += acc[r][c];
                }
            } else if (u < 2 * twc) {
                const Tile tl(u - twc, F1c, true);
                tile_mma<true, false>(acc, XB, ldc, tl.r0, 1, DZB2, ld, tl.c0, 0, K);
                tile_mma<true, false>(acc, DP1, ldc, tl.r0, 1, G2, ld, tl.c0, 0, K);
                tile_mma<true, false>(acc, X2, ldc, tl.r0, 1, DZ2, ld, tl.c0, 0, K);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
#pragma unroll
                    for (int c = 0; c < 4; ++c) dW2[tl.row(r) * ld + tl.c0 + c] += acc[r][c];
                }
            } else if (u < 2 * twc + F1c) {
                const int c = u - 2 * twc;
                float s = 0.0f;
                for (int i = 0; i < K; ++i) s += DZB1[i * ldc + c];
                for (int i = 0; i < K; ++i) s += DZ1[i * ldc + c];
                dB1[c] += s;
            } else {
                const int f = u - 2 * twc - F1c;
                float s = 0.0f;
                for (int i = 0; i < K; ++i) s += DZB2[i * ld + f];
                for (int i = 0; i < K; ++i) s += DZ2[i * ld + f];
                dB2[f] += s;
            }
        }
        {
            float* dz1 = wide(rec, wDZ1, F, K) + c0;
            for (int e = tid; e < K * F1c; e += nt) {
                const int i = e / F1c;
                const int c = e - i * F1c;
                dz1[i * F1 + c] = DZ1[i * ldc + c];
            }
        }
    }
    __syncthreads();
    // The block's share of the state's gradient, packed as a state; db2 from block 0.
    for (int e = tid; e < F * F1c; e += nt) {
        const int f = e / F1c;
        const int c = e - f * F1c;
        dW1g[f * F1 + c0 + c] = dW1[f * ldc + c];
    }
    for (int e = tid; e < F1c; e += nt) dB1g[c0 + e] = dB1[e];
    for (int e = tid; e < F1c * F; e += nt) {
        const int c = e / F;
        const int f = e - c * F;
        dW2g[(long)(c0 + c) * F + f] = dW2[c * ld + f];
    }
    if (rank == 0) {
        for (int e = tid; e < F; e += nt) dB2g[e] = dB2[e];
    }
    // The others may still read this block's partial sums of the last step.
    ttt_cluster_sync();
#endif
}

}  // namespace ttt_bwd

// Entry points ttt_mlp_bwd_{local,chain,finish}_{f32,bf16,f16}.
#define TTT_MLP_BWD_PARALLEL(T, S)                                                                                \
    extern "C" __global__ void __launch_bounds__(256) ttt_mlp_bwd_local_##S(                                      \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,       \
        const T* dout, const float* checkpoints, T* dxq, float* records, int smem_bytes, int heads, int seq_len,  \
        int F, int K, float eps) {                                                                                \
        ttt_bwd::mlp_bwd_local<T>(xq, xk, xv, lr, tok, norm_w, norm_b, dout, checkpoints, dxq, records,           \
                                  smem_bytes, heads, seq_len, F, K, eps);                                         \
    }                                                                                                             \
    extern "C" __global__ void __launch_bounds__(256) ttt_mlp_bwd_chain_##S(                                      \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,       \
        const float* checkpoints, float* records, float* partials, int smem_bytes, int heads, int seq_len, int F, \
        int K, float eps) {                                                                                       \
        ttt_bwd::mlp_bwd_chain<T>(xq, xk, xv, lr, tok, norm_w, norm_b, checkpoints, records, partials,            \
                                  smem_bytes, heads, seq_len, F, K, eps);                                         \
    }                                                                                                             \
    extern "C" __global__ void __launch_bounds__(256) ttt_mlp_bwd_finish_##S(                                     \
        const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,                    \
        const float* checkpoints, const float* records, T* dxk, T* dxv, T* dlr, float* partials, int smem_bytes,  \
        int heads, int seq_len, int F, int K) {                                                                   \
        ttt_bwd::mlp_bwd_finish<T>(xk, xv, lr, tok, norm_w, norm_b, checkpoints, records, dxk, dxv, dlr,          \
                                   partials, smem_bytes, heads, seq_len, F, K);                                   \
    }
TTT_FOR_EACH_TYPE(TTT_MLP_BWD_PARALLEL)

// Entry points ttt_mlp_bwd_chain_cluster{2,4}_{f32,bf16,f16}: the chain on a cluster of 2 or 4
// blocks per (batch, head), for devices with clusters (the host launches B*H*C blocks); elsewhere
// they only poison. Same arguments as ttt_mlp_bwd_chain.
#define TTT_MLP_BWD_CHAIN_CLUSTER(T, S, C)                                                                         \
    extern "C" __global__ void __launch_bounds__(256, 1) TTT_CLUSTER_DIMS(C) ttt_mlp_bwd_chain_cluster##C##_##S(   \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,        \
        const float* checkpoints, float* records, float* partials, int smem_bytes, int heads, int seq_len, int F,  \
        int K, float eps) {                                                                                        \
        ttt_bwd::mlp_bwd_chain_cluster<T, C>(xq, xk, xv, lr, tok, norm_w, norm_b, checkpoints, records, partials,  \
                                             smem_bytes, heads, seq_len, F, K, eps);                               \
    }
#define TTT_MLP_BWD_CHAIN_CLUSTERS(T, S) \
    TTT_MLP_BWD_CHAIN_CLUSTER(T, S, 2)   \
    TTT_MLP_BWD_CHAIN_CLUSTER(T, S, 4)
TTT_FOR_EACH_TYPE(TTT_MLP_BWD_CHAIN_CLUSTERS)

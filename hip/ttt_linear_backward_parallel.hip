// The TTT-Linear inner backward when the forward kept every state (checkpoint interval 1), in
// three launches rather than one walk over the mini-batches (ttt_linear_backward.hip, which
// serves the other intervals). Most of a mini-batch's backward does not depend on the gradient
// of the state that the later mini-batches send back, and with every state at hand it can run for
// all mini-batches at once; only a short recurrence stays sequential:
//
//   local   one block per (mini-batch, batch·head), all in parallel, from the kept state W, b:
//           Z, G = lnL2grad(Z), A, M, ZB = Q W + b - M G, xh = LN(ZB), dZB = LN'(dout)
//           dQ = dout + dZB W^T + dA K (final);  dK_local = dA^T Q;  dG_local = -M^T dZB
//           deta_local = dM o (A + 1) with dM = -dZB G^T on the tril;  dA = dM o eta
//   chain   one block per batch·head, mini-batches in reverse, dW', db' (the state's gradient
//           after the mini-batch) on chip:
//           P = K dW' + db';  dG = dG_local - e o P;  dK += -e o (G dW'^T)
//           dZ, dV = lnL2grad'(dG);  deta[K-1][j] -= sum G[j] o P[j]
//           dW = dW' + Q^T dZB + K^T dZ;  db = db' + sum dZB + sum dZ
//   finish  one block per (mini-batch, batch·head), in parallel:
//           dK += dZ W^T - dV;  dlr, the token eta's and gamma, beta's partials
//
// What passes between the launches is a record per (mini-batch, batch·head) in global memory.
// The math is the CPU reference's (backend/cpu/LinearStep.java), split where it does not
// depend on dW'; the order of the sums is fixed, so the gradients are the same bits every run.
#include "ttt_scan_backward.h"

namespace ttt_bwd {

// The record, floats, [K][F] matrices packed: G, ZH, DG, DZB, DK, DZ, DV, DGG, then
// DETA [K][K], SIG [K] and DGB [2F] (the output norm's dgamma, dbeta of the mini-batch).
// GpuBackwardOps mirrors these formulas (InnerBackwardLayout).
__device__ __forceinline__ int par_record_floats(int F, int K) { return 8 * K * F + K * K + K + 2 * F; }
__device__ __forceinline__ int par_local_floats(int F, int K) {
    return F * (F + 4) + F + 10 * K * (F + 4) + 4 * K * (K + 4) + 3 * K + 2 * F;
}
__device__ __forceinline__ int par_chain_floats(int F, int K) { return F * (F + 4) + F + 9 * K * (F + 4) + 3 * K + 2 * F; }
__device__ __forceinline__ int par_finish_floats(int F, int K) { return F * (F + 4) + F + K * (F + 4) + 2 * K + 2 * F; }

enum RecordPart { kG = 0, kZH, kDG, kDZB, kDK, kDZ, kDV, kDGG };

__device__ __forceinline__ float* record_matrix(float* rec, RecordPart p, int F, int K) { return rec + p * K * F; }

// Rows [K][F] packed in global memory to the padded on-chip layout, and back.
__device__ __forceinline__ void rows_in(float* dst, const float* src, int K, int F) { unpack_rows(dst, src, K, F, F + 4); }
__device__ __forceinline__ void rows_out(float* dst, const float* src, int K, int F) { pack_rows(dst, src, K, F, F + 4); }

template <typename T>
__device__ void linear_bwd_local(const T* __restrict__ xq, const T* __restrict__ xk, const T* __restrict__ xv,
                                 const T* __restrict__ lr, const T* __restrict__ tok, const T* __restrict__ norm_w,
                                 const T* __restrict__ norm_b, const T* __restrict__ dout,
                                 const float* __restrict__ checkpoints, T* __restrict__ dxq,
                                 float* __restrict__ records, int smem_bytes, int heads, int seq_len, int F, int K,
                                 float eps) {
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
    const int S = F * F + F;
    const long in = ((long)bh * seq_len + (long)n * K) * F;
    float* rec = records + ((long)n * pairs + bh) * par_record_floats(F, K);
    if (K % 4 != 0 || F % 4 != 0 || seq_len % K != 0 || 4 * par_local_floats(F, K) > smem_bytes || nt % warpSize != 0) {
        const float nan = __int_as_float(0x7fc00000);
        for (int e = tid; e < K * F; e += nt) ttt_store(dxq + in + e, nan);
        for (int e = tid; e < par_record_floats(F, K); e += nt) rec[e] = nan;
        return;
    }
    const int ld = F + 4;
    const int ldm = K + 4;
    float* W = smem;               // [F][ld]
    float* bias = W + F * ld;      // [F]
    float* Qs = bias + F;          // [K][ld]
    float* Ks = Qs + K * ld;
    float* Ts = Ks + K * ld;       // target V - K
    float* ZH = Ts + K * ld;       // Z, then zh
    float* G = ZH + K * ld;
    float* ZB = G + K * ld;        // ZB, then LN's xh
    float* DZB = ZB + K * ld;
    float* DQ = DZB + K * ld;
    float* DG = DQ + K * ld;
    float* DK = DG + K * ld;
    float* A = DK + K * ld;        // [K][ldm]
    float* M = A + K * ldm;
    float* DETA = M + K * ldm;
    float* DA = DETA + K * ldm;
    float* lr_s = DA + K * ldm;    // [K]
    float* tok_s = lr_s + K;
    float* sig = tok_s + K;
    float* gam = sig + K;          // [F]
    float* bet = gam + F;

    const T* dout_n = dout + ((long)b * seq_len + (long)n * K) * dim + (long)h * F;  // row i at i * dim
    const int warp = tid / warpSize;
    const int lane = tid % warpSize;
    const int warps = nt / warpSize;
    const int tiles = (K / 4) * (F / 4);
    const int mtiles = (K / 4) * (K / 4);

    // c = 1: checkpoint slot n is the state before mini-batch n.
    linear_load_state(W, bias, checkpoints + ((long)n * pairs + bh) * S, F);
    load_mini_batch(xq + in, xk + in, xv + in, lr + (long)bh * seq_len + (long)n * K, Qs, Ks, Ts, lr_s, K, F, ld);
    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    load_vector(tok_s, tok, K);
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

    // ZB -= M G row by row, then out = Q + LN(ZB): xh in place of ZB, and dZB
    for (int i = warp; i < K; i += warps) {
        for (int f = lane; f < F; f += warpSize) {
            float z = ZB[i * ld + f];
            for (int j = 0; j <= i; ++j) z -= M[i * ldm + j] * G[j * ld + f];
            ZB[i * ld + f] = z;
        }
        out_norm_backward_row(ZB + i * ld, dout_n + (long)i * dim, gam, F, eps, DZB + i * ld);
    }
    __syncthreads();

    // dQ = dout + dZB W^T;  dM = -dZB G^T -> deta, dA;  dG_local = -M^T dZB;  the output norm's
    // dgamma, dbeta of this mini-batch
    float* dgb = rec + 8 * K * F + K * K + K;
    for (int u = tid; u < 2 * tiles + mtiles + F; u += nt) {
        float acc[4][4];
        zero(acc);
        if (u < tiles) {
            const Tile tl(u, K, false);
            tile_mma<false, true>(acc, DZB, ld, tl.r0, tl.rs, W, ld, tl.c0, 0, F);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int i = tl.row(r);
#pragma unroll
                for (int c = 0; c < 4; ++c) DQ[i * ld + tl.c0 + c] = ttt_load(dout_n[(long)i * dim + tl.c0 + c]) + acc[r][c];
            }
        } else if (u < 2 * tiles) {
            const Tile tl(u - tiles, K, true);
            tile_mma<true, false>(acc, M, ldm, tl.r0, 1, DZB, ld, tl.c0, 0, K);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) DG[tl.row(r) * ld + tl.c0 + c] = -acc[r][c];
            }
        } else if (u < 2 * tiles + mtiles) {
            const Tile tl(u - 2 * tiles, K, false);
            tile_mma<false, true>(acc, DZB, ld, tl.r0, tl.rs, G, ld, tl.c0, 0, F);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int i = tl.row(r);
#pragma unroll
                for (int c = 0; c < 4; ++c) {
                    const int j = tl.c0 + c;
                    const float dm = -acc[r][c];
                    DETA[i * ldm + j] = j <= i ? dm * (A[i * ldm + j] + 1.0f) : 0.0f;
                    DA[i * ldm + j] = j <= i ? dm * tok_s[i] * lr_s[j] : 0.0f;
                }
            }
        } else {
            const int f = u - 2 * tiles - mtiles;
            float sw = 0.0f;
            float sb = 0.0f;
            for (int i = 0; i < K; ++i) {
                const float dy = ttt_load(dout_n[(long)i * dim + f]);
                sw += dy * ZB[i * ld + f];
                sb += dy;
            }
            dgb[f] = sw;
            dgb[F + f] = sb;
        }
    }
    __syncthreads();

    // dQ += dA K (final: stored);  dK_local = dA^T Q;  the rest of the record
    for (int u = tid; u < 2 * tiles; u += nt) {
        float acc[4][4];
        zero(acc);
        if (u < tiles) {
            const Tile tl(u, K, false);
            tile_mma<false, false>(acc, DA, ldm, tl.r0, tl.rs, Ks, ld, tl.c0, 0, K);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int i = tl.row(r);
#pragma unroll
                for (int c = 0; c < 4; ++c) ttt_store(dxq + in + i * F + tl.c0 + c, DQ[i * ld + tl.c0 + c] + acc[r][c]);
            }
        } else {
            const Tile tl(u - tiles, K, true);
            tile_mma<true, false>(acc, DA, ldm, tl.r0, 1, Qs, ld, tl.c0, 0, K);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) DK[tl.row(r) * ld + tl.c0 + c] = acc[r][c];
            }
        }
    }
    rows_out(record_matrix(rec, kG, F, K), G, K, F);
    rows_out(record_matrix(rec, kZH, F, K), ZH, K, F);
    rows_out(record_matrix(rec, kDG, F, K), DG, K, F);
    rows_out(record_matrix(rec, kDZB, F, K), DZB, K, F);
    pack_rows(rec + 8 * K * F, DETA, K, K, ldm);
    for (int e = tid; e < K; e += nt) rec[8 * K * F + K * K + e] = sig[e];
    __syncthreads();
    rows_out(record_matrix(rec, kDK, F, K), DK, K, F);
}

template <typename T>
__device__ void linear_bwd_chain(const T* __restrict__ xq, const T* __restrict__ xk, const T* __restrict__ xv,
                                 const T* __restrict__ lr, const T* __restrict__ tok, const T* __restrict__ norm_w,
                                 const T* __restrict__ norm_b, float* __restrict__ records, float* __restrict__ partials,
                                 int smem_bytes, int heads, int seq_len, int F, int K, float eps) {
    extern __shared__ float4 smem_f4[];
    float* smem = reinterpret_cast<float*>(smem_f4);
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    const int bh = blockIdx.x;
    const int pairs = gridDim.x;
    const int h = bh % heads;
    const int S = F * F + F;
    const int R = par_record_floats(F, K);
    float* part = partials + (long)bh * S;
    if (K % 4 != 0 || F % 4 != 0 || seq_len % K != 0 || 4 * par_chain_floats(F, K) > smem_bytes || nt % warpSize != 0) {
        const float nan = __int_as_float(0x7fc00000);
        for (int e = tid; e < S; e += nt) part[e] = nan;
        return;
    }
    const int ld = F + 4;
    float* dW = smem;              // [F][ld]
    float* db = dW + F * ld;       // [F]
    float* Qs = db + F;            // [K][ld]
    float* Ks = Qs + K * ld;
    float* Ts = Ks + K * ld;
    float* G = Ts + K * ld;
    float* ZH = G + K * ld;
    float* DG = ZH + K * ld;       // dG_local, then dG
    float* DZB = DG + K * ld;
    float* P = DZB + K * ld;
    float* DZ = P + K * ld;
    float* lr_s = DZ + K * ld;     // [K]
    float* sig = lr_s + K;
    float* tok_s = sig + K;
    float* gam = tok_s + K;        // [F]
    float* bet = gam + F;

    const int warp = tid / warpSize;
    const int lane = tid % warpSize;
    const int warps = nt / warpSize;
    const int tiles = (K / 4) * (F / 4);
    const int wtiles = (F / 4) * (F / 4);
    const int mini_batches = seq_len / K;
    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    load_vector(tok_s, tok, K);
    zero_floats(dW, F * ld + F);  // the final state is not an output

    for (int n = mini_batches - 1; n >= 0; --n) {
        const long in = ((long)bh * seq_len + (long)n * K) * F;
        float* rec = records + ((long)n * pairs + bh) * R;
        __syncthreads();  // the buffers are still read by the previous mini-batch
        load_mini_batch(xq + in, xk + in, xv + in, lr + (long)bh * seq_len + (long)n * K, Qs, Ks, Ts, lr_s, K, F, ld);
        rows_in(G, record_matrix(rec, kG, F, K), K, F);
        rows_in(ZH, record_matrix(rec, kZH, F, K), K, F);
        rows_in(DG, record_matrix(rec, kDG, F, K), K, F);
        rows_in(DZB, record_matrix(rec, kDZB, F, K), K, F);
        for (int e = tid; e < K; e += nt) sig[e] = rec[8 * K * F + K * K + e];
        __syncthreads();

        // P = K dW' + db';  dG = dG_local - e o P;  dK += -e o (G dW'^T)
        {
            const float tok_last = tok_s[K - 1];
            float* dk = record_matrix(rec, kDK, F, K);
            for (int u = tid; u < 2 * tiles; u += nt) {
                float acc[4][4];
                zero(acc);
                const bool gd = u >= tiles;
                const Tile tl(gd ? u - tiles : u, K, false);
                if (!gd) {
                    tile_mma<false, false>(acc, Ks, ld, tl.r0, tl.rs, dW, ld, tl.c0, 0, F);
                } else {
                    tile_mma<false, true>(acc, G, ld, tl.r0, tl.rs, dW, ld, tl.c0, 0, F);
                }
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    const int i = tl.row(r);
                    const float e = tok_last * lr_s[i];
#pragma unroll
                    for (int c = 0; c < 4; ++c) {
                        const int f = tl.c0 + c;
                        if (!gd) {
                            const float p = acc[r][c] + db[f];
                            P[i * ld + f] = p;
                            DG[i * ld + f] -= e * p;
                        } else {
                            dk[i * F + f] += -e * acc[r][c];
                        }
                    }
                }
            }
        }
        __syncthreads();

        // dZ, dV = lnL2grad'(dG) (dV and dg straight to the record);  deta[K-1][i] -= G[i] . P[i]
        {
            float* deta_last = rec + 8 * K * F + (K - 1) * K;
            for (int i = warp; i < K; i += warps) {
                ln_l2_grad_backward_row(DG + i * ld, ZH + i * ld, Ts + i * ld, G + i * ld, gam, bet, F, sig[i],
                                        DZ + i * ld, record_matrix(rec, kDV, F, K) + i * F,
                                        record_matrix(rec, kDGG, F, K) + i * F);
                float s = 0.0f;
                for (int f = lane; f < F; f += warpSize) s += G[i * ld + f] * P[i * ld + f];
                s = ttt_warp_sum(s);
                if (lane == 0) deta_last[i] -= s;
            }
        }
        __syncthreads();

        // dW += Q^T dZB + K^T dZ;  db += sum dZB + sum dZ;  dZ to the record
        for (int u = tid; u < wtiles + F; u += nt) {
            if (u < wtiles) {
                float acc[4][4];
                zero(acc);
                const Tile tl(u, F, true);
                tile_mma<true, false>(acc, Qs, ld, tl.r0, 1, DZB, ld, tl.c0, 0, K);
                tile_mma<true, false>(acc, Ks, ld, tl.r0, 1, DZ, ld, tl.c0, 0, K);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
#pragma unroll
                    for (int c = 0; c < 4; ++c) dW[tl.row(r) * ld + tl.c0 + c] += acc[r][c];
                }
            } else {
                const int f = u - wtiles;
                float s = 0.0f;
                for (int i = 0; i < K; ++i) s += DZB[i * ld + f];
                for (int i = 0; i < K; ++i) s += DZ[i * ld + f];
                db[f] += s;
            }
        }
        rows_out(record_matrix(rec, kDZ, F, K), DZ, K, F);
    }
    __syncthreads();
    linear_store_state(part, dW, db, F);
}

template <typename T>
__device__ void linear_bwd_finish(const T* __restrict__ xk, const T* __restrict__ xv, const T* __restrict__ lr,
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
    const int S = F * F + F;
    const long in = ((long)bh * seq_len + (long)n * K) * F;
    const float* rec = records + ((long)n * pairs + bh) * par_record_floats(F, K);
    float* part = partials + ((long)n * pairs + bh) * (2 * F + K);  // dgamma, dbeta, dtok of this mini-batch
    if (K % 4 != 0 || F % 4 != 0 || seq_len % K != 0 || 4 * par_finish_floats(F, K) > smem_bytes) {
        const float nan = __int_as_float(0x7fc00000);
        for (int e = tid; e < K * F; e += nt) {
            ttt_store(dxk + in + e, nan);
            ttt_store(dxv + in + e, nan);
        }
        for (int e = tid; e < 2 * F + K; e += nt) part[e] = nan;
        return;
    }
    const int ld = F + 4;
    float* W = smem;              // [F][ld]
    float* bias = W + F * ld;     // [F]
    float* DZ = bias + F;         // [K][ld]
    float* lr_s = DZ + K * ld;    // [K]
    float* tok_s = lr_s + K;
    float* gam = tok_s + K;       // [F]
    float* bet = gam + F;
    linear_load_state(W, bias, checkpoints + ((long)n * pairs + bh) * S, F);
    unpack_rows(DZ, rec + kDZ * K * F, K, F, ld);
    load_vector(lr_s, lr + (long)bh * seq_len + (long)n * K, K);
    load_vector(tok_s, tok, K);
    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    __syncthreads();

    const float* dk = rec + kDK * K * F;
    const float* dv = rec + kDV * K * F;
    const float* dgg = rec + kDGG * K * F;
    const float* zh = rec + kZH * K * F;
    const float* deta = rec + 8 * K * F;
    const float* dgb = rec + 8 * K * F + K * K + K;
    const int tiles = (K / 4) * (F / 4);
    // dK = dK_local + dK_chain + dZ W^T - dV;  dV;  dlr;  dtok, dgamma, dbeta of this mini-batch
    for (int u = tid; u < tiles + K * F + 2 * K + F; u += nt) {
        if (u < tiles) {
            float acc[4][4];
            zero(acc);
            const Tile tl(u, K, false);
            tile_mma<false, true>(acc, DZ, ld, tl.r0, tl.rs, W, ld, tl.c0, 0, F);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int at = tl.row(r) * F + tl.c0;
#pragma unroll
                for (int c = 0; c < 4; ++c) ttt_store(dxk + in + at + c, dk[at + c] + acc[r][c] - dv[at + c]);
            }
        } else if (u < tiles + K * F) {
            const int e = u - tiles;
            ttt_store(dxv + in + e, dv[e]);
        } else if (u < tiles + K * F + K) {
            const int j = u - tiles - K * F;
            float s = 0.0f;
            for (int i = 0; i < K; ++i) s += deta[i * K + j] * tok_s[i];
            ttt_store(dlr + (long)bh * seq_len + (long)n * K + j, s);
        } else if (u < tiles + K * F + 2 * K) {
            const int i = u - tiles - K * F - K;
            float s = 0.0f;
            for (int j = 0; j < K; ++j) s += deta[i * K + j] * lr_s[j];
            part[2 * F + i] = s;
        } else {
            const int f = u - tiles - K * F - 2 * K;
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

// ---------------------------------------------------------------- the chain at fixed shapes
//
// The same recurrence as linear_bwd_chain, with F and K known at compile time, in two phases a
// mini-batch instead of three plus a load phase. linear_bwd_chain's step is latency-bound: a
// barrier, the step's loads from global memory (waited for), three barrier-separated phases of
// which two read-modify-write the record in global memory (dK, the last row of deta), each
// waiting for a global load. Here:
//
//   - the next mini-batch's inputs and record rows come as one 16-byte load per thread and
//     matrix (8 matrices: Q, K, V, G, ZH, dG_local, dZB, dK_local) into registers, issued when
//     a step starts and written to the other of two shared buffers when it ends, so no load
//     is waited for inside the recurrence; the parts of the record updated in place are read
//     with them and only stored by the step.
//   - phase A: 32-thread row groups. Half of them compute P = K dW' + db' for 4 rows each and
//     go straight on to lnL2grad's backward of those rows: the row sums are shuffles within the
//     16 threads that hold a row, so P, dG and dZ need no barrier between them. The other half
//     compute G dW'^T for dK, each thread on columns 16 apart so that its rows of dW' fall on
//     distinct banks.
//   - phase B: dW' += Q^T dZB + K^T dZ with each thread's 4x4 tiles of dW' in registers for
//     the whole walk (no read-modify-write of shared memory).
//
// Per step at F = 64, K = 16, 256 threads: 2 barriers; 512 FMAs a thread in each phase;
// phase A 64 16-byte shared loads a thread, phase B 64. A 32-thread group is a whole warp or
// half of one, so the shuffles (masks below 32) stay inside the group for any warp size >= 32.

// 4 stored elements from 4 * sizeof(T) aligned bytes.
__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
template <typename T>
__device__ __forceinline__ float4 load4(const T* p) {
    static_assert(sizeof(T) == 2, "2-byte stored types");
    const float2 v = *reinterpret_cast<const float2*>(p);
    const unsigned a = __float_as_uint(v.x);
    const unsigned b = __float_as_uint(v.y);
    return make_float4(ttt_from_bits<T>(a & 0xffffu), ttt_from_bits<T>(a >> 16), ttt_from_bits<T>(b & 0xffffu),
                       ttt_from_bits<T>(b >> 16));
}

__device__ __forceinline__ void store4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }

// N consecutive floats of shared memory, 4 N-byte aligned.
template <int N>
__device__ __forceinline__ void lds(float (&v)[N], const float* p) {
    if constexpr (N % 4 == 0) {
#pragma unroll
        for (int j = 0; j < N; j += 4) {
            const float4 x = *reinterpret_cast<const float4*>(p + j);
            v[j] = x.x; v[j + 1] = x.y; v[j + 2] = x.z; v[j + 3] = x.w;
        }
    } else if constexpr (N == 2) {
        const float2 x = *reinterpret_cast<const float2*>(p);
        v[0] = x.x; v[1] = x.y;
    } else {
#pragma unroll
        for (int j = 0; j < N; ++j) v[j] = p[j];
    }
}

template <int N>
__device__ __forceinline__ void sts(float* p, const float (&v)[N]) {
    if constexpr (N % 4 == 0) {
#pragma unroll
        for (int j = 0; j < N; j += 4) store4(p + j, make_float4(v[j], v[j + 1], v[j + 2], v[j + 3]));
    } else if constexpr (N == 2) {
        *reinterpret_cast<float2*>(p) = make_float2(v[0], v[1]);
    } else {
#pragma unroll
        for (int j = 0; j < N; ++j) p[j] = v[j];
    }
}

// Sum over the 16 threads of a half group (lanes xor 1..8).
__device__ __forceinline__ float sum16(float v) {
#pragma unroll
    for (int m = 8; m > 0; m >>= 1) v += TTT_SHFL_XOR(v, m);
    return v;
}

constexpr int kFixedThreads = 256;

// Shared floats of linear_bwd_chain_fixed (InnerBackwardLayout.parallelChainFixedFloats).
__host__ __device__ constexpr int fixed_chain_floats(int F, int K) {
    return 2 * (8 * K * (F + 4) + 3 * K) + F * (F + 4) + F + K * (F + 4) + 2 * F + K;
}

// Whether linear_bwd_chain_fixed has the shape (GpuBackwardOps mirrors this).
__host__ __device__ constexpr bool fixed_chain_shape(int F, int K) {
    return (F == 64 || F == 32) && (K == 16 || K == 8);
}

// One shared buffer set of a mini-batch: [K][F+4] matrices, then K floats each of lr, sigma
// and the record's last row of deta.
// Tile u of dW' in phase B: column tiles vary fastest.
struct FixedTile {
    int r0, c0;
    __device__ __forceinline__ FixedTile(int u, int F) {
        r0 = 4 * (u / (F / 4));
        c0 = 4 * (u % (F / 4));
    }
};

enum FixedPart { fQ = 0, fK, fT, fG, fZH, fDG, fDZB, fDK };

template <typename T, int F, int K>
__device__ void linear_bwd_chain_fixed(const T* __restrict__ xq, const T* __restrict__ xk, const T* __restrict__ xv,
                                       const T* __restrict__ lr, const T* __restrict__ tok,
                                       const T* __restrict__ norm_w, const T* __restrict__ norm_b,
                                       float* __restrict__ records, float* __restrict__ partials, int smem_bytes,
                                       int heads, int seq_len, float eps) {
    constexpr int NT = kFixedThreads;
    constexpr int LD = F + 4;
    constexpr int MAT = K * LD;
    constexpr int BUF = 8 * MAT + 3 * K;
    constexpr int V4 = K * F / 4;              // 16-byte pieces of a [K][F] matrix
    constexpr int VPT = (V4 + NT - 1) / NT;
    constexpr int WT = (F / 4) * (F / 4);      // 4x4 tiles of dW
    constexpr int TPT = (WT + NT - 1) / NT;
    constexpr int CPL = F / 16;                // columns of a row a thread holds in phase A
    constexpr int R = 8 * K * F + K * K + K + 2 * F;
    static_assert(F % 16 == 0 && K % 4 == 0 && 2 * (K / 4) <= NT / 32, "shape");
    TTT_DYNAMIC_SHARED(smem);
    const int tid = threadIdx.x;
    const int bh = blockIdx.x;
    const int pairs = gridDim.x;
    const int h = bh % heads;
    const int S = F * F + F;
    float* part = partials + (long)bh * S;
    if (blockDim.x != NT || warpSize % 32 != 0 || seq_len % K != 0 || 4 * fixed_chain_floats(F, K) > smem_bytes) {
        const float nan = __int_as_float(0x7fc00000);
        for (int e = tid; e < S; e += blockDim.x) part[e] = nan;
        return;
    }
    float* bufs = smem;                        // 2 x BUF
    float* dW = bufs + 2 * BUF;                // [F][LD]
    float* db = dW + F * LD;                   // [F]
    float* DZ = db + F;                        // [K][LD]
    float* gam = DZ + MAT;                     // [F]
    float* bet = gam + F;
    float* tok_s = bet + F;                    // [K]

    const int mini_batches = seq_len / K;
    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    load_vector(tok_s, tok, K);
    zero_floats(dW, F * LD + F);

    // The loads of a mini-batch, in flight in registers.
    float4 pre[8][VPT];
    float pre_s[3];
    auto fetch = [&](int n) {
        const long in = ((long)bh * seq_len + (long)n * K) * F;
        const float* rec = records + ((long)n * pairs + bh) * R;
#pragma unroll
        for (int v = 0; v < VPT; ++v) {
            const int e = 4 * (tid + v * NT);
            if (V4 % NT == 0 || e < K * F) {
                pre[fQ][v] = load4(xq + in + e);
                pre[fK][v] = load4(xk + in + e);
                pre[fT][v] = load4(xv + in + e);
                pre[fG][v] = load4(rec + kG * K * F + e);
                pre[fZH][v] = load4(rec + kZH * K * F + e);
                pre[fDG][v] = load4(rec + kDG * K * F + e);
                pre[fDZB][v] = load4(rec + kDZB * K * F + e);
                pre[fDK][v] = load4(rec + kDK * K * F + e);
            }
        }
        if (tid < K) {
            pre_s[0] = ttt_load(lr[(long)bh * seq_len + (long)n * K + tid]);
            pre_s[1] = rec[8 * K * F + K * K + tid];
            pre_s[2] = rec[8 * K * F + (K - 1) * K + tid];
        }
    };
    auto deposit = [&](float* buf) {
#pragma unroll
        for (int v = 0; v < VPT; ++v) {
            const int e = 4 * (tid + v * NT);
            if (V4 % NT == 0 || e < K * F) {
                const int at = (e / F) * LD + e % F;
                float4 t = pre[fT][v];
                const float4 k = pre[fK][v];
                t.x -= k.x; t.y -= k.y; t.z -= k.z; t.w -= k.w;
                pre[fT][v] = t;
#pragma unroll
                for (int m = 0; m < 8; ++m) store4(buf + m * MAT + at, pre[m][v]);
            }
        }
        if (tid < K) {
#pragma unroll
            for (int j = 0; j < 3; ++j) buf[8 * MAT + j * K + tid] = pre_s[j];
        }
    };

    // This thread's tiles of dW' (phase B), in registers for the whole walk.
    float dw[TPT][4][4];
    float dbr[TPT][4];
#pragma unroll
    for (int t = 0; t < TPT; ++t) {
        zero(dw[t]);
#pragma unroll
        for (int c = 0; c < 4; ++c) dbr[t][c] = 0.0f;
    }

    const int group = tid / 32;
    const int lane = tid % 32;
    const int half = lane / 16;                // phase A: k half of the product; rows 2 half, 2 half + 1 after
    const int ct = lane % 16;
    const int c0 = ct * CPL;
    const bool pgroup = group < K / 4;
    const bool ggroup = !pgroup && group < K / 2;
    const int i0 = 4 * (pgroup ? group : group - K / 4);

    fetch(mini_batches - 1);
    deposit(bufs + ((mini_batches - 1) & 1) * BUF);
    __syncthreads();
    const float tok_last = tok_s[K - 1];

    for (int n = mini_batches - 1; n >= 0; --n) {
        const float* cur = bufs + (n & 1) * BUF;
        if (n > 0) fetch(n - 1);
        float* rec = records + ((long)n * pairs + bh) * R;
        const float* lr_s = cur + 8 * MAT;
        const float* sig = lr_s + K;
        const float* deta_last = sig + K;

        // Phase A.  P rows i0..i0+3 (P groups) or (G dW'^T) rows (G groups), over this half's k.
        if (pgroup || ggroup) {
            const float* A = cur + (pgroup ? fK : fG) * MAT;
            float acc[4][CPL];
#pragma unroll
            for (int r = 0; r < 4; ++r) {
#pragma unroll
                for (int c = 0; c < CPL; ++c) acc[r][c] = 0.0f;
            }
            // The halves take alternate 4-wide pieces of k: their 16-byte reads of a row of K or G
            // then fall on different banks (k and k + 32 would share them).
            if (pgroup) {
                // columns c0 .. c0 + CPL - 1: rows of dW', 16 threads on consecutive 16-byte words
#pragma unroll 4
                for (int k = 4 * half; k < F; k += 8) {
                    float a[4][4];
#pragma unroll
                    for (int r = 0; r < 4; ++r) lds(a[r], A + (i0 + r) * LD + k);
#pragma unroll
                    for (int q = 0; q < 4; ++q) {
                        float b[CPL];
                        lds(b, dW + (k + q) * LD + c0);
#pragma unroll
                        for (int r = 0; r < 4; ++r) {
#pragma unroll
                            for (int c = 0; c < CPL; ++c) acc[r][c] = fmaf(a[r][q], b[c], acc[r][c]);
                        }
                    }
                }
            } else {
                // columns ct + 16 m: rows ct + 16 m of dW' read along k, 16 bytes at a time;
                // consecutive threads' rows start 4 banks apart (ld = F + 4), so 8 of them never collide
#pragma unroll 4
                for (int k = 4 * half; k < F; k += 8) {
                    float a[4][4];
#pragma unroll
                    for (int r = 0; r < 4; ++r) lds(a[r], A + (i0 + r) * LD + k);
#pragma unroll
                    for (int m = 0; m < CPL; ++m) {
                        float b[4];
                        lds(b, dW + (ct + 16 * m) * LD + k);
#pragma unroll
                        for (int q = 0; q < 4; ++q) {
#pragma unroll
                            for (int r = 0; r < 4; ++r) acc[r][m] = fmaf(a[r][q], b[q], acc[r][m]);
                        }
                    }
                }
            }
            // Both halves get the whole sum, the same bits (the addition commutes).
#pragma unroll
            for (int r = 0; r < 4; ++r) {
#pragma unroll
                for (int c = 0; c < CPL; ++c) acc[r][c] += TTT_SHFL_XOR(acc[r][c], 16);
            }
            // This half's two rows.
            float x[2][CPL];
#pragma unroll
            for (int j = 0; j < 2; ++j) {
#pragma unroll
                for (int c = 0; c < CPL; ++c) x[j][c] = half == 0 ? acc[j][c] : acc[2 + j][c];
            }
            if (ggroup) {
                // dK += -e o (G dW'^T)
#pragma unroll
                for (int j = 0; j < 2; ++j) {
                    const int i = i0 + 2 * half + j;
                    const float e = tok_last * lr_s[i];
#pragma unroll
                    for (int m = 0; m < CPL; ++m) {
                        const int f = ct + 16 * m;
                        rec[kDK * K * F + i * F + f] = cur[fDK * MAT + i * LD + f] + -e * x[j][m];
                    }
                }
            } else {
                // P = K dW' + db';  dG = dG_local - e o P;  deta[K-1][i] -= G[i] . P[i];
                // dZ, dV, dg = lnL2grad'(dG) (ln_l2_grad_backward_row's formulas, per half group)
                float bb[CPL];
                lds(bb, db + c0);
                float zh[2][CPL], t[2][CPL], r[2][CPL], dr[2][CPL], g[2][CPL], gm[CPL], bt[CPL];
                lds(gm, gam + c0);
                lds(bt, bet + c0);
                float sums[2][5];
#pragma unroll
                for (int j = 0; j < 2; ++j) {
                    const int i = i0 + 2 * half + j;
                    const float e = tok_last * lr_s[i];
                    float dg[CPL];
                    lds(zh[j], cur + fZH * MAT + i * LD + c0);
                    lds(t[j], cur + fT * MAT + i * LD + c0);
                    lds(r[j], cur + fG * MAT + i * LD + c0);
                    lds(dg, cur + fDG * MAT + i * LD + c0);
#pragma unroll
                    for (int s = 0; s < 5; ++s) sums[j][s] = 0.0f;
#pragma unroll
                    for (int c = 0; c < CPL; ++c) {
                        const float p = x[j][c] + bb[c];
                        dr[j][c] = dg[c] - e * p;
                        g[j][c] = (gm[c] * zh[j][c] + bt[c] - t[j][c]) * gm[c];
                        sums[j][0] += g[j][c] * zh[j][c];
                        sums[j][1] += dr[j][c];
                        sums[j][2] += dr[j][c] * zh[j][c];
                        sums[j][3] += dr[j][c] * r[j][c];
                        sums[j][4] += r[j][c] * p;
                    }
                }
#pragma unroll
                for (int j = 0; j < 2; ++j) {
#pragma unroll
                    for (int s = 0; s < 5; ++s) sums[j][s] = sum16(sums[j][s]);
                }
                float ms[2][2];
                float dzh[2][CPL];
#pragma unroll
                for (int j = 0; j < 2; ++j) {
                    const int i = i0 + 2 * half + j;
                    const float sigma = sig[i];
                    const float scale = 1.0f / (F * sigma);
                    float dgo[CPL], dt[CPL];
                    ms[j][0] = 0.0f;
                    ms[j][1] = 0.0f;
#pragma unroll
                    for (int c = 0; c < CPL; ++c) {
                        const float dgv = (F * dr[j][c] - sums[j][1] - zh[j][c] * sums[j][2]) * scale;
                        dzh[j][c] = (-dr[j][c] * sums[j][0] - g[j][c] * sums[j][2]) * scale + dgv * gm[c] * gm[c];
                        dgo[c] = dgv;
                        dt[c] = -dgv * gm[c];
                        ms[j][0] += dzh[j][c];
                        ms[j][1] += dzh[j][c] * zh[j][c];
                    }
                    sts(rec + kDGG * K * F + i * F + c0, dgo);
                    sts(rec + kDV * K * F + i * F + c0, dt);
                    if (lane % 16 == 0) rec[8 * K * F + (K - 1) * K + i] = deta_last[i] - sums[j][4];
                }
#pragma unroll
                for (int j = 0; j < 2; ++j) {
                    ms[j][0] = sum16(ms[j][0]) / F;
                    ms[j][1] = sum16(ms[j][1]) / F;
                }
#pragma unroll
                for (int j = 0; j < 2; ++j) {
                    const int i = i0 + 2 * half + j;
                    const float sigma = sig[i];
                    const float dsigma = -sums[j][3] / sigma;
                    float dz[CPL];
#pragma unroll
                    for (int c = 0; c < CPL; ++c) {
                        dz[c] = (dzh[j][c] - ms[j][0] - zh[j][c] * ms[j][1]) / sigma + dsigma * zh[j][c] / F;
                    }
                    sts(DZ + i * LD + c0, dz);
                    sts(rec + kDZ * K * F + i * F + c0, dz);
                }
            }
        }
        __syncthreads();

        // Phase B.  dW' += Q^T dZB + K^T dZ;  db' += sum dZB + sum dZ.  Tile (r0, c0) with c0 the
        // faster, so 8 consecutive threads store one row's 128 bytes; the column sums for db' go
        // to the tiles on the diagonal, two to a warp.
#pragma unroll
        for (int tt = 0; tt < TPT; ++tt) {
            const int u = tid + tt * NT;
            if (WT % NT == 0 || u < WT) {
                const FixedTile tl(u, F);
                float acc[4][4];
                zero(acc);
                tile_mma<true, false>(acc, cur + fQ * MAT, LD, tl.r0, 1, cur + fDZB * MAT, LD, tl.c0, 0, K);
                tile_mma<true, false>(acc, cur + fK * MAT, LD, tl.r0, 1, DZ, LD, tl.c0, 0, K);
#pragma unroll
                for (int r = 0; r < 4; ++r) {
#pragma unroll
                    for (int c = 0; c < 4; ++c) dw[tt][r][c] += acc[r][c];
                    store4(dW + (tl.r0 + r) * LD + tl.c0, make_float4(dw[tt][r][0], dw[tt][r][1], dw[tt][r][2], dw[tt][r][3]));
                }
                if (tl.r0 == tl.c0) {
                    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
                    for (int i = 0; i < K; ++i) {
                        const float4 v = *reinterpret_cast<const float4*>(cur + fDZB * MAT + i * LD + tl.c0);
                        s[0] += v.x; s[1] += v.y; s[2] += v.z; s[3] += v.w;
                    }
#pragma unroll
                    for (int i = 0; i < K; ++i) {
                        const float4 v = *reinterpret_cast<const float4*>(DZ + i * LD + tl.c0);
                        s[0] += v.x; s[1] += v.y; s[2] += v.z; s[3] += v.w;
                    }
#pragma unroll
                    for (int c = 0; c < 4; ++c) dbr[tt][c] += s[c];
                    store4(db + tl.c0, make_float4(dbr[tt][0], dbr[tt][1], dbr[tt][2], dbr[tt][3]));
                }
            }
        }
        if (n > 0) deposit(bufs + ((n - 1) & 1) * BUF);
        __syncthreads();
    }

    // The gradient of the initial state, packed, from the registers.
#pragma unroll
    for (int tt = 0; tt < TPT; ++tt) {
        const int u = tid + tt * NT;
        if (WT % NT == 0 || u < WT) {
            const FixedTile tl(u, F);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) part[(tl.r0 + r) * F + tl.c0 + c] = dw[tt][r][c];
            }
            if (tl.r0 == tl.c0) {
#pragma unroll
                for (int c = 0; c < 4; ++c) part[F * F + tl.c0 + c] = dbr[tt][c];
            }
        }
    }
}

// The shapes linear_bwd_chain_fixed is built for; any other writes NaN (the host does not pick it then).
template <typename T>
__device__ void linear_bwd_chain_fixed_any(const T* xq, const T* xk, const T* xv, const T* lr, const T* tok,
                                           const T* norm_w, const T* norm_b, float* records, float* partials,
                                           int smem_bytes, int heads, int seq_len, int F, int K, float eps) {
#define TTT_FIXED_CHAIN(FF, KK)                                                                                  \
    if (F == FF && K == KK) {                                                                                    \
        linear_bwd_chain_fixed<T, FF, KK>(xq, xk, xv, lr, tok, norm_w, norm_b, records, partials, smem_bytes,   \
                                          heads, seq_len, eps);                                                  \
        return;                                                                                                  \
    }
    TTT_FIXED_CHAIN(64, 16)
    TTT_FIXED_CHAIN(64, 8)
    TTT_FIXED_CHAIN(32, 16)
    TTT_FIXED_CHAIN(32, 8)
#undef TTT_FIXED_CHAIN
    const float nan = __int_as_float(0x7fc00000);
    for (int e = threadIdx.x; e < F * F + F; e += blockDim.x) partials[(long)blockIdx.x * (F * F + F) + e] = nan;
}

}  // namespace ttt_bwd

// Entry points ttt_linear_bwd_{local,chain,finish}_{f32,bf16,f16}.
#define TTT_LINEAR_BWD_PARALLEL(T, S)                                                                             \
    extern "C" __global__ void __launch_bounds__(256) ttt_linear_bwd_local_##S(                                   \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,       \
        const T* dout, const float* checkpoints, T* dxq, float* records, int smem_bytes, int heads, int seq_len,  \
        int F, int K, float eps) {                                                                                \
        ttt_bwd::linear_bwd_local<T>(xq, xk, xv, lr, tok, norm_w, norm_b, dout, checkpoints, dxq, records,        \
                                     smem_bytes, heads, seq_len, F, K, eps);                                      \
    }                                                                                                             \
    extern "C" __global__ void __launch_bounds__(256) ttt_linear_bwd_chain_##S(                                   \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,       \
        float* records, float* partials, int smem_bytes, int heads, int seq_len, int F, int K, float eps) {       \
        ttt_bwd::linear_bwd_chain<T>(xq, xk, xv, lr, tok, norm_w, norm_b, records, partials, smem_bytes, heads,   \
                                     seq_len, F, K, eps);                                                         \
    }                                                                                                             \
    extern "C" __global__ void __launch_bounds__(256) ttt_linear_bwd_finish_##S(                                  \
        const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,                    \
        const float* checkpoints, const float* records, T* dxk, T* dxv, T* dlr, float* partials, int smem_bytes,  \
        int heads, int seq_len, int F, int K) {                                                                   \
        ttt_bwd::linear_bwd_finish<T>(xk, xv, lr, tok, norm_w, norm_b, checkpoints, records, dxk, dxv, dlr,       \
                                      partials, smem_bytes, heads, seq_len, F, K);                                \
    }
TTT_FOR_EACH_TYPE(TTT_LINEAR_BWD_PARALLEL)

// Entry points ttt_linear_bwd_chain_fixed_{f32,bf16,f16}: the chain at F, K in {64, 32} x {16, 8},
// 256 threads, launched like ttt_linear_bwd_chain with fixed_chain_floats(F, K) * 4 bytes of shared memory.
#define TTT_LINEAR_BWD_CHAIN_FIXED(T, S)                                                                          \
    extern "C" __global__ void __launch_bounds__(256) ttt_linear_bwd_chain_fixed_##S(                             \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,       \
        float* records, float* partials, int smem_bytes, int heads, int seq_len, int F, int K, float eps) {       \
        ttt_bwd::linear_bwd_chain_fixed_any<T>(xq, xk, xv, lr, tok, norm_w, norm_b, records, partials,            \
                                               smem_bytes, heads, seq_len, F, K, eps);                            \
    }
TTT_FOR_EACH_TYPE(TTT_LINEAR_BWD_CHAIN_FIXED)

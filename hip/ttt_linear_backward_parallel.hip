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

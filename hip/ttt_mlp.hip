// The TTT-MLP inner scan (SPEC §3 step 4): one launch for the whole sequence, the state W1
// [F, F1], b1 [F1], W2 [F1, F], b2 [F] (F1 = 4F) kept in float32 across all mini-batches.
//
// One (batch, head) runs on one block, or on Hopper on a cluster of C blocks that split the
// hidden layer: block r owns columns [r F1/C, (r+1) F1/C) of W1 and b1 and the same rows of W2
// (the "c" suffix below), and computes everything of size F or K redundantly. The three
// products that reduce over F1 into a small result (X2 W2, XB W2, XB X2^T) are summed across
// the cluster through distributed shared memory; the first two are also split inside a block
// so that every thread has a tile. Partial sums are added in a fixed order, so results do not
// depend on scheduling. Each phase gives every thread the same share, so that no warp runs
// alone while the others wait at the barrier.
//
// Per mini-batch, with eta[i][j] = tok[i] lr[j] for j <= i and eta_last[j] = eta[K-1][j]:
//   A: Z1 = K W1 + b1 -> X2 = gelu(Z1), GP = gelu'(Z1); NM = -eta o (tril(Q K^T) + 1); V - K;
//      the next mini-batch's loads are issued
//   B: partial sums of X2 W2; K rows scaled by eta_last                       [cluster barrier]
//   C: G2 = lnL2grad(X2 W2 + b2, V - K) and EG2 = eta_last o G2
//   D: G1 = (G2 W2^T) o GP in place of GP
//   E: XB = gelu(Q W1 + b1 + NM G1)                            (Zb1, both eta terms in NM)
//   F: W1 -= Ks^T G1, b1 -= sum eta_last G1; partial sums of XB W2 and XB X2^T [cluster barrier]
//   G: ZB2 = XB W2 + b2; NM = -eta o (tril(XB X2^T) + 1)
//   H: ZB2 += NM G2; W2 -= X2^T EG2; b2 -= sum EG2
//   I: out = Q + LN(ZB2), each block of a cluster writing its share of the rows
#include "ttt_scan.h"

namespace ttt_scan {

constexpr int kSplitW2 = 2;    // split inside a block of the F1 reduction of X2 W2 and XB W2

// The layout, in floats, for C blocks per head; InnerScanLayout in GpuBackend mirrors these.
__device__ __forceinline__ int mlp_state_floats(int F, int C) {
    const int F1c = 4 * F / C;
    return F * (F1c + 4) + F1c + F1c * (F + 4) + F;
}
__device__ __forceinline__ int mlp_scratch_floats(int F, int K, int C) {
    const int F1c = 4 * F / C;
    // A single block reads its own partial sums of X2 W2 before it writes those of XB W2, so
    // they share a buffer; in a cluster the others may still be reading the first.
    const int partial_sets = C == 1 ? 1 : 2;
    return (5 + partial_sets * kSplitW2) * K * (F + 4) + 3 * K * (F1c + 4) + 2 * K * (K + 4) + 2 * K + 2 * F;
}

// A barrier for the whole cluster (which also orders shared memory across it), or for the block.
template <int C>
__device__ __forceinline__ void cluster_barrier() {
#if TTT_HAS_CLUSTERS
    if constexpr (C > 1) {
        ttt_cluster_sync();
        return;
    }
#endif
    __syncthreads();
}

// Block q's copy of a shared-memory buffer (the block's own when C is 1).
template <int C>
__device__ __forceinline__ const float* remote(const float* p, int q) {
#if TTT_HAS_CLUSTERS
    if constexpr (C > 1) return ttt_cluster_map(p, q);
#endif
    return p;
}

template <typename T, int PLACEMENT, int C>
__device__ void mlp_scan(const T* __restrict__ xq, const T* __restrict__ xk, const T* __restrict__ xv,
                         const T* __restrict__ lr, const T* __restrict__ tok, const T* __restrict__ w1,
                         const T* __restrict__ b1, const T* __restrict__ w2, const T* __restrict__ b2,
                         const T* __restrict__ norm_w, const T* __restrict__ norm_b, T* __restrict__ out,
                         float* __restrict__ checkpoints, int interval, float* __restrict__ last_state,
                         float* workspace, int ws_floats, int smem_bytes, int heads, int seq_len, int F, int K,
                         float eps) {
    static_assert(C == 1 || PLACEMENT == kAllShared, "a cluster keeps its state in shared memory");
    // Tile height of the [K, F1c] products: a block of a cluster owns fewer columns, so it uses
    // thinner tiles to keep every thread busy.
    constexpr int TRA = C == 1 ? 4 : C == 2 ? 2 : 1;
    TTT_DYNAMIC_SHARED(smem);
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
#if TTT_HAS_CLUSTERS
    const int rank = C > 1 ? ttt_cluster_rank() : 0;
#else
    const int rank = 0;
#endif
    const int bh = blockIdx.x / C;
    const int h = bh % heads;
    const int b = bh / heads;
    const int dim = heads * F;
    const int F1 = 4 * F;
    const int F1c = F1 / C;
    const int coff = rank * F1c;
    T* out_bh = out + (long)b * seq_len * dim + (long)h * F;

    const int state_floats = mlp_state_floats(F, C);
    const int scratch_floats = mlp_scratch_floats(F, K, C);
    const int need_smem = 4 * (PLACEMENT == kAllShared ? state_floats + scratch_floats
                               : PLACEMENT == kStateGlobal ? scratch_floats : 0);
    const int need_ws = PLACEMENT == kAllShared ? 0 : PLACEMENT == kStateGlobal ? state_floats
                                                                                 : state_floats + scratch_floats;
    // Every block of a cluster sees the same arguments, so all return here or none does.
    if (K % 4 != 0 || F % 4 != 0 || F > kRowElems * warpSize || seq_len % K != 0 || F1c % (4 * kSplitW2) != 0
        || need_smem > smem_bytes || need_ws != ws_floats || (C > 1 && !TTT_HAS_CLUSTERS)) {
        poison_output(out_bh, seq_len, dim, F);
        return;
    }
    float* ws = workspace + (long)bh * ws_floats;
    float* state = PLACEMENT == kAllShared ? smem : ws;
    float* scratch = PLACEMENT == kAllShared ? smem + state_floats : PLACEMENT == kStateGlobal ? smem : ws + state_floats;

    const int ld = F + 4;
    const int ld1 = F1c + 4;
    const int ldm = K + 4;
    const int kf = K * ld;
    float* W1 = state;                  // [F][ld1]   columns coff .. coff + F1c of W1
    float* B1 = W1 + F * ld1;           // [F1c]
    float* W2 = B1 + F1c;               // [F1c][ld]  rows coff .. coff + F1c of W2
    float* B2 = W2 + F1c * ld;          // [F]
    float* Qs = scratch;                // [K][ld]
    float* Ks = Qs + kf;                // [K][ld], scaled by eta_last in phase B
    float* Ts = Ks + kf;                // [K][ld] V, then V - K; ZB2 from phase G on
    float* G2 = Ts + kf;                // [K][ld] Z2, then G2
    float* EG2 = G2 + kf;               // [K][ld]
    float* PB = EG2 + kf;               // [kSplitW2][K][ld] partial sums of X2 W2
    float* PF = C == 1 ? PB : PB + kSplitW2 * kf;  // [kSplitW2][K][ld] partial sums of XB W2
    float* X2 = PF + kSplitW2 * kf;     // [K][ld1]
    float* GP = X2 + K * ld1;           // [K][ld1] gelu'(Z1), then G1
    float* XB = GP + K * ld1;           // [K][ld1]
    float* NM = XB + K * ld1;           // [K][ldm]
    float* PA = NM + K * ldm;           // [K][ldm] this block's part of XB X2^T
    float* lr_s = PA + K * ldm;         // [K]
    float* tok_s = lr_s + K;            // [K]
    float* gam = tok_s + K;             // [F]
    float* bet = gam + F;               // [F]
    float* ZB2 = Ts;

    unpack_rows(W1, ld1, w1 + (long)h * F * F1 + coff, F1, F, F1c);
    load_vector(B1, b1 + (long)h * F1 + coff, F1c);
    unpack_rows(W2, ld, w2 + (long)h * F1 * F + (long)coff * F, F, F1c, F);
    load_vector(B2, b2 + (long)h * F, F);
    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    load_vector(tok_s, tok, K);

    const RowGroups rg(K, F);
    const int tiles_a = (K / TRA) * (F1c / 4);        // [K, F1c] results
    const int tiles_b = (K / 2) * (F / 4);            // 2x4 tiles of [K, F]
    const int tiles_f1 = K * (F / 4);                 // 1x4 tiles of [K, F]
    const int tiles_w = (F / 4) * (F1c / 4);          // 4x4 tiles of [F, F1c] and [F1c, F]
    const int split_b = F1c / kSplitW2;
    const int state_size = F * F1 + F1 + F1 * F + F;
    const int mini_batches = seq_len / K;
    const long in_bh = (long)bh * seq_len * F;
    const T* lr_bh = lr + (long)bh * seq_len;
    MiniBatchLoader<T> loader(K, F);
    loader.load(xq + in_bh, xk + in_bh, xv + in_bh, lr_bh, Qs, Ks, Ts, lr_s, K, F, ld);
    __syncthreads();
    TTT_PHASE_START;

    for (int n = 0; n < mini_batches; ++n) {
        const bool more = n + 1 < mini_batches;
        const long next = in_bh + (long)(n + 1) * K * F;
        if (more && loader.staged) loader.issue(xq + next, xk + next, xv + next, lr_bh + (n + 1) * K, K);
        if (checkpoints != nullptr && n % interval == 0) {
            float* dst = checkpoints + ((long)(n / interval) * (gridDim.x / C) + bh) * state_size;
            pack_rows(dst + coff, F1, W1, F, F1c, ld1);
            pack_rows(dst + F * F1 + coff, F1c, B1, 1, F1c, F1c);
            pack_rows(dst + F * F1 + F1 + (long)coff * F, F, W2, F1c, F, ld);
            if (rank == 0) pack_rows(dst + F * F1 + F1 + F1 * F, F, B2, 1, F, F);
        }

        // A: X2, GP from Z1 = K W1 + b1; NM from Q K^T; the target V - K.
        for (int u = tid; u < tiles_a; u += nt) {
            const Tile<false, TRA> t(u, K, F1c);
            float acc[TRA][4];
            zero(acc);
            tile_mma<false, false, TRA>(acc, Ks, ld, t.r0, t.rs, W1, ld1, t.c0, 0, F);
#pragma unroll
            for (int r = 0; r < TRA; ++r) {
                float g[4], gp[4];
#pragma unroll
                for (int c = 0; c < 4; ++c) gelu_and_grad(acc[r][c] + B1[t.c0 + c], g[c], gp[c]);
                store4(X2 + t.row(r) * ld1 + t.c0, g);
                store4(GP + t.row(r) * ld1 + t.c0, gp);
            }
        }
        eta_attention(NM, ldm, Qs, ld, Ks, ld, F, tok_s, lr_s, K);
        rows_axpy(Ts, Ks, K, F, ld);
        __syncthreads();
        TTT_PHASE(0);

        // B: PB[s] = X2 W2 over part s of this block's F1c; K rows scaled by eta_last.
        for (int u = tid; u < kSplitW2 * tiles_b; u += nt) {
            const int s = u / tiles_b;
            const Tile<false, 2> t(u - s * tiles_b, K, F);
            float acc[2][4];
            zero(acc);
            tile_mma<false, false, 2>(acc, X2, ld1, t.r0, t.rs, W2, ld, t.c0, s * split_b, (s + 1) * split_b);
#pragma unroll
            for (int r = 0; r < 2; ++r) store4(PB + s * kf + t.row(r) * ld + t.c0, acc[r]);
        }
        scale_rows(Ks, lr_s, tok_s[K - 1], K, F, ld);
        cluster_barrier<C>();
        TTT_PHASE(1);

        // C: G2 = lnL2grad(Z2, V - K) with Z2 summed over the cluster's partial sums; EG2.
        {
            const float tok_last = tok_s[K - 1];
            for (int base = 0; base < K; base += rg.groups) {
                const int i = base + rg.group;
                const bool active = i < K;
                const int row = active ? i : 0;
                if (active) {
                    for (int f = rg.lane; f < F; f += rg.g) {
                        float z = B2[f];
#pragma unroll
                        for (int q = 0; q < C; ++q) {
                            const float* P = remote<C>(PB, q);
#pragma unroll
                            for (int s = 0; s < kSplitW2; ++s) z += P[s * kf + row * ld + f];
                        }
                        G2[row * ld + f] = z;
                    }
                }
                ln_l2_grad_row(rg, active, G2 + row * ld, Ts + row * ld, gam, bet, F, eps, EG2 + row * ld,
                               tok_last * lr_s[row]);
            }
        }
        __syncthreads();
        TTT_PHASE(2);

        // D: G1 = (G2 W2^T) o gelu'(Z1), in place of GP.
        for (int u = tid; u < tiles_a; u += nt) {
            const Tile<false, TRA> t(u, K, F1c);
            float acc[TRA][4];
            zero(acc);
            tile_mma<false, true, TRA>(acc, G2, ld, t.r0, t.rs, W2, ld, t.c0, 0, F);
#pragma unroll
            for (int r = 0; r < TRA; ++r) mul4(GP + t.row(r) * ld1 + t.c0, acc[r]);
        }
        __syncthreads();
        TTT_PHASE(3);

        // E: XB = gelu(Q W1 + b1 + NM G1), with the old W1 and b1.
        for (int u = tid; u < tiles_a; u += nt) {
            const Tile<false, TRA> t(u, K, F1c);
            float acc[TRA][4];
            zero(acc);
            tile_mma<false, false, TRA>(acc, Qs, ld, t.r0, t.rs, W1, ld1, t.c0, 0, F);
            tile_mma<false, false, TRA>(acc, NM, ldm, t.r0, t.rs, GP, ld1, t.c0, 0, K);
#pragma unroll
            for (int r = 0; r < TRA; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) acc[r][c] = gelu(acc[r][c] + B1[t.c0 + c]);
                store4(XB + t.row(r) * ld1 + t.c0, acc[r]);
            }
        }
        __syncthreads();
        TTT_PHASE(4);

        // F: PF[s] = XB W2 over part s of F1c; W1 -= Ks^T G1; this block's part of XB X2^T;
        // b1 -= sum eta_last G1.
        for (int u = tid; u < kSplitW2 * tiles_b + tiles_w; u += nt) {
            if (u < kSplitW2 * tiles_b) {
                const int s = u / tiles_b;
                const Tile<false, 2> t(u - s * tiles_b, K, F);
                float acc[2][4];
                zero(acc);
                tile_mma<false, false, 2>(acc, XB, ld1, t.r0, t.rs, W2, ld, t.c0, s * split_b, (s + 1) * split_b);
#pragma unroll
                for (int r = 0; r < 2; ++r) store4(PF + s * kf + t.row(r) * ld + t.c0, acc[r]);
            } else {
                const Tile<true, 4> t(u - kSplitW2 * tiles_b, F, F1c);
                float acc[4][4];
                zero(acc);
                tile_mma<true, false, 4>(acc, Ks, ld, t.r0, t.rs, GP, ld1, t.c0, 0, K);
#pragma unroll
                for (int r = 0; r < 4; ++r) sub4(W1 + t.row(r) * ld1 + t.c0, acc[r]);
            }
        }
        for (int e = tid; e < K * K; e += nt) {
            const int i = e / K;
            const int j = e - i * K;
            PA[i * ldm + j] = j <= i ? dot(XB + i * ld1, X2 + j * ld1, F1c) : 0.0f;
        }
        {
            const float tok_last = tok_s[K - 1];
            for (int c = tid; c < F1c; c += nt) {
                float s = 0.0f;
                for (int j = 0; j < K; ++j) s += tok_last * lr_s[j] * GP[j * ld1 + c];
                B1[c] -= s;
            }
        }
        cluster_barrier<C>();
        TTT_PHASE(5);

        // G: ZB2 = XB W2 + b2 and NM = -eta o (tril(XB X2^T) + 1), summed over the cluster.
        for (int e = tid; e < K * F + K * K; e += nt) {
            if (e < K * F) {
                const int i = e / F;
                const int f = e - i * F;
                float s = B2[f];
#pragma unroll
                for (int q = 0; q < C; ++q) {
                    const float* P = remote<C>(PF, q);
#pragma unroll
                    for (int p = 0; p < kSplitW2; ++p) s += P[p * kf + i * ld + f];
                }
                ZB2[i * ld + f] = s;
            } else {
                const int i = (e - K * F) / K;
                const int j = (e - K * F) - i * K;
                float a = 0.0f;
                if (j <= i) {
#pragma unroll
                    for (int q = 0; q < C; ++q) a += remote<C>(PA, q)[i * ldm + j];
                }
                NM[i * ldm + j] = j <= i ? -tok_s[i] * lr_s[j] * (a + 1.0f) : 0.0f;
            }
        }
        __syncthreads();
        TTT_PHASE(6);

        // H: W2 -= X2^T EG2; ZB2 += NM G2; b2 -= sum EG2.
        for (int u = tid; u < tiles_w + tiles_f1; u += nt) {
            if (u < tiles_w) {
                const Tile<true, 4> t(u, F1c, F);
                float acc[4][4];
                zero(acc);
                tile_mma<true, false, 4>(acc, X2, ld1, t.r0, t.rs, EG2, ld, t.c0, 0, K);
#pragma unroll
                for (int r = 0; r < 4; ++r) sub4(W2 + t.row(r) * ld + t.c0, acc[r]);
            } else {
                const Tile<false, 1> t(u - tiles_w, K, F);
                float acc[1][4];
                zero(acc);
                tile_mma<false, false, 1>(acc, NM, ldm, t.r0, t.rs, G2, ld, t.c0, 0, K);
                add4(ZB2 + t.row(0) * ld + t.c0, acc[0]);
            }
        }
        for (int f = tid; f < F; f += nt) {
            float s = 0.0f;
            for (int j = 0; j < K; ++j) s += EG2[j * ld + f];
            B2[f] -= s;
        }
        __syncthreads();
        TTT_PHASE(7);

        // I: out = Q + LN(ZB2) for rows rank, rank + C, ...
        {
            const int rows = (K - rank + C - 1) / C;
            for (int base = 0; base < rows; base += rg.groups) {
                const int li = base + rg.group;
                const bool active = li < rows;
                const int row = active ? rank + li * C : 0;
                ln_out_row(rg, active, ZB2 + row * ld, Qs + row * ld, gam, bet, F, eps,
                           out_bh + (long)(n * K + row) * dim);
            }
        }
        __syncthreads();
        TTT_PHASE(8);
        if (more) {
            if (loader.staged) {
                loader.retire(Qs, Ks, Ts, lr_s, K, F, ld);
            } else {
                loader.load(xq + next, xk + next, xv + next, lr_bh + (n + 1) * K, Qs, Ks, Ts, lr_s, K, F, ld);
            }
            __syncthreads();
            TTT_PHASE(9);
        }
    }
    if (last_state != nullptr) {
        float* dst = last_state + (long)bh * state_size;
        pack_rows(dst + coff, F1, W1, F, F1c, ld1);
        pack_rows(dst + F * F1 + coff, F1c, B1, 1, F1c, F1c);
        pack_rows(dst + F * F1 + F1 + (long)coff * F, F, W2, F1c, F, ld);
        if (rank == 0) pack_rows(dst + F * F1 + F1 + F1 * F, F, B2, 1, F, F);
    }
    // No block of a cluster may leave while another can still read its shared memory.
    if (C > 1) cluster_barrier<C>();
}

// The layout of mlp_fused_scan, in floats (InnerScanLayout mirrors it): mlp_scan's, with a
// second set of Q, K, V - K [K][ld] and of the learning rates [K].
__device__ __forceinline__ int mlp_fused_scratch_floats(int F, int K, int C) {
    return mlp_scratch_floats(F, K, C) + 3 * K * (F + 4) + K;
}

// TTT-MLP in eight phases a mini-batch instead of ten, on one block or a cluster of C: the
// inputs are double-buffered by mini-batch parity, so the next mini-batch's inputs land during
// the lnL2grad phase (C) instead of a phase of their own, and a mini-batch's output rows (which
// need only its ZB2 and Q) are computed in the next mini-batch's first phase, beside its
// products. ZB2 and the second NM are not part of the state, so a block of a cluster forms
// them only for its own output rows, and the cluster's partial sums are read as float4. Phases:
//   A: X2, GP from Z1 = K W1 + b1; NM; (V - K); out rows of mini-batch n-1; next loads issued
//   B: partial sums of X2 W2; K rows scaled by eta_last                       [cluster barrier]
//   C: G2 = lnL2grad(X2 W2 + b2, V - K), EG2; the next inputs into the other set
//   D: G1 = (G2 W2^T) o GP
//   E: XB = gelu(Q W1 + b1 + NM G1)
//   F: W1 -= Ks^T G1, b1 -= sum eta_last G1; partial sums of XB W2 and XB X2^T [cluster barrier]
//   G: ZB2 = XB W2 + b2; NM = -eta o (tril(XB X2^T) + 1)     (own output rows)
//   H: ZB2 += NM G2 (own output rows); W2 -= X2^T EG2; b2 -= sum EG2
// FF, KK > 0 fix F and K at compile time (and the block at TTT_SCAN_THREADS threads); 0 takes
// them from the arguments.
template <typename T, int C, int FF, int KK>
__device__ void mlp_fused_scan(const T* __restrict__ xq, const T* __restrict__ xk, const T* __restrict__ xv,
                               const T* __restrict__ lr, const T* __restrict__ tok, const T* __restrict__ w1,
                               const T* __restrict__ b1, const T* __restrict__ w2, const T* __restrict__ b2,
                               const T* __restrict__ norm_w, const T* __restrict__ norm_b, T* __restrict__ out,
                               float* __restrict__ checkpoints, int interval, float* __restrict__ last_state,
                               int ws_floats, int smem_bytes, int heads, int seq_len, int F_arg, int K_arg,
                               float eps) {
    constexpr int TRA = C == 1 ? 4 : C == 2 ? 2 : 1;
    constexpr int kNt = TTT_SCAN_THREADS;
    // As in linear_fused_scan, with a row's share of a lane a whole number of float4.
    constexpr int kKK = KK > 0 ? KK : 1;
    constexpr int kG0 = kNt / kKK;
    constexpr bool kFixed = FF > 0 && KK > 0 && kNt % kKK == 0 && kG0 > 0 && (kG0 & (kG0 - 1)) == 0
                            && FF % kG0 == 0 && (FF / kG0) % 4 == 0 && FF / kG0 <= kRowElems;
    constexpr int kG = kFixed ? kG0 : 1;
    constexpr int kE = kFixed ? FF / kG0 : 1;
    TTT_DYNAMIC_SHARED(smem);
    const int F = kFixed ? FF : F_arg;
    const int K = kFixed ? KK : K_arg;
    const int tid = threadIdx.x;
    const int nt = kFixed ? kNt : (int)blockDim.x;
#if TTT_HAS_CLUSTERS
    const int rank = C > 1 ? ttt_cluster_rank() : 0;
#else
    const int rank = 0;
#endif
    const int bh = blockIdx.x / C;
    const int h = bh % heads;
    const int b = bh / heads;
    const int dim = heads * F_arg;
    const int F1 = 4 * F;
    const int F1c = F1 / C;
    const int coff = rank * F1c;
    T* out_bh = out + (long)b * seq_len * dim + (long)h * F_arg;

    const int state_floats = mlp_state_floats(F, C);
    const int need_smem = 4 * (state_floats + mlp_fused_scratch_floats(F, K, C));
    // Every block of a cluster sees the same arguments, so all return here or none does.
    if ((kFixed && (F_arg != FF || K_arg != KK || (int)blockDim.x != kNt || kG > warpSize)) || K % 4 != 0
        || F % 4 != 0 || F > kRowElems * warpSize || seq_len % K != 0 || F1c % (4 * kSplitW2) != 0
        || need_smem > smem_bytes || ws_floats != 0 || (C > 1 && !TTT_HAS_CLUSTERS)) {
        poison_output(out_bh, seq_len, dim, F_arg);
        return;
    }

    const int ld = F + 4;
    const int ld1 = F1c + 4;
    const int ldm = K + 4;
    const int kf = K * ld;
    float* W1 = smem;                   // [F][ld1]   columns coff .. coff + F1c of W1
    float* B1 = W1 + F * ld1;           // [F1c]
    float* W2 = B1 + F1c;               // [F1c][ld]  rows coff .. coff + F1c of W2
    float* B2 = W2 + F1c * ld;          // [F]
    float* inputs = smem + state_floats;  // two sets of Q, K, T [K][ld]: T is V - K, ZB2 from phase G on
    float* G2 = inputs + 6 * kf;        // [K][ld] Z2, then G2
    float* EG2 = G2 + kf;               // [K][ld]
    float* PB = EG2 + kf;               // [kSplitW2][K][ld] partial sums of X2 W2
    float* PF = C == 1 ? PB : PB + kSplitW2 * kf;  // [kSplitW2][K][ld] partial sums of XB W2
    float* X2 = PF + kSplitW2 * kf;     // [K][ld1]
    float* GP = X2 + K * ld1;           // [K][ld1] gelu'(Z1), then G1
    float* XB = GP + K * ld1;           // [K][ld1]
    float* NM = XB + K * ld1;           // [K][ldm]
    float* PA = NM + K * ldm;           // [K][ldm] this block's part of XB X2^T
    float* lr_sets = PA + K * ldm;      // two sets of [K]
    float* tok_s = lr_sets + 2 * K;     // [K]
    float* gam = tok_s + K;             // [F]
    float* bet = gam + F;               // [F]

    unpack_rows(W1, ld1, w1 + (long)h * F * F1 + coff, F1, F, F1c);
    load_vector(B1, b1 + (long)h * F1 + coff, F1c);
    unpack_rows(W2, ld, w2 + (long)h * F1 * F + (long)coff * F, F, F1c, F);
    load_vector(B2, b2 + (long)h * F, F);
    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    load_vector(tok_s, tok, K);

    const RowGroups rg(K, F);
    const FixedRows<kG, kE> frows;
    const int tiles_a = (K / TRA) * (F1c / 4);        // [K, F1c] results
    const int tiles_b = (K / 2) * (F / 4);            // 2x4 tiles of [K, F]
    const int tiles_w = (F / 4) * (F1c / 4);          // 4x4 tiles of [F, F1c] and [F1c, F]
    const int own = (K - rank + C - 1) / C;           // this block's output rows rank, rank + C, ...
    const int own_tiles = own * (F / 4);              // 1x4 tiles of those rows of [K, F]
    const int split_b = F1c / kSplitW2;
    const int state_size = F * F1 + F1 + F1 * F + F;
    const int mini_batches = seq_len / K;
    const long in_bh = (long)bh * seq_len * F;
    const T* lr_bh = lr + (long)bh * seq_len;
    // The generic shapes stage V as it is and subtract K in phase A (rows_axpy).
    MiniBatchLoader<T> loader(K, F);
    FixedLoader<T, kFixed ? FF : 4 * (int)(16 / sizeof(T)), kFixed ? KK : 4, kNt> fixed_loader;
    if constexpr (kFixed) {
        fixed_loader.issue(xq + in_bh, xk + in_bh, xv + in_bh, lr_bh);
        fixed_loader.retire(inputs, inputs + kf, inputs + 2 * kf, lr_sets, ld);
    } else {
        loader.load(xq + in_bh, xk + in_bh, xv + in_bh, lr_bh, inputs, inputs + kf, inputs + 2 * kf, lr_sets, K, F,
                    ld);
    }
    __syncthreads();
    TTT_PHASE_START;

    // Output rows rank, rank + C, ... of a mini-batch from its ZB2 and Q.
    auto out_rows = [&](const float* zb2, const float* qs, T* dst) {
        const int rows = own;
        if constexpr (kFixed) {
            const bool active = frows.group < rows;
            const int row = rank + (active ? frows.group : 0) * C;
            ln_out_fixed<T, kG, kE>(frows, zb2 + row * ld, qs + row * ld, gam, bet, eps, dst + (long)row * dim,
                                    active);
        } else {
            for (int base = 0; base < rows; base += rg.groups) {
                const int li = base + rg.group;
                const bool active = li < rows;
                const int row = active ? rank + li * C : 0;
                ln_out_row(rg, active, zb2 + row * ld, qs + row * ld, gam, bet, F, eps, dst + (long)row * dim);
            }
        }
    };

    for (int n = 0; n < mini_batches; ++n) {
        const int set = n & 1;
        float* Qs = inputs + set * 3 * kf;
        float* Ks = Qs + kf;            // scaled by eta_last in phase B
        float* Ts = Ks + kf;
        float* ZB2 = Ts;
        const float* lr_s = lr_sets + set * K;
        const bool more = n + 1 < mini_batches;
        const long next = in_bh + (long)(n + 1) * K * F;
        if (more) {
            if constexpr (kFixed) {
                fixed_loader.issue(xq + next, xk + next, xv + next, lr_bh + (n + 1) * K);
            } else if (loader.staged) {
                loader.issue(xq + next, xk + next, xv + next, lr_bh + (n + 1) * K, K);
            }
        }
        if (checkpoints != nullptr && n % interval == 0) {
            float* dst = checkpoints + ((long)(n / interval) * (gridDim.x / C) + bh) * state_size;
            pack_rows(dst + coff, F1, W1, F, F1c, ld1);
            pack_rows(dst + F * F1 + coff, F1c, B1, 1, F1c, F1c);
            pack_rows(dst + F * F1 + F1 + (long)coff * F, F, W2, F1c, F, ld);
            if (rank == 0) pack_rows(dst + F * F1 + F1 + F1 * F, F, B2, 1, F, F);
        }

        // A: X2, GP from Z1 = K W1 + b1; NM from Q K^T; the previous mini-batch's output rows.
        for (int u = tid; u < tiles_a; u += nt) {
            const Tile<false, TRA> t(u, K, F1c);
            float acc[TRA][4];
            zero(acc);
            tile_mma<false, false, TRA>(acc, Ks, ld, t.r0, t.rs, W1, ld1, t.c0, 0, F);
#pragma unroll
            for (int r = 0; r < TRA; ++r) {
                float g[4], gp[4];
#pragma unroll
                for (int c = 0; c < 4; ++c) gelu_and_grad(acc[r][c] + B1[t.c0 + c], g[c], gp[c]);
                store4(X2 + t.row(r) * ld1 + t.c0, g);
                store4(GP + t.row(r) * ld1 + t.c0, gp);
            }
        }
        eta_attention(NM, ldm, Qs, ld, Ks, ld, F, tok_s, lr_s, K);
        if constexpr (!kFixed) rows_axpy(Ts, Ks, K, F, ld);
        if (n > 0) {
            const float* prev = inputs + (set ^ 1) * 3 * kf;
            out_rows(prev + 2 * kf, prev, out_bh + (long)(n - 1) * K * dim);
        }
        __syncthreads();
        TTT_PHASE(0);

        // B: PB[s] = X2 W2 over part s of this block's F1c; K rows scaled by eta_last.
        for (int u = tid; u < kSplitW2 * tiles_b; u += nt) {
            const int s = u / tiles_b;
            const Tile<false, 2> t(u - s * tiles_b, K, F);
            float acc[2][4];
            zero(acc);
            tile_mma<false, false, 2>(acc, X2, ld1, t.r0, t.rs, W2, ld, t.c0, s * split_b, (s + 1) * split_b);
#pragma unroll
            for (int r = 0; r < 2; ++r) store4(PB + s * kf + t.row(r) * ld + t.c0, acc[r]);
        }
        scale_rows(Ks, lr_s, tok_s[K - 1], K, F, ld);
        cluster_barrier<C>();
        TTT_PHASE(1);

        // C: G2 = lnL2grad(Z2, V - K) with Z2 summed over the cluster's partial sums; EG2; the
        // next inputs into the other set (its last reader was phase A's output rows).
        {
            const float tok_last = tok_s[K - 1];
            if constexpr (kFixed) {
                const int row = frows.group;
                const int o = frows.lane * kE;
#pragma unroll
                for (int e = 0; e < kE; e += 4) {
                    float4 z = *reinterpret_cast<const float4*>(B2 + o + e);
#pragma unroll
                    for (int q = 0; q < C; ++q) {
                        const float* P = remote<C>(PB, q);
#pragma unroll
                        for (int s = 0; s < kSplitW2; ++s) {
                            const float4 p = *reinterpret_cast<const float4*>(P + s * kf + row * ld + o + e);
                            z.x += p.x; z.y += p.y; z.z += p.z; z.w += p.w;
                        }
                    }
                    *reinterpret_cast<float4*>(G2 + row * ld + o + e) = z;
                }
                ln_l2_grad_fixed<kG, kE>(frows, G2 + row * ld, Ts + row * ld, gam, bet, eps, EG2 + row * ld,
                                         tok_last * lr_s[row]);
            } else {
                for (int base = 0; base < K; base += rg.groups) {
                    const int i = base + rg.group;
                    const bool active = i < K;
                    const int row = active ? i : 0;
                    if (active) {
                        for (int f = rg.lane; f < F; f += rg.g) {
                            float z = B2[f];
#pragma unroll
                            for (int q = 0; q < C; ++q) {
                                const float* P = remote<C>(PB, q);
#pragma unroll
                                for (int s = 0; s < kSplitW2; ++s) z += P[s * kf + row * ld + f];
                            }
                            G2[row * ld + f] = z;
                        }
                    }
                    ln_l2_grad_row(rg, active, G2 + row * ld, Ts + row * ld, gam, bet, F, eps, EG2 + row * ld,
                                   tok_last * lr_s[row]);
                }
            }
        }
        if (more) {
            float* nq = inputs + (set ^ 1) * 3 * kf;
            float* nlr = lr_sets + (set ^ 1) * K;
            if constexpr (kFixed) {
                fixed_loader.retire(nq, nq + kf, nq + 2 * kf, nlr, ld);
            } else if (loader.staged) {
                loader.retire(nq, nq + kf, nq + 2 * kf, nlr, K, F, ld);
            } else {
                loader.load(xq + next, xk + next, xv + next, lr_bh + (n + 1) * K, nq, nq + kf, nq + 2 * kf, nlr, K,
                            F, ld);
            }
        }
        __syncthreads();
        TTT_PHASE(2);

        // D: G1 = (G2 W2^T) o gelu'(Z1), in place of GP.
        for (int u = tid; u < tiles_a; u += nt) {
            const Tile<false, TRA> t(u, K, F1c);
            float acc[TRA][4];
            zero(acc);
            tile_mma<false, true, TRA>(acc, G2, ld, t.r0, t.rs, W2, ld, t.c0, 0, F);
#pragma unroll
            for (int r = 0; r < TRA; ++r) mul4(GP + t.row(r) * ld1 + t.c0, acc[r]);
        }
        __syncthreads();
        TTT_PHASE(3);

        // E: XB = gelu(Q W1 + b1 + NM G1), with the old W1 and b1.
        for (int u = tid; u < tiles_a; u += nt) {
            const Tile<false, TRA> t(u, K, F1c);
            float acc[TRA][4];
            zero(acc);
            tile_mma<false, false, TRA>(acc, Qs, ld, t.r0, t.rs, W1, ld1, t.c0, 0, F);
            tile_mma<false, false, TRA>(acc, NM, ldm, t.r0, t.rs, GP, ld1, t.c0, 0, K);
#pragma unroll
            for (int r = 0; r < TRA; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) acc[r][c] = gelu(acc[r][c] + B1[t.c0 + c]);
                store4(XB + t.row(r) * ld1 + t.c0, acc[r]);
            }
        }
        __syncthreads();
        TTT_PHASE(4);

        // F: PF[s] = XB W2 over part s of F1c; W1 -= Ks^T G1; this block's part of XB X2^T;
        // b1 -= sum eta_last G1.
        for (int u = tid; u < kSplitW2 * tiles_b + tiles_w; u += nt) {
            if (u < kSplitW2 * tiles_b) {
                const int s = u / tiles_b;
                const Tile<false, 2> t(u - s * tiles_b, K, F);
                float acc[2][4];
                zero(acc);
                tile_mma<false, false, 2>(acc, XB, ld1, t.r0, t.rs, W2, ld, t.c0, s * split_b, (s + 1) * split_b);
#pragma unroll
                for (int r = 0; r < 2; ++r) store4(PF + s * kf + t.row(r) * ld + t.c0, acc[r]);
            } else {
                const Tile<true, 4> t(u - kSplitW2 * tiles_b, F, F1c);
                float acc[4][4];
                zero(acc);
                tile_mma<true, false, 4>(acc, Ks, ld, t.r0, t.rs, GP, ld1, t.c0, 0, K);
#pragma unroll
                for (int r = 0; r < 4; ++r) sub4(W1 + t.row(r) * ld1 + t.c0, acc[r]);
            }
        }
        for (int e = tid; e < K * K; e += nt) {
            const int i = e / K;
            const int j = e - i * K;
            PA[i * ldm + j] = j <= i ? dot(XB + i * ld1, X2 + j * ld1, F1c) : 0.0f;
        }
        {
            const float tok_last = tok_s[K - 1];
            for (int c = tid; c < F1c; c += nt) {
                float s = 0.0f;
                for (int j = 0; j < K; ++j) s += tok_last * lr_s[j] * GP[j * ld1 + c];
                B1[c] -= s;
            }
        }
        cluster_barrier<C>();
        TTT_PHASE(5);

        // G: ZB2 = XB W2 + b2 (float4 at a time) and NM = -eta o (tril(XB X2^T) + 1), summed
        // over the cluster, for this block's output rows only: neither is part of the state.
        {
            const int f4 = F / 4;
            for (int e = tid; e < own * f4 + own * K; e += nt) {
                if (e < own * f4) {
                    const int li = e / f4;
                    const int i = rank + li * C;
                    const int f = (e - li * f4) * 4;
                    float4 s = *reinterpret_cast<const float4*>(B2 + f);
#pragma unroll
                    for (int q = 0; q < C; ++q) {
                        const float* P = remote<C>(PF, q);
#pragma unroll
                        for (int p = 0; p < kSplitW2; ++p) {
                            const float4 x = *reinterpret_cast<const float4*>(P + p * kf + i * ld + f);
                            s.x += x.x; s.y += x.y; s.z += x.z; s.w += x.w;
                        }
                    }
                    *reinterpret_cast<float4*>(ZB2 + i * ld + f) = s;
                } else {
                    const int li = (e - own * f4) / K;
                    const int i = rank + li * C;
                    const int j = (e - own * f4) - li * K;
                    float a = 0.0f;
                    if (j <= i) {
#pragma unroll
                        for (int q = 0; q < C; ++q) a += remote<C>(PA, q)[i * ldm + j];
                    }
                    NM[i * ldm + j] = j <= i ? -tok_s[i] * lr_s[j] * (a + 1.0f) : 0.0f;
                }
            }
        }
        __syncthreads();
        TTT_PHASE(6);

        // H: W2 -= X2^T EG2; ZB2 += NM G2 (this block's output rows); b2 -= sum EG2.
        for (int u = tid; u < tiles_w + own_tiles; u += nt) {
            if (u < tiles_w) {
                const Tile<true, 4> t(u, F1c, F);
                float acc[4][4];
                zero(acc);
                tile_mma<true, false, 4>(acc, X2, ld1, t.r0, t.rs, EG2, ld, t.c0, 0, K);
#pragma unroll
                for (int r = 0; r < 4; ++r) sub4(W2 + t.row(r) * ld + t.c0, acc[r]);
            } else {
                const int v = u - tiles_w;
                const int i = rank + (v % own) * C;
                const int c0 = (v / own) * 4;
                float acc[1][4];
                zero(acc);
                tile_mma<false, false, 1>(acc, NM, ldm, i, 0, G2, ld, c0, 0, K);
                add4(ZB2 + i * ld + c0, acc[0]);
            }
        }
        for (int f = tid; f < F; f += nt) {
            float s = 0.0f;
            for (int j = 0; j < K; ++j) s += EG2[j * ld + f];
            B2[f] -= s;
        }
        __syncthreads();
        TTT_PHASE(7);
    }

    // The last mini-batch's output rows.
    {
        const float* last = inputs + ((mini_batches - 1) & 1) * 3 * kf;
        out_rows(last + 2 * kf, last, out_bh + (long)(mini_batches - 1) * K * dim);
    }
    if (last_state != nullptr) {
        float* dst = last_state + (long)bh * state_size;
        pack_rows(dst + coff, F1, W1, F, F1c, ld1);
        pack_rows(dst + F * F1 + coff, F1c, B1, 1, F1c, F1c);
        pack_rows(dst + F * F1 + F1 + (long)coff * F, F, W2, F1c, F, ld);
        if (rank == 0) pack_rows(dst + F * F1 + F1 + F1 * F, F, B2, 1, F, F);
    }
    // No block of a cluster may leave while another can still read its shared memory.
    if (C > 1) cluster_barrier<C>();
}

}  // namespace ttt_scan

// Entry points ttt_mlp_{shared,stateglobal,global}_{f32,bf16,f16}: one block of at most 256
// threads per (batch, head) (the tiles and the prefetched next mini-batch need more than 128
// registers a thread).
#define TTT_MLP_ENTRY(T, S, NAME, PLACEMENT, C, DIMS)                                                         \
    extern "C" __global__ void __launch_bounds__(TTT_SCAN_THREADS, 1) DIMS ttt_mlp_##NAME##_##S(                              \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* w1, const T* b1,           \
        const T* w2, const T* b2, const T* norm_w, const T* norm_b, T* out, float* checkpoints, int interval, \
        float* last_state, float* workspace, int ws_floats, int smem_bytes, int heads, int seq_len, int F,    \
        int K, float eps) {                                                                                   \
        ttt_scan::mlp_scan<T, PLACEMENT, C>(xq, xk, xv, lr, tok, w1, b1, w2, b2, norm_w, norm_b, out,         \
                                            checkpoints, interval, last_state, workspace, ws_floats,          \
                                            smem_bytes, heads, seq_len, F, K, eps);                           \
    }
// ttt_mlp_fused_{f32,bf16,f16} (one block) and ttt_mlp_fusedcluster{2,4,8}_{...} (clusters,
// Hopper; elsewhere they only poison): mlp_fused_scan, state in shared memory (ws_floats must
// be 0), compile-time F and K for F = 64 at K = 16, the generic instance for the rest.
#define TTT_MLP_FUSED_ENTRY(T, S, NAME, C, DIMS)                                                              \
    extern "C" __global__ void __launch_bounds__(TTT_SCAN_THREADS, 1) DIMS ttt_mlp_##NAME##_##S(              \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* w1, const T* b1,           \
        const T* w2, const T* b2, const T* norm_w, const T* norm_b, T* out, float* checkpoints, int interval, \
        float* last_state, float* workspace, int ws_floats, int smem_bytes, int heads, int seq_len, int F,    \
        int K, float eps) {                                                                                   \
        (void)workspace;                                                                                      \
        if (F == 64 && K == 16 && blockDim.x == TTT_SCAN_THREADS) {                                          \
            ttt_scan::mlp_fused_scan<T, C, 64, 16>(xq, xk, xv, lr, tok, w1, b1, w2, b2, norm_w, norm_b, out, \
                checkpoints, interval, last_state, ws_floats, smem_bytes, heads, seq_len, F, K, eps);        \
        } else {                                                                                              \
            ttt_scan::mlp_fused_scan<T, C, 0, 0>(xq, xk, xv, lr, tok, w1, b1, w2, b2, norm_w, norm_b, out,   \
                checkpoints, interval, last_state, ws_floats, smem_bytes, heads, seq_len, F, K, eps);        \
        }                                                                                                     \
    }
// ttt_mlp_cluster{2,4,8}_{f32,bf16,f16}: a cluster of 2, 4 or 8 blocks per (batch, head), for
// devices with clusters (the host launches B*H*C blocks); elsewhere they only poison.
#define TTT_MLP(T, S)                                                                       \
    TTT_MLP_ENTRY(T, S, shared, ttt_scan::kAllShared, 1, )                                  \
    TTT_MLP_ENTRY(T, S, stateglobal, ttt_scan::kStateGlobal, 1, )                           \
    TTT_MLP_ENTRY(T, S, global, ttt_scan::kAllGlobal, 1, )                                  \
    TTT_MLP_ENTRY(T, S, cluster2, ttt_scan::kAllShared, 2, TTT_CLUSTER_DIMS(2))             \
    TTT_MLP_ENTRY(T, S, cluster4, ttt_scan::kAllShared, 4, TTT_CLUSTER_DIMS(4))             \
    TTT_MLP_ENTRY(T, S, cluster8, ttt_scan::kAllShared, 8, TTT_CLUSTER_DIMS(8))             \
    TTT_MLP_FUSED_ENTRY(T, S, fused, 1, )                                                   \
    TTT_MLP_FUSED_ENTRY(T, S, fusedcluster2, 2, TTT_CLUSTER_DIMS(2))                        \
    TTT_MLP_FUSED_ENTRY(T, S, fusedcluster4, 4, TTT_CLUSTER_DIMS(4))                        \
    TTT_MLP_FUSED_ENTRY(T, S, fusedcluster8, 8, TTT_CLUSTER_DIMS(8))
TTT_FOR_EACH_TYPE(TTT_MLP)

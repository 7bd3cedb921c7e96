// TTT-MLP's inner loop (SPEC §3 step 4) and its backward (SPEC §4, inner backward), every kernel
// one launch for a whole sequence, float32 on chip whatever the stored type (F1 = 4F):
//   ttt_mlp_forward_{shared,stateglobal,global}  the ten-phase scan, one block per (batch, head),
//                                                state in shared or global memory
//   ttt_mlp_forward_cluster{2,4}                 the same on a cluster of 2 or 4 blocks (Hopper)
//   ttt_mlp_forward_fusedcluster{2,4,8}          nine phases a mini-batch, on a cluster (Hopper)
//   ttt_mlp_backward_walk_{shared,stateglobal,global}
//                                                the backward at any checkpoint interval: one
//                                                block per (batch, head) walks back
//   ttt_mlp_backward_{local,chain,chain_cluster2,chain_cluster4,finish}
//                                                the backward at interval 1 in three launches
// The state a forward keeps (checkpoints, last_state) and a backward restores is packed float32:
// W1 [F*F1], b1 [F1], W2 [F1*F], b2 [F], each row-major.
#include "ttt_scan.h"
#include "ttt_scan_backward.h"

// One packed state, floats. The kernels write it in line as F F1 + F1 + F1 F + F or
// 2 F F1 + F1 + F (F1 = 4F), each where its offsets share the terms: the same number.
#define TTT_MLP_PACKED_STATE_FLOATS(F) (8 * (F) * (F) + 5 * (F))
// Checkpoint slots a forward keeps at interval INTERVAL (slot s: the state before mini-batch
// s INTERVAL): the checkpoints hold slots * PAIRS packed states, slot-major.
#define TTT_MLP_CHECKPOINT_SLOTS(MB, INTERVAL) cdiv(MB, INTERVAL)
// The forward's split of the F1 reduction of X2 W2 and XB W2 inside a block.
#define TTT_MLP_SPLIT_W2 2

// ================================================================ forward
// The ten-phase scan: one launch for the whole sequence, the state W1 [F, F1], b1 [F1],
// W2 [F1, F], b2 [F] (F1 = 4F) kept in float32 across all mini-batches.
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

namespace ttt_scan {

constexpr int kSplitW2 = TTT_MLP_SPLIT_W2;  // split inside a block of the F1 reduction of X2 W2 and XB W2

// The layout, in floats, for C blocks per head (the descriptors below give the host the same):
// the state W1 [F][F1c+4], b1 [F1c], W2 [F1c][F+4], b2 [F] with F1c = 4F / C; the scratch.
// A single block reads its own partial sums of X2 W2 before it writes those of XB W2, so they
// share a buffer; in a cluster the others may still be reading the first: SETS = min(C, 2).
// SPLIT: the split of those two products inside a block (TTT_MLP_SPLIT_W2, or 1).
// Each formula is written once, over the shares F1C = 4F / C and SETS, which the kernels' layout
// functions hold in variables of their own (so the compiler sees the expressions it always
// has) and the descriptors expand in line.
#define TTT_MLP_STATE_FLOATS_(F, F1C) ((F) * ((F1C) + 4) + (F1C) + (F1C) * ((F) + 4) + (F))
#define TTT_MLP_SCRATCH_FLOATS_(F, K, F1C, SETS, SPLIT) \
    ((5 + (SETS) * (SPLIT)) * (K) * ((F) + 4) + 3 * (K) * ((F1C) + 4) + 2 * (K) * ((K) + 4) + 2 * (K) + 2 * (F))
#define TTT_MLP_STATE_FLOATS(F, C) TTT_MLP_STATE_FLOATS_(F, 4 * (F) / (C))
#define TTT_MLP_SCRATCH_FLOATS(F, K, C) TTT_MLP_SCRATCH_FLOATS_(F, K, 4 * (F) / (C), min(C, 2), TTT_MLP_SPLIT_W2)
__device__ __forceinline__ int mlp_state_floats(int F, int C) {
    const int F1c = 4 * F / C;
    return TTT_MLP_STATE_FLOATS_(F, F1c);
}
__device__ __forceinline__ int mlp_scratch_floats(int F, int K, int C, int split = kSplitW2) {
    const int F1c = 4 * F / C;
    const int partial_sets = C == 1 ? 1 : 2;  // min(C, 2)
    return TTT_MLP_SCRATCH_FLOATS_(F, K, F1c, partial_sets, split);
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

    unpack_rows_strided(W1, ld1, w1 + (long)h * F * F1 + coff, F1, F, F1c);
    load_vector(B1, b1 + (long)h * F1 + coff, F1c);
    unpack_rows_strided(W2, ld, w2 + (long)h * F1 * F + (long)coff * F, F, F1c, F);
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
    const int state_size = F * F1 + F1 + F1 * F + F;  // TTT_MLP_PACKED_STATE_FLOATS(F)
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
            pack_rows_strided(dst + coff, F1, W1, F, F1c, ld1);
            pack_rows_strided(dst + F * F1 + coff, F1c, B1, 1, F1c, F1c);
            pack_rows_strided(dst + F * F1 + F1 + (long)coff * F, F, W2, F1c, F, ld);
            if (rank == 0) pack_rows_strided(dst + F * F1 + F1 + F1 * F, F, B2, 1, F, F);
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
        pack_rows_strided(dst + coff, F1, W1, F, F1c, ld1);
        pack_rows_strided(dst + F * F1 + coff, F1c, B1, 1, F1c, F1c);
        pack_rows_strided(dst + F * F1 + F1 + (long)coff * F, F, W2, F1c, F, ld);
        if (rank == 0) pack_rows_strided(dst + F * F1 + F1 + F1 * F, F, B2, 1, F, F);
    }
    // No block of a cluster may leave while another can still read its shared memory.
    if (C > 1) cluster_barrier<C>();
}

// The scratch of mlp_fused_scan, in floats: mlp_scan's without the split of W2 inside a block.
#define TTT_MLP_FUSED_SCRATCH_FLOATS(F, K, C) TTT_MLP_SCRATCH_FLOATS_(F, K, 4 * (F) / (C), min(C, 2), 1)
__device__ __forceinline__ int mlp_fused_scratch_floats(int F, int K, int C) { return mlp_scratch_floats(F, K, C, 1); }

// TTT-MLP in nine phases a mini-batch instead of ten, on one block or a cluster of C: the next
// mini-batch's inputs are issued after phase C (into registers, or a staging copy) and land in
// the one set of inputs once the last phase has read this mini-batch's, so their latency hides
// behind six phases of products instead of a phase of their own. ZB2 and the
// second NM are not part of the state, so a block of a cluster forms them only for its own
// output rows, and the cluster's partial sums are read as float4. Phases:
//   A: X2, GP from Z1 = K W1 + b1; NM; (V - K)
//   B: partial sums of X2 W2; K rows scaled by eta_last                       [cluster barrier]
//   C: G2 = lnL2grad(X2 W2 + b2, V - K), EG2 (own rows)                     [cluster barrier]
//      the other rows of G2 from their blocks, EG2; then the next inputs issued
//   D: G1 = (G2 W2^T) o GP
//   E: XB = gelu(Q W1 + b1 + NM G1)
//   F: W1 -= Ks^T G1, b1 -= sum eta_last G1; partial sums of XB W2 and XB X2^T [cluster barrier]
//   G: ZB2 = XB W2 + b2; NM = -eta o (tril(XB X2^T) + 1)     (own output rows)
//   H: ZB2 += NM G2 (own output rows); W2 -= X2^T EG2; b2 -= sum EG2
//   I: out rows (own rows); then the next inputs land
// Unlike mlp_scan, the products X2 W2 and XB W2 are not split inside a block: the partial sums
// of a cluster are then C, not 2C, reads an element (measurements in docs/perf.md).
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
        || F % 4 != 0 || F > kRowElems * warpSize || seq_len % K != 0 || F1c % 4 != 0
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
    float* Qs = smem + state_floats;    // [K][ld]
    float* Ks = Qs + kf;                // [K][ld] scaled by eta_last in phase B
    float* Ts = Ks + kf;                // [K][ld] V - K, then ZB2 from phase G on
    float* ZB2 = Ts;
    float* G2 = Ts + kf;                // [K][ld] Z2, then G2
    float* EG2 = G2 + kf;               // [K][ld]
    float* PB = EG2 + kf;               // [K][ld] partial sums of X2 W2
    float* PF = C == 1 ? PB : PB + kf;  // [K][ld] partial sums of XB W2
    float* X2 = PF + kf;                // [K][ld1]
    float* GP = X2 + K * ld1;           // [K][ld1] gelu'(Z1), then G1
    float* XB = GP + K * ld1;           // [K][ld1]
    float* NM = XB + K * ld1;           // [K][ldm]
    float* PA = NM + K * ldm;           // [K][ldm] this block's part of XB X2^T
    float* lr_s = PA + K * ldm;         // [K]
    float* tok_s = lr_s + K;            // [K]
    float* gam = tok_s + K;             // [F]
    float* bet = gam + F;               // [F]

    unpack_rows_strided(W1, ld1, w1 + (long)h * F * F1 + coff, F1, F, F1c);
    load_vector(B1, b1 + (long)h * F1 + coff, F1c);
    unpack_rows_strided(W2, ld, w2 + (long)h * F1 * F + (long)coff * F, F, F1c, F);
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
    const int state_size = F * F1 + F1 + F1 * F + F;  // TTT_MLP_PACKED_STATE_FLOATS(F)
    const int mini_batches = seq_len / K;
    const long in_bh = (long)bh * seq_len * F;
    const T* lr_bh = lr + (long)bh * seq_len;
    // The generic shapes stage V as it is and subtract K in phase A (rows_axpy).
    MiniBatchLoader<T> loader(K, F);
    FixedLoader<T, kFixed ? FF : 4 * (int)(16 / sizeof(T)), kFixed ? KK : 4, kNt> fixed_loader;
    if constexpr (kFixed) {
        fixed_loader.issue(xq + in_bh, xk + in_bh, xv + in_bh, lr_bh);
        fixed_loader.retire(Qs, Ks, Ts, lr_s, ld);
    } else {
        loader.load(xq + in_bh, xk + in_bh, xv + in_bh, lr_bh, Qs, Ks, Ts, lr_s, K, F, ld);
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

    // The next mini-batch's inputs: issued (registers, or a staging copy), later landed in place
    // of this one's.
    auto issue_next = [&](long next, int n) {
        if constexpr (kFixed) {
            fixed_loader.issue(xq + next, xk + next, xv + next, lr_bh + (n + 1) * K);
        } else if (loader.staged) {
            loader.issue(xq + next, xk + next, xv + next, lr_bh + (n + 1) * K, K);
        }
    };
    auto land_next = [&](long next, int n) {
        if constexpr (kFixed) {
            fixed_loader.retire(Qs, Ks, Ts, lr_s, ld);
        } else if (loader.staged) {
            loader.retire(Qs, Ks, Ts, lr_s, K, F, ld);
        } else {
            loader.load(xq + next, xk + next, xv + next, lr_bh + (n + 1) * K, Qs, Ks, Ts, lr_s, K, F, ld);
        }
    };

    for (int n = 0; n < mini_batches; ++n) {
        const bool more = n + 1 < mini_batches;
        const long next = in_bh + (long)(n + 1) * K * F;
        if (checkpoints != nullptr && n % interval == 0) {
            float* dst = checkpoints + ((long)(n / interval) * (gridDim.x / C) + bh) * state_size;
            pack_rows_strided(dst + coff, F1, W1, F, F1c, ld1);
            pack_rows_strided(dst + F * F1 + coff, F1c, B1, 1, F1c, F1c);
            pack_rows_strided(dst + F * F1 + F1 + (long)coff * F, F, W2, F1c, F, ld);
            if (rank == 0) pack_rows_strided(dst + F * F1 + F1 + F1 * F, F, B2, 1, F, F);
        }

        // A: X2, GP from Z1 = K W1 + b1; NM from Q K^T.
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
        __syncthreads();
        TTT_PHASE(0);

        // B: PB = X2 W2 over this block's F1c; K rows scaled by eta_last.
        for (int u = tid; u < tiles_b; u += nt) {
            const Tile<false, 2> t(u, K, F);
            float acc[2][4];
            zero(acc);
            tile_mma<false, false, 2>(acc, X2, ld1, t.r0, t.rs, W2, ld, t.c0, 0, F1c);
#pragma unroll
            for (int r = 0; r < 2; ++r) store4(PB + t.row(r) * ld + t.c0, acc[r]);
        }
        scale_rows(Ks, lr_s, tok_s[K - 1], K, F, ld);
        cluster_barrier<C>();
        TTT_PHASE(1);

        // C: G2 = lnL2grad(Z2, V - K) with Z2 summed over the cluster's partial sums, and EG2, for
        // this block's rows rank, rank + C, ... only; then the other rows of G2 from the blocks that
        // own them (each partial sum is read once in the cluster instead of C times); then the next
        // inputs issued.
        {
            const float tok_last = tok_s[K - 1];
            if constexpr (kFixed) {
                // A group without a row of its own takes part in the shuffles on a row of G2 that no
                // one writes in this part of the phase (not this block's), and stores nothing.
                const bool active = frows.group < own;
                const int row = active ? rank + frows.group * C : (rank + 1) % K;
                const int o = frows.lane * kE;
                if (active) {
#pragma unroll
                    for (int e = 0; e < kE; e += 4) {
                        float4 z = *reinterpret_cast<const float4*>(B2 + o + e);
#pragma unroll
                        for (int q = 0; q < C; ++q) {
                            const float4 p = *reinterpret_cast<const float4*>(remote<C>(PB, q) + row * ld + o + e);
                            z.x += p.x; z.y += p.y; z.z += p.z; z.w += p.w;
                        }
                        *reinterpret_cast<float4*>(G2 + row * ld + o + e) = z;
                    }
                }
                ln_l2_grad_fixed<kG, kE>(frows, G2 + row * ld, Ts + row * ld, gam, bet, eps, EG2 + row * ld,
                                         tok_last * lr_s[row], active);
            } else {
                for (int base = 0; base < own; base += rg.groups) {
                    const int li = base + rg.group;
                    const bool active = li < own;
                    const int row = active ? rank + li * C : 0;
                    if (active) {
                        for (int f = rg.lane; f < F; f += rg.g) {
                            float z = B2[f];
#pragma unroll
                            for (int q = 0; q < C; ++q) z += remote<C>(PB, q)[row * ld + f];
                            G2[row * ld + f] = z;
                        }
                    }
                    ln_l2_grad_row(rg, active, G2 + row * ld, Ts + row * ld, gam, bet, F, eps, EG2 + row * ld,
                                   tok_last * lr_s[row]);
                }
            }
            if constexpr (C > 1) {
                cluster_barrier<C>();
                const int f4 = F / 4;
                for (int e = tid; e < K * f4; e += nt) {
                    const int i = e / f4;
                    const int q = i % C;
                    if (q == rank) continue;
                    const int f = (e - i * f4) * 4;
                    const float4 g = *reinterpret_cast<const float4*>(remote<C>(G2, q) + i * ld + f);
                    const float eta = tok_last * lr_s[i];
                    *reinterpret_cast<float4*>(G2 + i * ld + f) = g;
                    *reinterpret_cast<float4*>(EG2 + i * ld + f) = make_float4(eta * g.x, eta * g.y, eta * g.z, eta * g.w);
                }
            }
        }
        __syncthreads();
        TTT_PHASE(2);
        if (more) issue_next(next, n);

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

        // F: PF = XB W2 over this block's F1c; W1 -= Ks^T G1; this block's part of XB X2^T;
        // b1 -= sum eta_last G1.
        for (int u = tid; u < tiles_b + tiles_w; u += nt) {
            if (u < tiles_b) {
                const Tile<false, 2> t(u, K, F);
                float acc[2][4];
                zero(acc);
                tile_mma<false, false, 2>(acc, XB, ld1, t.r0, t.rs, W2, ld, t.c0, 0, F1c);
#pragma unroll
                for (int r = 0; r < 2; ++r) store4(PF + t.row(r) * ld + t.c0, acc[r]);
            } else {
                const Tile<true, 4> t(u - tiles_b, F, F1c);
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
                        const float4 x = *reinterpret_cast<const float4*>(remote<C>(PF, q) + i * ld + f);
                        s.x += x.x; s.y += x.y; s.z += x.z; s.w += x.w;
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

        // I: this mini-batch's output rows; then the next inputs land in place of its own.
        out_rows(ZB2, Qs, out_bh + (long)n * K * dim);
        __syncthreads();
        if (more) land_next(next, n);
        __syncthreads();
        TTT_PHASE(8);
    }

    if (last_state != nullptr) {
        float* dst = last_state + (long)bh * state_size;
        pack_rows_strided(dst + coff, F1, W1, F, F1c, ld1);
        pack_rows_strided(dst + F * F1 + coff, F1c, B1, 1, F1c, F1c);
        pack_rows_strided(dst + F * F1 + F1 + (long)coff * F, F, W2, F1c, F, ld);
        if (rank == 0) pack_rows_strided(dst + F * F1 + F1 + F1 * F, F, B2, 1, F, F);
    }
    // No block of a cluster may leave while another can still read its shared memory.
    if (C > 1) cluster_barrier<C>();
}

}  // namespace ttt_scan

// Entry points ttt_mlp_forward_{shared,stateglobal,global}_{f32,bf16,f16}: one block of at most
// 256 threads per (batch, head) (the tiles and the prefetched next mini-batch need more than 128
// registers a thread); ttt_mlp_forward_cluster{2,4}_{...}: a cluster of 2 or 4 blocks per
// (batch, head), for devices with clusters (the host launches B*H*C blocks); elsewhere they only
// poison.
#define TTT_MLP_ENTRY(T, S, NAME, PLACEMENT, C, DIMS)                                                         \
    extern "C" __global__ void __launch_bounds__(TTT_SCAN_THREADS, 1) DIMS ttt_mlp_forward_##NAME##_##S(      \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* w1, const T* b1,           \
        const T* w2, const T* b2, const T* norm_w, const T* norm_b, T* out, float* checkpoints, int interval, \
        float* last_state, float* workspace, int ws_floats, int smem_bytes, int heads, int seq_len, int F,    \
        int K, float eps) {                                                                                   \
        ttt_scan::mlp_scan<T, PLACEMENT, C>(xq, xk, xv, lr, tok, w1, b1, w2, b2, norm_w, norm_b, out,         \
                                            checkpoints, interval, last_state, workspace, ws_floats,          \
                                            smem_bytes, heads, seq_len, F, K, eps);                           \
    }
// The compile-time shapes (F, K) of the fused scan: F = 64 at K = 16 in the build's own objects;
// exactly the one shape a module compiled at run time is built for (-DTTT_SHAPE_F=…
// -DTTT_SHAPE_K=…, gpu/KernelRegistry). Any other shape runs the generic instance.
#if defined(TTT_SHAPE_F) && defined(TTT_SHAPE_K)
#define TTT_MLP_FUSED_SHAPES(X) X(TTT_SHAPE_F, TTT_SHAPE_K)
#else
#define TTT_MLP_FUSED_SHAPES(X) X(64, 16)
#endif
// Whether the build's own objects hold an instance for (F, K): the list above, for the host, which
// compiles a module for any other shape at run time (gpu/KernelRegistry).
#define TTT_MLP_FUSED_AOT(F, K) ((F) == 64 && (K) == 16)
TTT_SIZE(ttt_mlp_forward_fusedcluster2_has_instance, TTT_MLP_FUSED_AOT(F, K))
TTT_SIZE(ttt_mlp_forward_fusedcluster4_has_instance, TTT_MLP_FUSED_AOT(F, K))
TTT_SIZE(ttt_mlp_forward_fusedcluster8_has_instance, TTT_MLP_FUSED_AOT(F, K))
#define TTT_MLP_FUSED_CASE(FF, KK)                                                                              \
    if (F == (FF) && K == (KK) && blockDim.x == TTT_SCAN_THREADS) {                                            \
        ttt_scan::mlp_fused_scan<Stored, kCluster, (FF), (KK)>(xq, xk, xv, lr, tok, w1, b1, w2, b2, norm_w,    \
            norm_b, out, checkpoints, interval, last_state, ws_floats, smem_bytes, heads, seq_len, F, K, eps); \
        return;                                                                                                 \
    }
// ttt_mlp_forward_fusedcluster{2,4,8}_{f32,bf16,f16} (clusters, Hopper; elsewhere they only
// poison): mlp_fused_scan, state in shared memory (ws_floats must be 0), an instance for each
// compile-time shape above, the generic instance for the rest. The same arguments as above.
#define TTT_MLP_FUSED_ENTRY(T, S, NAME, C, DIMS)                                                              \
    extern "C" __global__ void __launch_bounds__(TTT_SCAN_THREADS, 1) DIMS ttt_mlp_forward_##NAME##_##S(      \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* w1, const T* b1,           \
        const T* w2, const T* b2, const T* norm_w, const T* norm_b, T* out, float* checkpoints, int interval, \
        float* last_state, float* workspace, int ws_floats, int smem_bytes, int heads, int seq_len, int F,    \
        int K, float eps) {                                                                                   \
        using Stored = T;                                                                                     \
        constexpr int kCluster = C;                                                                           \
        (void)workspace;                                                                                      \
        TTT_MLP_FUSED_SHAPES(TTT_MLP_FUSED_CASE)                                                              \
        ttt_scan::mlp_fused_scan<T, C, 0, 0>(xq, xk, xv, lr, tok, w1, b1, w2, b2, norm_w, norm_b, out,       \
            checkpoints, interval, last_state, ws_floats, smem_bytes, heads, seq_len, F, K, eps);            \
    }
#define TTT_MLP(T, S)                                                                       \
    TTT_MLP_ENTRY(T, S, shared, ttt_scan::kAllShared, 1, )                                  \
    TTT_MLP_ENTRY(T, S, stateglobal, ttt_scan::kStateGlobal, 1, )                           \
    TTT_MLP_ENTRY(T, S, global, ttt_scan::kAllGlobal, 1, )                                  \
    TTT_MLP_ENTRY(T, S, cluster2, ttt_scan::kAllShared, 2, TTT_CLUSTER_DIMS(2))             \
    TTT_MLP_ENTRY(T, S, cluster4, ttt_scan::kAllShared, 4, TTT_CLUSTER_DIMS(4))
#define TTT_MLP_FUSED(T, S)                                                                 \
    TTT_MLP_FUSED_ENTRY(T, S, fusedcluster2, 2, TTT_CLUSTER_DIMS(2))                        \
    TTT_MLP_FUSED_ENTRY(T, S, fusedcluster4, 4, TTT_CLUSTER_DIMS(4))                        \
    TTT_MLP_FUSED_ENTRY(T, S, fusedcluster8, 8, TTT_CLUSTER_DIMS(8))
TTT_FOR_EACH_TYPE_UNSHAPED(TTT_MLP)
TTT_FOR_EACH_TYPE(TTT_MLP_FUSED)

// TTT_SCAN_THREADS a block, one block per (batch, head) (PAIRS = batch * heads), or a cluster of
// C per (batch, head): PAIRS * C blocks. The workspace the host passes (ws_floats per (batch,
// head), PAIRS of them) holds what a placement keeps in global memory; clusters keep everything
// in shared memory.
TTT_LAUNCH(ttt_mlp_forward_shared, TTT_SCAN_THREADS, 1, PAIRS, 1, 4 * (TTT_MLP_STATE_FLOATS(F, 1) + TTT_MLP_SCRATCH_FLOATS(F, K, 1)))
TTT_LAUNCH(ttt_mlp_forward_stateglobal, TTT_SCAN_THREADS, 1, PAIRS, 1, 4 * TTT_MLP_SCRATCH_FLOATS(F, K, 1))
TTT_LAUNCH(ttt_mlp_forward_global, TTT_SCAN_THREADS, 1, PAIRS, 1, 0)
TTT_LAUNCH(ttt_mlp_forward_cluster2, TTT_SCAN_THREADS, 2, PAIRS * 2, 1, 4 * (TTT_MLP_STATE_FLOATS(F, 2) + TTT_MLP_SCRATCH_FLOATS(F, K, 2)))
TTT_LAUNCH(ttt_mlp_forward_cluster4, TTT_SCAN_THREADS, 4, PAIRS * 4, 1, 4 * (TTT_MLP_STATE_FLOATS(F, 4) + TTT_MLP_SCRATCH_FLOATS(F, K, 4)))
TTT_LAUNCH(ttt_mlp_forward_fusedcluster2, TTT_SCAN_THREADS, 2, PAIRS * 2, 1, 4 * (TTT_MLP_STATE_FLOATS(F, 2) + TTT_MLP_FUSED_SCRATCH_FLOATS(F, K, 2)))
TTT_LAUNCH(ttt_mlp_forward_fusedcluster4, TTT_SCAN_THREADS, 4, PAIRS * 4, 1, 4 * (TTT_MLP_STATE_FLOATS(F, 4) + TTT_MLP_FUSED_SCRATCH_FLOATS(F, K, 4)))
TTT_LAUNCH(ttt_mlp_forward_fusedcluster8, TTT_SCAN_THREADS, 8, PAIRS * 8, 1, 4 * (TTT_MLP_STATE_FLOATS(F, 8) + TTT_MLP_FUSED_SCRATCH_FLOATS(F, K, 8)))
TTT_SIZE(ttt_mlp_forward_shared_workspace_floats, 0)
TTT_SIZE(ttt_mlp_forward_stateglobal_workspace_floats, TTT_MLP_STATE_FLOATS(F, 1))
TTT_SIZE(ttt_mlp_forward_global_workspace_floats, TTT_MLP_STATE_FLOATS(F, 1) + TTT_MLP_SCRATCH_FLOATS(F, K, 1))
TTT_SIZE(ttt_mlp_forward_cluster2_workspace_floats, 0)
TTT_SIZE(ttt_mlp_forward_cluster4_workspace_floats, 0)
TTT_SIZE(ttt_mlp_forward_fusedcluster2_workspace_floats, 0)
TTT_SIZE(ttt_mlp_forward_fusedcluster4_workspace_floats, 0)
TTT_SIZE(ttt_mlp_forward_fusedcluster8_workspace_floats, 0)
TTT_SIZE(ttt_mlp_state_floats, TTT_MLP_PACKED_STATE_FLOATS(F))
TTT_SIZE(ttt_mlp_checkpoint_slots, TTT_MLP_CHECKPOINT_SLOTS(MB, INTERVAL))

// ================================================================ backward: the walk
// The walk: one launch for the whole sequence, one block per (batch, head), mini-batches in
// reverse (see ttt_scan_backward.h); any checkpoint interval.
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

namespace ttt_bwd {

// The layout, in floats (the descriptors below give the host the same).
// State: W1 [F][F1+4], b1 [F1], W2 [F1][F+4], b2 [F], then its gradient in the same shape.
// (Written over F1 = 4F, which the layout functions hold in a variable, as TTT_MLP_STATE_FLOATS_.)
#define TTT_MLP_BACKWARD_STATE_FLOATS_(F, F1) (2 * ((F) * ((F1) + 4) + (F1) + (F1) * ((F) + 4) + (F)))
#define TTT_MLP_BACKWARD_STATE_FLOATS(F) TTT_MLP_BACKWARD_STATE_FLOATS_(F, 4 * (F))
// Scratch: 13 matrices [K][F+4], 9 matrices [K][F1+4], 9 matrices [K][K+4], 3 vectors [K],
// 4 vectors [F], dtok [K].
#define TTT_MLP_BACKWARD_SCRATCH_FLOATS_(F, K, F1) \
    (13 * (K) * ((F) + 4) + 9 * (K) * ((F1) + 4) + 9 * (K) * ((K) + 4) + 4 * (K) + 4 * (F))
#define TTT_MLP_BACKWARD_SCRATCH_FLOATS(F, K) TTT_MLP_BACKWARD_SCRATCH_FLOATS_(F, K, 4 * (F))
// The partial of one (batch, head): the packed state's gradient, dgamma, dbeta, dtok.
#define TTT_MLP_BACKWARD_PARTIAL_FLOATS(F, K) (TTT_MLP_PACKED_STATE_FLOATS(F) + 2 * (F) + (K))
__device__ __forceinline__ int mlp_bwd_state_floats(int F) {
    const int F1 = 4 * F;
    return TTT_MLP_BACKWARD_STATE_FLOATS_(F, F1);
}
__device__ __forceinline__ int mlp_bwd_scratch_floats(int F, int K) {
    const int F1 = 4 * F;
    return TTT_MLP_BACKWARD_SCRATCH_FLOATS_(F, K, F1);
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
    const int S = 2 * F * F1 + F1 + F;      // a packed state (TTT_MLP_PACKED_STATE_FLOATS)
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
    const int slots = TTT_MLP_CHECKPOINT_SLOTS(mini_batches, interval);

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

// Entry points ttt_mlp_backward_walk_{shared,stateglobal,global}_{f32,bf16,f16}.
#define TTT_MLP_BWD_ENTRY(T, S, NAME, PLACEMENT)                                                                \
    extern "C" __global__ void __launch_bounds__(256) ttt_mlp_backward_walk_##NAME##_##S(                       \
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
TTT_FOR_EACH_TYPE_UNSHAPED(TTT_MLP_BWD)

// One block of 256 threads per (batch, head). Per (batch, head) the host passes ws_floats
// (workspace_floats) and rs_slots (recomputed_states) and allocates buffer_floats: the workspace,
// then rs_slots packed states; and partial_floats of partials (summed over the batch after).
TTT_LAUNCH(ttt_mlp_backward_walk_shared, 256, 1, PAIRS, 1, 4 * (TTT_MLP_BACKWARD_STATE_FLOATS(F) + TTT_MLP_BACKWARD_SCRATCH_FLOATS(F, K)))
TTT_LAUNCH(ttt_mlp_backward_walk_stateglobal, 256, 1, PAIRS, 1, 4 * TTT_MLP_BACKWARD_SCRATCH_FLOATS(F, K))
TTT_LAUNCH(ttt_mlp_backward_walk_global, 256, 1, PAIRS, 1, 0)
TTT_SIZE(ttt_mlp_backward_walk_shared_workspace_floats, 0)
TTT_SIZE(ttt_mlp_backward_walk_stateglobal_workspace_floats, TTT_MLP_BACKWARD_STATE_FLOATS(F))
TTT_SIZE(ttt_mlp_backward_walk_global_workspace_floats, TTT_MLP_BACKWARD_STATE_FLOATS(F) + TTT_MLP_BACKWARD_SCRATCH_FLOATS(F, K))
TTT_SIZE(ttt_mlp_backward_walk_recomputed_states, TTT_BACKWARD_RECOMPUTED_STATES(INTERVAL))
TTT_SIZE(ttt_mlp_backward_walk_shared_buffer_floats, TTT_BACKWARD_RECOMPUTED_STATES(INTERVAL) * TTT_MLP_PACKED_STATE_FLOATS(F))
TTT_SIZE(ttt_mlp_backward_walk_stateglobal_buffer_floats, TTT_MLP_BACKWARD_STATE_FLOATS(F) + TTT_BACKWARD_RECOMPUTED_STATES(INTERVAL) * TTT_MLP_PACKED_STATE_FLOATS(F))
TTT_SIZE(ttt_mlp_backward_walk_global_buffer_floats, TTT_MLP_BACKWARD_STATE_FLOATS(F) + TTT_MLP_BACKWARD_SCRATCH_FLOATS(F, K) + TTT_BACKWARD_RECOMPUTED_STATES(INTERVAL) * TTT_MLP_PACKED_STATE_FLOATS(F))
TTT_SIZE(ttt_mlp_backward_walk_partial_floats, TTT_MLP_BACKWARD_PARTIAL_FLOATS(F, K))

// ================================================================ backward: three launches at interval 1
// The backward when the forward kept every state (checkpoint interval 1), in three launches, as
// ttt_linear.hip does for TTT-Linear: the local gradients of all mini-batches at once, only the
// recurrence of the state's gradient sequential, the rest at once.
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

namespace ttt_bwd {

// The record, floats: [K][F1] packed X2, G1, Z1, P1, XB, DZB1, DG1, DX2, DZ1; [K][F] packed G2,
// ZH2, DG2, DZB2, DK, DV, DGG2; then DETA [K][K], SIG2 [K], DGB [2F]; the shared memory of the
// three launches, floats; the finish's partial of one (mini-batch, batch head): dgamma, dbeta,
// dtok. The descriptors below give the host the same.
#define TTT_MLP_BACKWARD_RECORD_FLOATS(F, K) (9 * (K) * 4 * (F) + 7 * (K) * (F) + (K) * (K) + (K) + 2 * (F))
#define TTT_MLP_BACKWARD_LOCAL_FLOATS(F, K) \
    (13 * (K) * ((F) + 4) + 9 * (K) * (4 * (F) + 4) + 11 * (K) * ((K) + 4) + 3 * (K) + 2 * (F))
// The local kernel with its nine [K][F1] arrays in the record instead (the shapes whose all-shared
// layout does not fit one block: K = 32 at F = 64, F = 96 from K = 16): the rest of the layout.
#define TTT_MLP_BACKWARD_LOCAL_INRECORD_FLOATS(F, K) (13 * (K) * ((F) + 4) + 11 * (K) * ((K) + 4) + 3 * (K) + 2 * (F))
#define TTT_MLP_BACKWARD_CHAIN_FLOATS(F, K) (13 * (K) * ((F) + 4) + 8 * (K) * (4 * (F) + 4) + 3 * (K) + 2 * (F))
#define TTT_MLP_BACKWARD_FINISH_FLOATS(F, K) ((K) * (4 * (F) + 4) + 2 * (K) + 2 * (F))
#define TTT_MLP_BACKWARD_FINISH_PARTIAL_FLOATS(F, K) (2 * (F) + (K))
__device__ __forceinline__ int mpar_record_floats(int F, int K) { return TTT_MLP_BACKWARD_RECORD_FLOATS(F, K); }
__device__ __forceinline__ int mpar_local_floats(int F, int K, bool in_record) {
    return in_record ? TTT_MLP_BACKWARD_LOCAL_INRECORD_FLOATS(F, K) : TTT_MLP_BACKWARD_LOCAL_FLOATS(F, K);
}
__device__ __forceinline__ int mpar_chain_floats(int F, int K) { return TTT_MLP_BACKWARD_CHAIN_FLOATS(F, K); }
__device__ __forceinline__ int mpar_finish_floats(int F, int K) { return TTT_MLP_BACKWARD_FINISH_FLOATS(F, K); }

enum WidePart { wX2 = 0, wG1, wZ1, wP1, wXB, wDZB1, wDG1, wDX2, wDZ1 };
enum NarrowPart { nG2 = 0, nZH2, nDG2, nDZB2, nDK, nDV, nDGG2 };

__device__ __forceinline__ float* wide(float* rec, WidePart p, int F, int K) { return rec + p * K * 4 * F; }
__device__ __forceinline__ float* narrow(float* rec, NarrowPart p, int F, int K) { return rec + 9 * K * 4 * F + p * K * F; }
__device__ __forceinline__ float* rec_deta(float* rec, int F, int K) { return rec + 9 * K * 4 * F + 7 * K * F; }

__device__ __forceinline__ float* pick4(int s, float* a, float* b, float* c, float* d) {
    return s == 0 ? a : s == 1 ? b : s == 2 ? c : d;
}

// IN_RECORD: the [K][F1] arrays live in the record (packed rows, through the caches) rather than in
// shared memory; ZB1, which the record does not keep, in the slot of dZ1, which only the chain writes.
template <typename T, bool IN_RECORD>
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
    const int S = 2 * F * F1 + F1 + F;  // TTT_MLP_PACKED_STATE_FLOATS(F)
    const long in = ((long)bh * seq_len + (long)n * K) * F;
    float* rec = records + ((long)n * pairs + bh) * mpar_record_floats(F, K);
    if (K % 4 != 0 || F % 4 != 0 || seq_len % K != 0 || 4 * mpar_local_floats(F, K, IN_RECORD) > smem_bytes
        || nt % warpSize != 0) {
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
    const int ld1 = IN_RECORD ? F1 : F1 + 4;
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
    float* wide_s = P3s + K * ld;      // the [K][ld1] arrays, unless IN_RECORD
    float* Z1 = IN_RECORD ? wide(rec, wZ1, F, K) : wide_s;
    float* X2 = IN_RECORD ? wide(rec, wX2, F, K) : wide_s + K * ld1;
    float* P1 = IN_RECORD ? wide(rec, wP1, F, K) : wide_s + 2 * K * ld1;     // G2 W2^T
    float* G1 = IN_RECORD ? wide(rec, wG1, F, K) : wide_s + 3 * K * ld1;
    float* ZB1 = IN_RECORD ? wide(rec, wDZ1, F, K) : wide_s + 4 * K * ld1;
    float* XB = IN_RECORD ? wide(rec, wXB, F, K) : wide_s + 5 * K * ld1;
    float* DXB = IN_RECORD ? wide(rec, wDZB1, F, K) : wide_s + 6 * K * ld1;  // dXB, then dZB1
    float* DX2 = IN_RECORD ? wide(rec, wDX2, F, K) : wide_s + 7 * K * ld1;
    float* DG1 = IN_RECORD ? wide(rec, wDG1, F, K) : wide_s + 8 * K * ld1;
    float* A1 = IN_RECORD ? wide_s : wide_s + 9 * K * ld1;  // [K][ldm]
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
    if (!IN_RECORD) {
        pack_rows(wide(rec, wX2, F, K), X2, K, F1, ld1);
        pack_rows(wide(rec, wG1, F, K), G1, K, F1, ld1);
        pack_rows(wide(rec, wZ1, F, K), Z1, K, F1, ld1);
        pack_rows(wide(rec, wP1, F, K), P1, K, F1, ld1);
        pack_rows(wide(rec, wXB, F, K), XB, K, F1, ld1);
        pack_rows(wide(rec, wDZB1, F, K), DZB1, K, F1, ld1);
        pack_rows(wide(rec, wDG1, F, K), DG1, K, F1, ld1);
        pack_rows(wide(rec, wDX2, F, K), DX2, K, F1, ld1);
    }
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
    const int S = 2 * F * F1 + F1 + F;  // TTT_MLP_PACKED_STATE_FLOATS(F)
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
    const int S = 2 * F * F1 + F1 + F;  // TTT_MLP_PACKED_STATE_FLOATS(F)
    const long in = ((long)bh * seq_len + (long)n * K) * F;
    float* rec = const_cast<float*>(records) + ((long)n * pairs + bh) * mpar_record_floats(F, K);
    float* part = partials + ((long)n * pairs + bh) * TTT_MLP_BACKWARD_FINISH_PARTIAL_FLOATS(F, K);  // dgamma, dbeta, dtok of this mini-batch
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

// Floats of one block's shared memory for a cluster of C (F1c = 4F / C).
#define TTT_MLP_BACKWARD_CHAIN_CLUSTER_FLOATS_(F, K, F1C)                                                     \
    (13 * (K) * ((F) + 4) + 8 * (K) * ((F1C) + 4) + (F1C) * ((F) + 4) + (F) * ((F1C) + 4) + (F1C) * ((F) + 4)  \
     + (F1C) + (F) + 3 * (K) + 2 * (F))
#define TTT_MLP_BACKWARD_CHAIN_CLUSTER_FLOATS(F, K, C) TTT_MLP_BACKWARD_CHAIN_CLUSTER_FLOATS_(F, K, 4 * (F) / (C))
__device__ __forceinline__ int mpar_cluster_chain_floats(int F, int K, int C) {
    const int F1c = 4 * F / C;
    return TTT_MLP_BACKWARD_CHAIN_CLUSTER_FLOATS_(F, K, F1c);
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
    const int S = 2 * F * F1 + F1 + F;  // TTT_MLP_PACKED_STATE_FLOATS(F)
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
#else
    // Without clusters the kernel only poisons (above): what the chain would use stays unread.
    (void)smem;
    (void)pairs;
    (void)h;
    (void)F1c;
#endif
}

}  // namespace ttt_bwd

// Entry points ttt_mlp_backward_{local,local_inrecord,chain,finish}_{f32,bf16,f16}.
#define TTT_MLP_BWD_PARALLEL(T, S)                                                                                \
    extern "C" __global__ void __launch_bounds__(256) ttt_mlp_backward_local_##S(                                  \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,       \
        const T* dout, const float* checkpoints, T* dxq, float* records, int smem_bytes, int heads, int seq_len,  \
        int F, int K, float eps) {                                                                                \
        ttt_bwd::mlp_bwd_local<T, false>(xq, xk, xv, lr, tok, norm_w, norm_b, dout, checkpoints, dxq, records,    \
                                         smem_bytes, heads, seq_len, F, K, eps);                                  \
    }                                                                                                             \
    extern "C" __global__ void __launch_bounds__(256) ttt_mlp_backward_local_inrecord_##S(                         \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,       \
        const T* dout, const float* checkpoints, T* dxq, float* records, int smem_bytes, int heads, int seq_len,  \
        int F, int K, float eps) {                                                                                \
        ttt_bwd::mlp_bwd_local<T, true>(xq, xk, xv, lr, tok, norm_w, norm_b, dout, checkpoints, dxq, records,     \
                                        smem_bytes, heads, seq_len, F, K, eps);                                   \
    }                                                                                                             \
    extern "C" __global__ void __launch_bounds__(256) ttt_mlp_backward_chain_##S(                                  \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,       \
        const float* checkpoints, float* records, float* partials, int smem_bytes, int heads, int seq_len, int F, \
        int K, float eps) {                                                                                       \
        ttt_bwd::mlp_bwd_chain<T>(xq, xk, xv, lr, tok, norm_w, norm_b, checkpoints, records, partials,            \
                                  smem_bytes, heads, seq_len, F, K, eps);                                         \
    }                                                                                                             \
    extern "C" __global__ void __launch_bounds__(256) ttt_mlp_backward_finish_##S(                                 \
        const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,                    \
        const float* checkpoints, const float* records, T* dxk, T* dxv, T* dlr, float* partials, int smem_bytes,  \
        int heads, int seq_len, int F, int K) {                                                                   \
        ttt_bwd::mlp_bwd_finish<T>(xk, xv, lr, tok, norm_w, norm_b, checkpoints, records, dxk, dxv, dlr,          \
                                   partials, smem_bytes, heads, seq_len, F, K);                                   \
    }
TTT_FOR_EACH_TYPE_UNSHAPED(TTT_MLP_BWD_PARALLEL)

// Entry points ttt_mlp_backward_chain_cluster{2,4,8}_{f32,bf16,f16}: the chain on a cluster of 2, 4
// or 8 blocks per (batch, head), for devices with clusters (the host launches B*H*C blocks);
// elsewhere they only poison. Same arguments as ttt_mlp_backward_chain.
#define TTT_MLP_BWD_CHAIN_CLUSTER(T, S, C)                                                                         \
    extern "C" __global__ void __launch_bounds__(256, 1) TTT_CLUSTER_DIMS(C) ttt_mlp_backward_chain_cluster##C##_##S(\
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,        \
        const float* checkpoints, float* records, float* partials, int smem_bytes, int heads, int seq_len, int F,  \
        int K, float eps) {                                                                                        \
        ttt_bwd::mlp_bwd_chain_cluster<T, C>(xq, xk, xv, lr, tok, norm_w, norm_b, checkpoints, records, partials,  \
                                             smem_bytes, heads, seq_len, F, K, eps);                               \
    }
#define TTT_MLP_BWD_CHAIN_CLUSTERS(T, S) \
    TTT_MLP_BWD_CHAIN_CLUSTER(T, S, 2)   \
    TTT_MLP_BWD_CHAIN_CLUSTER(T, S, 4)   \
    TTT_MLP_BWD_CHAIN_CLUSTER(T, S, 8)
TTT_FOR_EACH_TYPE_UNSHAPED(TTT_MLP_BWD_CHAIN_CLUSTERS)

// local and finish: one block per (batch, head) in x and mini-batch in y; the chains one block
// (or a cluster of C) per (batch, head), mini-batches in reverse. Between them, records
// (record_floats per (mini-batch, batch head), MB * PAIRS of them, mini-batch-major); the chain's
// partials (chain_partial_floats, the packed state's gradient, per (batch, head)) and the
// finish's (finish_partial_floats per (mini-batch, batch head), mini-batch-major) the host sums
// after.
TTT_LAUNCH(ttt_mlp_backward_local, 256, 1, PAIRS, MB, 4 * TTT_MLP_BACKWARD_LOCAL_FLOATS(F, K))
TTT_LAUNCH(ttt_mlp_backward_local_inrecord, 256, 1, PAIRS, MB, 4 * TTT_MLP_BACKWARD_LOCAL_INRECORD_FLOATS(F, K))
TTT_LAUNCH(ttt_mlp_backward_chain, 256, 1, PAIRS, 1, 4 * TTT_MLP_BACKWARD_CHAIN_FLOATS(F, K))
TTT_LAUNCH(ttt_mlp_backward_chain_cluster2, 256, 2, PAIRS * 2, 1, 4 * TTT_MLP_BACKWARD_CHAIN_CLUSTER_FLOATS(F, K, 2))
TTT_LAUNCH(ttt_mlp_backward_chain_cluster4, 256, 4, PAIRS * 4, 1, 4 * TTT_MLP_BACKWARD_CHAIN_CLUSTER_FLOATS(F, K, 4))
TTT_LAUNCH(ttt_mlp_backward_chain_cluster8, 256, 8, PAIRS * 8, 1, 4 * TTT_MLP_BACKWARD_CHAIN_CLUSTER_FLOATS(F, K, 8))
TTT_LAUNCH(ttt_mlp_backward_finish, 256, 1, PAIRS, MB, 4 * TTT_MLP_BACKWARD_FINISH_FLOATS(F, K))
TTT_SIZE(ttt_mlp_backward_record_floats, TTT_MLP_BACKWARD_RECORD_FLOATS(F, K))
TTT_SIZE(ttt_mlp_backward_chain_partial_floats, TTT_MLP_PACKED_STATE_FLOATS(F))
TTT_SIZE(ttt_mlp_backward_finish_partial_floats, TTT_MLP_BACKWARD_FINISH_PARTIAL_FLOATS(F, K))

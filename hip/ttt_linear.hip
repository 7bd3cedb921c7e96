// The TTT-Linear inner scan (SPEC §3 step 4): one launch for the whole sequence, one block
// per (batch, head), the state W [F, F], b [F] kept in float32 across all mini-batches.
//
// Per mini-batch, with eta[i][j] = tok[i] lr[j] for j <= i and eta_last[j] = eta[K-1][j]:
//   A: Z = K W + b, ZB = Q W + b, NM = -eta o (tril(Q K^T) + 1) (both eta terms of Zb folded
//      into one matrix); the target V - K; the next mini-batch's loads are issued
// Each phase gives every thread the same share (one tile of each product, one element of the
// small [K, K] products), so that no warp runs alone while the others wait at the barrier.
//   B: G = lnL2grad(Z, V - K) in place, EG = eta_last o G
//   C: ZB += NM G;  W -= K^T EG;  b -= sum_j EG_j
//   D: out = Q + LN(ZB); the next mini-batch's inputs land in the other input buffer
// Four barriers per mini-batch: the inputs are double-buffered, so writing the next ones
// needs no barrier of its own.
#include "ttt_scan.h"

namespace ttt_scan {

// The layout, in floats; InnerScanLayout in GpuBackend mirrors these formulas.
__device__ __forceinline__ int linear_state_floats(int F) { return F * (F + 4) + F; }
__device__ __forceinline__ int linear_scratch_floats(int F, int K) {
    return 9 * K * (F + 4) + K * (K + 4) + 3 * K + 2 * F;
}

template <typename T, int PLACEMENT>
__device__ void linear_scan(const T* __restrict__ xq, const T* __restrict__ xk, const T* __restrict__ xv,
                            const T* __restrict__ lr, const T* __restrict__ tok, const T* __restrict__ w1,
                            const T* __restrict__ b1, const T* __restrict__ norm_w, const T* __restrict__ norm_b,
                            T* __restrict__ out, float* __restrict__ checkpoints, int interval,
                            float* __restrict__ last_state, float* workspace, int ws_floats, int smem_bytes,
                            int heads, int seq_len, int F, int K, float eps) {
    TTT_DYNAMIC_SHARED(smem);
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
    if (K % 4 != 0 || F % 4 != 0 || F > kRowElems * warpSize || seq_len % K != 0 || need_smem > smem_bytes
        || need_ws != ws_floats) {
        poison_output(out_bh, seq_len, dim, F);
        return;
    }
    float* ws = workspace + (long)bh * ws_floats;
    float* state = PLACEMENT == kAllShared ? smem : ws;
    float* scratch = PLACEMENT == kAllShared ? smem + state_floats : PLACEMENT == kStateGlobal ? smem : ws + state_floats;

    const int ld = F + 4;
    const int ldm = K + 4;
    const int in_set = 3 * K * ld;  // Q, K, V of one mini-batch
    float* W = state;                  // [F][ld]
    float* bias = W + F * ld;          // [F]
    float* inputs = scratch;           // two sets of Q, K, V [K][ld]
    float* lr_sets = inputs + 2 * in_set;  // two sets of [K]
    float* Zs = lr_sets + 2 * K;       // [K][ld] Z, then G
    float* EG = Zs + K * ld;           // [K][ld]
    float* ZB = EG + K * ld;           // [K][ld]
    float* NM = ZB + K * ld;           // [K][ldm]
    float* tok_s = NM + K * ldm;       // [K]
    float* gam = tok_s + K;            // [F]
    float* bet = gam + F;              // [F]

    unpack_rows(W, ld, w1 + (long)h * F * F, F, F, F);
    load_vector(bias, b1 + (long)h * F, F);
    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    load_vector(tok_s, tok, K);

    const RowGroups rg(K, F);
    const int state_size = F * F + F;
    const int mini_batches = seq_len / K;
    const long in_bh = (long)bh * seq_len * F;
    const T* lr_bh = lr + (long)bh * seq_len;
    MiniBatchLoader<T> loader(K, F);
    loader.load(xq + in_bh, xk + in_bh, xv + in_bh, lr_bh, inputs, inputs + K * ld, inputs + 2 * K * ld, lr_sets,
                K, F, ld);
    __syncthreads();
    TTT_PHASE_START;

    const int tiles_f2 = (K / 2) * (F / 4); // 2x4 tiles of [K, F]
    const int tiles_f1 = K * (F / 4);       // 1x4 tiles of [K, F]
    const int tiles_w = (F / 4) * (F / 4);  // 4x4 tiles of [F, F]

    for (int n = 0; n < mini_batches; ++n) {
        const int set = n & 1;
        float* Qs = inputs + set * in_set;
        float* Ks = Qs + K * ld;
        float* Ts = Ks + K * ld;
        const float* lr_s = lr_sets + set * K;
        const bool more = n + 1 < mini_batches;
        const long next = in_bh + (long)(n + 1) * K * F;
        if (more && loader.staged) loader.issue(xq + next, xk + next, xv + next, lr_bh + (n + 1) * K, K);
        if (checkpoints != nullptr && n % interval == 0) {
            float* dst = checkpoints + ((long)(n / interval) * gridDim.x + bh) * state_size;
            pack_rows(dst, F, W, F, F, ld);
            pack_rows(dst + F * F, F, bias, 1, F, F);
        }

        // A: Z = K W + b and ZB = Q W + b (old W, old b); NM from Q K^T; the target V - K.
        for (int u = tid; u < 2 * tiles_f2; u += nt) {
            const bool query = u >= tiles_f2;
            const Tile<false, 2> t(query ? u - tiles_f2 : u, K, F);
            float acc[2][4];
            zero(acc);
            tile_mma<false, false, 2>(acc, query ? Qs : Ks, ld, t.r0, t.rs, W, ld, t.c0, 0, F);
            float* C = query ? ZB : Zs;
#pragma unroll
            for (int r = 0; r < 2; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) acc[r][c] += bias[t.c0 + c];
                store4(C + t.row(r) * ld + t.c0, acc[r]);
            }
        }
        eta_attention(NM, ldm, Qs, ld, Ks, ld, F, tok_s, lr_s, K);
        rows_axpy(Ts, Ks, K, F, ld);
        __syncthreads();
        TTT_PHASE(0);

        // B: G in place of Z, EG = eta_last G.
        {
            const float tok_last = tok_s[K - 1];
            for (int base = 0; base < K; base += rg.groups) {
                const int i = base + rg.group;
                const bool active = i < K;
                const int row = active ? i : 0;
                ln_l2_grad_row(rg, active, Zs + row * ld, Ts + row * ld, gam, bet, F, eps, EG + row * ld,
                               tok_last * lr_s[row]);
            }
        }
        __syncthreads();
        TTT_PHASE(1);

        // C: ZB += NM G; W -= K^T EG; b -= sum_j EG_j.
        for (int u = tid; u < tiles_f1 + tiles_w; u += nt) {
            if (u < tiles_f1) {
                const Tile<false, 1> t(u, K, F);
                float acc[1][4];
                zero(acc);
                tile_mma<false, false, 1>(acc, NM, ldm, t.r0, t.rs, Zs, ld, t.c0, 0, K);
                add4(ZB + t.row(0) * ld + t.c0, acc[0]);
            } else {
                const Tile<true, 4> t(u - tiles_f1, F, F);
                float acc[4][4];
                zero(acc);
                tile_mma<true, false, 4>(acc, Ks, ld, t.r0, t.rs, EG, ld, t.c0, 0, K);
#pragma unroll
                for (int r = 0; r < 4; ++r) sub4(W + t.row(r) * ld + t.c0, acc[r]);
            }
        }
        for (int f = tid; f < F; f += nt) {
            float s = 0.0f;
            for (int j = 0; j < K; ++j) s += EG[j * ld + f];
            bias[f] -= s;
        }
        __syncthreads();
        TTT_PHASE(2);

        // D: out = Q + LN(ZB); the next inputs go to the other set, which nothing reads now.
        for (int base = 0; base < K; base += rg.groups) {
            const int i = base + rg.group;
            const bool active = i < K;
            const int row = active ? i : 0;
            ln_out_row(rg, active, ZB + row * ld, Qs + row * ld, gam, bet, F, eps, out_bh + (long)(n * K + row) * dim);
        }
        if (more) {
            float* nq = inputs + (set ^ 1) * in_set;
            float* nlr = lr_sets + (set ^ 1) * K;
            if (loader.staged) {
                loader.retire(nq, nq + K * ld, nq + 2 * K * ld, nlr, K, F, ld);
            } else {
                loader.load(xq + next, xk + next, xv + next, lr_bh + (n + 1) * K, nq, nq + K * ld, nq + 2 * K * ld,
                            nlr, K, F, ld);
            }
        }
        __syncthreads();
        TTT_PHASE(3);
    }
    if (last_state != nullptr) {
        float* dst = last_state + (long)bh * state_size;
        pack_rows(dst, F, W, F, F, ld);
        pack_rows(dst + F * F, F, bias, 1, F, F);
    }
}

// The layout of one block of a cluster of C, in floats (InnerScanLayout mirrors it).
__device__ __forceinline__ int linear_cluster_state_floats(int F, int C) { return F * (F / C + 4) + F / C; }
__device__ __forceinline__ int linear_cluster_scratch_floats(int F, int K, int C) {
    return 10 * K * (F + 4) + 3 * K * (F / C + 4) + K * (K + 4) + 3 * K + 2 * F;
}

// TTT-Linear on a cluster of C blocks per (batch, head) (Hopper): block r owns columns
// [r F/C, (r+1) F/C) of W and b and computes those columns of Z and ZB; the rows that need all
// of F (lnL2grad, the output LayerNorm) gather them from the cluster's shared memory. Phases as
// in linear_scan, with cluster barriers where the columns are exchanged:
//   A: NM (all of it), Z and ZB (own columns), V - K          [cluster barrier: Z published]
//   B: Z rows gathered, G = lnL2grad in place, EG
//   C: ZB += NM G, W -= K^T EG, b -= sum EG (own columns)     [cluster barrier: ZB published]
//   D: out = Q + LN(ZB) for rows rank, rank + C, ..., ZB gathered
// ZB is double-buffered by mini-batch parity: a block may write the next mini-batch's ZB while
// another still reads this one's.
template <typename T, int C>
__device__ void linear_cluster_scan(const T* __restrict__ xq, const T* __restrict__ xk, const T* __restrict__ xv,
                                    const T* __restrict__ lr, const T* __restrict__ tok, const T* __restrict__ w1,
                                    const T* __restrict__ b1, const T* __restrict__ norm_w,
                                    const T* __restrict__ norm_b, T* __restrict__ out, float* __restrict__ checkpoints,
                                    int interval, float* __restrict__ last_state, int smem_bytes, int heads,
                                    int seq_len, int F, int K, float eps) {
    const int bh = blockIdx.x / C;
    const int h = bh % heads;
    const int b = bh / heads;
    const int dim = heads * F;
    const int Fc = F / C;
    T* out_bh = out + (long)b * seq_len * dim + (long)h * F;
    const int state_floats = linear_cluster_state_floats(F, C);
    const int need_smem = 4 * (state_floats + linear_cluster_scratch_floats(F, K, C));
    // Every block of a cluster sees the same arguments, so all return here or none does.
    if (K % 4 != 0 || Fc % 4 != 0 || F > kRowElems * warpSize || seq_len % K != 0 || need_smem > smem_bytes
        || !TTT_HAS_CLUSTERS) {
        poison_output(out_bh, seq_len, dim, F);
        return;
    }
#if TTT_HAS_CLUSTERS
    TTT_DYNAMIC_SHARED(smem);
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    const int rank = ttt_cluster_rank();
    const int coff = rank * Fc;
    const int ld = F + 4;
    const int ldc = Fc + 4;
    const int ldm = K + 4;
    const int in_set = 3 * K * ld;
    float* W = smem;                    // [F][ldc]  columns coff .. coff + Fc
    float* bias = W + F * ldc;          // [Fc]
    float* inputs = smem + state_floats;  // two sets of Q, K, V [K][ld]
    float* lr_sets = inputs + 2 * in_set;  // two sets of [K]
    float* Zf = lr_sets + 2 * K;        // [K][ld] Z gathered, then G
    float* EG = Zf + K * ld;            // [K][ld]
    float* ZBrow = EG + K * ld;         // [K][ld] ZB rows gathered for the output
    float* Zc = ZBrow + K * ld;         // [K][ldc] own columns of Z
    float* ZBc = Zc + K * ldc;          // two sets of [K][ldc] own columns of ZB
    float* NM = ZBc + 2 * K * ldc;      // [K][ldm]
    float* tok_s = NM + K * ldm;        // [K]
    float* gam = tok_s + K;             // [F]
    float* bet = gam + F;               // [F]

    unpack_rows(W, ldc, w1 + (long)h * F * F + coff, F, F, Fc);
    load_vector(bias, b1 + (long)h * F + coff, Fc);
    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    load_vector(tok_s, tok, K);

    const RowGroups rg(K, F);
    const int state_size = F * F + F;
    const int mini_batches = seq_len / K;
    const long in_bh = (long)bh * seq_len * F;
    const T* lr_bh = lr + (long)bh * seq_len;
    MiniBatchLoader<T> loader(K, F);
    loader.load(xq + in_bh, xk + in_bh, xv + in_bh, lr_bh, inputs, inputs + K * ld, inputs + 2 * K * ld, lr_sets,
                K, F, ld);
    __syncthreads();
    TTT_PHASE_START;

    const int tiles_c = (K / 2) * (Fc / 4);   // 2x4 tiles of [K, Fc]
    const int tiles_c1 = K * (Fc / 4);        // 1x4 tiles of [K, Fc]
    const int tiles_w = (F / 4) * (Fc / 4);   // 4x4 tiles of [F, Fc]

    for (int n = 0; n < mini_batches; ++n) {
        const int set = n & 1;
        float* Qs = inputs + set * in_set;
        float* Ks = Qs + K * ld;
        float* Ts = Ks + K * ld;
        const float* lr_s = lr_sets + set * K;
        float* ZB = ZBc + set * K * ldc;
        const bool more = n + 1 < mini_batches;
        const long next = in_bh + (long)(n + 1) * K * F;
        if (more && loader.staged) loader.issue(xq + next, xk + next, xv + next, lr_bh + (n + 1) * K, K);
        if (checkpoints != nullptr && n % interval == 0) {
            float* dst = checkpoints + ((long)(n / interval) * (gridDim.x / C) + bh) * state_size;
            pack_rows(dst + coff, F, W, F, Fc, ldc);
            pack_rows(dst + F * F + coff, Fc, bias, 1, Fc, Fc);
        }

        // A: own columns of Z = K W + b and ZB = Q W + b; NM (all of it); the target V - K.
        for (int u = tid; u < 2 * tiles_c; u += nt) {
            const bool query = u >= tiles_c;
            const Tile<false, 2> t(query ? u - tiles_c : u, K, Fc);
            float acc[2][4];
            zero(acc);
            tile_mma<false, false, 2>(acc, query ? Qs : Ks, ld, t.r0, t.rs, W, ldc, t.c0, 0, F);
            float* Cm = query ? ZB : Zc;
#pragma unroll
            for (int r = 0; r < 2; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) acc[r][c] += bias[t.c0 + c];
                store4(Cm + t.row(r) * ldc + t.c0, acc[r]);
            }
        }
        eta_attention(NM, ldm, Qs, ld, Ks, ld, F, tok_s, lr_s, K);
        rows_axpy(Ts, Ks, K, F, ld);
        ttt_cluster_sync();
        TTT_PHASE(0);

        // B: Z rows gathered from their owners; G in place; EG = eta_last G.
        {
            const float tok_last = tok_s[K - 1];
            for (int base = 0; base < K; base += rg.groups) {
                const int i = base + rg.group;
                const bool active = i < K;
                const int row = active ? i : 0;
                if (active) {
                    for (int f = rg.lane; f < F; f += rg.g) {
                        const int q = f / Fc;
                        Zf[row * ld + f] = ttt_cluster_map(Zc, q)[row * ldc + f - q * Fc];
                    }
                }
                ln_l2_grad_row(rg, active, Zf + row * ld, Ts + row * ld, gam, bet, F, eps, EG + row * ld,
                               tok_last * lr_s[row]);
            }
        }
        __syncthreads();
        TTT_PHASE(1);

        // C: own columns: ZB += NM G; W -= K^T EG; b -= sum EG.
        for (int u = tid; u < tiles_c1 + tiles_w; u += nt) {
            if (u < tiles_c1) {
                const Tile<false, 1> t(u, K, Fc);
                float acc[1][4];
                zero(acc);
                tile_mma<false, false, 1>(acc, NM, ldm, t.r0, t.rs, Zf + coff, ld, t.c0, 0, K);
                add4(ZB + t.row(0) * ldc + t.c0, acc[0]);
            } else {
                const Tile<true, 4> t(u - tiles_c1, F, Fc);
                float acc[4][4];
                zero(acc);
                tile_mma<true, false, 4>(acc, Ks, ld, t.r0, t.rs, EG + coff, ld, t.c0, 0, K);
#pragma unroll
                for (int r = 0; r < 4; ++r) sub4(W + t.row(r) * ldc + t.c0, acc[r]);
            }
        }
        for (int f = tid; f < Fc; f += nt) {
            float s = 0.0f;
            for (int j = 0; j < K; ++j) s += EG[j * ld + coff + f];
            bias[f] -= s;
        }
        ttt_cluster_sync();
        TTT_PHASE(2);

        // D: out = Q + LN(ZB) for rows rank, rank + C, ..., ZB gathered; the next inputs.
        {
            const int rows = (K - rank + C - 1) / C;
            for (int base = 0; base < rows; base += rg.groups) {
                const int li = base + rg.group;
                const bool active = li < rows;
                const int row = active ? rank + li * C : 0;
                if (active) {
                    for (int f = rg.lane; f < F; f += rg.g) {
                        const int q = f / Fc;
                        ZBrow[row * ld + f] = ttt_cluster_map(ZB, q)[row * ldc + f - q * Fc];
                    }
                }
                ln_out_row(rg, active, ZBrow + row * ld, Qs + row * ld, gam, bet, F, eps,
                           out_bh + (long)(n * K + row) * dim);
            }
        }
        if (more) {
            float* nq = inputs + (set ^ 1) * in_set;
            float* nlr = lr_sets + (set ^ 1) * K;
            if (loader.staged) {
                loader.retire(nq, nq + K * ld, nq + 2 * K * ld, nlr, K, F, ld);
            } else {
                loader.load(xq + next, xk + next, xv + next, lr_bh + (n + 1) * K, nq, nq + K * ld, nq + 2 * K * ld,
                            nlr, K, F, ld);
            }
        }
        __syncthreads();
        TTT_PHASE(3);
    }
    if (last_state != nullptr) {
        float* dst = last_state + (long)bh * state_size;
        pack_rows(dst + coff, F, W, F, Fc, ldc);
        pack_rows(dst + F * F + coff, Fc, bias, 1, Fc, Fc);
    }
    // No block may leave while another can still read its shared memory.
    ttt_cluster_sync();
#endif
}

// The layout of the fused schedule below, in floats (InnerScanLayout mirrors it): ZB is
// double-buffered, so one more [K][ld] than linear_scan.
__device__ __forceinline__ int linear_fused_scratch_floats(int F, int K) {
    return 10 * K * (F + 4) + K * (K + 4) + 3 * K + 2 * F;
}

// TTT-Linear with three barriers a mini-batch instead of four, state and scratch in shared
// memory. The output rows of a mini-batch need only its ZB and Q, so they are computed in the
// next mini-batch's first phase, beside its products; the [K, K] matrix NM needs only the
// inputs, so it moves to the lnL2grad phase, whose row reductions leave the multiply-add units
// idle; the next inputs land there too, with the target V - K formed as they land.
//   P: Z = K W + b, ZB[n&1] = Q W + b; out rows of mini-batch n-1 from ZB[(n-1)&1]; next loads issued
//   B: G = lnL2grad(Z, V - K) in place, EG = eta_last o G; NM = -eta o (tril(Q K^T) + 1);
//      the next inputs retired into the other input set (its last reader was P's output rows)
//   C: ZB += NM G;  W -= K^T EG;  b -= sum_j EG_j
// FF, KK > 0 fix F and K at compile time (and the block at TTT_SCAN_THREADS threads); 0 takes
// them from the arguments, for the shapes without an instance of their own. QB moves ZB = Q W + b
// (the old W, which C updates) from P to B, with 1x4 tiles in both, so that P holds only K W:
// the two schedules balance the phases differently, and only a measurement tells which is faster.
template <typename T, int FF, int KK, bool QB = false>
__device__ void linear_fused_scan(const T* __restrict__ xq, const T* __restrict__ xk, const T* __restrict__ xv,
                                  const T* __restrict__ lr, const T* __restrict__ tok, const T* __restrict__ w1,
                                  const T* __restrict__ b1, const T* __restrict__ norm_w, const T* __restrict__ norm_b,
                                  T* __restrict__ out, float* __restrict__ checkpoints, int interval,
                                  float* __restrict__ last_state, int ws_floats, int smem_bytes, int heads,
                                  int seq_len, int F_arg, int K_arg, float eps) {
    constexpr int kNt = TTT_SCAN_THREADS;
    // Row work of the fixed shapes: one group of G = TTT_SCAN_THREADS / K lanes per row, all rows
    // at once, F a multiple of G; a shape (or thread count) where that fails runs generically.
    constexpr int kKK = KK > 0 ? KK : 1;
    constexpr int kG0 = kNt / kKK;
    constexpr bool kFixed = FF > 0 && KK > 0 && kNt % kKK == 0 && kG0 > 0 && (kG0 & (kG0 - 1)) == 0
                            && FF % kG0 == 0 && FF / kG0 <= kRowElems;
    constexpr int kG = kFixed ? kG0 : 1;
    constexpr int kE = kFixed ? FF / kG0 : 1;
    TTT_DYNAMIC_SHARED(smem);
    const int F = kFixed ? FF : F_arg;
    const int K = kFixed ? KK : K_arg;
    const int nt = kFixed ? kNt : (int)blockDim.x;
    const int tid = threadIdx.x;
    const int bh = blockIdx.x;
    const int h = bh % heads;
    const int b = bh / heads;
    const int dim = heads * F_arg;
    T* out_bh = out + (long)b * seq_len * dim + (long)h * F_arg;

    const int state_floats = linear_state_floats(F);
    const int need_smem = 4 * (state_floats + linear_fused_scratch_floats(F, K));
    if ((kFixed && (F_arg != FF || K_arg != KK || (int)blockDim.x != kNt || kG > warpSize)) || K % 4 != 0
        || F % 4 != 0 || F > kRowElems * warpSize || seq_len % K != 0 || need_smem > smem_bytes || ws_floats != 0) {
        poison_output(out_bh, seq_len, dim, F_arg);
        return;
    }

    const int ld = F + 4;
    const int ldm = K + 4;
    const int in_set = 3 * K * ld;     // Q, K, V - K of one mini-batch
    float* W = smem;                   // [F][ld]
    float* bias = W + F * ld;          // [F]
    float* inputs = smem + state_floats;   // two sets of Q, K, V - K [K][ld]
    float* lr_sets = inputs + 2 * in_set;  // two sets of [K]
    float* Zs = lr_sets + 2 * K;       // [K][ld] Z, then G
    float* EG = Zs + K * ld;           // [K][ld]
    float* ZBs = EG + K * ld;          // two sets of [K][ld]
    float* NM = ZBs + 2 * K * ld;      // [K][ldm]
    float* tok_s = NM + K * ldm;       // [K]
    float* gam = tok_s + K;            // [F]
    float* bet = gam + F;              // [F]

    unpack_rows(W, ld, w1 + (long)h * F * F, F, F, F);
    load_vector(bias, b1 + (long)h * F, F);
    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    load_vector(tok_s, tok, K);

    const int state_size = F * F + F;
    const int mini_batches = seq_len / K;
    const long in_bh = (long)bh * seq_len * F;
    const T* lr_bh = lr + (long)bh * seq_len;
    // The generic shapes stage V as it is and subtract K in phase P (rows_axpy).
    MiniBatchLoader<T> loader(K, F);
    FixedLoader<T, kFixed ? FF : 4 * (int)(16 / sizeof(T)), kFixed ? KK : 4, kNt> fixed_loader;
    if constexpr (kFixed) {
        fixed_loader.issue(xq + in_bh, xk + in_bh, xv + in_bh, lr_bh);
        fixed_loader.retire(inputs, inputs + K * ld, inputs + 2 * K * ld, lr_sets, ld);
    } else {
        loader.load(xq + in_bh, xk + in_bh, xv + in_bh, lr_bh, inputs, inputs + K * ld, inputs + 2 * K * ld,
                    lr_sets, K, F, ld);
    }
    __syncthreads();
    TTT_PHASE_START;

    const int tiles_f2 = (K / 2) * (F / 4);  // 2x4 tiles of [K, F]
    const int tiles_f1 = K * (F / 4);        // 1x4 tiles of [K, F]
    const int tiles_w = (F / 4) * (F / 4);   // 4x4 tiles of [F, F]
    const RowGroups rg(K, F);
    const FixedRows<kG, kE> frows;
    // Cm = A W + b over [K, F], 1x4 tiles.
    auto rows_times_w = [&](const float* A, float* Cm) {
        for (int u = tid; u < tiles_f1; u += nt) {
            const Tile<false, 1> t(u, K, F);
            float acc[1][4];
            zero(acc);
            if constexpr (kFixed) {
                tile_mma_fixed<false, false, 1, FF>(acc, A, ld, t.r0, t.rs, W, ld, t.c0);
            } else {
                tile_mma<false, false, 1>(acc, A, ld, t.r0, t.rs, W, ld, t.c0, 0, F);
            }
#pragma unroll
            for (int c = 0; c < 4; ++c) acc[0][c] += bias[t.c0 + c];
            store4(Cm + t.row(0) * ld + t.c0, acc[0]);
        }
    };

    for (int n = 0; n < mini_batches; ++n) {
        const int set = n & 1;
        float* Qs = inputs + set * in_set;
        float* Ks = Qs + K * ld;
        float* Ts = Ks + K * ld;
        const float* lr_s = lr_sets + set * K;
        float* ZB = ZBs + set * K * ld;
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
            float* dst = checkpoints + ((long)(n / interval) * gridDim.x + bh) * state_size;
            pack_rows(dst, F, W, F, F, ld);
            pack_rows(dst + F * F, F, bias, 1, F, F);
        }

        // P: Z = K W + b and ZB = Q W + b (or, with QB, only Z); the output rows of the previous
        // mini-batch.
        if constexpr (QB) rows_times_w(Ks, Zs);
        for (int u = tid; u < (QB ? 0 : 2 * tiles_f2); u += nt) {
            const bool query = u >= tiles_f2;
            const Tile<false, 2> t(query ? u - tiles_f2 : u, K, F);
            float acc[2][4];
            zero(acc);
            if constexpr (kFixed) {
                tile_mma_fixed<false, false, 2, FF>(acc, query ? Qs : Ks, ld, t.r0, t.rs, W, ld, t.c0);
            } else {
                tile_mma<false, false, 2>(acc, query ? Qs : Ks, ld, t.r0, t.rs, W, ld, t.c0, 0, F);
            }
            float* C = query ? ZB : Zs;
#pragma unroll
            for (int r = 0; r < 2; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) acc[r][c] += bias[t.c0 + c];
                store4(C + t.row(r) * ld + t.c0, acc[r]);
            }
        }
        if (n > 0) {
            const float* pq = inputs + (set ^ 1) * in_set;
            const float* pzb = ZBs + (set ^ 1) * K * ld;
            T* prev_out = out_bh + (long)(n - 1) * K * dim;
            if constexpr (kFixed) {
                const int row = frows.group;
                ln_out_fixed<T, kG, kE>(frows, pzb + row * ld, pq + row * ld, gam, bet, eps, prev_out + (long)row * dim);
            } else {
                for (int base = 0; base < K; base += rg.groups) {
                    const int i = base + rg.group;
                    const bool active = i < K;
                    const int row = active ? i : 0;
                    ln_out_row(rg, active, pzb + row * ld, pq + row * ld, gam, bet, F, eps, prev_out + (long)row * dim);
                }
            }
        }
        if constexpr (!kFixed) rows_axpy(Ts, Ks, K, F, ld);
        __syncthreads();
        TTT_PHASE(0);

        // B: G in place of Z, EG = eta_last G; NM; the next inputs into the other set; with QB,
        // ZB = Q W + b.
        if constexpr (QB) rows_times_w(Qs, ZB);
        {
            const float tok_last = tok_s[K - 1];
            if constexpr (kFixed) {
                const int row = frows.group;
                ln_l2_grad_fixed<kG, kE>(frows, Zs + row * ld, Ts + row * ld, gam, bet, eps, EG + row * ld,
                                         tok_last * lr_s[row]);
#pragma unroll
                for (int c = 0; c < (KK * KK + kNt - 1) / kNt; ++c) {
                    const int e = tid + c * kNt;
                    if (KK * KK % kNt != 0 && e >= KK * KK) break;
                    const int i = e / KK;
                    const int j = e % KK;
                    NM[i * ldm + j] = j <= i ? -tok_s[i] * lr_s[j] * (dot_fixed<FF>(Qs + i * ld, Ks + j * ld) + 1.0f)
                                             : 0.0f;
                }
            } else {
                for (int base = 0; base < K; base += rg.groups) {
                    const int i = base + rg.group;
                    const bool active = i < K;
                    const int row = active ? i : 0;
                    ln_l2_grad_row(rg, active, Zs + row * ld, Ts + row * ld, gam, bet, F, eps, EG + row * ld,
                                   tok_last * lr_s[row]);
                }
                eta_attention(NM, ldm, Qs, ld, Ks, ld, F, tok_s, lr_s, K);
            }
        }
        if (more) {
            float* nq = inputs + (set ^ 1) * in_set;
            float* nlr = lr_sets + (set ^ 1) * K;
            if constexpr (kFixed) {
                fixed_loader.retire(nq, nq + K * ld, nq + 2 * K * ld, nlr, ld);
            } else if (loader.staged) {
                loader.retire(nq, nq + K * ld, nq + 2 * K * ld, nlr, K, F, ld);
            } else {
                loader.load(xq + next, xk + next, xv + next, lr_bh + (n + 1) * K, nq, nq + K * ld, nq + 2 * K * ld,
                            nlr, K, F, ld);
            }
        }
        __syncthreads();
        TTT_PHASE(1);

        // C: ZB += NM G; W -= K^T EG; b -= sum_j EG_j.
        for (int u = tid; u < tiles_f1 + tiles_w; u += nt) {
            if (u < tiles_f1) {
                const Tile<false, 1> t(u, K, F);
                float acc[1][4];
                zero(acc);
                if constexpr (kFixed) {
                    tile_mma_fixed<false, false, 1, KK>(acc, NM, ldm, t.r0, t.rs, Zs, ld, t.c0);
                } else {
                    tile_mma<false, false, 1>(acc, NM, ldm, t.r0, t.rs, Zs, ld, t.c0, 0, K);
                }
                add4(ZB + t.row(0) * ld + t.c0, acc[0]);
            } else {
                const Tile<true, 4> t(u - tiles_f1, F, F);
                float acc[4][4];
                zero(acc);
                if constexpr (kFixed) {
                    tile_mma_fixed<true, false, 4, KK>(acc, Ks, ld, t.r0, t.rs, EG, ld, t.c0);
                } else {
                    tile_mma<true, false, 4>(acc, Ks, ld, t.r0, t.rs, EG, ld, t.c0, 0, K);
                }
#pragma unroll
                for (int r = 0; r < 4; ++r) sub4(W + t.row(r) * ld + t.c0, acc[r]);
            }
        }
        for (int f = tid; f < F; f += nt) {
            float s = 0.0f;
            for (int j = 0; j < K; ++j) s += EG[j * ld + f];
            bias[f] -= s;
        }
        __syncthreads();
        TTT_PHASE(2);
    }

    // The last mini-batch's output rows.
    {
        const int set = (mini_batches - 1) & 1;
        const float* pq = inputs + set * in_set;
        const float* pzb = ZBs + set * K * ld;
        T* last_out = out_bh + (long)(mini_batches - 1) * K * dim;
        if constexpr (kFixed) {
            const int row = frows.group;
            ln_out_fixed<T, kG, kE>(frows, pzb + row * ld, pq + row * ld, gam, bet, eps, last_out + (long)row * dim);
        } else {
            for (int base = 0; base < K; base += rg.groups) {
                const int i = base + rg.group;
                const bool active = i < K;
                const int row = active ? i : 0;
                ln_out_row(rg, active, pzb + row * ld, pq + row * ld, gam, bet, F, eps, last_out + (long)row * dim);
            }
        }
    }
    if (last_state != nullptr) {
        float* dst = last_state + (long)bh * state_size;
        pack_rows(dst, F, W, F, F, ld);
        pack_rows(dst + F * F, F, bias, 1, F, F);
    }
}

}  // namespace ttt_scan

// Entry points ttt_linear_{shared,stateglobal,global}_{f32,bf16,f16}, for blocks of at most 256
// threads: the tiles and the prefetched next mini-batch need more than 128 registers a thread.
#define TTT_LINEAR_ENTRY(T, S, NAME, PLACEMENT)                                                               \
    extern "C" __global__ void __launch_bounds__(TTT_SCAN_THREADS, 1) ttt_linear_##NAME##_##S(                                \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* w1, const T* b1,           \
        const T* norm_w, const T* norm_b, T* out, float* checkpoints, int interval, float* last_state,        \
        float* workspace, int ws_floats, int smem_bytes, int heads, int seq_len, int F, int K, float eps) {    \
        ttt_scan::linear_scan<T, PLACEMENT>(xq, xk, xv, lr, tok, w1, b1, norm_w, norm_b, out, checkpoints,    \
                                            interval, last_state, workspace, ws_floats, smem_bytes, heads,    \
                                            seq_len, F, K, eps);                                              \
    }
// ttt_linear_cluster{2,4}_{f32,bf16,f16}: a cluster of 2 or 4 blocks per (batch, head), for
// devices with clusters (the host launches B*H*C blocks); elsewhere they only poison. The
// argument list is the same as above; the workspace is unused.
#define TTT_LINEAR_CLUSTER_ENTRY(T, S, C)                                                                     \
    extern "C" __global__ void __launch_bounds__(TTT_SCAN_THREADS, 1) TTT_CLUSTER_DIMS(C) ttt_linear_cluster##C##_##S(     \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* w1, const T* b1,           \
        const T* norm_w, const T* norm_b, T* out, float* checkpoints, int interval, float* last_state,        \
        float* workspace, int ws_floats, int smem_bytes, int heads, int seq_len, int F, int K, float eps) {    \
        ttt_scan::linear_cluster_scan<T, C>(xq, xk, xv, lr, tok, w1, b1, norm_w, norm_b, out, checkpoints,    \
                                            interval, last_state, smem_bytes, heads, seq_len, F, K, eps);     \
    }
// ttt_linear_fused_{f32,bf16,f16} and ttt_linear_fusedqb_{...} (Q W in phase B):
// linear_fused_scan, state in shared memory (the workspace is unused: ws_floats must be 0), an
// instance with compile-time F and K for the common head dims at mini-batch 16, the generic one
// for the rest.
#define TTT_LINEAR_FUSED(T, S, NAME, QB)                                                                       \
    extern "C" __global__ void __launch_bounds__(TTT_SCAN_THREADS, 1) ttt_linear_##NAME##_##S(                \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* w1, const T* b1,           \
        const T* norm_w, const T* norm_b, T* out, float* checkpoints, int interval, float* last_state,        \
        float* workspace, int ws_floats, int smem_bytes, int heads, int seq_len, int F, int K, float eps) {    \
        (void)workspace;                                                                                       \
        if (K == 16 && F == 64 && blockDim.x == TTT_SCAN_THREADS) {                                           \
            ttt_scan::linear_fused_scan<T, 64, 16, QB>(xq, xk, xv, lr, tok, w1, b1, norm_w, norm_b, out,      \
                checkpoints, interval, last_state, ws_floats, smem_bytes, heads, seq_len, F, K, eps);         \
        } else if (K == 16 && F == 32 && blockDim.x == TTT_SCAN_THREADS) {                                    \
            ttt_scan::linear_fused_scan<T, 32, 16, QB>(xq, xk, xv, lr, tok, w1, b1, norm_w, norm_b, out,      \
                checkpoints, interval, last_state, ws_floats, smem_bytes, heads, seq_len, F, K, eps);         \
        } else if (K == 16 && F == 96 && blockDim.x == TTT_SCAN_THREADS) {                                    \
            ttt_scan::linear_fused_scan<T, 96, 16, QB>(xq, xk, xv, lr, tok, w1, b1, norm_w, norm_b, out,      \
                checkpoints, interval, last_state, ws_floats, smem_bytes, heads, seq_len, F, K, eps);         \
        } else if (K == 16 && F == 128 && blockDim.x == TTT_SCAN_THREADS) {                                   \
            ttt_scan::linear_fused_scan<T, 128, 16, QB>(xq, xk, xv, lr, tok, w1, b1, norm_w, norm_b, out,     \
                checkpoints, interval, last_state, ws_floats, smem_bytes, heads, seq_len, F, K, eps);         \
        } else {                                                                                               \
            ttt_scan::linear_fused_scan<T, 0, 0, QB>(xq, xk, xv, lr, tok, w1, b1, norm_w, norm_b, out,        \
                checkpoints, interval, last_state, ws_floats, smem_bytes, heads, seq_len, F, K, eps);         \
        }                                                                                                      \
    }
#define TTT_LINEAR(T, S)                                                \
    TTT_LINEAR_ENTRY(T, S, shared, ttt_scan::kAllShared)                \
    TTT_LINEAR_ENTRY(T, S, stateglobal, ttt_scan::kStateGlobal)         \
    TTT_LINEAR_ENTRY(T, S, global, ttt_scan::kAllGlobal)                \
    TTT_LINEAR_CLUSTER_ENTRY(T, S, 2)                                   \
    TTT_LINEAR_CLUSTER_ENTRY(T, S, 4)                                   \
    TTT_LINEAR_FUSED(T, S, fused, false)                                \
    TTT_LINEAR_FUSED(T, S, fusedqb, true)
TTT_FOR_EACH_TYPE(TTT_LINEAR)

// TTT-Linear's inner loop (SPEC §3 step 4) and its backward (SPEC §4, inner backward), every
// kernel one launch for a whole sequence, float32 on chip whatever the stored type:
//   ttt_linear_forward_{shared,stateglobal,global}  the four-phase scan, one block per (batch,
//                                                   head), state in shared or global memory
//   ttt_linear_forward_fused                        three phases a mini-batch, state on chip
//   ttt_linear_backward_walk_{shared,stateglobal,global}
//                                                   the backward at any checkpoint interval: one
//                                                   block per (batch, head) walks back
//   ttt_linear_backward_{local,chain,chain_fixed,finish}
//                                                   the backward at interval 1 in three launches
// The state a forward keeps (checkpoints, last_state) and a backward restores is packed float32:
// W [F*F] row-major, then b [F].
#include "ttt_scan.h"
#include "ttt_scan_backward.h"

// One packed state, floats.
#define TTT_LINEAR_PACKED_STATE_FLOATS(F) ((F) * (F) + (F))
// Checkpoint slots a forward keeps at interval INTERVAL (slot s: the state before mini-batch
// s INTERVAL): the checkpoints hold slots * PAIRS packed states, slot-major.
#define TTT_LINEAR_CHECKPOINT_SLOTS(MB, INTERVAL) cdiv(MB, INTERVAL)

// ================================================================ forward
// The four-phase scan: one block per (batch, head), the state W [F, F], b [F] kept in float32
// across all mini-batches.
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

namespace ttt_scan {

// The layout of linear_scan, in floats (the descriptors below give the host the same): the state
// W [F][F+4], b [F]; the scratch two sets of Q, K, V [K][F+4] and their [K] learning rates, Z,
// EG, ZB [K][F+4], NM [K][K+4], tok [K], gamma and beta [F].
#define TTT_LINEAR_STATE_FLOATS(F) ((F) * ((F) + 4) + (F))
#define TTT_LINEAR_SCRATCH_FLOATS(F, K) (9 * (K) * ((F) + 4) + (K) * ((K) + 4) + 3 * (K) + 2 * (F))
__device__ __forceinline__ int linear_state_floats(int F) { return TTT_LINEAR_STATE_FLOATS(F); }
__device__ __forceinline__ int linear_scratch_floats(int F, int K) { return TTT_LINEAR_SCRATCH_FLOATS(F, K); }

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

    unpack_rows_strided(W, ld, w1 + (long)h * F * F, F, F, F);
    load_vector(bias, b1 + (long)h * F, F);
    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    load_vector(tok_s, tok, K);

    const RowGroups rg(K, F);
    const int state_size = TTT_LINEAR_PACKED_STATE_FLOATS(F);
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
            pack_rows_strided(dst, F, W, F, F, ld);
            pack_rows_strided(dst + F * F, F, bias, 1, F, F);
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
        pack_rows_strided(dst, F, W, F, F, ld);
        pack_rows_strided(dst + F * F, F, bias, 1, F, F);
    }
}

// The scratch of the fused schedule below, in floats: ZB is double-buffered, so one more
// [K][F+4] than linear_scan's.
#define TTT_LINEAR_FUSED_SCRATCH_FLOATS(F, K) (10 * (K) * ((F) + 4) + (K) * ((K) + 4) + 3 * (K) + 2 * (F))
__device__ __forceinline__ int linear_fused_scratch_floats(int F, int K) { return TTT_LINEAR_FUSED_SCRATCH_FLOATS(F, K); }

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
// them from the arguments, for the shapes without an instance of their own.
template <typename T, int FF, int KK>
__device__ void linear_fused_scan(const T* __restrict__ xq, const T* __restrict__ xk, const T* __restrict__ xv,
                                  const T* __restrict__ lr, const T* __restrict__ tok, const T* __restrict__ w1,
                                  const T* __restrict__ b1, const T* __restrict__ norm_w, const T* __restrict__ norm_b,
                                  T* __restrict__ out, float* __restrict__ checkpoints, int interval,
                                  float* __restrict__ last_state, int ws_floats, int smem_bytes, int heads,
                                  int seq_len, int F_arg, int K_arg, float eps) {
    constexpr int kNt = TTT_SCAN_THREADS;
    // Row work of the fixed shapes: groups of G lanes (fixed_row_lanes), each taking kRows rows in
    // turn; a shape (or thread count) that no G splits runs generically.
    constexpr int kG0 = fixed_row_lanes(kNt, FF, KK);
    constexpr bool kFixed = kG0 > 0;
    constexpr int kG = kFixed ? kG0 : 1;
    constexpr int kE = kFixed ? FF / kG0 : 1;
    constexpr int kGroups = kNt / kG;
    constexpr int kRows = kFixed ? KK / kGroups : 1;
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

    unpack_rows_strided(W, ld, w1 + (long)h * F * F, F, F, F);
    load_vector(bias, b1 + (long)h * F, F);
    load_vector(gam, norm_w + (long)h * F, F);
    load_vector(bet, norm_b + (long)h * F, F);
    load_vector(tok_s, tok, K);

    const int state_size = TTT_LINEAR_PACKED_STATE_FLOATS(F);
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
            pack_rows_strided(dst, F, W, F, F, ld);
            pack_rows_strided(dst + F * F, F, bias, 1, F, F);
        }

        // P: Z = K W + b and ZB = Q W + b; the output rows of the previous mini-batch.
        for (int u = tid; u < 2 * tiles_f2; u += nt) {
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
#pragma unroll
                for (int r = 0; r < kRows; ++r) {
                    const int row = frows.group + r * kGroups;
                    ln_out_fixed<T, kG, kE>(frows, pzb + row * ld, pq + row * ld, gam, bet, eps,
                                            prev_out + (long)row * dim);
                }
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

        // B: G in place of Z, EG = eta_last G; NM; the next inputs into the other set.
        {
            const float tok_last = tok_s[K - 1];
            if constexpr (kFixed) {
#pragma unroll
                for (int r = 0; r < kRows; ++r) {
                    const int row = frows.group + r * kGroups;
                    ln_l2_grad_fixed<kG, kE>(frows, Zs + row * ld, Ts + row * ld, gam, bet, eps, EG + row * ld,
                                             tok_last * lr_s[row]);
                }
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
#pragma unroll
            for (int r = 0; r < kRows; ++r) {
                const int row = frows.group + r * kGroups;
                ln_out_fixed<T, kG, kE>(frows, pzb + row * ld, pq + row * ld, gam, bet, eps, last_out + (long)row * dim);
            }
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
        pack_rows_strided(dst, F, W, F, F, ld);
        pack_rows_strided(dst + F * F, F, bias, 1, F, F);
    }
}

}  // namespace ttt_scan

// Entry points ttt_linear_forward_{shared,stateglobal,global}_{f32,bf16,f16}, for blocks of at
// most 256 threads: the tiles and the prefetched next mini-batch need more than 128 registers a
// thread.
#define TTT_LINEAR_ENTRY(T, S, NAME, PLACEMENT)                                                               \
    extern "C" __global__ void __launch_bounds__(TTT_SCAN_THREADS, 1) ttt_linear_forward_##NAME##_##S(        \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* w1, const T* b1,           \
        const T* norm_w, const T* norm_b, T* out, float* checkpoints, int interval, float* last_state,        \
        float* workspace, int ws_floats, int smem_bytes, int heads, int seq_len, int F, int K, float eps) {    \
        ttt_scan::linear_scan<T, PLACEMENT>(xq, xk, xv, lr, tok, w1, b1, norm_w, norm_b, out, checkpoints,    \
                                            interval, last_state, workspace, ws_floats, smem_bytes, heads,    \
                                            seq_len, F, K, eps);                                              \
    }
// The compile-time shapes (F, K) of the fused scan: the common head dims at mini-batch 16 in the
// build's own objects; exactly the one shape a module compiled at run time is built for
// (-DTTT_SHAPE_F=… -DTTT_SHAPE_K=…, gpu/KernelRegistry). Any other shape runs the generic instance.
#if defined(TTT_SHAPE_F) && defined(TTT_SHAPE_K)
#define TTT_LINEAR_FUSED_SHAPES(X) X(TTT_SHAPE_F, TTT_SHAPE_K)
#else
#define TTT_LINEAR_FUSED_SHAPES(X) X(64, 16) X(32, 16) X(96, 16) X(128, 16)
#endif
// Whether the build's own objects hold an instance for (F, K): the list above, for the host, which
// compiles a module for any other shape at run time (gpu/KernelRegistry).
#define TTT_LINEAR_FUSED_AOT(F, K) ((K) == 16 && ((F) == 64 || (F) == 32 || (F) == 96 || (F) == 128))
TTT_SIZE(ttt_linear_forward_fused_has_instance, TTT_LINEAR_FUSED_AOT(F, K))
#define TTT_LINEAR_FUSED_CASE(FF, KK)                                                                          \
    if (F == (FF) && K == (KK) && blockDim.x == TTT_SCAN_THREADS) {                                           \
        ttt_scan::linear_fused_scan<Stored, (FF), (KK)>(xq, xk, xv, lr, tok, w1, b1, norm_w, norm_b, out,     \
            checkpoints, interval, last_state, ws_floats, smem_bytes, heads, seq_len, F, K, eps);             \
        return;                                                                                                \
    }
// ttt_linear_forward_fused_{f32,bf16,f16}: linear_fused_scan, state in shared memory (the
// workspace is unused: ws_floats must be 0), an instance for each compile-time shape above, the
// generic one for the rest. The same arguments as above.
#define TTT_LINEAR_FUSED(T, S)                                                                                 \
    extern "C" __global__ void __launch_bounds__(TTT_SCAN_THREADS, 1) ttt_linear_forward_fused_##S(           \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* w1, const T* b1,           \
        const T* norm_w, const T* norm_b, T* out, float* checkpoints, int interval, float* last_state,        \
        float* workspace, int ws_floats, int smem_bytes, int heads, int seq_len, int F, int K, float eps) {    \
        using Stored = T;                                                                                      \
        (void)workspace;                                                                                       \
        TTT_LINEAR_FUSED_SHAPES(TTT_LINEAR_FUSED_CASE)                                                         \
        ttt_scan::linear_fused_scan<T, 0, 0>(xq, xk, xv, lr, tok, w1, b1, norm_w, norm_b, out, checkpoints,   \
            interval, last_state, ws_floats, smem_bytes, heads, seq_len, F, K, eps);                           \
    }
#define TTT_LINEAR(T, S)                                                \
    TTT_LINEAR_ENTRY(T, S, shared, ttt_scan::kAllShared)                \
    TTT_LINEAR_ENTRY(T, S, stateglobal, ttt_scan::kStateGlobal)         \
    TTT_LINEAR_ENTRY(T, S, global, ttt_scan::kAllGlobal)
TTT_FOR_EACH_TYPE_UNSHAPED(TTT_LINEAR)
TTT_FOR_EACH_TYPE(TTT_LINEAR_FUSED)

// One block of TTT_SCAN_THREADS per (batch, head), PAIRS = batch * heads. The workspace the host
// passes (ws_floats per (batch, head), PAIRS of them) holds what a placement keeps in global memory.
TTT_LAUNCH(ttt_linear_forward_shared, TTT_SCAN_THREADS, 1, PAIRS, 1, 4 * (TTT_LINEAR_STATE_FLOATS(F) + TTT_LINEAR_SCRATCH_FLOATS(F, K)))
TTT_LAUNCH(ttt_linear_forward_stateglobal, TTT_SCAN_THREADS, 1, PAIRS, 1, 4 * TTT_LINEAR_SCRATCH_FLOATS(F, K))
TTT_LAUNCH(ttt_linear_forward_global, TTT_SCAN_THREADS, 1, PAIRS, 1, 0)
TTT_LAUNCH(ttt_linear_forward_fused, TTT_SCAN_THREADS, 1, PAIRS, 1, 4 * (TTT_LINEAR_STATE_FLOATS(F) + TTT_LINEAR_FUSED_SCRATCH_FLOATS(F, K)))
TTT_SIZE(ttt_linear_forward_shared_workspace_floats, 0)
TTT_SIZE(ttt_linear_forward_stateglobal_workspace_floats, TTT_LINEAR_STATE_FLOATS(F))
TTT_SIZE(ttt_linear_forward_global_workspace_floats, TTT_LINEAR_STATE_FLOATS(F) + TTT_LINEAR_SCRATCH_FLOATS(F, K))
TTT_SIZE(ttt_linear_forward_fused_workspace_floats, 0)
TTT_SIZE(ttt_linear_state_floats, TTT_LINEAR_PACKED_STATE_FLOATS(F))
TTT_SIZE(ttt_linear_checkpoint_slots, TTT_LINEAR_CHECKPOINT_SLOTS(MB, INTERVAL))

// ================================================================ backward: the walk
// The walk: one launch for the whole sequence, one block per (batch, head), mini-batches in
// reverse (see ttt_scan_backward.h); any checkpoint interval.
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

namespace ttt_bwd {

// The layout, in floats (the descriptors below give the host the same).
// State: W [F][F+4], b [F], then its gradient dW, db in the same shape.
#define TTT_LINEAR_BACKWARD_STATE_FLOATS(F) (2 * ((F) * ((F) + 4) + (F)))
// Scratch: 14 matrices [K][F+4], 5 matrices [K][K+4], 3 vectors [K], 4 vectors [F], dtok [K].
#define TTT_LINEAR_BACKWARD_SCRATCH_FLOATS(F, K) (14 * (K) * ((F) + 4) + 5 * (K) * ((K) + 4) + 4 * (K) + 4 * (F))
// The partial of one (batch, head): the packed state's gradient, dgamma, dbeta, dtok.
#define TTT_LINEAR_BACKWARD_PARTIAL_FLOATS(F, K) (TTT_LINEAR_PACKED_STATE_FLOATS(F) + 2 * (F) + (K))
__device__ __forceinline__ int linear_bwd_state_floats(int F) { return TTT_LINEAR_BACKWARD_STATE_FLOATS(F); }
__device__ __forceinline__ int linear_bwd_scratch_floats(int F, int K) { return TTT_LINEAR_BACKWARD_SCRATCH_FLOATS(F, K); }

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
    const int S = TTT_LINEAR_PACKED_STATE_FLOATS(F);                // a packed state
    const int part_floats = TTT_LINEAR_BACKWARD_PARTIAL_FLOATS(F, K);  // dW, db, dgamma, dbeta, dtok of this (b, h)
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
    const int slots = TTT_LINEAR_CHECKPOINT_SLOTS(mini_batches, interval);

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

// Entry points ttt_linear_backward_walk_{shared,stateglobal,global}_{f32,bf16,f16}.
#define TTT_LINEAR_BWD_ENTRY(T, S, NAME, PLACEMENT)                                                             \
    extern "C" __global__ void __launch_bounds__(256) ttt_linear_backward_walk_##NAME##_##S(                    \
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
TTT_FOR_EACH_TYPE_UNSHAPED(TTT_LINEAR_BWD)

// One block of 256 threads per (batch, head). Per (batch, head) the host passes ws_floats
// (workspace_floats) and rs_slots (recomputed_states) and allocates buffer_floats: the workspace,
// then rs_slots packed states; and partial_floats of partials (summed over the batch after).
TTT_LAUNCH(ttt_linear_backward_walk_shared, 256, 1, PAIRS, 1, 4 * (TTT_LINEAR_BACKWARD_STATE_FLOATS(F) + TTT_LINEAR_BACKWARD_SCRATCH_FLOATS(F, K)))
TTT_LAUNCH(ttt_linear_backward_walk_stateglobal, 256, 1, PAIRS, 1, 4 * TTT_LINEAR_BACKWARD_SCRATCH_FLOATS(F, K))
TTT_LAUNCH(ttt_linear_backward_walk_global, 256, 1, PAIRS, 1, 0)
TTT_SIZE(ttt_linear_backward_walk_shared_workspace_floats, 0)
TTT_SIZE(ttt_linear_backward_walk_stateglobal_workspace_floats, TTT_LINEAR_BACKWARD_STATE_FLOATS(F))
TTT_SIZE(ttt_linear_backward_walk_global_workspace_floats, TTT_LINEAR_BACKWARD_STATE_FLOATS(F) + TTT_LINEAR_BACKWARD_SCRATCH_FLOATS(F, K))
TTT_SIZE(ttt_linear_backward_walk_recomputed_states, TTT_BACKWARD_RECOMPUTED_STATES(INTERVAL))
TTT_SIZE(ttt_linear_backward_walk_shared_buffer_floats, TTT_BACKWARD_RECOMPUTED_STATES(INTERVAL) * TTT_LINEAR_PACKED_STATE_FLOATS(F))
TTT_SIZE(ttt_linear_backward_walk_stateglobal_buffer_floats, TTT_LINEAR_BACKWARD_STATE_FLOATS(F) + TTT_BACKWARD_RECOMPUTED_STATES(INTERVAL) * TTT_LINEAR_PACKED_STATE_FLOATS(F))
TTT_SIZE(ttt_linear_backward_walk_global_buffer_floats, TTT_LINEAR_BACKWARD_STATE_FLOATS(F) + TTT_LINEAR_BACKWARD_SCRATCH_FLOATS(F, K) + TTT_BACKWARD_RECOMPUTED_STATES(INTERVAL) * TTT_LINEAR_PACKED_STATE_FLOATS(F))
TTT_SIZE(ttt_linear_backward_walk_partial_floats, TTT_LINEAR_BACKWARD_PARTIAL_FLOATS(F, K))

// ================================================================ backward: three launches at interval 1
// The backward when the forward kept every state (checkpoint interval 1), in three launches
// rather than one walk over the mini-batches (the walk above, which serves the other
// intervals). Most of a mini-batch's backward does not depend on the gradient
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

namespace ttt_bwd {

// The record, floats, [K][F] matrices packed: G, ZH, DG, DZB, DK, DZ, DV, DGG, then
// DETA [K][K], SIG [K] and DGB [2F] (the output norm's dgamma, dbeta of the mini-batch); the
// shared memory of the three launches, floats; the finish's partial of one (mini-batch, batch
// head): dgamma, dbeta, dtok. The descriptors below give the host the same.
#define TTT_LINEAR_BACKWARD_RECORD_FLOATS(F, K) (8 * (K) * (F) + (K) * (K) + (K) + 2 * (F))
#define TTT_LINEAR_BACKWARD_LOCAL_FLOATS(F, K) \
    ((F) * ((F) + 4) + (F) + 10 * (K) * ((F) + 4) + 4 * (K) * ((K) + 4) + 3 * (K) + 2 * (F))
#define TTT_LINEAR_BACKWARD_CHAIN_FLOATS(F, K) ((F) * ((F) + 4) + (F) + 9 * (K) * ((F) + 4) + 3 * (K) + 2 * (F))
#define TTT_LINEAR_BACKWARD_FINISH_FLOATS(F, K) ((F) * ((F) + 4) + (F) + (K) * ((F) + 4) + 2 * (K) + 2 * (F))
#define TTT_LINEAR_BACKWARD_FINISH_PARTIAL_FLOATS(F, K) (2 * (F) + (K))
__device__ __forceinline__ int par_record_floats(int F, int K) { return TTT_LINEAR_BACKWARD_RECORD_FLOATS(F, K); }
__device__ __forceinline__ int par_local_floats(int F, int K) { return TTT_LINEAR_BACKWARD_LOCAL_FLOATS(F, K); }
__device__ __forceinline__ int par_chain_floats(int F, int K) { return TTT_LINEAR_BACKWARD_CHAIN_FLOATS(F, K); }
__device__ __forceinline__ int par_finish_floats(int F, int K) { return TTT_LINEAR_BACKWARD_FINISH_FLOATS(F, K); }

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
    const int S = TTT_LINEAR_PACKED_STATE_FLOATS(F);
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
    const int S = TTT_LINEAR_PACKED_STATE_FLOATS(F);
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
    const int S = TTT_LINEAR_PACKED_STATE_FLOATS(F);
    const long in = ((long)bh * seq_len + (long)n * K) * F;
    const float* rec = records + ((long)n * pairs + bh) * par_record_floats(F, K);
    float* part = partials + ((long)n * pairs + bh) * TTT_LINEAR_BACKWARD_FINISH_PARTIAL_FLOATS(F, K);  // dgamma, dbeta, dtok of this mini-batch
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

// The shapes linear_bwd_chain_fixed is built for, one entry X(F, K, FF, KK) per shape (FF, KK).
#define TTT_LINEAR_CHAIN_FIXED_SHAPES(X, F, K) \
    X(F, K, 64, 32) X(F, K, 64, 16) X(F, K, 64, 8) X(F, K, 32, 32) X(F, K, 32, 16) X(F, K, 32, 8) X(F, K, 96, 16)
#define TTT_LINEAR_CHAIN_FIXED_IS(F, K, FF, KK) || ((F) == (FF) && (K) == (KK))
#define TTT_LINEAR_CHAIN_FIXED_BUILT(F, K) (0 TTT_LINEAR_CHAIN_FIXED_SHAPES(TTT_LINEAR_CHAIN_FIXED_IS, F, K))

// Shared floats of linear_bwd_chain_fixed: two mini-batches' buffers, dW', db', dZ. At a shape it is
// not built for, more than any device has, so the host never picks it there.
#define TTT_LINEAR_BACKWARD_CHAIN_FIXED_FLOATS(F, K)                                                          \
    (2 * (8 * (K) * ((F) + 4) + 3 * (K)) + (F) * ((F) + 4) + (F) + (K) * ((F) + 4) + 2 * (F) + (K) +      \
     (1 - TTT_LINEAR_CHAIN_FIXED_BUILT(F, K)) * 16777216)
__host__ __device__ constexpr int fixed_chain_floats(int F, int K) { return TTT_LINEAR_BACKWARD_CHAIN_FIXED_FLOATS(F, K); }

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
    constexpr int R = TTT_LINEAR_BACKWARD_RECORD_FLOATS(F, K);
    static_assert(F % 16 == 0 && K % 4 == 0, "shape");
    TTT_DYNAMIC_SHARED(smem);
    const int tid = threadIdx.x;
    const int bh = blockIdx.x;
    const int pairs = gridDim.x;
    const int h = bh % heads;
    const int S = TTT_LINEAR_PACKED_STATE_FLOATS(F);
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

        // Phase A.  Each warp takes blocks of 4 rows in turn, over this half's k: P rows i0..i0+3 (the
        // first K / 4 blocks, P groups) or (G dW'^T) rows (the next K / 4, G groups).
        for (int rb = group; rb < K / 2; rb += NT / 32) {
            const bool pgroup = rb < K / 4;
            const int i0 = 4 * (pgroup ? rb : rb - K / 4);
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
            if (!pgroup) {
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
#define TTT_FIXED_CHAIN(F, K, FF, KK)                                                                            \
    if ((F) == (FF) && (K) == (KK)) {                                                                            \
        linear_bwd_chain_fixed<T, FF, KK>(xq, xk, xv, lr, tok, norm_w, norm_b, records, partials, smem_bytes,   \
                                          heads, seq_len, eps);                                                  \
        return;                                                                                                  \
    }
    TTT_LINEAR_CHAIN_FIXED_SHAPES(TTT_FIXED_CHAIN, F, K)
#undef TTT_FIXED_CHAIN
    const float nan = __int_as_float(0x7fc00000);
    for (int e = threadIdx.x; e < TTT_LINEAR_PACKED_STATE_FLOATS(F); e += blockDim.x) {
        partials[(long)blockIdx.x * TTT_LINEAR_PACKED_STATE_FLOATS(F) + e] = nan;
    }
}

}  // namespace ttt_bwd

// Entry points ttt_linear_backward_{local,chain,finish}_{f32,bf16,f16}.
#define TTT_LINEAR_BWD_PARALLEL(T, S)                                                                             \
    extern "C" __global__ void __launch_bounds__(256) ttt_linear_backward_local_##S(                              \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,       \
        const T* dout, const float* checkpoints, T* dxq, float* records, int smem_bytes, int heads, int seq_len,  \
        int F, int K, float eps) {                                                                                \
        ttt_bwd::linear_bwd_local<T>(xq, xk, xv, lr, tok, norm_w, norm_b, dout, checkpoints, dxq, records,        \
                                     smem_bytes, heads, seq_len, F, K, eps);                                      \
    }                                                                                                             \
    extern "C" __global__ void __launch_bounds__(256) ttt_linear_backward_chain_##S(                              \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,       \
        float* records, float* partials, int smem_bytes, int heads, int seq_len, int F, int K, float eps) {       \
        ttt_bwd::linear_bwd_chain<T>(xq, xk, xv, lr, tok, norm_w, norm_b, records, partials, smem_bytes, heads,   \
                                     seq_len, F, K, eps);                                                         \
    }                                                                                                             \
    extern "C" __global__ void __launch_bounds__(256) ttt_linear_backward_finish_##S(                             \
        const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,                    \
        const float* checkpoints, const float* records, T* dxk, T* dxv, T* dlr, float* partials, int smem_bytes,  \
        int heads, int seq_len, int F, int K) {                                                                   \
        ttt_bwd::linear_bwd_finish<T>(xk, xv, lr, tok, norm_w, norm_b, checkpoints, records, dxk, dxv, dlr,       \
                                      partials, smem_bytes, heads, seq_len, F, K);                                \
    }
TTT_FOR_EACH_TYPE_UNSHAPED(TTT_LINEAR_BWD_PARALLEL)

// Entry points ttt_linear_backward_chain_fixed_{f32,bf16,f16}: the chain at the shapes of
// TTT_LINEAR_CHAIN_FIXED_SHAPES, 256 threads, launched like ttt_linear_backward_chain with its own shared memory.
#define TTT_LINEAR_BWD_CHAIN_FIXED(T, S)                                                                          \
    extern "C" __global__ void __launch_bounds__(256) ttt_linear_backward_chain_fixed_##S(                        \
        const T* xq, const T* xk, const T* xv, const T* lr, const T* tok, const T* norm_w, const T* norm_b,       \
        float* records, float* partials, int smem_bytes, int heads, int seq_len, int F, int K, float eps) {       \
        ttt_bwd::linear_bwd_chain_fixed_any<T>(xq, xk, xv, lr, tok, norm_w, norm_b, records, partials,            \
                                               smem_bytes, heads, seq_len, F, K, eps);                            \
    }
TTT_FOR_EACH_TYPE_UNSHAPED(TTT_LINEAR_BWD_CHAIN_FIXED)

// local and finish: one block per (batch, head) in x and mini-batch in y; the chains one block
// per (batch, head), mini-batches in reverse. Between them, records (record_floats per
// (mini-batch, batch head), MB * PAIRS of them, mini-batch-major); the chain's partials
// (chain_partial_floats, the packed state's gradient, per (batch, head)) and the finish's
// (finish_partial_floats per (mini-batch, batch head), mini-batch-major) the host sums after.
TTT_LAUNCH(ttt_linear_backward_local, 256, 1, PAIRS, MB, 4 * TTT_LINEAR_BACKWARD_LOCAL_FLOATS(F, K))
TTT_LAUNCH(ttt_linear_backward_chain, 256, 1, PAIRS, 1, 4 * TTT_LINEAR_BACKWARD_CHAIN_FLOATS(F, K))
TTT_LAUNCH(ttt_linear_backward_chain_fixed, 256, 1, PAIRS, 1, 4 * TTT_LINEAR_BACKWARD_CHAIN_FIXED_FLOATS(F, K))
TTT_LAUNCH(ttt_linear_backward_finish, 256, 1, PAIRS, MB, 4 * TTT_LINEAR_BACKWARD_FINISH_FLOATS(F, K))
TTT_SIZE(ttt_linear_backward_record_floats, TTT_LINEAR_BACKWARD_RECORD_FLOATS(F, K))
TTT_SIZE(ttt_linear_backward_chain_partial_floats, TTT_LINEAR_PACKED_STATE_FLOATS(F))
TTT_SIZE(ttt_linear_backward_finish_partial_floats, TTT_LINEAR_BACKWARD_FINISH_PARTIAL_FLOATS(F, K))

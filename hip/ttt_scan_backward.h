// Device code shared by the reverse scans of ttt_linear.hip and ttt_mlp.hip. The walk (one
// launch, ttt_*_backward_walk_*): one block per (batch, head) walks the mini-batches in
// reverse. For each checkpoint segment it restores the state the forward kept, recomputes the
// states inside the segment into a per-(batch, head) scratch in global memory, then for each
// mini-batch, last first, recomputes that mini-batch's intermediates from its state and runs
// its backward, carrying the gradient of the state to the mini-batch before.
//
// The code here shares only the tile helpers of ttt_tiles.h with the forward scans, not their
// ttt_scan.h: the forward is tuned on its own schedule. A state recomputed here can therefore
// differ from the one the forward held in the last bits, so gradients depend on the checkpoint
// interval at the rounding level only (SPEC §4); for a given interval they are the same bits on
// every run.
//
// Per-(batch, head) results that are summed over the batch (the gradient of the initial state,
// of gamma and beta, and of the token eta) go to a float32 partial per (batch, head); the host
// adds those in a fixed order (elementwise_sum_partials). Nothing is added with atomics.
//
// Matrices on chip are row-major with a padded leading dimension (4 floats more than the row),
// so the float4 loads of neighbouring rows do not collide in the same banks.
#pragma once
#include "ttt_tiles.h"

// The states a walk recomputes into its workspace for a segment of INTERVAL mini-batches (the
// first is the checkpoint, the last stays on chip): the rs_slots the host passes.
#define TTT_BACKWARD_RECOMPUTED_STATES(INTERVAL) max(0, (INTERVAL) - 2)

namespace ttt_bwd {

using namespace ttt_tiles;

// Tile t of a [M, *] result: plain products interleave the tile's rows (rt, rt + M/4, ...) so
// that neighbouring threads read neighbouring rows; products with a transposed A take 4
// contiguous rows, which one float4 load of At reads.
struct Tile {
    int r0, rs, c0;
    __device__ __forceinline__ Tile(int t, int M, bool transposed_a) {
        const int rtn = M / 4;
        const int rt = t % rtn;
        r0 = transposed_a ? 4 * rt : rt;
        rs = transposed_a ? 1 : rtn;
        c0 = (t / rtn) * 4;
    }
    __device__ __forceinline__ int row(int r) const { return r0 + r * rs; }
};

// The derivatives of gelu (ttt_tiles.h) the backward needs (CPU: Gelu.java).

// d gelu / dx, exactly: what autograd uses for X2 = gelu(Z1) and XB = gelu(ZB1).
__device__ __forceinline__ float gelu_grad(float x) {
    const float t = tanhf(kSqrt2OverPi * (x + kKappa * x * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * kKappa * x * x);
}

// The inner loop's own gelu' (SPEC §3: the reference's closed form with rounded constants).
__device__ __forceinline__ float gelu_bwd(float x) {
    const float t = tanhf(kC0 * x * (1.0f + kKappa * x * x));
    return 0.5f * x * (1.0f - t * t) * (kC0 + kC2 * x * x) + 0.5f * (1.0f + t);
}

// d/dx of gelu_bwd, as autograd differentiates the reference's formula.
__device__ __forceinline__ float gelu_bwd_grad(float x) {
    const float t = tanhf(kC0 * x * (1.0f + kKappa * x * x));
    const float dt = (1.0f - t * t) * (kC0 + 3.0f * kC0 * kKappa * x * x);
    const float poly = kC0 + kC2 * x * x;
    return 0.5f * (1.0f - t * t) * poly - x * t * dt * poly + x * x * (1.0f - t * t) * kC2 + 0.5f * dt;
}

// ---------------------------------------------------------------- moving data

__device__ __forceinline__ void zero_floats(float* p, int n) {
    for (int e = threadIdx.x; e < n; e += blockDim.x) p[e] = 0.0f;
}

// Mini-batch rows [K, F] of xq, xk, xv (offset to the mini-batch) as Q, K and the inner loss's
// target V - K, and its K learning rates.
template <typename T>
__device__ __forceinline__ void load_mini_batch(const T* xq, const T* xk, const T* xv, const T* lr, float* qs,
                                                float* ks, float* ts, float* lr_s, int K, int F, int ld) {
    for (int e = threadIdx.x; e < K * F; e += blockDim.x) {
        const int i = e / F;
        const int f = e - i * F;
        const float k = ttt_load(xk[e]);
        qs[i * ld + f] = ttt_load(xq[e]);
        ks[i * ld + f] = k;
        ts[i * ld + f] = ttt_load(xv[e]) - k;
    }
    for (int e = threadIdx.x; e < K; e += blockDim.x) lr_s[e] = ttt_load(lr[e]);
}

// A packed float32 TTT-Linear state (W [F*F], b [F]) to the padded layout [F][F+4], [F], and back.
__device__ __forceinline__ void linear_load_state(float* W, float* bias, const float* src, int F) {
    unpack_rows(W, src, F, F, F + 4);
    unpack_rows(bias, src + F * F, 1, F, F);
}

__device__ __forceinline__ void linear_store_state(float* dst, const float* W, const float* bias, int F) {
    pack_rows(dst, W, F, F, F + 4);
    pack_rows(dst + F * F, bias, 1, F, F);
}

// ---------------------------------------------------------------- rows (one warp per row)

// One row of lnL2grad (SPEC §3 step 4) on z [F], keeping what its backward needs: zh
// replaces z, the result goes to `result`, sigma to *sigma (lane 0). Lane l owns elements
// l, l + warpSize, ... throughout, so in-place writes need no barrier. When eg is not null it
// also receives eta * result (the row scaled for the state update).
__device__ __forceinline__ void ln_l2_grad_row_keep(float* z, const float* target, const float* gamma,
                                                    const float* beta, int F, float eps, float* result,
                                                    float* sigma_out, float* eg, float eta) {
    const int lane = threadIdx.x % warpSize;
    float s = 0.0f;
    for (int f = lane; f < F; f += warpSize) s += z[f];
    const float mu = ttt_warp_sum(s) / F;
    float v = 0.0f;
    for (int f = lane; f < F; f += warpSize) {
        const float d = z[f] - mu;
        v += d * d;
    }
    const float sigma = sqrtf(ttt_warp_sum(v) / F + eps);
    const float rs = 1.0f / sigma;
    float sg = 0.0f;
    float sgz = 0.0f;
    for (int f = lane; f < F; f += warpSize) {
        const float zh = (z[f] - mu) * rs;
        const float g = (gamma[f] * zh + beta[f] - target[f]) * gamma[f];
        sg += g;
        sgz += g * zh;
    }
    sg = ttt_warp_sum(sg);
    sgz = ttt_warp_sum(sgz);
    const float scale = 1.0f / (F * sigma);
    for (int f = lane; f < F; f += warpSize) {
        const float zh = (z[f] - mu) * rs;
        const float g = (gamma[f] * zh + beta[f] - target[f]) * gamma[f];
        const float r = (F * g - sg - zh * sgz) * scale;
        result[f] = r;
        z[f] = zh;
        if (eg != nullptr) eg[f] = eta * r;
    }
    if (lane == 0) *sigma_out = sigma;
}

// Backward of one row of lnL2grad, given dr (the gradient w.r.t. its result r) and what
// ln_l2_grad_row_keep kept (zh, r, sigma). With g = (gamma zh + beta - t) gamma, S2 = sum g zh,
// D1 = sum dr, D2 = sum dr zh:
//   dg  = (F dr - D1 - zh D2) / (F sigma)
//   dzh = (-dr S2 - g D2) / (F sigma) + dg gamma^2          (through zh directly, and through g)
//   dz  = (dzh - mean(dzh) - zh mean(dzh zh)) / sigma - (sum dr r / sigma) zh / F
//                                                          (through the normalisation, and the explicit sigma)
//   dt  = -dg gamma;  dg is written too: dgamma += dg (2 gamma zh + beta - t), dbeta += dg gamma
// summed over rows by the caller, in row order. One warp per row, lane-owned elements.
__device__ __forceinline__ void ln_l2_grad_backward_row(const float* dr, const float* zh, const float* target,
                                                        const float* r, const float* gamma, const float* beta,
                                                        int F, float sigma, float* dz, float* dt, float* dg_out) {
    const int lane = threadIdx.x % warpSize;
    float s2 = 0.0f;
    float d1 = 0.0f;
    float d2 = 0.0f;
    float dsr = 0.0f;
    for (int f = lane; f < F; f += warpSize) {
        const float g = (gamma[f] * zh[f] + beta[f] - target[f]) * gamma[f];
        s2 += g * zh[f];
        d1 += dr[f];
        d2 += dr[f] * zh[f];
        dsr += dr[f] * r[f];
    }
    s2 = ttt_warp_sum(s2);
    d1 = ttt_warp_sum(d1);
    d2 = ttt_warp_sum(d2);
    const float dsigma = -ttt_warp_sum(dsr) / sigma;
    const float scale = 1.0f / (F * sigma);
    float m1 = 0.0f;
    float m2 = 0.0f;
    for (int f = lane; f < F; f += warpSize) {
        const float g = (gamma[f] * zh[f] + beta[f] - target[f]) * gamma[f];
        const float dg = (F * dr[f] - d1 - zh[f] * d2) * scale;
        const float dzh = (-dr[f] * s2 - g * d2) * scale + dg * gamma[f] * gamma[f];
        dg_out[f] = dg;
        dt[f] = -dg * gamma[f];
        dz[f] = dzh;
        m1 += dzh;
        m2 += dzh * zh[f];
    }
    m1 = ttt_warp_sum(m1) / F;
    m2 = ttt_warp_sum(m2) / F;
    for (int f = lane; f < F; f += warpSize) {
        dz[f] = (dz[f] - m1 - zh[f] * m2) / sigma + dsigma * zh[f] / F;
    }
}

// The output LayerNorm of one row, out = q + LN(zb; gamma, beta): replaces zb by its
// normalised xh (mean and rs computed as ln_out_row does) and writes
// dzb = (dxh - mean(dxh) - xh mean(dxh xh)) rs with dxh = dout gamma. One warp per row.
template <typename T>
__device__ __forceinline__ void out_norm_backward_row(float* zb, const T* dout, const float* gamma, int F, float eps,
                                                      float* dzb) {
    const int lane = threadIdx.x % warpSize;
    float s = 0.0f;
    for (int f = lane; f < F; f += warpSize) s += zb[f];
    const float mu = ttt_warp_sum(s) / F;
    float v = 0.0f;
    for (int f = lane; f < F; f += warpSize) {
        const float d = zb[f] - mu;
        v += d * d;
    }
    const float rs = 1.0f / sqrtf(ttt_warp_sum(v) / F + eps);
    float m1 = 0.0f;
    float m2 = 0.0f;
    for (int f = lane; f < F; f += warpSize) {
        const float xh = (zb[f] - mu) * rs;
        const float dxh = ttt_load(dout[f]) * gamma[f];
        zb[f] = xh;
        m1 += dxh;
        m2 += dxh * xh;
    }
    m1 = ttt_warp_sum(m1) / F;
    m2 = ttt_warp_sum(m2) / F;
    for (int f = lane; f < F; f += warpSize) dzb[f] = (ttt_load(dout[f]) * gamma[f] - m1 - zb[f] * m2) * rs;
}

// NaN in every input gradient row and partial this block owns: a layout the host did not size
// for fails verification loudly instead of reading past a buffer.
template <typename T>
__device__ __forceinline__ void poison_gradients(T* dxq, T* dxk, T* dxv, T* dlr, float* part, int seq_len, int F,
                                                 int part_floats) {
    const float nan = __int_as_float(0x7fc00000);
    for (int e = threadIdx.x; e < seq_len * F; e += blockDim.x) {
        ttt_store(dxq + e, nan);
        ttt_store(dxk + e, nan);
        ttt_store(dxv + e, nan);
    }
    for (int e = threadIdx.x; e < seq_len; e += blockDim.x) ttt_store(dlr + e, nan);
    for (int e = threadIdx.x; e < part_floats; e += blockDim.x) part[e] = nan;
}

}  // namespace ttt_bwd

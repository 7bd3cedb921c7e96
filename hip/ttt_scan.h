// Device code shared by the two inner scans (ttt_linear.hip, ttt_mlp.hip): one block runs the
// whole sequence of one (batch, head), mini-batch after mini-batch, with the inner state and
// every intermediate kept in float32 on chip (or, where the device's shared memory is too
// small, in a per-block global workspace that stays in cache).
//
// Matrices on chip are row-major with a padded leading dimension (a multiple of 4 floats, 4
// more than the row length): rows then start 4 banks apart, which keeps the float4 loads of
// four neighbouring rows free of bank conflicts. All products run through tile_mma: each
// thread owns a 4x4 tile of the result and sweeps the reduction 4 at a time with float4 loads,
// 8 loads per 64 FMAs.
#pragma once
#include "tttbench_hip.h"

namespace ttt_scan {

// Where a scan keeps its state and scratch. The host picks the first that fits the device's
// shared memory and passes the workspace the other two need.
enum Placement {
    kAllShared = 0,    // state and scratch in shared memory
    kStateGlobal = 1,  // state in the global workspace, scratch in shared memory
    kAllGlobal = 2     // both in the global workspace
};

// acc[r][c] += sum over k in [k0, k1) of opA[row r][k] * opB[k][c0 + c].
//  - !TA: A is [M][lda] and the tile's rows are r0 + r * rs (rows interleaved across row tiles).
//  - TA:  op(A) = At^T with At [K][lda]; the tile's rows are the 4 contiguous r0 .. r0 + 3 (rs unused).
//  - !TB: B is [K][ldb]; TB: op(B) = Bt^T with Bt [N][ldb].
// k0, k1, r0 (TA), c0, lda and ldb are multiples of 4 and every pointer is 16-byte aligned.
template <bool TA, bool TB>
__device__ __forceinline__ void tile_mma(float (&acc)[4][4], const float* A, int lda, int r0, int rs,
                                         const float* B, int ldb, int c0, int k0, int k1) {
#pragma unroll 2
    for (int k = k0; k < k1; k += 4) {
        float a[4][4];  // a[r][q] = opA[row r][k + q]
        float b[4][4];  // b[q][c] = opB[k + q][c0 + c]
        if (!TA) {
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const float4 v = *reinterpret_cast<const float4*>(A + (r0 + r * rs) * lda + k);
                a[r][0] = v.x; a[r][1] = v.y; a[r][2] = v.z; a[r][3] = v.w;
            }
        } else {
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const float4 v = *reinterpret_cast<const float4*>(A + (k + q) * lda + r0);
                a[0][q] = v.x; a[1][q] = v.y; a[2][q] = v.z; a[3][q] = v.w;
            }
        }
        if (!TB) {
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const float4 v = *reinterpret_cast<const float4*>(B + (k + q) * ldb + c0);
                b[q][0] = v.x; b[q][1] = v.y; b[q][2] = v.z; b[q][3] = v.w;
            }
        } else {
#pragma unroll
            for (int c = 0; c < 4; ++c) {
                const float4 v = *reinterpret_cast<const float4*>(B + (c0 + c) * ldb + k);
                b[0][c] = v.x; b[1][c] = v.y; b[2][c] = v.z; b[3][c] = v.w;
            }
        }
#pragma unroll
        for (int q = 0; q < 4; ++q) {
#pragma unroll
            for (int r = 0; r < 4; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) acc[r][c] = fmaf(a[r][q], b[q][c], acc[r][c]);
            }
        }
    }
}

__device__ __forceinline__ void zero(float (&acc)[4][4]) {
#pragma unroll
    for (int r = 0; r < 4; ++r) {
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[r][c] = 0.0f;
    }
}

// gelu, tanh approximation (SPEC §3).
__device__ __forceinline__ float gelu(float x) {
    return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

// gelu and the reference's own closed form of gelu' (its rounded constants) from one tanh:
// both take the same argument, since sqrt(2/pi) rounds to 0.79788456 in float32.
__device__ __forceinline__ void gelu_and_grad(float x, float& g, float& g_prime) {
    const float t = tanhf(0.79788456f * x * (1.0f + 0.044715f * x * x));
    g = 0.5f * x * (1.0f + t);
    g_prime = 0.5f * x * (1.0f - t * t) * (0.79788456f + 0.1070322243f * x * x) + 0.5f * (1.0f + t);
}

// One row z[0 .. F) of Z, replaced in place by lnL2grad(z, target) (SPEC §3 step 4):
// mu, sigma of z; zh = (z - mu) / sigma; g = (gamma zh + beta - target) gamma;
// result = (F g - sum g - zh sum(g zh)) / (F sigma). Called by all lanes of one warp; lane l
// owns elements l, l + warpSize, ... throughout, so the in-place write needs no barrier.
// When eg is not null it also receives eta * result (the row scaled for the weight update).
__device__ __forceinline__ void ln_l2_grad_row(float* z, const float* target, const float* gamma, const float* beta,
                                               int F, float eps, float* eg, float eta) {
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
        z[f] = r;
        if (eg != nullptr) eg[f] = eta * r;
    }
}

// out[f] = q[f] + LayerNorm(zb)[f] (gamma, beta), rounded to the stored type. One warp per row.
template <typename T>
__device__ __forceinline__ void ln_out_row(const float* zb, const float* q, const float* gamma, const float* beta,
                                           int F, float eps, T* out) {
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
    for (int f = lane; f < F; f += warpSize) {
        ttt_store(out + f, q[f] + gamma[f] * (zb[f] - mu) * rs + beta[f]);
    }
}

// dst[r * cols + c] = src[r * ld + c]: a padded on-chip matrix to its packed float32 form.
__device__ __forceinline__ void pack_rows(float* dst, const float* src, int rows, int cols, int ld) {
    for (int e = threadIdx.x; e < rows * cols; e += blockDim.x) dst[e] = src[(e / cols) * ld + e % cols];
}

// The reverse for an initial parameter in the stored type.
template <typename T>
__device__ __forceinline__ void unpack_rows(float* dst, const T* src, int rows, int cols, int ld) {
    for (int e = threadIdx.x; e < rows * cols; e += blockDim.x) dst[(e / cols) * ld + e % cols] = ttt_load(src[e]);
}

template <typename T>
__device__ __forceinline__ void load_vector(float* dst, const T* src, int n) {
    for (int e = threadIdx.x; e < n; e += blockDim.x) dst[e] = ttt_load(src[e]);
}

// Loads mini-batch rows [K, F] of xq, xk, xv (already offset to the mini-batch) as Q, K and
// the inner loss's target V - K, and the K learning rates.
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

// A layout the host did not size for leaves NaN in every output row this block owns, so
// that verification fails loudly instead of the kernel reading past its buffers.
template <typename T>
__device__ __forceinline__ void poison_output(T* out, int seq_len, int dim, int F) {
    const float nan = __int_as_float(0x7fc00000);
    for (int e = threadIdx.x; e < seq_len * F; e += blockDim.x) ttt_store(out + (long)(e / F) * dim + e % F, nan);
}

}  // namespace ttt_scan

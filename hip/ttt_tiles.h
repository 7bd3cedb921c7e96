// Tile helpers shared by the forward scans (ttt_scan.h) and the reverse scans
// (ttt_scan_backward.h) of ttt_linear.hip and ttt_mlp.hip: where a kernel keeps its state, the
// register-tile product every on-chip matrix product runs through, gelu, and the moves between
// the padded on-chip layout and the packed one. Each helper is here once; what only one
// direction uses stays in its own header, so that the forward's schedule is tuned on its own.
//
// Matrices on chip are row-major with a padded leading dimension (a multiple of 4 floats, 4
// more than the row length): rows then start 4 banks apart, which keeps the float4 loads of
// neighbouring rows free of bank conflicts.
#pragma once
#include "tttbench_hip.h"

namespace ttt_tiles {

// Where a kernel keeps its state (and, backward, the state's gradient) and its per-mini-batch
// scratch. The host picks the first that fits the device's shared memory and passes the
// workspace the other two need.
enum Placement {
    kAllShared = 0,    // state and scratch in shared memory
    kStateGlobal = 1,  // state in the global workspace, scratch in shared memory
    kAllGlobal = 2     // both in the global workspace
};

// acc[r][c] += sum over k in [k0, k1) of opA[row r][k] * opB[k][c0 + c], for a TR x 4 tile.
//  - !TA: A is [M][lda]; the tile's rows are r0 + r * rs.
//  - TA:  op(A) = At^T with At [K][lda]; the tile's rows are r0 .. r0 + TR - 1 (rs unused).
//  - !TB: B is [K][ldb]; TB: op(B) = Bt^T with Bt [N][ldb].
// k0, k1, c0, lda and ldb are multiples of 4, r0 of TR for TA, and every pointer is 16-byte aligned.
// TR is deduced from acc: the reverse scans' tiles are all 4 x 4.
template <bool TA, bool TB, int TR>
__device__ __forceinline__ void tile_mma(float (&acc)[TR][4], const float* A, int lda, int r0, int rs,
                                         const float* B, int ldb, int c0, int k0, int k1) {
#pragma unroll 2
    for (int k = k0; k < k1; k += 4) {
        float a[TR][4];  // a[r][q] = opA[row r][k + q]
        float b[4][4];   // b[q][c] = opB[k + q][c0 + c]
        if constexpr (!TA) {
#pragma unroll
            for (int r = 0; r < TR; ++r) {
                const float4 v = *reinterpret_cast<const float4*>(A + (r0 + r * rs) * lda + k);
                a[r][0] = v.x; a[r][1] = v.y; a[r][2] = v.z; a[r][3] = v.w;
            }
        } else {
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const float* p = A + (k + q) * lda + r0;
                if constexpr (TR == 4) {
                    const float4 v = *reinterpret_cast<const float4*>(p);
                    a[0][q] = v.x; a[1][q] = v.y; a[2][q] = v.z; a[3][q] = v.w;
                } else if constexpr (TR == 2) {
                    const float2 v = *reinterpret_cast<const float2*>(p);
                    a[0][q] = v.x; a[1][q] = v.y;
                } else {
                    a[0][q] = *p;
                }
            }
        }
        if constexpr (!TB) {
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
            for (int r = 0; r < TR; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) acc[r][c] = fmaf(a[r][q], b[q][c], acc[r][c]);
            }
        }
    }
}

template <int TR>
__device__ __forceinline__ void zero(float (&acc)[TR][4]) {
#pragma unroll
    for (int r = 0; r < TR; ++r) {
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[r][c] = 0.0f;
    }
}

// gelu, tanh approximation (SPEC §3), with the reference's constants; the backward's
// derivatives of it (ttt_scan_backward.h) use the same constants.
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kKappa = 0.044715f;
constexpr float kC0 = 0.79788456f;    // the reference's rounded constants of its gelu'
constexpr float kC2 = 0.1070322243f;

__device__ __forceinline__ float gelu(float x) {
    return 0.5f * x * (1.0f + tanhf(kSqrt2OverPi * (x + kKappa * x * x * x)));
}

// ---------------------------------------------------------------- moving data
// Two forms of each move, which index differently: the forward's strided ones (a slice of a
// wider packed matrix, a parameter in the stored type) and the backward's dense float32 ones.

// dst[r * dst_ld + c] = src[r * ld + c]: a padded on-chip matrix to its packed float32 form;
// dst_ld lets the packed rows be part of a wider matrix (a slice of the columns).
__device__ __forceinline__ void pack_rows_strided(float* dst, int dst_ld, const float* src, int rows, int cols,
                                                  int ld) {
    for (int e = threadIdx.x; e < rows * cols; e += blockDim.x) {
        const int r = e / cols;
        const int c = e - r * cols;
        dst[r * dst_ld + c] = src[r * ld + c];
    }
}

// The reverse for an initial parameter in the stored type, rows src_ld apart.
template <typename T>
__device__ __forceinline__ void unpack_rows_strided(float* dst, int ld, const T* src, int src_ld, int rows,
                                                    int cols) {
    for (int e = threadIdx.x; e < rows * cols; e += blockDim.x) {
        const int r = e / cols;
        const int c = e - r * cols;
        dst[r * ld + c] = ttt_load(src[r * src_ld + c]);
    }
}

// dst[r * cols + c] = src[r * ld + c]: a padded matrix to its dense packed float32 form.
__device__ __forceinline__ void pack_rows(float* dst, const float* src, int rows, int cols, int ld) {
    for (int e = threadIdx.x; e < rows * cols; e += blockDim.x) {
        const int r = e / cols;
        dst[e] = src[r * ld + e - r * cols];
    }
}

// The reverse of pack_rows.
__device__ __forceinline__ void unpack_rows(float* dst, const float* src, int rows, int cols, int ld) {
    for (int e = threadIdx.x; e < rows * cols; e += blockDim.x) {
        const int r = e / cols;
        dst[r * ld + e - r * cols] = src[e];
    }
}

template <typename T>
__device__ __forceinline__ void load_vector(float* dst, const T* src, int n) {
    for (int e = threadIdx.x; e < n; e += blockDim.x) dst[e] = ttt_load(src[e]);
}

}  // namespace ttt_tiles

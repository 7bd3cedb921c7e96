// Device code shared by the two inner scans (ttt_linear.hip, ttt_mlp.hip): one block (or, on
// Hopper, one cluster of blocks) runs the whole sequence of one (batch, head), mini-batch after
// mini-batch, with the inner state and every intermediate kept in float32 on chip (or, where the
// device's shared memory is too small, in a per-block global workspace that stays in cache).
//
// Matrices on chip are row-major with a padded leading dimension (a multiple of 4 floats, 4
// more than the row length): rows then start 4 banks apart, which keeps the float4 loads of
// neighbouring rows free of bank conflicts. All products run through tile_mma: a thread owns
// TR x 4 results and sweeps the reduction 4 at a time with float4 loads.
//
// A mini-batch is a sequence of phases separated by barriers. The per-step cost is mostly
// latency (barriers, row reductions, few warps per scheduler), so the code keeps every thread
// busy in each phase (small tiles where a product is small), reduces rows with groups of lanes
// rather than whole warps, and loads the next mini-batch while the current one computes.
#pragma once
#include "tttbench_hip.h"

// The most threads a scan block has (the kernels' launch bound). 256 leaves each thread the
// registers its tiles and the prefetched next mini-batch need; a build for experiments may
// define another.
#ifndef TTT_SCAN_THREADS
#define TTT_SCAN_THREADS 256
#endif

// Per-phase cycle counts for tools/scan_phases.cu: with TTT_PHASE_CLOCKS defined, thread 0 of
// block 0 adds the cycles since its previous mark to ttt_phase_cycles[i] at each TTT_PHASE(i),
// placed right after a barrier, so each count is one phase including its wait.
#ifdef TTT_PHASE_CLOCKS
__device__ unsigned long long ttt_phase_cycles[16];
#define TTT_PHASE_START long long ttt_phase_mark_ = clock64()
#define TTT_PHASE(i)                                               \
    do {                                                           \
        if (blockIdx.x == 0 && threadIdx.x == 0) {                 \
            const long long now_ = clock64();                      \
            ttt_phase_cycles[i] += (unsigned long long)(now_ - ttt_phase_mark_); \
            ttt_phase_mark_ = now_;                                \
        }                                                          \
    } while (0)
#else
#define TTT_PHASE_START
#define TTT_PHASE(i)
#endif

namespace ttt_scan {

// Where a scan keeps its state and scratch. The host picks the first that fits the device's
// shared memory and passes the workspace the other two need.
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

// Tile t of an [M, N] result made of TR x 4 tiles: its rows and first column. Plain products
// put neighbouring threads on neighbouring row tiles and interleave a tile's rows (rows rt,
// rt + M/TR, ...), so that their float4 loads of A hit neighbouring rows, 4 banks apart.
// Products with a transposed A (the weight updates, [F, *] results) put neighbouring threads on
// neighbouring column tiles of the same TR contiguous rows: their loads of At are one broadcast
// vector, and their float4 read-modify-writes of the result cover contiguous bytes.
template <bool TA, int TR>
struct Tile {
    int r0, rs, c0;
    __device__ __forceinline__ Tile(int t, int M, int N) {
        if constexpr (TA) {
            const int ctn = N / 4;
            const int ct = t % ctn;
            r0 = (t / ctn) * TR;
            rs = 1;
            c0 = ct * 4;
        } else {
            const int rtn = M / TR;
            r0 = t % rtn;
            rs = rtn;
            c0 = (t / rtn) * 4;
        }
    }
    __device__ __forceinline__ int row(int r) const { return r0 + r * rs; }
};

// p[0..4) = v (16-byte aligned), p[0..4) += v, p[0..4) -= v, p[0..4) *= v: a tile row at once.
__device__ __forceinline__ void store4(float* p, const float (&v)[4]) {
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void add4(float* p, const float (&v)[4]) {
    float4 x = *reinterpret_cast<float4*>(p);
    x.x += v[0]; x.y += v[1]; x.z += v[2]; x.w += v[3];
    *reinterpret_cast<float4*>(p) = x;
}
__device__ __forceinline__ void sub4(float* p, const float (&v)[4]) {
    float4 x = *reinterpret_cast<float4*>(p);
    x.x -= v[0]; x.y -= v[1]; x.z -= v[2]; x.w -= v[3];
    *reinterpret_cast<float4*>(p) = x;
}
__device__ __forceinline__ void mul4(float* p, const float (&v)[4]) {
    float4 x = *reinterpret_cast<float4*>(p);
    x.x *= v[0]; x.y *= v[1]; x.z *= v[2]; x.w *= v[3];
    *reinterpret_cast<float4*>(p) = x;
}

// Row i of a times row j of b over n (a multiple of 4) floats.
__device__ __forceinline__ float dot(const float* a, const float* b, int n) {
    float s0 = 0.0f, s1 = 0.0f;
#pragma unroll 4
    for (int k = 0; k < n; k += 4) {
        const float4 x = *reinterpret_cast<const float4*>(a + k);
        const float4 y = *reinterpret_cast<const float4*>(b + k);
        s0 = fmaf(x.x, y.x, s0);
        s1 = fmaf(x.y, y.y, s1);
        s0 = fmaf(x.z, y.z, s0);
        s1 = fmaf(x.w, y.w, s1);
    }
    return s0 + s1;
}

// NM = -eta o (tril(A B^T) + 1), eta[i][j] = tok[i] lr[j], for [K, n] A and B: one element per
// thread at a time, so that every thread has the same share (the upper triangle is zero).
__device__ __forceinline__ void eta_attention(float* NM, int ldm, const float* A, int lda, const float* B, int ldb,
                                              int n, const float* tok_s, const float* lr_s, int K) {
    for (int e = threadIdx.x; e < K * K; e += blockDim.x) {
        const int i = e / K;
        const int j = e - i * K;
        NM[i * ldm + j] = j <= i ? -tok_s[i] * lr_s[j] * (dot(A + i * lda, B + j * ldb, n) + 1.0f) : 0.0f;
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

// ---------------------------------------------------------------- rows, by groups of lanes

// The elements of a row a lane holds in registers at most.
constexpr int kRowElems = 8;

// Row-wise work (norms over F) gives each row a group of g lanes of one warp, g a power of two
// no larger than the warp, as large as lets every row have its own group at once, and at
// least F / kRowElems, so that a row fits the lanes' registers (rows then take turns).
struct RowGroups {
    int g;       // lanes per row
    int lane;    // this thread's lane within its group
    int group;   // this thread's group
    int groups;  // groups in the block
    __device__ __forceinline__ RowGroups(int rows, int F) {
        g = warpSize;
        while (g > 1 && (int)blockDim.x / g < rows && (g / 2) * kRowElems >= F) g >>= 1;
        lane = threadIdx.x % g;
        group = threadIdx.x / g;
        groups = blockDim.x / g;
    }
    // Sum over the lanes of the group. Every thread of the block calls it the same number of
    // times (a thread without a row contributes zeros), so the shuffles never diverge.
    __device__ __forceinline__ float sum(float v) const {
        for (int m = g >> 1; m > 0; m >>= 1) v += TTT_SHFL_XOR(v, m);
        return v;
    }
    // Two sums at once, their shuffles interleaved.
    __device__ __forceinline__ void sum2(float& a, float& b) const {
        for (int m = g >> 1; m > 0; m >>= 1) {
            const float x = TTT_SHFL_XOR(a, m);
            const float y = TTT_SHFL_XOR(b, m);
            a += x;
            b += y;
        }
    }
};

// lnL2grad(z, target) of SPEC §3 step 4 for one row, in place of z: mu, sigma of z; zh = (z -
// mu) / sigma; g = (gamma zh + beta - target) gamma; result = (F g - sum g - zh sum(g zh)) /
// (F sigma). Lane l of the group holds elements l, l + g, ... in registers throughout (F <=
// kRowElems g). When eg is not null it also receives eta * result. Threads with active ==
// false only take part in the shuffles.
__device__ __forceinline__ void ln_l2_grad_row(const RowGroups& rg, bool active, float* z, const float* target,
                                               const float* gamma, const float* beta, int F, float eps, float* eg,
                                               float eta) {
    float zv[kRowElems];
    float s = 0.0f;
#pragma unroll
    for (int e = 0; e < kRowElems; ++e) {
        const int f = rg.lane + e * rg.g;
        zv[e] = active && f < F ? z[f] : 0.0f;
        s += zv[e];
    }
    const float inv_f = 1.0f / F;
    const float mu = rg.sum(s) * inv_f;
    float v = 0.0f;
#pragma unroll
    for (int e = 0; e < kRowElems; ++e) {
        const int f = rg.lane + e * rg.g;
        const float d = active && f < F ? zv[e] - mu : 0.0f;
        v += d * d;
    }
    const float sigma = sqrtf(rg.sum(v) * inv_f + eps);
    const float rs = 1.0f / sigma;
    float gv[kRowElems] = {};
    float sg = 0.0f;
    float sgz = 0.0f;
#pragma unroll
    for (int e = 0; e < kRowElems; ++e) {
        const int f = rg.lane + e * rg.g;
        if (active && f < F) {
            const float zh = (zv[e] - mu) * rs;
            const float g = (gamma[f] * zh + beta[f] - target[f]) * gamma[f];
            zv[e] = zh;
            gv[e] = g;
            sg += g;
            sgz += g * zh;
        }
    }
    rg.sum2(sg, sgz);
    if (!active) return;
    const float scale = 1.0f / (F * sigma);
#pragma unroll
    for (int e = 0; e < kRowElems; ++e) {
        const int f = rg.lane + e * rg.g;
        if (f < F) {
            const float r = (F * gv[e] - sg - zv[e] * sgz) * scale;
            z[f] = r;
            if (eg != nullptr) eg[f] = eta * r;
        }
    }
}

// out[f] = q[f] + LayerNorm(zb)[f] (gamma, beta), rounded to the stored type.
template <typename T>
__device__ __forceinline__ void ln_out_row(const RowGroups& rg, bool active, const float* zb, const float* q,
                                           const float* gamma, const float* beta, int F, float eps, T* out) {
    float zv[kRowElems];
    float s = 0.0f;
#pragma unroll
    for (int e = 0; e < kRowElems; ++e) {
        const int f = rg.lane + e * rg.g;
        zv[e] = active && f < F ? zb[f] : 0.0f;
        s += zv[e];
    }
    const float inv_f = 1.0f / F;
    const float mu = rg.sum(s) * inv_f;
    float v = 0.0f;
#pragma unroll
    for (int e = 0; e < kRowElems; ++e) {
        const int f = rg.lane + e * rg.g;
        const float d = active && f < F ? zv[e] - mu : 0.0f;
        v += d * d;
    }
    const float rs = 1.0f / sqrtf(rg.sum(v) * inv_f + eps);
    if (!active) return;
#pragma unroll
    for (int e = 0; e < kRowElems; ++e) {
        const int f = rg.lane + e * rg.g;
        if (f < F) ttt_store(out + f, q[f] + gamma[f] * (zv[e] - mu) * rs + beta[f]);
    }
}

// ---------------------------------------------------------------- moving data

// dst[r * cols + c] = src[r * ld + c]: a padded on-chip matrix to its packed float32 form;
// dst_ld lets the packed rows be part of a wider matrix (a slice of the columns).
__device__ __forceinline__ void pack_rows(float* dst, int dst_ld, const float* src, int rows, int cols, int ld) {
    for (int e = threadIdx.x; e < rows * cols; e += blockDim.x) {
        const int r = e / cols;
        const int c = e - r * cols;
        dst[r * dst_ld + c] = src[r * ld + c];
    }
}

// The reverse for an initial parameter in the stored type.
template <typename T>
__device__ __forceinline__ void unpack_rows(float* dst, int ld, const T* src, int src_ld, int rows, int cols) {
    for (int e = threadIdx.x; e < rows * cols; e += blockDim.x) {
        const int r = e / cols;
        const int c = e - r * cols;
        dst[r * ld + c] = ttt_load(src[r * src_ld + c]);
    }
}

template <typename T>
__device__ __forceinline__ void load_vector(float* dst, const T* src, int n) {
    for (int e = threadIdx.x; e < n; e += blockDim.x) dst[e] = ttt_load(src[e]);
}

// 16-byte chunks of the next mini-batch a thread holds in registers at most.
constexpr int kPrefetchChunks = 4;

// The rows [K, F] of xq, xk, xv of one mini-batch (Q, K and V, stored raw: the target V - K is
// formed on chip), and its K learning rates. The next mini-batch is read into registers while
// the current one computes (issue), then written to shared memory between mini-batches
// (retire), so its global-memory latency is hidden. Where it does not fit the registers, or a
// row is not a whole number of 16-byte chunks, load() reads it directly.
template <typename T>
struct MiniBatchLoader {
    static constexpr int kPerChunk = 16 / (int)sizeof(T);  // elements per chunk
    int chunks;     // chunks of one tensor
    bool staged;    // the prefetch path applies
    uint4 v[kPrefetchChunks];
    float lr;

    __device__ __forceinline__ MiniBatchLoader(int K, int F) {
        chunks = K * F / kPerChunk;
        staged = F % kPerChunk == 0 && 3 * chunks <= kPrefetchChunks * (int)blockDim.x;
    }

    __device__ __forceinline__ void issue(const T* q, const T* k, const T* val, const T* lr_src, int K) {
#pragma unroll
        for (int c = 0; c < kPrefetchChunks; ++c) {
            const int idx = threadIdx.x + c * blockDim.x;
            if (idx < 3 * chunks) {
                const int t = idx / chunks;
                const T* src = t == 0 ? q : t == 1 ? k : val;
                v[c] = reinterpret_cast<const uint4*>(src)[idx - t * chunks];
            }
        }
        if ((int)threadIdx.x < K) lr = ttt_load(lr_src[threadIdx.x]);
    }

    __device__ __forceinline__ void retire(float* qs, float* ks, float* vs, float* lr_s, int K, int F, int ld) {
#pragma unroll
        for (int c = 0; c < kPrefetchChunks; ++c) {
            const int idx = threadIdx.x + c * blockDim.x;
            if (idx < 3 * chunks) {
                const int t = idx / chunks;
                const int e = (idx - t * chunks) * kPerChunk;
                const int i = e / F;
                float* dst = (t == 0 ? qs : t == 1 ? ks : vs) + i * ld + (e - i * F);
                const unsigned w[4] = {v[c].x, v[c].y, v[c].z, v[c].w};
#pragma unroll
                for (int j = 0; j < kPerChunk; ++j) {
                    dst[j] = ttt_from_bits<T>(kPerChunk == 4 ? w[j] : w[j / 2] >> (16 * (j % 2)));
                }
            }
        }
        if ((int)threadIdx.x < K) lr_s[threadIdx.x] = lr;
    }

    __device__ __forceinline__ void load(const T* q, const T* k, const T* val, const T* lr_src, float* qs, float* ks,
                                         float* vs, float* lr_s, int K, int F, int ld) {
        if (staged) {
            issue(q, k, val, lr_src, K);
            retire(qs, ks, vs, lr_s, K, F, ld);
            return;
        }
        for (int e = threadIdx.x; e < K * F; e += blockDim.x) {
            const int i = e / F;
            const int f = e - i * F;
            qs[i * ld + f] = ttt_load(q[e]);
            ks[i * ld + f] = ttt_load(k[e]);
            vs[i * ld + f] = ttt_load(val[e]);
        }
        for (int e = threadIdx.x; e < K; e += blockDim.x) lr_s[e] = ttt_load(lr_src[e]);
    }
};

// ts -= ks over [K, F] (the target V - K), float4 at a time.
__device__ __forceinline__ void rows_axpy(float* ts, const float* ks, int K, int F, int ld) {
    const int f4 = F / 4;
    for (int e = threadIdx.x; e < K * f4; e += blockDim.x) {
        const int i = e / f4;
        float4* t = reinterpret_cast<float4*>(ts + i * ld) + (e - i * f4);
        const float4 k = reinterpret_cast<const float4*>(ks + i * ld)[e - i * f4];
        t->x -= k.x; t->y -= k.y; t->z -= k.z; t->w -= k.w;
    }
}

// ks[i][:] *= tok_last * lr[i], float4 at a time.
__device__ __forceinline__ void scale_rows(float* ks, const float* lr_s, float tok_last, int K, int F, int ld) {
    const int f4 = F / 4;
    for (int e = threadIdx.x; e < K * f4; e += blockDim.x) {
        const int i = e / f4;
        const float s = tok_last * lr_s[i];
        float4* p = reinterpret_cast<float4*>(ks + i * ld) + (e - i * f4);
        p->x *= s; p->y *= s; p->z *= s; p->w *= s;
    }
}

// A layout the host did not size for leaves NaN in every output row this block owns, so
// that verification fails loudly instead of the kernel reading past its buffers.
template <typename T>
__device__ __forceinline__ void poison_output(T* out, int seq_len, int dim, int F) {
    const float nan = __int_as_float(0x7fc00000);
    for (int e = threadIdx.x; e < seq_len * F; e += blockDim.x) ttt_store(out + (long)(e / F) * dim + e % F, nan);
}

}  // namespace ttt_scan

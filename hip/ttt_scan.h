// Device code shared by the two inner scans (ttt_linear.hip, ttt_mlp.hip): one block (or, on
// Hopper, one cluster of blocks) runs the whole sequence of one (batch, head), mini-batch after
// mini-batch, with the inner state and every intermediate kept in float32 on chip (or, where the
// device's shared memory is too small, in a per-block global workspace that stays in cache).
//
// Matrices on chip are row-major with a padded leading dimension (a multiple of 4 floats, 4
// more than the row length): rows then start 4 banks apart, which keeps the float4 loads of
// neighbouring rows free of bank conflicts. All products run through tile_mma (ttt_tiles.h): a
// thread owns TR x 4 results and sweeps the reduction 4 at a time with float4 loads.
//
// A mini-batch is a sequence of phases separated by barriers. The per-step cost is mostly
// latency (barriers, row reductions, few warps per scheduler), so the code keeps every thread
// busy in each phase (small tiles where a product is small), reduces rows with groups of lanes
// rather than whole warps, and loads the next mini-batch while the current one computes.
#pragma once
#include "ttt_tiles.h"

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

using namespace ttt_tiles;

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

// ---------------------------------------------------------------- compile-time shapes
// Helpers for scans whose F and K are template constants (the common shapes): loops unroll
// fully, index arithmetic folds into shifts and immediates, and a row's lanes hold contiguous
// elements, so that its loads and stores are vectors.

namespace ttt_scan {

// acc += op(A) op(B) over k in [0, KN), as tile_mma, with every k step unrolled so that the
// loads of later steps are issued before the multiply-adds of earlier ones need them.
template <bool TA, bool TB, int TR, int KN>
__device__ __forceinline__ void tile_mma_fixed(float (&acc)[TR][4], const float* A, int lda, int r0, int rs,
                                               const float* B, int ldb, int c0) {
#pragma unroll
    for (int k = 0; k < KN; k += 4) {
        float a[TR][4];
        float b[4][4];
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

// Row a of length N times row b, four partial sums (N a multiple of 4).
template <int N>
__device__ __forceinline__ float dot_fixed(const float* a, const float* b) {
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int k = 0; k < N; k += 4) {
        const float4 x = *reinterpret_cast<const float4*>(a + k);
        const float4 y = *reinterpret_cast<const float4*>(b + k);
        s[0] = fmaf(x.x, y.x, s[0]);
        s[1] = fmaf(x.y, y.y, s[1]);
        s[2] = fmaf(x.z, y.z, s[2]);
        s[3] = fmaf(x.w, y.w, s[3]);
    }
    return (s[0] + s[1]) + (s[2] + s[3]);
}

// E consecutive floats at p (a multiple of E floats from a 16-byte boundary), as wide as E allows.
template <int E>
__device__ __forceinline__ void load_run(float (&v)[E], const float* p) {
    if constexpr (E % 4 == 0) {
#pragma unroll
        for (int e = 0; e < E; e += 4) {
            const float4 x = *reinterpret_cast<const float4*>(p + e);
            v[e] = x.x; v[e + 1] = x.y; v[e + 2] = x.z; v[e + 3] = x.w;
        }
    } else if constexpr (E % 2 == 0) {
#pragma unroll
        for (int e = 0; e < E; e += 2) {
            const float2 x = *reinterpret_cast<const float2*>(p + e);
            v[e] = x.x; v[e + 1] = x.y;
        }
    } else {
#pragma unroll
        for (int e = 0; e < E; ++e) v[e] = p[e];
    }
}

template <int E>
__device__ __forceinline__ void store_run(float* p, const float (&v)[E]) {
    if constexpr (E % 4 == 0) {
#pragma unroll
        for (int e = 0; e < E; e += 4) *reinterpret_cast<float4*>(p + e) = make_float4(v[e], v[e + 1], v[e + 2], v[e + 3]);
    } else if constexpr (E % 2 == 0) {
#pragma unroll
        for (int e = 0; e < E; e += 2) *reinterpret_cast<float2*>(p + e) = make_float2(v[e], v[e + 1]);
    } else {
#pragma unroll
        for (int e = 0; e < E; ++e) p[e] = v[e];
    }
}

// Rows of F = G E floats, each given to a group of G lanes of one warp (G a power of two no
// larger than the warp: the kernel checks), lane l holding elements [l E, l E + E).
template <int G, int E>
struct FixedRows {
    static constexpr int F = G * E;
    int lane;
    int group;
    __device__ __forceinline__ FixedRows() : lane((int)threadIdx.x % G), group((int)threadIdx.x / G) {}
    __device__ __forceinline__ static float sum(float v) {
#pragma unroll
        for (int m = G / 2; m > 0; m >>= 1) v += TTT_SHFL_XOR(v, m);
        return v;
    }
    __device__ __forceinline__ static void sum2(float& a, float& b) {
#pragma unroll
        for (int m = G / 2; m > 0; m >>= 1) {
            const float x = TTT_SHFL_XOR(a, m);
            const float y = TTT_SHFL_XOR(b, m);
            a += x;
            b += y;
        }
    }
};

// The lanes of a row in the fixed-shape row work of a [K, F] phase on NT threads: NT / K, so that
// every row has its group at once, doubled while a lane would hold more than kRowElems elements
// (rows then take turns, NT / G at a time); 0 where no power of two up to 32 splits F so.
__host__ __device__ constexpr int fixed_row_lanes(int nt, int f, int k) {
    if (f <= 0 || k <= 0 || nt % k != 0 || ((nt / k) & (nt / k - 1)) != 0) return 0;
    int g = nt / k;
    while (g <= 32 && (f % g != 0 || f / g > kRowElems)) g *= 2;
    return g <= 32 ? g : 0;
}

// ln_l2_grad_row for one row with FixedRows (every lane of the group active): G in place of z,
// eta G into eg. Only groups with store set write (all take part in the shuffles).
template <int G, int E>
__device__ __forceinline__ void ln_l2_grad_fixed(const FixedRows<G, E>& rg, float* z, const float* target,
                                                 const float* gamma, const float* beta, float eps, float* eg,
                                                 float eta, bool store = true) {
    constexpr int F = G * E;
    const int o = rg.lane * E;
    float zv[E], tv[E], gm[E], bt[E];
    load_run<E>(zv, z + o);
    load_run<E>(tv, target + o);
    load_run<E>(gm, gamma + o);
    load_run<E>(bt, beta + o);
    float s = 0.0f;
#pragma unroll
    for (int e = 0; e < E; ++e) s += zv[e];
    const float inv_f = 1.0f / F;
    const float mu = rg.sum(s) * inv_f;
    float v = 0.0f;
#pragma unroll
    for (int e = 0; e < E; ++e) {
        const float d = zv[e] - mu;
        v += d * d;
    }
    const float sigma = sqrtf(rg.sum(v) * inv_f + eps);
    const float rs = 1.0f / sigma;
    float gv[E];
    float sg = 0.0f;
    float sgz = 0.0f;
#pragma unroll
    for (int e = 0; e < E; ++e) {
        const float zh = (zv[e] - mu) * rs;
        const float g = (gm[e] * zh + bt[e] - tv[e]) * gm[e];
        zv[e] = zh;
        gv[e] = g;
        sg += g;
        sgz += g * zh;
    }
    rg.sum2(sg, sgz);
    const float scale = 1.0f / (F * sigma);
    float r[E], er[E];
#pragma unroll
    for (int e = 0; e < E; ++e) {
        r[e] = (F * gv[e] - sg - zv[e] * sgz) * scale;
        er[e] = eta * r[e];
    }
    if (!store) return;
    store_run<E>(z + o, r);
    store_run<E>(eg + o, er);
}

// ln_out_row with FixedRows: out = q + LayerNorm(zb), rounded to the stored type.
// Only groups with store set write (all take part in the shuffles).
template <typename T, int G, int E>
__device__ __forceinline__ void ln_out_fixed(const FixedRows<G, E>& rg, const float* zb, const float* q,
                                             const float* gamma, const float* beta, float eps, T* out,
                                             bool store = true) {
    constexpr int F = G * E;
    const int o = rg.lane * E;
    float zv[E], qv[E], gm[E], bt[E];
    load_run<E>(zv, zb + o);
    load_run<E>(qv, q + o);
    load_run<E>(gm, gamma + o);
    load_run<E>(bt, beta + o);
    float s = 0.0f;
#pragma unroll
    for (int e = 0; e < E; ++e) s += zv[e];
    const float inv_f = 1.0f / F;
    const float mu = rg.sum(s) * inv_f;
    float v = 0.0f;
#pragma unroll
    for (int e = 0; e < E; ++e) {
        const float d = zv[e] - mu;
        v += d * d;
    }
    const float rs = 1.0f / sqrtf(rg.sum(v) * inv_f + eps);
    float r[E];
#pragma unroll
    for (int e = 0; e < E; ++e) r[e] = qv[e] + gm[e] * (zv[e] - mu) * rs + bt[e];
    if (!store) return;
    if constexpr (sizeof(T) == 4 && E % 4 == 0) {
        store_run<E>(reinterpret_cast<float*>(out) + o, r);
    } else {
#pragma unroll
        for (int e = 0; e < E; ++e) ttt_store(out + o + e, r[e]);
    }
}

// The next mini-batch's Q, K, V of [K, F] (F a multiple of the 16-byte chunk) read into
// registers, thread t holding chunk t + c NT of each, so that it also holds the V and K
// elements whose difference, the target V - K, it writes at retire.
template <typename T, int F, int K, int NT>
struct FixedLoader {
    static constexpr int kPerChunk = 16 / (int)sizeof(T);
    static constexpr int kChunks = K * F / kPerChunk;
    static constexpr int kPer = (kChunks + NT - 1) / NT;
    static_assert(F % kPerChunk == 0, "rows must be whole chunks");
    uint4 q[kPer], k[kPer], v[kPer];
    float lr;

    __device__ __forceinline__ void issue(const T* qs, const T* ks, const T* vs, const T* lr_src) {
#pragma unroll
        for (int c = 0; c < kPer; ++c) {
            const int idx = (int)threadIdx.x + c * NT;
            if (kChunks % NT == 0 || idx < kChunks) {
                q[c] = reinterpret_cast<const uint4*>(qs)[idx];
                k[c] = reinterpret_cast<const uint4*>(ks)[idx];
                v[c] = reinterpret_cast<const uint4*>(vs)[idx];
            }
        }
        if ((int)threadIdx.x < K) lr = ttt_load(lr_src[threadIdx.x]);
    }

    __device__ __forceinline__ static void unpack(float (&x)[kPerChunk], const uint4& c) {
        const unsigned w[4] = {c.x, c.y, c.z, c.w};
#pragma unroll
        for (int j = 0; j < kPerChunk; ++j) x[j] = ttt_from_bits<T>(kPerChunk == 4 ? w[j] : w[j / 2] >> (16 * (j % 2)));
    }

    // Q and K to qd, kd, V - K to td ([K][ld] each), the learning rates to lr_s.
    __device__ __forceinline__ void retire(float* qd, float* kd, float* td, float* lr_s, int ld) const {
#pragma unroll
        for (int c = 0; c < kPer; ++c) {
            const int idx = (int)threadIdx.x + c * NT;
            if (kChunks % NT == 0 || idx < kChunks) {
                const int e = idx * kPerChunk;
                const int off = (e / F) * ld + e % F;
                float xq[kPerChunk], xk[kPerChunk], xv[kPerChunk];
                unpack(xq, q[c]);
                unpack(xk, k[c]);
                unpack(xv, v[c]);
#pragma unroll
                for (int j = 0; j < kPerChunk; ++j) xv[j] -= xk[j];
                store_run<kPerChunk>(qd + off, xq);
                store_run<kPerChunk>(kd + off, xk);
                store_run<kPerChunk>(td + off, xv);
            }
        }
        if ((int)threadIdx.x < K) lr_s[threadIdx.x] = lr;
    }
};

}  // namespace ttt_scan

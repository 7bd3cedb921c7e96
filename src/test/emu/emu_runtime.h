// A CPU emulation of the small part of HIP the kernels in hip/ use, for tests on machines with
// no GPU: each block runs as blockDim fibers (ucontext) on one host thread, __syncthreads and
// warp shuffles are barriers between them, and the fibers of a block run in a shuffled order
// between barriers, so a missing barrier tends to show as a wrong result. Static shared memory is
// one static array per declaration; every dynamic shared array of a module is one buffer
// (emu_dynamic_shared, which build.py aliases them to). Blocks run one after another, except the
// blocks of one thread block cluster (built with TTT_EMU_SM >= 90, see hip/hip_runtime.h): those
// run together, one block at a time until it waits at the cluster barrier, each with its own copy
// of the dynamic shared memory (swapped in and out of the buffer), which ttt_cluster_map reaches
// for the other blocks. Device pointers are host pointers.
#pragma once
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

// The dynamic shared memory a block may have (build.py sizes emu_dynamic_shared to it).
#define EMU_SHARED_BYTES (256u * 1024u)
// Kernels that use what only real hardware has (inline PTX, say) test for this.
#define TTT_EMULATION 1

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) uint4 {
    unsigned x, y, z, w;
};

inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline float2 make_float2(float x, float y) { return float2{x, y}; }

extern "C" {
// The dynamic shared memory of the block that runs; every extern __shared__ array aliases it.
extern float emu_dynamic_shared[];
}

namespace emu {

struct Barrier {
    int count = 0;
    unsigned generation = 0;
};

struct Fiber {
    ucontext_t context;
    std::vector<char> stack;
    dim3 tid;
    int block = 0;  // rank in the cluster
    bool done = false;
};

// What each block of a cluster has of its own.
struct Block {
    dim3 idx;
    Barrier barrier;
    std::vector<Barrier> warps;
    std::vector<uint32_t> exchange;
    std::vector<char> shared;  // its dynamic shared memory while another block runs
    int finished = 0;
};

inline ucontext_t scheduler;
inline std::vector<Fiber> fibers;
inline std::vector<Block> blocks;
inline Block* blk = nullptr;
inline int current = 0;
inline int threads_per_block = 0;
inline int cluster_size = 1;
inline int live_block = 0;  // whose dynamic shared memory is in emu_dynamic_shared
inline unsigned dynamic_bytes = 0;
inline Barrier cluster_barrier;
inline dim3 thread_idx, block_idx, block_dim, grid_dim;
inline int warp_size = 32;
inline unsigned long progress = 0;
inline std::mt19937 rng(20240704u);
inline void (*kernel)(void**) = nullptr;
inline void** kernel_args = nullptr;

inline int linear_tid() { return (int)(thread_idx.x + block_dim.x * (thread_idx.y + block_dim.y * thread_idx.z)); }

inline void yield() { swapcontext(&fibers[current].context, &scheduler); }

// Leaving a completed barrier counts as progress too, so that a scheduling round in which no
// fiber moves is a deadlock and nothing else.
inline void wait(Barrier& b, int n) {
    const unsigned generation = b.generation;
    if (++b.count == n) {
        b.count = 0;
        ++b.generation;
        ++progress;
        return;
    }
    while (b.generation == generation) yield();
    ++progress;
}

inline void syncthreads() { wait(blk->barrier, threads_per_block); }

inline uint32_t shuffle_xor(uint32_t bits, int mask) {
    const int t = linear_tid();
    const int w = t / warp_size;
    blk->exchange[t] = bits;
    wait(blk->warps[w], warp_size);
    const uint32_t r = blk->exchange[w * warp_size + ((t % warp_size) ^ mask)];
    wait(blk->warps[w], warp_size);
    return r;
}

inline void entry(int index) {
    kernel(kernel_args);
    fibers[index].done = true;
    ++progress;
    swapcontext(&fibers[index].context, &scheduler);
}

// ---------------------------------------------------------------- clusters
inline int cluster_rank() { return fibers[current].block; }
inline void cluster_sync() { wait(cluster_barrier, threads_per_block * cluster_size); }

// The address of *p (in the running block's dynamic shared memory) in block `rank`'s.
template <typename P>
inline P* cluster_map(P* p, int rank) {
    char* base = reinterpret_cast<char*>(emu_dynamic_shared);
    const char* c = reinterpret_cast<const char*>(p);
    if (c < base || c >= base + dynamic_bytes || rank < 0 || rank >= cluster_size) {
        std::fprintf(stderr, "emu: ttt_cluster_map of %p (rank %d) outside the dynamic shared memory\n", (const void*)p, rank);
        std::abort();
    }
    if (rank == cluster_rank()) return p;
    return reinterpret_cast<P*>(blocks[rank].shared.data() + (c - base));
}

inline void switch_to(int b) {
    if (b == live_block) return;
    char* live = reinterpret_cast<char*>(emu_dynamic_shared);
    std::memcpy(blocks[live_block].shared.data(), live, dynamic_bytes);
    std::memcpy(live, blocks[b].shared.data(), dynamic_bytes);
    live_block = b;
}

}  // namespace emu

// Runs a kernel wrapper (which unpacks a kernelParams array) over the grid, in clusters of
// `cluster` blocks along x; defined here because each emulated module is a single translation
// unit. 0 on success, 1 on a deadlock (threads waiting at barriers no thread can complete), 2 on
// a bad configuration.
extern "C" __attribute__((used)) int emu_launch(void (*wrapper)(void**), void** args, unsigned gx, unsigned gy, unsigned gz,
                                 unsigned bx, unsigned by, unsigned bz, unsigned shared_bytes, int warp, int cluster) {
    using namespace emu;
    const int threads = (int)(bx * by * bz);
    if (threads <= 0 || threads > 1024 || threads % warp != 0) return 2;
    if (cluster < 1 || cluster > 8 || gx % (unsigned)cluster != 0 || shared_bytes > EMU_SHARED_BYTES) return 2;
    kernel = wrapper;
    kernel_args = args;
    warp_size = warp;
    grid_dim = {gx, gy, gz};
    block_dim = {bx, by, bz};
    threads_per_block = threads;
    cluster_size = cluster;
    dynamic_bytes = shared_bytes;
    const int n = threads * cluster;
    if ((int)fibers.size() != n) fibers = std::vector<Fiber>(n);
    blocks.assign(cluster, Block{});
    for (Block& b : blocks) {
        b.warps.assign(threads / warp, Barrier{});
        b.exchange.assign(threads, 0);
        // A cluster's blocks start with NaN bytes in their shared memory, so a read before any
        // write shows.
        if (cluster > 1) b.shared.assign(shared_bytes, (char)0xFF);
    }
    std::vector<int> order(threads);
    for (unsigned z = 0; z < gz; ++z) {
        for (unsigned y = 0; y < gy; ++y) {
            for (unsigned x0 = 0; x0 < gx; x0 += (unsigned)cluster) {
                cluster_barrier = Barrier{};
                for (int r = 0; r < cluster; ++r) {
                    Block& b = blocks[r];
                    b.idx = {x0 + (unsigned)r, y, z};
                    b.barrier = Barrier{};
                    b.finished = 0;
                }
                if (cluster > 1) {
                    std::memset(emu_dynamic_shared, 0xFF, shared_bytes);
                    live_block = 0;
                }
                for (int t = 0; t < n; ++t) {
                    Fiber& f = fibers[t];
                    const int lt = t % threads;
                    if (f.stack.empty()) f.stack.resize(256 * 1024);
                    f.tid = {(unsigned)lt % bx, ((unsigned)lt / bx) % by, (unsigned)lt / (bx * by)};
                    f.block = t / threads;
                    f.done = false;
                    getcontext(&f.context);
                    f.context.uc_stack.ss_sp = f.stack.data();
                    f.context.uc_stack.ss_size = f.stack.size();
                    f.context.uc_link = nullptr;
                    makecontext(&f.context, reinterpret_cast<void (*)()>(entry), 1, t);
                }
                int remaining = cluster;
                while (remaining > 0) {
                    const unsigned long round = progress;
                    for (int r = 0; r < cluster; ++r) {
                        Block& b = blocks[r];
                        if (b.finished == threads) continue;
                        if (cluster > 1) switch_to(r);
                        blk = &b;
                        block_idx = b.idx;
                        // Run this block until it finishes or waits for the rest of the cluster.
                        for (;;) {
                            const unsigned long before = progress;
                            for (int t = 0; t < threads; ++t) order[t] = t;
                            std::shuffle(order.begin(), order.end(), rng);
                            for (int lt : order) {
                                const int t = r * threads + lt;
                                if (fibers[t].done) continue;
                                current = t;
                                thread_idx = fibers[t].tid;
                                swapcontext(&scheduler, &fibers[t].context);
                                if (fibers[t].done) ++b.finished;
                            }
                            if (b.finished == threads || progress == before) break;
                        }
                        if (b.finished == threads) --remaining;
                    }
                    if (remaining > 0 && progress == round) {
                        std::fprintf(stderr, "emu: deadlock in block (%u, %u, %u), cluster of %d\n", x0, y, z, cluster);
                        return 1;
                    }
                }
            }
        }
    }
    return 0;
}

// ---------------------------------------------------------------- the HIP names
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define threadIdx (emu::thread_idx)
#define blockIdx (emu::block_idx)
#define blockDim (emu::block_dim)
#define gridDim (emu::grid_dim)
#define warpSize (emu::warp_size)

inline void __syncthreads() { emu::syncthreads(); }
inline void __syncwarp(unsigned = 0xffffffffu) {
    emu::wait(emu::blk->warps[emu::linear_tid() / emu::warp_size], emu::warp_size);
}

template <typename V>
inline V __shfl_xor(V v, int mask, int = 0) {
    static_assert(sizeof(V) == 4, "32-bit shuffles only");
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    bits = emu::shuffle_xor(bits, mask);
    std::memcpy(&v, &bits, 4);
    return v;
}

inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned i) { float f; std::memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline unsigned __float_as_uint(float f) { unsigned i; std::memcpy(&i, &f, 4); return i; }

using std::max;
using std::min;
inline int min(int a, unsigned b) { return std::min(a, (int)b); }
inline int min(unsigned a, int b) { return std::min((int)a, b); }

// ---------------------------------------------------------------- 16-bit storage types
struct __half {
    _Float16 v;
};
inline float __half2float(__half h) { return (float)h.v; }
inline __half __float2half_rn(float f) { return __half{(_Float16)f}; }
inline __half __float2half(float f) { return __float2half_rn(f); }
inline __half __ushort_as_half(unsigned short s) { __half h; std::memcpy(&h, &s, 2); return h; }

struct __hip_bfloat16 {
    uint16_t bits;
};
inline float __bfloat162float(__hip_bfloat16 b) { return __uint_as_float((unsigned)b.bits << 16); }
inline __hip_bfloat16 __float2bfloat16(float f) {
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return __hip_bfloat16{(uint16_t)((u >> 16) | 0x40u)};
    u += 0x7fffu + ((u >> 16) & 1u);
    return __hip_bfloat16{(uint16_t)(u >> 16)};
}

// A CPU emulation of the small part of HIP the kernels in hip/ use, for tests on machines with
// no GPU: each block runs as blockDim fibers (ucontext) on one host thread, __syncthreads and
// warp shuffles are barriers between them, and the fibers of a block run in a shuffled order
// between barriers, so a missing barrier tends to show as a wrong result. Shared memory is one
// static array per declaration; blocks run one after another. Device pointers are host pointers.
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

namespace emu {

struct Barrier {
    int count = 0;
    unsigned generation = 0;
};

struct Fiber {
    ucontext_t context;
    std::vector<char> stack;
    dim3 tid;
    bool done = false;
};

inline ucontext_t scheduler;
inline std::vector<Fiber> fibers;
inline int current = 0;
inline dim3 thread_idx, block_idx, block_dim, grid_dim;
inline int warp_size = 32;
inline Barrier block_barrier;
inline std::vector<Barrier> warp_barriers;
inline std::vector<uint32_t> exchange;
inline unsigned long progress = 0;
inline std::mt19937 rng(20240704u);
inline void (*kernel)(void**) = nullptr;
inline void** kernel_args = nullptr;

inline int linear_tid() { return (int)(thread_idx.x + block_dim.x * (thread_idx.y + block_dim.y * thread_idx.z)); }

inline void yield() { swapcontext(&fibers[current].context, &scheduler); }

inline void wait(Barrier& b, int n) {
    const unsigned generation = b.generation;
    if (++b.count == n) {
        b.count = 0;
        ++b.generation;
        ++progress;
        return;
    }
    while (b.generation == generation) yield();
}

inline void syncthreads() { wait(block_barrier, (int)fibers.size()); }

inline uint32_t shuffle_xor(uint32_t bits, int mask) {
    const int t = linear_tid();
    const int w = t / warp_size;
    exchange[t] = bits;
    wait(warp_barriers[w], warp_size);
    const uint32_t r = exchange[w * warp_size + ((t % warp_size) ^ mask)];
    wait(warp_barriers[w], warp_size);
    return r;
}

inline void entry(int index) {
    kernel(kernel_args);
    fibers[index].done = true;
    ++progress;
    swapcontext(&fibers[index].context, &scheduler);
}

}  // namespace emu

// Runs a kernel wrapper (which unpacks a kernelParams array) over the grid; defined here because
// each emulated module is a single translation unit. 0 on success, 1 on
// a deadlock (threads waiting at barriers no thread can complete), 2 on a bad configuration.
extern "C" __attribute__((used)) int emu_launch(void (*wrapper)(void**), void** args, unsigned gx, unsigned gy, unsigned gz,
                                 unsigned bx, unsigned by, unsigned bz, unsigned shared_bytes, int warp) {
    using namespace emu;
    (void)shared_bytes;
    const int threads = (int)(bx * by * bz);
    if (threads <= 0 || threads > 1024 || threads % warp != 0) return 2;
    kernel = wrapper;
    kernel_args = args;
    warp_size = warp;
    grid_dim = {gx, gy, gz};
    block_dim = {bx, by, bz};
    if ((int)fibers.size() != threads) fibers = std::vector<Fiber>(threads);
    warp_barriers.assign(threads / warp, Barrier{});
    exchange.assign(threads, 0);
    for (unsigned z = 0; z < gz; ++z) {
        for (unsigned y = 0; y < gy; ++y) {
            for (unsigned x = 0; x < gx; ++x) {
                block_idx = {x, y, z};
                block_barrier = Barrier{};
                for (int t = 0; t < threads; ++t) {
                    Fiber& f = fibers[t];
                    if (f.stack.empty()) f.stack.resize(256 * 1024);
                    f.tid = {(unsigned)t % bx, ((unsigned)t / bx) % by, (unsigned)t / (bx * by)};
                    f.done = false;
                    getcontext(&f.context);
                    f.context.uc_stack.ss_sp = f.stack.data();
                    f.context.uc_stack.ss_size = f.stack.size();
                    f.context.uc_link = nullptr;
                    makecontext(&f.context, reinterpret_cast<void (*)()>(entry), 1, t);
                }
                std::vector<int> order(threads);
                for (int t = 0; t < threads; ++t) order[t] = t;
                int remaining = threads;
                while (remaining > 0) {
                    const unsigned long before = progress;
                    std::shuffle(order.begin(), order.end(), rng);
                    for (int t : order) {
                        if (fibers[t].done) continue;
                        current = t;
                        thread_idx = fibers[t].tid;
                        swapcontext(&scheduler, &fibers[t].context);
                        if (fibers[t].done) --remaining;
                    }
                    if (remaining > 0 && progress == before) {
                        std::fprintf(stderr, "emu: deadlock in block (%u, %u, %u)\n", x, y, z);
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
    emu::wait(emu::warp_barriers[emu::linear_tid() / emu::warp_size], emu::warp_size);
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

// Portability layer: the kernels in hip/ are written once in HIP C++ and compiled with hipcc
// for AMD (HIP_PLATFORM=amd) and with nvcc (-x cu) for NVIDIA. Only the names that differ
// between the two toolchains are mapped here; everything else (__global__, __shared__,
// threadIdx, __syncthreads, the math library) is common to both.
//
// Rules the kernels follow so that one source fits both vendors:
//  - warpSize is read at run time (64 on CDNA, 32 on RDNA and NVIDIA), never written as a
//    number; warp reductions loop from warpSize / 2 down.
//  - Stored types are float, ttt_bf16 and ttt_f16; arithmetic is float32, through
//    ttt_load / ttt_store, which round to nearest even when narrowing.
//  - Entry points are extern "C" so the runtime finds them by name, one per stored type
//    (suffixes _f32, _bf16, _f16), and start with their family (the file's name).
//  - Every entry point has a launch descriptor beside it (TTT_LAUNCH, below), and every buffer
//    the host sizes for it a TTT_SIZE: the launch index the host reads (hip/README.md).
#pragma once

// ---------------------------------------------------------------- launch descriptors
// TTT_LAUNCH(name, threads, cluster, grid_x, grid_y, shared_bytes): how the host launches the
// entry points name_{f32,bf16,f16} (or name, for one without a stored type); TTT_SIZE(name,
// expr): a buffer size (in floats, unless its name says otherwise) the host allocates or passes.
// The expressions are integer arithmetic over the launch variables (hip/README.md). A normal
// compile drops them; preprocessed with -DTTT_LAUNCH_INDEX (scripts/build-kernels.sh), each
// becomes one line "@launch name "threads" "cluster" "grid_x" "grid_y" "shared_bytes"" or
// "@size name "expr"", every field after the name a string of its expression, macros expanded.
// Write each descriptor at file scope on a line of its own, never inside another macro.
#ifdef TTT_LAUNCH_INDEX
#define TTT_STR_(x) #x
#define TTT_STR(x) TTT_STR_(x)
#define TTT_LAUNCH(name, threads, cluster, grid_x, grid_y, shared_bytes) \
    @launch name TTT_STR(threads) TTT_STR(cluster) TTT_STR(grid_x) TTT_STR(grid_y) TTT_STR(shared_bytes)
#define TTT_SIZE(name, expr) @size name TTT_STR(expr)
#else
#define TTT_LAUNCH(name, threads, cluster, grid_x, grid_y, shared_bytes)
#define TTT_SIZE(name, expr)
#endif

// A grid-stride kernel over N elements: blocks of 256 threads, as many as cover N, at most MAXB.
#define TTT_STRIDE_THREADS 256
#define TTT_STRIDE_GRID(n) min(cdiv(n, TTT_STRIDE_THREADS), MAXB)
// A kernel that loops over rows with one block a row: at most 65535 blocks.
#define TTT_ROW_GRID(rows) min(rows, 65535)

#if defined(TTT_LAUNCH_INDEX)
// ---------------------------------------------------------------- the launch index only
// Preprocessed for its descriptors, not compiled: no vendor header, so that a plain
// "c++ -x c++ -E -P -DTTT_LAUNCH_INDEX -I hip hip/NAME.hip" works without HIP or CUDA. Every
// entry point is defined on every target (a cluster kernel only poisons where there are none).
#define TTT_HAS_CLUSTERS 0
#define TTT_CLUSTER_DIMS(c)
#elif defined(__CUDACC__) && !defined(__HIP_PLATFORM_AMD__)
// ---------------------------------------------------------------- NVIDIA, nvcc
#define TTT_NVIDIA 1
#include <cuda_bf16.h>
#include <cuda_fp16.h>
typedef __nv_bfloat16 ttt_bf16;
typedef __half ttt_f16;
// Every lane of the warp takes part in each shuffle the kernels issue.
#define TTT_SHFL_XOR(v, lane_mask) __shfl_xor_sync(0xffffffffu, (v), (lane_mask))
__device__ __forceinline__ float ttt_load(ttt_bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ void ttt_store(ttt_bf16* p, float v) { *p = __float2bfloat16_rn(v); }
#else
// ---------------------------------------------------------------- AMD (and hipcc on NVIDIA)
#define TTT_AMD 1
#include <hip/hip_runtime.h>
#include <hip/hip_fp16.h>
#if __has_include(<hip/hip_bf16.h>)
#include <hip/hip_bf16.h>
typedef __hip_bfloat16 ttt_bf16;
__device__ __forceinline__ float ttt_load(ttt_bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ void ttt_store(ttt_bf16* p, float v) { *p = __float2bfloat16(v); }
#else
// ROCm before 5.7 has only the hip_bfloat16 struct; its float constructor rounds to nearest even.
#include <hip/hip_bfloat16.h>
typedef hip_bfloat16 ttt_bf16;
__device__ __forceinline__ float ttt_load(ttt_bf16 x) { return static_cast<float>(x); }
__device__ __forceinline__ void ttt_store(ttt_bf16* p, float v) { *p = ttt_bf16(v); }
#endif
typedef __half ttt_f16;
#define TTT_SHFL_XOR(v, lane_mask) __shfl_xor((v), (lane_mask))
#endif

// ---------------------------------------------------------------- thread block clusters
// Hopper (sm_90) groups blocks into clusters that share shared memory and a barrier. Kernels
// that use them exist only where TTT_HAS_CLUSTERS is 1; the host launches them only there.
#if defined(TTT_LAUNCH_INDEX)
#elif defined(TTT_NVIDIA) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define TTT_HAS_CLUSTERS 1
#include <cooperative_groups.h>
#define TTT_CLUSTER_DIMS(c) __cluster_dims__(c, 1, 1)
__device__ __forceinline__ int ttt_cluster_rank() { return (int)cooperative_groups::this_cluster().block_rank(); }
// A barrier for every thread of every block of the cluster, which also orders their shared memory.
__device__ __forceinline__ void ttt_cluster_sync() { cooperative_groups::this_cluster().sync(); }
// The address of *p in the shared memory of block `rank` of the cluster.
template <typename P>
__device__ __forceinline__ P* ttt_cluster_map(P* p, int rank) {
    return cooperative_groups::this_cluster().map_shared_rank(p, (unsigned)rank);
}
#else
#define TTT_HAS_CLUSTERS 0
#define TTT_CLUSTER_DIMS(c)
#endif

// The block's dynamic shared memory as float*, 16-byte aligned.
#define TTT_DYNAMIC_SHARED(name)              \
    extern __shared__ float4 ttt_smem_f4_[];  \
    float* name = reinterpret_cast<float*>(ttt_smem_f4_)

// The launch index's cdiv, for the size macros a kernel shares with its descriptors.
__host__ __device__ __forceinline__ constexpr int cdiv(int a, int b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------- stored types (both vendors)
__device__ __forceinline__ float ttt_load(float x) { return x; }
__device__ __forceinline__ float ttt_load(ttt_f16 x) { return __half2float(x); }
__device__ __forceinline__ void ttt_store(float* p, float v) { *p = v; }
__device__ __forceinline__ void ttt_store(ttt_f16* p, float v) { *p = __float2half_rn(v); }

// The value of one stored element from its raw bits (the low 16 bits for the 2-byte types), for
// data moved as 16-byte vectors.
template <typename T>
__device__ __forceinline__ float ttt_from_bits(unsigned bits);
template <>
__device__ __forceinline__ float ttt_from_bits<float>(unsigned bits) { return __uint_as_float(bits); }
template <>
__device__ __forceinline__ float ttt_from_bits<ttt_bf16>(unsigned bits) { return __uint_as_float(bits << 16); }
template <>
__device__ __forceinline__ float ttt_from_bits<ttt_f16>(unsigned bits) {
    return __half2float(__ushort_as_half((unsigned short)(bits & 0xffffu)));
}

// ---------------------------------------------------------------- reductions

/** Sum over the lanes of one warp; every lane gets the result. */
__device__ __forceinline__ float ttt_warp_sum(float v) {
    for (int m = warpSize / 2; m > 0; m >>= 1) v += TTT_SHFL_XOR(v, m);
    return v;
}

/**
 * Sum over the whole block; every thread gets the result. {@code scratch} holds one float per
 * warp (at most 32 for 1024 threads); the block must not use it concurrently for anything else.
 */
__device__ __forceinline__ float ttt_block_sum(float v, float* scratch) {
    const int lane = threadIdx.x % warpSize;
    const int warp = threadIdx.x / warpSize;
    const int warps = (blockDim.x + warpSize - 1) / warpSize;
    v = ttt_warp_sum(v);
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float total = 0.0f;
    for (int w = 0; w < warps; ++w) total += scratch[w];
    return total;
}

// Expands M(T, suffix) once per stored type: each kernel file defines M to write one
// extern "C" entry point that calls its device template with T.
// A module compiled at run time for one stored type (-DTTT_ONLY_F32, _BF16 or _F16) holds that
// type's entry points alone.
#if defined(TTT_ONLY_F32)
#define TTT_FOR_EACH_TYPE(M) M(float, f32)
#elif defined(TTT_ONLY_BF16)
#define TTT_FOR_EACH_TYPE(M) M(ttt_bf16, bf16)
#elif defined(TTT_ONLY_F16)
#define TTT_FOR_EACH_TYPE(M) M(ttt_f16, f16)
#else
#define TTT_FOR_EACH_TYPE(M) M(float, f32) M(ttt_bf16, bf16) M(ttt_f16, f16)
#endif
// The entry points without compile-time shapes: TTT_FOR_EACH_TYPE, except in a module compiled at
// run time for one shape (-DTTT_SHAPE_MODULE), which the host asks only for the fused scans (the
// jar's objects hold the rest), so it leaves them out and compiles in a fraction of the time.
#if defined(TTT_SHAPE_MODULE)
#define TTT_FOR_EACH_TYPE_UNSHAPED(M)
#else
#define TTT_FOR_EACH_TYPE_UNSHAPED(M) TTT_FOR_EACH_TYPE(M)
#endif

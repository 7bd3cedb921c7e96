// Where an inner-scan kernel spends its time: runs one forward kernel of hip/ttt_linear.hip or
// hip/ttt_mlp.hip on random inputs (B = 1) and prints the cycles of each phase per mini-batch,
// counted by block 0 (TTT_PHASE_CLOCKS), the time per launch, and how far its output is from the
// one-block kernel's (every variant computes the same function). A development tool for NVIDIA
// GPUs, not part of the suite; build on the GPU machine:
//
//   nvcc -O3 -std=c++17 -arch=sm_90 -DTTT_PHASE_CLOCKS [-DTTT_SCAN_THREADS=512] -I hip \
//        hip/tools/scan_phases.cu -o scan_phases
//   ./scan_phases linear|mlp F H L K threads variant...
//   (variant: shared, fused (linear), cluster2, cluster4, fusedcluster2/4/8 (mlp); the
//   fused kernels print their phases in order as A, B, ...: linear P, B, C, mlp A to I;
//   add -DTTT_SHAPE_F=.. -DTTT_SHAPE_K=.. for the fused kernels' instance of that shape)
#include <cuda_runtime.h>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>
#include "../ttt_linear.hip"
#include "../ttt_mlp.hip"

#define CHECK(call)                                                                          \
    do {                                                                                     \
        cudaError_t e_ = (call);                                                             \
        if (e_ != cudaSuccess) {                                                             \
            fprintf(stderr, "%s failed: %s (line %d)\n", #call, cudaGetErrorString(e_), __LINE__); \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

typedef void (*LinearKernel)(const float*, const float*, const float*, const float*, const float*, const float*,
                             const float*, const float*, const float*, float*, float*, int, float*, float*, int, int,
                             int, int, int, int, float);
typedef void (*MlpKernel)(const float*, const float*, const float*, const float*, const float*, const float*,
                          const float*, const float*, const float*, const float*, const float*, float*, float*, int,
                          float*, float*, int, int, int, int, int, int, float);

static float* upload(const std::vector<float>& h) {
    float* d;
    CHECK(cudaMalloc(&d, h.size() * 4));
    CHECK(cudaMemcpy(d, h.data(), h.size() * 4, cudaMemcpyHostToDevice));
    return d;
}

static std::vector<float> normal(std::mt19937& g, size_t n, float mean, float std) {
    std::normal_distribution<float> d(mean, std);
    std::vector<float> v(n);
    for (auto& x : v) x = d(g);
    return v;
}

// The dynamic shared memory of a variant, from the size macros its kernel checks against.
static long smem_floats(bool mlp, int F, int K, int C, bool fused = false) {
    if (mlp) return TTT_MLP_STATE_FLOATS(F, C) + (fused ? TTT_MLP_FUSED_SCRATCH_FLOATS(F, K, C) : TTT_MLP_SCRATCH_FLOATS(F, K, C));
    return TTT_LINEAR_STATE_FLOATS(F) + (fused ? TTT_LINEAR_FUSED_SCRATCH_FLOATS(F, K) : TTT_LINEAR_SCRATCH_FLOATS(F, K));
}

int main(int argc, char** argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: %s linear|mlp F H L K threads variant...\n", argv[0]);
        return 2;
    }
    const bool mlp = std::string(argv[1]) == "mlp";
    const int F = atoi(argv[2]), H = atoi(argv[3]), L = atoi(argv[4]), K = atoi(argv[5]), nt = atoi(argv[6]);
    const int F1 = mlp ? 4 * F : F;
    std::mt19937 g(7);
    float* xq = upload(normal(g, (size_t)H * L * F, 0, 1));
    float* xk = upload(normal(g, (size_t)H * L * F, 0, 1));
    float* xv = upload(normal(g, (size_t)H * L * F, 0, 1));
    std::vector<float> lrh = normal(g, (size_t)H * L, 0, 1);
    for (auto& x : lrh) x = 1.0f / (1.0f + std::exp(-x)) / F;
    float* lr = upload(lrh);
    std::vector<float> tokh(K);
    for (int k = 0; k < K; ++k) tokh[k] = 1.0f / (k + 1);
    float* tok = upload(tokh);
    float* w1 = upload(normal(g, (size_t)H * F * F1, 0, 0.02f));
    float* b1 = upload(normal(g, (size_t)H * F1, 0, 0.02f));
    float* w2 = upload(normal(g, (size_t)H * F1 * F, 0, 0.02f));
    float* b2 = upload(normal(g, (size_t)H * F, 0, 0.02f));
    float* nw = upload(normal(g, (size_t)H * F, 1, 0.1f));
    float* nb = upload(normal(g, (size_t)H * F, 0, 0.1f));
    float* out;
    CHECK(cudaMalloc(&out, (size_t)L * H * F * 4));
    std::vector<float> reference;
    const int steps = L / K;
    printf("%s F=%d H=%d L=%d K=%d threads=%d%s\n", mlp ? "mlp" : "linear", F, H, L, K, nt,
#ifdef TTT_PHASE_CLOCKS
           "");
#else
           " (built without TTT_PHASE_CLOCKS: no phase counts)");
#endif
    for (int a = 7; a < argc; ++a) {
        const std::string v = argv[a];
        const bool fused = v.rfind("fused", 0) == 0;
        const size_t digits = v.find_last_not_of("0123456789") + 1;  // the cluster size ends the name
        const int C = digits < v.size() ? atoi(v.c_str() + digits) : 1;
        const void* fn = nullptr;
        if (mlp) {
            fn = v == "shared" ? (const void*)ttt_mlp_forward_shared_f32
                 : v == "cluster2" ? (const void*)ttt_mlp_forward_cluster2_f32
                 : v == "cluster4" ? (const void*)ttt_mlp_forward_cluster4_f32
                 : v == "fusedcluster2" ? (const void*)ttt_mlp_forward_fusedcluster2_f32
                 : v == "fusedcluster4" ? (const void*)ttt_mlp_forward_fusedcluster4_f32
                 : v == "fusedcluster8" ? (const void*)ttt_mlp_forward_fusedcluster8_f32 : nullptr;
        } else {
            fn = v == "shared" ? (const void*)ttt_linear_forward_shared_f32
                 : v == "fused" ? (const void*)ttt_linear_forward_fused_f32 : nullptr;
        }
        if (fn == nullptr) {
            fprintf(stderr, "no %s variant %s\n", mlp ? "mlp" : "linear", v.c_str());
            return 2;
        }
        const int smem = (int)(4 * smem_floats(mlp, F, K, C, fused));
        CHECK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        auto launch = [&]() {
            if (mlp) {
                ((MlpKernel)fn)<<<H * C, nt, smem>>>(xq, xk, xv, lr, tok, w1, b1, w2, b2, nw, nb, out, nullptr, 1,
                                                      nullptr, nullptr, 0, smem, H, L, F, K, 1e-6f);
            } else {
                ((LinearKernel)fn)<<<H * C, nt, smem>>>(xq, xk, xv, lr, tok, w1, b1, nw, nb, out, nullptr, 1, nullptr,
                                                         nullptr, 0, smem, H, L, F, K, 1e-6f);
            }
            CHECK(cudaGetLastError());
        };
        launch();
        CHECK(cudaDeviceSynchronize());
#ifdef TTT_PHASE_CLOCKS
        unsigned long long zeros[16] = {};
        CHECK(cudaMemcpyToSymbol(ttt_phase_cycles, zeros, sizeof(zeros)));
#endif
        const int reps = 10;
        cudaEvent_t e0, e1;
        CHECK(cudaEventCreate(&e0));
        CHECK(cudaEventCreate(&e1));
        CHECK(cudaEventRecord(e0));
        for (int r = 0; r < reps; ++r) launch();
        CHECK(cudaEventRecord(e1));
        CHECK(cudaEventSynchronize(e1));
        float ms;
        CHECK(cudaEventElapsedTime(&ms, e0, e1));
        std::vector<float> o((size_t)L * H * F);
        CHECK(cudaMemcpy(o.data(), out, o.size() * 4, cudaMemcpyDeviceToHost));
        double diff = 0, norm = 0;
        if (reference.empty()) reference = o;
        for (size_t i = 0; i < o.size(); ++i) {
            const double d = (double)o[i] - reference[i];
            diff += std::isfinite(o[i]) ? d * d : INFINITY;
            norm += (double)reference[i] * reference[i];
        }
        printf("  %-9s %8.3f ms/launch  %7.0f ns/mini-batch  rel.diff %.2e  smem %d B\n", v.c_str(), ms / reps,
               ms / reps * 1e6 / steps, std::sqrt(diff / norm), smem);
#ifdef TTT_PHASE_CLOCKS
        unsigned long long c[16];
        CHECK(cudaMemcpyFromSymbol(c, ttt_phase_cycles, sizeof(c)));
        unsigned long long total = 0;
        for (int i = 0; i < 16; ++i) total += c[i];
        printf("            cycles/mini-batch %.0f:", (double)total / reps / steps);
        for (int i = 0; i < 16; ++i) {
            if (c[i] != 0) printf(" %c=%.0f", mlp ? 'A' + i : 'A' + i, (double)c[i] / reps / steps);
        }
        printf("\n");
#endif
    }
    return 0;
}

#pragma once
#include "../emu_runtime.h"

// Built with TTT_EMU_SM >= 90 (build.py --sm 90), the kernels see an NVIDIA device of that
// generation as far as tttbench_hip.h asks: thread block clusters, through the cooperative
// groups of ../cooperative_groups.h.
#if defined(TTT_EMU_SM) && TTT_EMU_SM >= 90
#define TTT_NVIDIA 1
#define __CUDA_ARCH__ (TTT_EMU_SM * 10)
#endif
// A kernel's cluster size, kept as an attribute that build.py reads from the preprocessed source.
#define __cluster_dims__(x, y, z) [[emu::cluster(x)]]

// Planted errors, for showing that the kernel checks catch a wrong kernel (scripts/check-kernels.sh
// --plant sqrt|tanh): every square root, or every tanh, of the kernels 1% off.
#include <cmath>
#if defined(TTT_EMU_PLANT_SQRT)
#define sqrtf(x) (1.01f * std::sqrt((float)(x)))
#endif
#if defined(TTT_EMU_PLANT_TANH)
#define tanhf(x) (1.01f * std::tanh((float)(x)))
#endif

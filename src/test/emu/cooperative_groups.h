// The part of CUDA's cooperative groups that tttbench_hip.h uses for thread block clusters, over
// the emulation's clusters (emu_runtime.h).
#pragma once
#include "emu_runtime.h"

namespace cooperative_groups {

struct cluster_group {
    unsigned block_rank() const { return (unsigned)emu::cluster_rank(); }
    unsigned num_blocks() const { return (unsigned)emu::cluster_size; }
    void sync() const { emu::cluster_sync(); }
    template <typename T>
    T* map_shared_rank(T* p, unsigned rank) const { return emu::cluster_map(p, (int)rank); }
};

inline cluster_group this_cluster() { return cluster_group{}; }

}  // namespace cooperative_groups

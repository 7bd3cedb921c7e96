package org.tttbench.gpu;

import org.tttbench.backend.Backend;
import org.tttbench.config.DType;

/** A GPU backend over the {@link EmulatedRuntime}: the kernels of hip/ run on the CPU. */
public final class EmulatedBackend {

    private EmulatedBackend() {
    }

    /**
     * @param maxShared the dynamic shared memory a block may opt in to (232448 on an H100); the
     *                  device's architecture is the system property tttbench.emu.arch (sm_80, or
     *                  sm_90 for thread block clusters, with kernels built by build.py --sm 90)
     */
    public static Backend open(DType dtype, int maxShared) {
        String arch = System.getProperty("tttbench.emu.arch", "sm_80");
        return new GpuBackend(new EmulatedRuntime(maxShared, 32, arch), dtype, false);
    }
}

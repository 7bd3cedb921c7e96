package org.tttbench.gpu;

import org.tttbench.backend.Backend;
import org.tttbench.config.DType;

/** A GPU backend over the {@link EmulatedRuntime}: the kernels of hip/ run on the CPU. */
public final class EmulatedBackend {

    private EmulatedBackend() {
    }

    /** @param maxShared the dynamic shared memory a block may opt in to (232448 on an H100) */
    public static Backend open(DType dtype, int maxShared) {
        return new GpuBackend(new EmulatedRuntime(maxShared, 32), dtype, false);
    }
}

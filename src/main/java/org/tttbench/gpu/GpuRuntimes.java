package org.tttbench.gpu;

import java.util.ArrayList;
import java.util.List;
import org.tttbench.config.BackendKind;
import org.tttbench.gpu.cuda.Cublas;
import org.tttbench.gpu.cuda.CudaRuntime;
import org.tttbench.gpu.hip.HipRuntime;
import org.tttbench.gpu.hip.Hipblas;

/**
 * Opens a {@link GpuRuntime}. A runtime counts as usable when its library loads, initialises,
 * reports at least one device, and its BLAS library is found; the first device is used (pick
 * another with CUDA_VISIBLE_DEVICES or HIP_VISIBLE_DEVICES).
 */
public final class GpuRuntimes {

    private GpuRuntimes() {
    }

    /** The GPU runtimes {@code auto} tries, in order. */
    public static final List<BackendKind> AUTO_ORDER = List.of(BackendKind.CUDA, BackendKind.HIP);

    /**
     * Opens device 0 of the named runtime.
     *
     * @throws GpuException saying why the runtime is not usable
     */
    public static GpuRuntime open(BackendKind kind) {
        return switch (kind) {
            case CUDA -> {
                CudaRuntime.deviceCount();
                Cublas.load();
                yield CudaRuntime.open(0);
            }
            case HIP -> {
                HipRuntime.deviceCount();
                Hipblas.load();
                yield HipRuntime.open(0);
            }
            case AUTO, CPU -> throw new IllegalArgumentException("not a GPU runtime: " + kind.flag());
        };
    }

    /** What one runtime offers here: its device count and libraries, or why it is not usable. */
    /** @param memory bytes of device 0 (0 where not usable) */
    public record Probe(BackendKind kind, int devices, long memory, String detail) {
        public boolean usable() {
            return devices > 0;
        }

        @Override
        public String toString() {
            return kind.flag() + ": " + (usable() ? devices + " device(s), " : "not usable: ") + detail;
        }
    }

    /** Checks each runtime of {@link #AUTO_ORDER} without opening a device context. */
    public static List<Probe> probe() {
        List<Probe> result = new ArrayList<>();
        for (BackendKind kind : AUTO_ORDER) {
            try {
                result.add(switch (kind) {
                    case CUDA -> {
                        int n = CudaRuntime.deviceCount();
                        String blas = Cublas.load().source();
                        yield new Probe(kind, n, CudaRuntime.deviceMemory(0), "driver " + org.tttbench.gpu.cuda.CudaDriver.load().source()
                                + ", cuBLAS " + blas);
                    }
                    case HIP -> {
                        int n = HipRuntime.deviceCount();
                        String blas = Hipblas.load().source();
                        yield new Probe(kind, n, HipRuntime.deviceMemory(0), "runtime " + org.tttbench.gpu.hip.HipRuntimeApi.load().source()
                                + ", hipBLAS " + blas);
                    }
                    default -> throw new IllegalStateException(kind.toString());
                });
            } catch (GpuException e) {
                result.add(new Probe(kind, 0, 0, e.summary()));
            }
        }
        return result;
    }
}

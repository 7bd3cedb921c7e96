package org.tttbench.gpu;

import java.lang.foreign.Arena;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.IdentityHashMap;
import java.util.Map;
import org.tttbench.backend.Backend;
import org.tttbench.backend.InnerGrads;
import org.tttbench.backend.InnerInputs;
import org.tttbench.backend.TokenIds;
import org.tttbench.config.DType;

/**
 * A GPU backend over the {@link EmulatedRuntime}: the kernels of hip/ run on the CPU. Until
 * {@link GpuBackend} holds the backward ops itself, the backward ops go to a
 * {@link GpuBackwardOps} beside it.
 */
public final class EmulatedBackend {

    private EmulatedBackend() {
    }

    public static Backend open(DType dtype, int maxShared) {
        EmulatedRuntime rt = new EmulatedRuntime(maxShared, 32);
        GpuBackend gpu = new GpuBackend(rt, dtype, false);
        GpuBackwardOps ops = new GpuBackwardOps(rt, new DeviceArena(rt), Arena.ofShared(), 64);
        Map<TokenIds, GpuBackwardOps.DeviceSegments> segments = new IdentityHashMap<>();
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (proxy, m, a) -> {
                    switch (m.getName()) {
                        case "uploadIds" -> {
                            TokenIds t = gpu.uploadIds((int[]) a[0], (int) a[1], (int) a[2]);
                            segments.put(t, ops.uploadSegments((int[]) a[0]));
                            return t;
                        }
                        case "embeddingBackward" -> ops.embeddingBackward(segments.get(a[0]), t(a[1]), t(a[2]));
                        case "rmsNormBackward" -> ops.rmsNormBackward(t(a[0]), t(a[1]), t(a[2]), t(a[3]), t(a[4]), t(a[5]));
                        case "layerNormBackward" -> ops.layerNormBackward(t(a[0]), t(a[1]), t(a[2]), t(a[3]), t(a[4]),
                                t(a[5]), t(a[6]), t(a[7]));
                        case "splitHeadsBackward" -> ops.splitHeadsBackward(t(a[0]), t(a[1]), (int) a[2], (int) a[3],
                                (boolean) a[4]);
                        case "tttLearningRateBackward" -> ops.tttLearningRateBackward(t(a[0]), t(a[1]), t(a[2]), t(a[3]),
                                t(a[4]), t(a[5]), t(a[6]));
                        case "tokenEtaBackward" -> ops.tokenEtaBackward(t(a[0]), t(a[1]), t(a[2]));
                        case "innerBackward" -> ops.innerBackward((InnerInputs) a[0], t(a[1]), (int) a[2], t(a[3]),
                                (InnerGrads) a[4]);
                        case "swigluBackward" -> ops.swigluBackward(t(a[0]), t(a[1]), t(a[2]), t(a[3]), t(a[4]));
                        default -> {
                            try {
                                return m.invoke(gpu, a);
                            } catch (InvocationTargetException e) {
                                throw e.getCause();
                            }
                        }
                    }
                    return null;
                });
    }

    private static GpuTensor t(Object o) {
        return (GpuTensor) o;
    }
}

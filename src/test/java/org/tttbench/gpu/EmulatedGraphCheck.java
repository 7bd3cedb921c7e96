package org.tttbench.gpu;

import java.util.ArrayList;
import java.util.List;
import org.tttbench.config.DType;
import org.tttbench.tools.GpuSmoke;

/**
 * {@link GpuSmoke#graphReplays} on the CPU emulation (src/test/emu), with recording held to what
 * a device allows ({@link CaptureCheckingRuntime}): every benchmark's run, recorded and
 * replayed, writes the bits of its eager run. Put the emulated kernels' folder first on the class path.
 *
 * <pre>java -cp EMU:test-classes:classes:deps org.tttbench.gpu.EmulatedGraphCheck [size] [seqLen] [dtypes] [intervals]</pre>
 */
public final class EmulatedGraphCheck {

    public static void main(String[] args) {
        String size = args.length > 0 ? args[0] : "12m";
        int seqLen = args.length > 1 ? Integer.parseInt(args[1]) : 64;
        List<DType> dtypes = new ArrayList<>();
        for (String d : (args.length > 2 ? args[2] : "float32,bfloat16").split(",")) dtypes.add(DType.parse(d));
        String[] iv = (args.length > 3 ? args[3] : "1,2,3,4").split(",");
        int[] intervals = new int[iv.length];
        for (int i = 0; i < iv.length; i++) intervals[i] = Integer.parseInt(iv[i]);
        int failed = new GpuSmoke().graphReplays(
                dtype -> new GpuBackend(new CaptureCheckingRuntime(new EmulatedRuntime(232448, 32)), dtype, false),
                size, seqLen, dtypes, intervals);
        System.out.println(failed == 0 ? "graph checks: all passed" : "graph checks: " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }
}

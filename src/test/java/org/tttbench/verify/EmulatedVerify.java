package org.tttbench.verify;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.tttbench.backend.Backend;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;
import org.tttbench.gpu.EmulatedBackend;

/**
 * The checks of {@link Verifier#check} against the kernels run on the CPU emulation (src/test/emu):
 * for development on a machine without a GPU. Put the emulated kernels' folder first on the class
 * path. With -Dtttbench.emu.arch=sm_90 (kernels built by build.py --sm 90) the device has thread
 * block clusters, so the cluster kernels are checked too.
 *
 * <pre>java -cp EMU:test-classes:classes:deps org.tttbench.verify.EmulatedVerify [parts] [dtype] [maxShared] [types] [F] [K]</pre>
 *
 * parts: a comma-separated subset of ops, inner, problem, model, intervals (default all), and
 * "forward" for the forward alone.
 */
public final class EmulatedVerify {

    public static void main(String[] args) {
        String what = args.length > 0 ? args[0] : "ops,inner,problem,model,intervals";
        DType dtype = args.length > 1 ? DType.parse(args[1]) : DType.FLOAT32;
        int maxShared = args.length > 2 ? Integer.parseInt(args[2]) : 232448;
        List<TttType> types = new ArrayList<>();
        for (String t : (args.length > 3 ? args[3] : "linear,mlp").split(",")) types.add(TttType.parse(t));
        int f = args.length > 4 ? Integer.parseInt(args[4]) : 64;
        int k = args.length > 5 ? Integer.parseInt(args[5]) : 16;
        Set<Verifier.Part> parts = EnumSet.noneOf(Verifier.Part.class);
        for (Verifier.Part p : Verifier.Part.values()) {
            if (what.contains(p.name().toLowerCase(Locale.ROOT))) parts.add(p);
        }
        ModelConfig shapes = new ModelConfig(512, 4 * f, 2, 4, 2 * f, k, types.get(0));
        Verifier.Scope scope = new Verifier.Scope(shapes, types, 2, Math.max(64, 4 * k), parts, !what.contains("forward"));
        try (Backend gpu = EmulatedBackend.open(dtype, maxShared)) {
            List<Row> rows = Verifier.check(gpu, storage -> EmulatedBackend.open(storage, maxShared), scope, false, 42,
                    System.out);
            long failed = rows.stream().filter(r -> !r.passed()).count();
            System.out.println((rows.size() - failed) + " of " + rows.size() + " comparisons passed");
            if (failed > 0 || rows.isEmpty()) System.exit(1);
        }
    }
}

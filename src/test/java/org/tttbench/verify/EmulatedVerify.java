package org.tttbench.verify;

import java.util.ArrayList;
import java.util.List;
import org.tttbench.backend.Backend;
import org.tttbench.backend.cpu.CpuBackend;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;
import org.tttbench.gpu.EmulatedBackend;

/**
 * The backward checks against the kernels run on the CPU emulation (src/test/emu): for
 * development on a machine without a GPU. Put the emulated kernels' folder first on the class path.
 * With -Dtttbench.emu.arch=sm_90 (kernels built by build.py --sm 90) the device has thread block
 * clusters, so the cluster kernels of the forward ("forward") and of the backward are checked too.
 *
 * <pre>java -cp EMU:test-classes:classes:deps org.tttbench.verify.EmulatedVerify [what] [dtype] [maxShared] [types] [F] [K]</pre>
 */
public final class EmulatedVerify {

    public static void main(String[] args) {
        String what = args.length > 0 ? args[0] : "ops,inner,problem,model,intervals";
        DType dtype = args.length > 1 ? DType.parse(args[1]) : DType.FLOAT32;
        int maxShared = args.length > 2 ? Integer.parseInt(args[2]) : 232448;
        String types = args.length > 3 ? args[3] : "linear,mlp";
        int f = args.length > 4 ? Integer.parseInt(args[4]) : 64;
        int k = args.length > 5 ? Integer.parseInt(args[5]) : 16;
        int seqLen = Math.max(64, 4 * k);
        List<Verifier.Row> rows = new ArrayList<>();
        try (Backend gpu = EmulatedBackend.open(dtype, maxShared); CpuBackend cpu = new CpuBackend(dtype)) {
            BackwardVerifier v = new BackwardVerifier(gpu, cpu, false, 42, System.out);
            for (String t : types.split(",")) {
                TttType type = TttType.parse(t);
                ModelConfig cfg = new ModelConfig(512, 4 * f, 2, 4, 2 * f, k, type);
                if (what.contains("ops") && type == TttType.LINEAR) v.checkOps(cfg, 2, 64);
                if (what.contains("forward")) {
                    Verifier fv = new Verifier(gpu, cpu, false, 42, System.out);
                    fv.checkInner(cfg, 2, seqLen);
                    rows.addAll(fv.rows());
                }
                if (what.contains("inner")) v.checkInner(cfg, 2, seqLen, List.of(""), label -> { });
                if (what.contains("problem")) v.checkInnerProblem(cfg, 1, seqLen, 1);
                if (what.contains("model")) v.checkModel(cfg, 2, 32, 1);
                if (what.contains("intervals")) v.checkIntervalsAndDeterminism(cfg, 1, 256);
            }
            rows.addAll(v.rows());
        }
        System.out.println(BackwardVerifier.describe(rows));
    }
}

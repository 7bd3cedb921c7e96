package org.tttbench.verify;

import java.util.ArrayList;
import java.util.List;
import org.tttbench.backend.Backend;
import org.tttbench.backend.cpu.CpuBackend;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;
import org.tttbench.gpu.EmulatedBackend;
import org.tttbench.gpu.GpuBackend;

/**
 * The forward op checks, the model forward and the training step against the kernels run on the
 * CPU emulation (src/test/emu), with the model's ops fused and, with -Dtttbench.fusedOps=false,
 * one by one. Put the emulated kernels' folder first on the class path.
 *
 * <pre>java -cp EMU:test-classes:classes:deps org.tttbench.verify.EmulatedForwardVerify [dtype] [types] [F] [K] [splitK]</pre>
 * splitK N splits every float32 product that can be into up to N along k (GpuBackend#forceSplitK).
 */
public final class EmulatedForwardVerify {

    public static void main(String[] args) {
        DType dtype = args.length > 0 ? DType.parse(args[0]) : DType.FLOAT32;
        String types = args.length > 1 ? args[1] : "linear,mlp";
        int f = args.length > 2 ? Integer.parseInt(args[2]) : 64;
        int k = args.length > 3 ? Integer.parseInt(args[3]) : 16;
        int splitK = args.length > 4 ? Integer.parseInt(args[4]) : 1;
        List<Verifier.Row> rows = new ArrayList<>();
        try (Backend gpu = EmulatedBackend.open(dtype, 232448); CpuBackend cpu = new CpuBackend(dtype)) {
            if (splitK > 1) ((GpuBackend) gpu).forceSplitK(splitK, true);
            Verifier v = new Verifier(gpu, cpu, false, 42, System.out);
            BackwardVerifier bv = new BackwardVerifier(gpu, cpu, false, 43, System.out);
            boolean first = true;
            for (String t : types.split(",")) {
                ModelConfig cfg = new ModelConfig(512, 4 * f, 2, 4, 2 * f, k, TttType.parse(t));
                if (first) v.checkOps(cfg, 2, 64);
                first = false;
                v.checkModel(cfg, 2, 32);
                bv.checkModel(cfg, 2, 32, 1);
            }
            rows.addAll(v.rows());
            rows.addAll(bv.rows());
        }
        System.out.println(BackwardVerifier.describe(rows));
    }
}

package org.tttbench.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.tttbench.backend.Tensor;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;
import org.tttbench.model.Parameters;
import org.tttbench.model.TttModel;

/**
 * The fused issue of ops (batched projections, one-pass gradient zeroing) changes no bit of the
 * reference's logits or gradients, and a second training step starts again from zero gradients.
 */
class FusedOpsTest {

    private static final int SEQ_LEN = 12;

    private static List<float[]> step(CpuBackend be, ModelConfig cfg, Parameters weights, int[] ids, boolean fused,
            int runs) {
        String before = System.getProperty(TttModel.FUSED_OPS);
        System.setProperty(TttModel.FUSED_OPS, Boolean.toString(fused));
        TttModel m;
        try {
            m = new TttModel(be, cfg, weights, ids, 2, SEQ_LEN, true, 2);
        } finally {
            if (before == null) {
                System.clearProperty(TttModel.FUSED_OPS);
            } else {
                System.setProperty(TttModel.FUSED_OPS, before);
            }
        }
        assertTrue(m.fused() == fused);
        for (int r = 0; r < runs; r++) {
            m.forward();
            m.backward();
        }
        List<float[]> out = new ArrayList<>();
        out.add(be.download(m.logits()));
        for (Tensor g : m.gradients().byName().values()) out.add(be.download(g));
        return out;
    }

    @ParameterizedTest
    @CsvSource({"LINEAR,FLOAT32", "MLP,FLOAT32", "LINEAR,BFLOAT16", "MLP,BFLOAT16"})
    void fusedAndUnfusedGiveTheSameBits(TttType type, DType dtype) {
        CpuBackend be = new CpuBackend(dtype);
        ModelConfig cfg = RandomModel.config(type);
        Parameters weights = RandomModel.parameters(be, cfg, 21, true);
        int[] ids = RandomModel.ids(2 * SEQ_LEN, cfg.vocab(), 22);
        List<float[]> unfused = step(be, cfg, weights, ids, false, 1);
        List<float[]> fused = step(be, cfg, weights, ids, true, 1);
        // Gradients are zeroed before each backward, not accumulated over steps.
        List<float[]> twice = step(be, cfg, weights, ids, true, 2);
        boolean nonzero = false;
        for (int i = 0; i < unfused.size(); i++) {
            assertArrayEquals(unfused.get(i), fused.get(i), "tensor " + i);
            assertArrayEquals(unfused.get(i), twice.get(i), "tensor " + i + " after two steps");
            for (float v : fused.get(i)) nonzero |= v != 0;
        }
        assertFalse(!nonzero);
    }

    @ParameterizedTest
    @CsvSource({"FLOAT32", "BFLOAT16"})
    void batchedMatmulIsOneMatmulPerProduct(DType dtype) {
        CpuBackend be = new CpuBackend(dtype);
        int m = 5;
        int n = 7;
        int k = 3;
        Tensor a = be.allocate(m, k);
        be.upload(RandomModel.gaussian(m * k, 1, 1), a);
        List<Tensor> bs = be.allocateAdjacent(dtype, List.of(new int[] {n, k}, new int[] {n, k}));
        List<Tensor> cs = be.allocateAdjacent(dtype, List.of(new int[] {m, n}, new int[] {m, n}));
        List<Tensor> single = List.of(be.allocate(m, n), be.allocate(m, n));
        for (int i = 0; i < 2; i++) {
            be.upload(RandomModel.gaussian(n * k, 1, 2 + i), bs.get(i));
            float[] c = RandomModel.gaussian(m * n, 1, 4 + i);
            be.upload(c, cs.get(i));
            be.upload(c, single.get(i));
        }
        be.matmulBatched(List.of(a), bs, cs, m, n, k, false, true, true);
        for (int i = 0; i < 2; i++) {
            be.matmul(a, bs.get(i), single.get(i), m, n, k, false, true, true);
            assertArrayEquals(be.download(single.get(i)), be.download(cs.get(i)));
        }
    }
}

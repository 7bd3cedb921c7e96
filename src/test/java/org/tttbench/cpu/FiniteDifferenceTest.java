package org.tttbench.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.tttbench.backend.Tensor;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;
import org.tttbench.model.ParameterSpec;
import org.tttbench.model.Parameters;
import org.tttbench.model.TttModel;

/**
 * The model's backward (every op's backward and the inner loop's hand-derived gradient, through
 * two layers) against central differences of sum(logits), for a few entries of every parameter.
 *
 * <p>Float32 storage: the loss is summed in float64 from the downloaded logits, whose rounding
 * is the noise floor (it dominates below a step of 1e-3), while the truncation error h² f‴/6
 * grows above 3e-3 (the tied embedding has the most curvature). With a step of 2e-3 the
 * worst entry uses about a third of the tolerance: 2e-3 of the gradient's scale (its largest
 * entry) plus 1e-2 of the entry itself.
 */
class FiniteDifferenceTest {

    private static final int BATCH = 2;
    private static final int SEQ_LEN = 8;
    private static final float STEP = 2e-3f;

    @ParameterizedTest
    @EnumSource(TttType.class)
    void everyParameterGradientMatchesCentralDifferences(TttType type) {
        CpuBackend be = new CpuBackend(DType.FLOAT32);
        ModelConfig cfg = RandomModel.config(type);
        Parameters weights = RandomModel.parameters(be, cfg, 21, true);
        int[] ids = RandomModel.ids(BATCH * SEQ_LEN, cfg.vocab(), 22);
        TttModel model = new TttModel(be, cfg, weights, ids, BATCH, SEQ_LEN, true, 1);
        model.forward();
        model.backward();
        SplittableRandom rnd = new SplittableRandom(23);
        List<String> failures = new ArrayList<>();
        for (ParameterSpec spec : weights.specs()) {
            Tensor param = weights.get(spec.name());
            float[] grad = be.download(model.gradients().get(spec.name()));
            double scale = 0;
            for (float g : grad) scale = Math.max(scale, Math.abs(g));
            float[] original = be.download(param);
            int[] entries = spec.name().endsWith("learnable_token_idx")
                    ? new int[] {0, original.length - 1} // the last one is clamped: gradient 0
                    : new int[] {rnd.nextInt(original.length), rnd.nextInt(original.length)};
            for (int i : entries) {
                float[] v = original.clone();
                v[i] = original[i] + STEP;
                float up = v[i];
                be.upload(v, param);
                double lossUp = loss(model, be);
                v[i] = original[i] - STEP;
                float down = v[i];
                be.upload(v, param);
                double lossDown = loss(model, be);
                be.upload(original, param);
                double numeric = (lossUp - lossDown) / ((double) up - down);
                double tolerance = 2e-3 * scale + 1e-2 * Math.abs(grad[i]);
                if (!(Math.abs(numeric - grad[i]) <= tolerance)) {
                    failures.add(String.format("%s[%d]: backward %.6g, central difference %.6g (tolerance %.2g)",
                            spec.name(), i, grad[i], numeric, tolerance));
                }
            }
        }
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }

    private static double loss(TttModel model, CpuBackend be) {
        model.forward();
        double sum = 0;
        for (float x : be.download(model.logits())) sum += x;
        return sum;
    }
}

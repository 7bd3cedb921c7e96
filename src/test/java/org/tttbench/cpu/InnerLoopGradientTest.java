package org.tttbench.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.tttbench.backend.InnerGrads;
import org.tttbench.backend.InnerInputs;
import org.tttbench.backend.Tensor;
import org.tttbench.config.DType;
import org.tttbench.config.TttType;

/**
 * The inner loop's hand-derived backward against central differences of L = Σ r ∘ out, on
 * random inputs with larger learning rates than the model produces (so the state changes a
 * lot between mini-batches and every path through the scan carries weight), for a few entries
 * of every input and parameter.
 */
class InnerLoopGradientTest {

    private static final int B = 2;
    private static final int H = 2;
    private static final int L = 12; // three mini-batches
    private static final int F = 8;
    private static final int K = 4;
    private static final float STEP = 1e-3f;

    @ParameterizedTest
    @EnumSource(TttType.class)
    void backwardMatchesCentralDifferences(TttType type) {
        CpuBackend be = new CpuBackend(DType.FLOAT32);
        boolean mlp = type == TttType.MLP;
        int f1 = mlp ? 4 * F : F;
        SplittableRandom rnd = new SplittableRandom(31);
        Map<String, Tensor> t = new LinkedHashMap<>();
        t.put("XQ", random(be, rnd, 1, 0, B, H, L, F));
        t.put("XK", random(be, rnd, 1, 0, B, H, L, F));
        t.put("XV", random(be, rnd, 1, 0, B, H, L, F));
        float[] lr = new float[B * H * L];
        for (int i = 0; i < lr.length; i++) lr[i] = (float) (0.05 + 0.25 * rnd.nextDouble());
        t.put("lr", upload(be, lr, B, H, L));
        float[] tok = new float[K];
        for (int i = 0; i < K; i++) tok[i] = (float) (1.0 / (i + 1) + 0.1 * rnd.nextGaussian());
        t.put("tok", upload(be, tok, K));
        t.put("W1", random(be, rnd, 0.3, 0, H, F, f1));
        t.put("b1", random(be, rnd, 0.1, 0, H, 1, f1));
        if (mlp) {
            t.put("W2", random(be, rnd, 0.3, 0, H, f1, F));
            t.put("b2", random(be, rnd, 0.1, 0, H, 1, F));
        }
        t.put("ttt_norm_weight", random(be, rnd, 0.2, 1, H, F));
        t.put("ttt_norm_bias", random(be, rnd, 0.1, 0, H, F));
        InnerInputs in = new InnerInputs(type, B, H, L, F, K, t.get("XQ"), t.get("XK"), t.get("XV"), t.get("lr"),
                t.get("tok"), t.get("W1"), t.get("b1"), t.get("W2"), t.get("b2"), t.get("ttt_norm_weight"),
                t.get("ttt_norm_bias"));
        float[] r = RandomModel.gaussian(B * L * H * F, 1, 32);

        int slots = L / K;
        Tensor checkpoints = be.allocate(DType.FLOAT32, slots, B, H, mlp ? F * f1 + f1 + f1 * F + F : F * F + F);
        Tensor out = be.allocate(B, L, H * F);
        be.innerForward(in, out, checkpoints, 1, null);
        InnerGrads g = new InnerGrads(be.allocate(B, H, L, F), be.allocate(B, H, L, F), be.allocate(B, H, L, F),
                be.allocate(B, H, L), be.allocate(K), be.allocate(H, F, f1), be.allocate(H, 1, f1),
                mlp ? be.allocate(H, f1, F) : null, mlp ? be.allocate(H, 1, F) : null, be.allocate(H, F),
                be.allocate(H, F));
        be.innerBackward(in, checkpoints, 1, upload(be, r, B, L, H * F), g);
        Map<String, Tensor> grads = new LinkedHashMap<>();
        grads.put("XQ", g.xq());
        grads.put("XK", g.xk());
        grads.put("XV", g.xv());
        grads.put("lr", g.lr());
        grads.put("tok", g.tok());
        grads.put("W1", g.w1());
        grads.put("b1", g.b1());
        if (mlp) {
            grads.put("W2", g.w2());
            grads.put("b2", g.b2());
        }
        grads.put("ttt_norm_weight", g.normWeight());
        grads.put("ttt_norm_bias", g.normBias());

        List<String> failures = new ArrayList<>();
        for (Map.Entry<String, Tensor> e : t.entrySet()) {
            Tensor x = e.getValue();
            float[] original = be.download(x);
            float[] grad = be.download(grads.get(e.getKey()));
            double scale = 0;
            for (float v : grad) scale = Math.max(scale, Math.abs(v));
            for (int n = 0; n < 4; n++) {
                // Entries spread over the sequence: the first and later mini-batches.
                int i = (int) ((long) original.length * n / 4) + rnd.nextInt(Math.max(1, original.length / 4));
                float[] v = original.clone();
                v[i] = original[i] + STEP;
                float up = v[i];
                be.upload(v, x);
                double lossUp = loss(be, in, r);
                v[i] = original[i] - STEP;
                float down = v[i];
                be.upload(v, x);
                double lossDown = loss(be, in, r);
                be.upload(original, x);
                double numeric = (lossUp - lossDown) / ((double) up - down);
                double tolerance = 2e-3 * scale + 1e-2 * Math.abs(grad[i]);
                if (!(Math.abs(numeric - grad[i]) <= tolerance)) {
                    failures.add(String.format("%s[%d]: backward %.6g, central difference %.6g (tolerance %.2g)",
                            e.getKey(), i, grad[i], numeric, tolerance));
                }
            }
        }
        assertTrue(failures.isEmpty(), type + ":\n" + String.join("\n", failures));
    }

    private static double loss(CpuBackend be, InnerInputs in, float[] r) {
        Tensor out = be.allocate(B, L, H * F);
        be.innerForward(in, out, null, 1, null);
        double s = 0;
        float[] o = be.download(out);
        for (int i = 0; i < o.length; i++) s += (double) r[i] * o[i];
        return s;
    }

    private static Tensor random(CpuBackend be, SplittableRandom rnd, double std, double mean, int... shape) {
        Tensor t = be.allocate(shape);
        float[] v = new float[Math.toIntExact(t.size())];
        for (int i = 0; i < v.length; i++) v[i] = (float) (mean + std * rnd.nextGaussian());
        be.upload(v, t);
        return t;
    }

    private static Tensor upload(CpuBackend be, float[] v, int... shape) {
        Tensor t = be.allocate(shape);
        be.upload(v, t);
        return t;
    }
}

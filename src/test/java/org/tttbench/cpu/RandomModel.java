package org.tttbench.cpu;

import java.util.SplittableRandom;
import org.tttbench.backend.Backend;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;
import org.tttbench.model.ParameterSpec;
import org.tttbench.model.Parameters;

/**
 * A tiny model with every parameter moved off its benchmark init (gains ≠ 1, biases ≠ 0,
 * matrices large enough for the nonlinearities to matter), so that no gradient term vanishes.
 */
final class RandomModel {

    private RandomModel() {
    }

    /** V 32, D 16, N 2, H 2 (F 8), I 24, K 4. */
    static ModelConfig config(TttType type) {
        return new ModelConfig(32, 16, 2, 2, 24, 4, type);
    }

    /**
     * @param clampOneToken set the last learnable_token_idx entry of every layer to −2, so the
     *                      clamp of tok is active there
     */
    static Parameters parameters(Backend be, ModelConfig cfg, long seed, boolean clampOneToken) {
        Parameters p = new Parameters(be, ParameterSpec.model(cfg));
        SplittableRandom rnd = new SplittableRandom(seed);
        for (ParameterSpec s : p.specs()) {
            float[] v = new float[(int) s.size()];
            for (int i = 0; i < v.length; i++) {
                double g = rnd.nextGaussian();
                v[i] = (float) switch (s.init()) {
                    case ONE -> 1 + 0.2 * g;
                    case ZERO -> 0.1 * g;
                    case NORMAL -> 0.3 * g;
                };
            }
            if (clampOneToken && s.name().endsWith("learnable_token_idx")) v[v.length - 1] = -2f;
            be.upload(v, p.get(s.name()));
        }
        return p;
    }

    static int[] ids(int count, int vocab, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int[] ids = new int[count];
        for (int i = 0; i < count; i++) ids[i] = rnd.nextInt(vocab);
        return ids;
    }

    static float[] gaussian(int n, double std, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (std * rnd.nextGaussian());
        return v;
    }

    /** ‖a − b‖ / ‖b‖ in float64. */
    static double relativeError(float[] a, float[] b) {
        double diff = 0;
        double norm = 0;
        for (int i = 0; i < a.length; i++) {
            diff += ((double) a[i] - b[i]) * ((double) a[i] - b[i]);
            norm += (double) b[i] * b[i];
        }
        return Math.sqrt(diff / norm);
    }
}

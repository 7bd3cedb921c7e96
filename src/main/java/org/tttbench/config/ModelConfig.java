package org.tttbench.config;

/**
 * The shape of one TTT model (SPEC §1 and §2): vocabulary V, hidden D, layers N, heads H,
 * FFN width I, inner mini-batch K and inner model type.
 */
public record ModelConfig(int vocab, int hidden, int layers, int heads, int ffn, int miniBatch, TttType tttType) {

    public static final double RMS_NORM_EPS = 1e-6;
    public static final double LAYER_NORM_EPS = 1e-6;
    public static final double ROPE_THETA = 10000.0;
    public static final double BASE_LR = 1.0;

    public ModelConfig {
        if (vocab <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || ffn <= 0 || miniBatch <= 0) {
            throw new IllegalArgumentException("model sizes must be positive: " + this);
        }
        if (hidden % heads != 0) {
            throw new IllegalArgumentException("hidden " + hidden + " is not divisible by heads " + heads);
        }
        if ((hidden / heads) % 2 != 0) {
            throw new IllegalArgumentException("head dim " + hidden / heads + " must be even for RoPE");
        }
    }

    /** Head dimension F = D / H. */
    public int headDim() {
        return hidden / heads;
    }

    /** Width of the inner MLP's hidden layer (4F); F for TTT-Linear. */
    public int innerHidden() {
        return tttType == TttType.MLP ? 4 * headDim() : headDim();
    }

    /**
     * Floats of one head's inner state, packed as W1, b1 (then W2, b2 for MLP): the unit the
     * inner scan keeps per checkpoint.
     */
    public int innerStateSize() {
        int f = headDim();
        return tttType == TttType.MLP ? f * 4 * f + 4 * f + 4 * f * f + f : f * f + f;
    }

    /** Parameters of the whole model, tied embedding counted once. */
    public long parameterCount() {
        long perLayer = 2L * hidden + tttLayerParameterCount() + 3L * ffn * hidden;
        return (long) vocab * hidden + layers * perLayer + hidden;
    }

    /** Parameters of one TTT layer, projections included (what --inner-only reports). */
    public long tttLayerParameterCount() {
        long d = hidden;
        long f = headDim();
        long projections = 4 * d * d;
        long lr = heads * d + heads;
        long tokenIdx = miniBatch;
        long tttNorm = 2L * heads * f;
        long postNorm = 2 * d;
        long inner = (long) heads * innerStateSize();
        return projections + lr + tokenIdx + tttNorm + postNorm + inner;
    }
}

package org.tttbench.config;

/**
 * A rough estimate of the device memory one configuration needs, in bytes, so that a run or a
 * sweep refuses what cannot fit instead of waiting for an out-of-memory crash. It counts the big
 * buffers only and aims to be within a few tens of percent, not exact:
 *
 * <pre>
 * s = bytes per stored element (4 float32, 2 bfloat16/float16); float32 where SPEC §4 says so
 * full model, forward:   weights P·s
 *                        activations B·L·(6D + 2I)·s  (residual, norms, Q/K/V, TTT out, SwiGLU)
 *                                  + B·H·S·4          (inner state of the running layer)
 *                        logits B·L·V·4
 * full model, backward:  + gradients P·4
 *                        + saved activations N·B·L·(10D + 3I)·s
 *                        + inner states N·B·H·S·4·⌈M/c⌉ kept, + B·H·S·4·c recomputed
 *                        + logits gradient B·L·V·4
 * inner only, forward:   weights P₁·s, inputs B·H·L·(3F·s + 4), out B·L·D·s, state B·H·S·4
 * inner only, backward:  + gradients of weights and inputs (as large as they are)
 *                        + inner states B·H·S·4·⌈M/c⌉ + B·H·S·4·c, saved Z and G B·H·L·4F'·4
 * every run:             + 256 MiB for the runtime, BLAS workspace and allocator slack
 * </pre>
 * P = parameters, P₁ = parameters of one TTT layer, S = inner state floats per head
 * (F² + F for linear, 8F² + 5F for MLP), F' = inner hidden width, M = L/K mini-batches.
 */
public record MemoryEstimate(long weights, long activations, long logits, long gradients, long saved) {

    static final long OVERHEAD = 256L << 20;

    public long total() {
        return weights + activations + logits + gradients + saved + OVERHEAD;
    }

    public static MemoryEstimate of(Workload w) {
        return of(w.modelSize(), w.tttType(), w.backward(), w.innerOnly(), w.batch(), w.seqLen(), w.miniBatch(),
                w.dtype(), w.checkpointInterval());
    }

    /** The estimate of a configuration that need not be a valid {@link Workload} (a sweep's, before it is skipped). */
    public static MemoryEstimate of(String modelSize, TttType type, boolean backward, boolean innerOnly, int batch,
            int seqLen, int miniBatch, DType dtype, int interval) {
        ModelConfig m = Preset.byName(modelSize).model(type, miniBatch);
        long s = dtype.bytes();
        long b = batch, l = seqLen, d = m.hidden(), n = m.layers(), h = m.heads();
        long f = m.headDim(), fi = m.innerHidden(), state = m.innerStateSize(), v = m.vocab(), i = m.ffn();
        long miniBatches = Math.max(1, l / miniBatch);
        long kept = (miniBatches + interval - 1) / interval;
        long stateBytes = b * h * state * 4;
        if (innerOnly) {
            long params = m.tttLayerParameterCount();
            long inputs = b * h * l * (3 * f * s + 4);
            long out = b * l * d * s;
            long weights = params * s;
            if (!backward) return new MemoryEstimate(weights, inputs + out + stateBytes, 0, 0, 0);
            long saved = stateBytes * (kept + interval) + b * h * l * 4 * fi * 4;
            return new MemoryEstimate(weights, inputs + out + stateBytes, 0, params * 4 + inputs, saved);
        }
        long params = m.parameterCount();
        long activations = b * l * (6 * d + 2 * i) * s + stateBytes;
        long logits = b * l * v * 4;
        if (!backward) return new MemoryEstimate(params * s, activations, logits, 0, 0);
        long saved = n * b * l * (10 * d + 3 * i) * s + n * stateBytes * kept + stateBytes * interval;
        return new MemoryEstimate(params * s, activations, 2 * logits, params * 4, saved);
    }

    /** For skip reasons: "12.3 GiB". */
    public static String gib(long bytes) {
        return String.format(java.util.Locale.ROOT, "%.1f GiB", bytes / (double) (1L << 30));
    }
}

package org.tttbench.config;

import java.nio.file.Path;

/**
 * One benchmark configuration: the standard flags of SPEC §5 plus this suite's own
 * ({@code --backend}, {@code --tf32}, {@code --weights}). Validated once, here.
 *
 * @param modelSize the preset name as the user typed it ("1.3b" stays "1.3b")
 * @param weights   a safetensors file with the reference's parameter names, or null for seeded init
 */
public record BenchConfig(
        String modelSize,
        TttType tttType,
        boolean backward,
        int batch,
        int seqLen,
        int miniBatch,
        DType dtype,
        int warmup,
        int repeats,
        boolean json,
        boolean innerOnly,
        int checkpointInterval,
        String comment,
        BackendKind backend,
        boolean tf32,
        Path weights) {

    public BenchConfig {
        Preset.byName(modelSize);
        requirePositive("--batch", batch);
        requirePositive("--seq-len", seqLen);
        requirePositive("--mini-batch", miniBatch);
        requirePositive("--repeats", repeats);
        if (warmup < 0) throw new IllegalArgumentException("--warmup must be >= 0, got " + warmup);
        if (seqLen % miniBatch != 0) {
            throw new IllegalArgumentException("--seq-len " + seqLen + " is not divisible by --mini-batch " + miniBatch);
        }
        int miniBatches = seqLen / miniBatch;
        if (checkpointInterval < 1 || checkpointInterval > miniBatches) {
            throw new IllegalArgumentException("--checkpoint-interval must be between 1 and the number of mini-batches ("
                    + miniBatches + "), got " + checkpointInterval);
        }
    }

    private static void requirePositive(String flag, int value) {
        if (value <= 0) throw new IllegalArgumentException(flag + " must be a positive integer, got " + value);
    }

    /** The defaults of SPEC §5 for the given preset and type. */
    public static BenchConfig defaults(String modelSize, TttType type) {
        return new BenchConfig(modelSize, type, false, 1, 2048, 16, DType.FLOAT32, 3, 5, false, false, 1, null,
                BackendKind.AUTO, false, null);
    }

    public Preset preset() {
        return Preset.byName(modelSize);
    }

    public ModelConfig model() {
        return preset().model(tttType, miniBatch);
    }

    /** Number of inner mini-batches per sequence. */
    public int miniBatches() {
        return seqLen / miniBatch;
    }

    /** Parameters counted as the family's drivers count them (SPEC §6). */
    public long parameterCount() {
        ModelConfig m = model();
        return innerOnly ? m.tttLayerParameterCount() : m.parameterCount();
    }
}

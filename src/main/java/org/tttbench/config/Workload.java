package org.tttbench.config;

import java.nio.file.Path;

/**
 * What a benchmark measures: the standard flags that change the work (SPEC §5) plus this
 * suite's {@code --tf32} and {@code --weights}. How it is run (warmups, repeats, backend, output)
 * is {@link RunOptions}. Validated once, here.
 *
 * @param modelSize the preset name as the user typed it ("1.3b" stays "1.3b")
 * @param weights   a safetensors file with the reference's parameter names, or null for seeded init
 */
public record Workload(
        String modelSize,
        TttType tttType,
        boolean backward,
        boolean innerOnly,
        int batch,
        int seqLen,
        int miniBatch,
        DType dtype,
        int checkpointInterval,
        boolean tf32,
        Path weights) {

    public Workload {
        Preset.byName(modelSize);
        requirePositive("--batch", batch);
        requirePositive("--seq-len", seqLen);
        requirePositive("--mini-batch", miniBatch);
        if (seqLen % miniBatch != 0) {
            throw new IllegalArgumentException("--seq-len " + seqLen + " is not divisible by --mini-batch " + miniBatch);
        }
        int miniBatches = seqLen / miniBatch;
        if (checkpointInterval < 1 || checkpointInterval > miniBatches) {
            throw new IllegalArgumentException("--checkpoint-interval must be between 1 and the number of mini-batches ("
                    + miniBatches + "), got " + checkpointInterval);
        }
        if (tf32 && dtype != DType.FLOAT32) {
            throw new IllegalArgumentException("--tf32 applies to --dtype float32 only, got " + dtype.flag());
        }
    }

    private static void requirePositive(String flag, int value) {
        if (value <= 0) throw new IllegalArgumentException(flag + " must be a positive integer, got " + value);
    }

    /** The defaults of SPEC §5 for the given preset and type: a forward of one sequence of 2048 tokens. */
    public static Workload defaults(String modelSize, TttType type) {
        return new Workload(modelSize, type, false, false, 1, 2048, 16, DType.FLOAT32, 1, false, null);
    }

    /** The same workload measured as {@code kind}. */
    public Workload as(BenchmarkKind kind) {
        return new Workload(modelSize, tttType, kind.backward(), kind.innerOnly(), batch, seqLen, miniBatch, dtype,
                checkpointInterval, tf32, weights);
    }

    public BenchmarkKind benchmark() {
        return BenchmarkKind.of(backward, innerOnly);
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

    /**
     * Elements of the largest tensor the benchmark allocates (the logits [B·L, V] of a full
     * model, else the activations or the kept inner states): a backend holds at most 2^31 − 1
     * elements in one tensor.
     */
    public long largestTensorElements() {
        ModelConfig m = model();
        long tokens = (long) batch * seqLen;
        long largest = Math.max(tokens * m.hidden(), innerOnly ? 0 : tokens * Math.max(m.vocab(), m.ffn()));
        if (backward) {
            long slots = (miniBatches() + checkpointInterval - 1) / checkpointInterval;
            largest = Math.max(largest, slots * batch * m.heads() * m.innerStateSize());
        }
        return largest;
    }

    /** Parameters counted as the family's drivers count them (SPEC §6). */
    public long parameterCount() {
        ModelConfig m = model();
        return innerOnly ? m.tttLayerParameterCount() : m.parameterCount();
    }
}

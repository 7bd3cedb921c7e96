package org.tttbench.sweep;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.tttbench.config.DType;
import org.tttbench.config.MemoryEstimate;
import org.tttbench.config.TttType;

/**
 * One configuration of a sweep: what identifies a result in a results directory. Its file
 * name is the one of SPEC §6, so results of other members of the family sit beside ours.
 *
 * @param implementation     the plan's name for the implementation ("tttbench" is this suite)
 * @param modelSize          the preset as the plan spells it ("1.3b" stays "1.3b")
 * @param checkpointInterval the interval the run keeps inner states at: the one passed, else the
 *                           standard flag's default 1
 * @param checkpointFlag     whether the run is passed {@code --checkpoint-interval} (a backward run
 *                           of a pass that lists {@code checkpoint_intervals}); only then does the
 *                           file name carry {@code _ckpt{c}}, as the family's sweep names it, and
 *                           only then can an implementation that lacks the flag not run it
 */
public record Config(
        String implementation,
        String modelSize,
        TttType tttType,
        boolean backward,
        int batch,
        int seqLen,
        int miniBatch,
        DType dtype,
        int checkpointInterval,
        boolean checkpointFlag,
        boolean innerOnly) {

    public Config {
        if (checkpointInterval < 1) throw new IllegalArgumentException("checkpoint interval " + checkpointInterval);
        if (!checkpointFlag && checkpointInterval != 1) {
            // A run not given the flag runs at the default, so its name must not claim another interval.
            throw new IllegalArgumentException("checkpoint interval " + checkpointInterval + " without the flag");
        }
    }

    /** Implementation names end up in file names and process lists: keep them plain. */
    static final Pattern IMPLEMENTATION_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9.+-]*");

    private static final Pattern FILE_NAME = Pattern.compile(
            "(?<impl>.+)_(?<size>[^_]+)_(?<type>linear|mlp)_len(?<len>\\d+)_mb(?<mb>\\d+)_b(?<b>\\d+)"
                    + "_(?<dtype>float16|bfloat16|float32)(?<bwd>_bwd)?(?:_ckpt(?<ckpt>\\d+))?(?<inner>_inner)?"
                    + "\\.json(?<failed>\\.failed)?");

    public static final String RESULT_SUFFIX = ".json";
    public static final String TOMBSTONE_SUFFIX = ".json.failed";

    /** The name without extension: {impl}_{size}_{type}_len{L}_mb{K}_b{B}_{dtype}[_bwd][_ckpt{c}][_inner]. */
    public String stem() {
        StringBuilder s = new StringBuilder();
        s.append(implementation).append('_').append(modelSize).append('_').append(tttType.flag())
                .append("_len").append(seqLen).append("_mb").append(miniBatch).append("_b").append(batch)
                .append('_').append(dtype.flag());
        if (backward) s.append("_bwd");
        if (checkpointFlag) s.append("_ckpt").append(checkpointInterval);
        if (innerOnly) s.append("_inner");
        return s.toString();
    }

    public String resultName() {
        return stem() + RESULT_SUFFIX;
    }

    public String tombstoneName() {
        return stem() + TOMBSTONE_SUFFIX;
    }

    /** A file name of SPEC §6 read back; {@code failed} tells a tombstone from a result. */
    public record Named(Config config, boolean failed) {}

    /** Reads a result or tombstone name; empty for any other file. */
    public static Optional<Named> parseFileName(String name) {
        Matcher m = FILE_NAME.matcher(name);
        if (!m.matches()) return Optional.empty();
        try {
            String ckpt = m.group("ckpt");
            Config c = new Config(m.group("impl"), m.group("size"), TttType.parse(m.group("type")),
                    m.group("bwd") != null, Integer.parseInt(m.group("b")), Integer.parseInt(m.group("len")),
                    Integer.parseInt(m.group("mb")), DType.parse(m.group("dtype")),
                    ckpt == null ? 1 : Integer.parseInt(ckpt), ckpt != null, m.group("inner") != null);
            return Optional.of(new Named(c, m.group("failed") != null));
        } catch (IllegalArgumentException e) {
            return Optional.empty(); // digits too long for an int, or _ckpt0: not one of ours
        }
    }

    /** The standard flags of SPEC §5 for this configuration (without --json). */
    public List<String> standardFlags(Integer warmup, Integer repeats) {
        List<String> f = new ArrayList<>(List.of(
                "--model-size", modelSize, "--ttt-type", tttType.flag(),
                "--batch", Integer.toString(batch), "--seq-len", Integer.toString(seqLen),
                "--mini-batch", Integer.toString(miniBatch), "--dtype", dtype.flag()));
        if (backward) f.add("--backward");
        if (checkpointFlag) {
            f.add("--checkpoint-interval");
            f.add(Integer.toString(checkpointInterval));
        }
        if (innerOnly) f.add("--inner-only");
        if (warmup != null) {
            f.add("--warmup");
            f.add(warmup.toString());
        }
        if (repeats != null) {
            f.add("--repeats");
            f.add(repeats.toString());
        }
        return f;
    }

    /** "fwd", "bwd", "inner fwd" or "inner bwd": how tables and charts name the benchmark. */
    public String direction() {
        return (innerOnly ? "inner " : "") + (backward ? "bwd" : "fwd");
    }

    /** The device memory this configuration needs, roughly ({@link MemoryEstimate}). */
    public MemoryEstimate memory() {
        return MemoryEstimate.of(modelSize, tttType, backward, innerOnly, batch, seqLen, miniBatch, dtype,
                checkpointInterval);
    }
}

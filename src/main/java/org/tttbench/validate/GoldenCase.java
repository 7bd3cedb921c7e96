package org.tttbench.validate;

import java.util.Map;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;
import org.tttbench.io.Safetensors;

/**
 * A case file in the golden format (SPEC §7), read: the model its {@code __metadata__}
 * describes, the batch and sequence length, the token ids, and the file itself, which holds
 * the parameters ({@code param.<name>}) and the references.
 *
 * @param name     the metadata's {@code name}, or "case" when absent
 * @param inputIds [B·L], row-major
 */
public record GoldenCase(String name, ModelConfig config, int batch, int seqLen, int[] inputIds,
        int innerLayer, Safetensors.Contents contents) {

    public static GoldenCase load(Safetensors.Contents contents) {
        Map<String, String> meta = contents.metadata();
        ModelConfig config = new ModelConfig(
                intKey(meta, "V"), intKey(meta, "D"), intKey(meta, "N"), intKey(meta, "H"), intKey(meta, "I"),
                intKey(meta, "K"), TttType.parse(key(meta, "ttt")));
        int batch = intKey(meta, "B");
        int seqLen = intKey(meta, "L");
        if (seqLen % config.miniBatch() != 0) {
            throw new IllegalArgumentException("case metadata: L " + seqLen + " is not divisible by K " + config.miniBatch());
        }
        Safetensors.Entry ids = contents.require("input_ids");
        if (ids.size() != (long) batch * seqLen) {
            throw new IllegalArgumentException("input_ids has shape " + java.util.Arrays.toString(ids.shape())
                    + ", expected [" + batch + ", " + seqLen + "]");
        }
        int innerLayer = meta.containsKey("layer_for_inner") ? intKey(meta, "layer_for_inner") : 0;
        return new GoldenCase(meta.getOrDefault("name", "case"), config, batch, seqLen, ids.toInts(), innerLayer,
                contents);
    }

    private static String key(Map<String, String> meta, String key) {
        String v = meta.get(key);
        if (v == null) throw new IllegalArgumentException("case metadata: key '" + key + "' is missing");
        return v;
    }

    private static int intKey(Map<String, String> meta, String key) {
        String v = key(meta, key);
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("case metadata: " + key + " = '" + v + "' is not an integer");
        }
    }
}

package org.tttbench.config;

import java.util.List;
import java.util.stream.Collectors;

/** A model size of SPEC §1. */
public record Preset(String name, int hidden, int layers, int heads, int ffn) {

    public static final int VOCAB = 32000;

    public static final List<Preset> ALL = List.of(
            new Preset("12m", 256, 6, 4, 512),
            new Preset("60m", 512, 6, 8, 768),
            new Preset("125m", 768, 12, 12, 2048),
            new Preset("125m-h32", 768, 12, 24, 2048),
            new Preset("350m", 1024, 24, 16, 2736),
            new Preset("760m", 1536, 24, 16, 4096),
            new Preset("1b", 2048, 24, 32, 5504));

    /** Looks a preset up by the name a user typed; "1.3b" is the same model as "1b". */
    public static Preset byName(String name) {
        String key = name.equals("1.3b") ? "1b" : name;
        for (Preset p : ALL) {
            if (p.name.equals(key)) return p;
        }
        throw new IllegalArgumentException("unknown model size '" + name + "' (allowed: " + names() + ")");
    }

    /** Every accepted name, aliases included, for error messages. */
    public static String names() {
        return ALL.stream().map(Preset::name).collect(Collectors.joining(", ")) + ", 1.3b";
    }

    /** The model this preset describes, with the given inner mini-batch size and type. */
    public ModelConfig model(TttType type, int miniBatch) {
        return new ModelConfig(VOCAB, hidden, layers, heads, ffn, miniBatch, type);
    }
}

package org.tttbench.sweep;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import org.tttbench.config.DType;
import org.tttbench.config.Preset;
import org.tttbench.config.TttType;

/**
 * A result line that is one (SPEC §6): a JSON object with the family's fourteen keys, of the
 * configuration that was asked for, with a finite positive time. A benchmark that exits 0 but
 * prints something else (a line of another configuration, a time of 0 or NaN, half a line)
 * has not measured what the sweep would file under that configuration's name.
 *
 * @param text the line as printed
 * @param json the line parsed
 */
public record ResultLine(String text, JsonNode json) {

    /** SPEC §6: the keys every implementation of the family prints, in its order. */
    public static final List<String> FAMILY_KEYS = List.of("implementation", "model_size", "ttt_type", "backward",
            "inner_only", "batch", "seq_len", "mini_batch", "checkpoint_interval", "dtype", "num_params", "time_ms",
            "throughput", "device");

    /** SPEC §6: sweep tooling treats output under this many bytes as invalid. */
    public static final int MIN_BYTES = 100;

    /** The key the sweep adds to a stored line: the device the run was given (see {@link #withSweepDevice}). */
    public static final String SWEEP_DEVICE_KEY = "sweep_device";

    /** A line that is not a result of the configuration; the message says what is wrong, in one line. */
    public static final class NotAResult extends Exception {
        NotAResult(String message) {
            super(message);
        }
    }

    /** Reads {@code text} as a result of {@code asked}. */
    public static ResultLine parse(String text, Config asked) throws NotAResult {
        if (text == null || text.isBlank()) throw new NotAResult("no result line (nothing on stdout)");
        if (!text.startsWith("{")) throw new NotAResult("the result line is not a JSON object: " + clip(text));
        int bytes = text.getBytes(StandardCharsets.UTF_8).length;
        if (bytes < MIN_BYTES) throw new NotAResult("result line under " + MIN_BYTES + " bytes (" + bytes + ")");
        JsonNode json;
        try {
            json = StrictJson.JSON.readTree(text);
        } catch (JacksonException e) {
            throw new NotAResult("the result line is not valid JSON: " + clip(e.getOriginalMessage()));
        }
        if (json == null || !json.isObject()) throw new NotAResult("the result line is not a JSON object");
        // A driver that has no checkpointing (the JAX and PyTorch reference drivers) prints no
        // checkpoint_interval; where the sweep did not pass the flag, its absence means the default.
        List<String> missing = FAMILY_KEYS.stream().filter(k -> !json.has(k))
                .filter(k -> !(k.equals("checkpoint_interval") && !asked.checkpointFlag())).toList();
        if (!missing.isEmpty()) {
            throw new NotAResult("the result line lacks " + String.join(", ", missing) + " (SPEC §6 keys)");
        }
        for (String k : List.of("implementation", "model_size", "ttt_type", "dtype", "device")) {
            if (!json.get(k).isTextual()) throw new NotAResult(k + " is " + json.get(k) + ", not a string");
        }
        for (String k : List.of("backward", "inner_only")) {
            if (!json.get(k).isBoolean()) throw new NotAResult(k + " is " + json.get(k) + ", not true or false");
        }
        for (String k : List.of("batch", "seq_len", "mini_batch", "checkpoint_interval")) {
            if (!json.has(k)) continue;
            if (!json.get(k).canConvertToInt() || !json.get(k).isIntegralNumber()) {
                throw new NotAResult(k + " is " + json.get(k) + ", not an integer");
            }
        }
        for (String k : List.of("num_params", "time_ms", "throughput")) {
            if (!json.get(k).isNumber()) throw new NotAResult(k + " is " + json.get(k) + ", not a number");
        }
        List<String> mismatches = mismatches(json, asked);
        if (!mismatches.isEmpty()) throw new NotAResult(String.join("; ", mismatches));
        double time = json.get("time_ms").asDouble();
        if (!Double.isFinite(time) || time <= 0) {
            throw new NotAResult("time_ms is " + json.get("time_ms").asText() + ", not a finite positive time");
        }
        return new ResultLine(text, json);
    }

    /**
     * What the line reports otherwise than asked, each as "batch is 2, asked for 1". The
     * checkpoint interval is compared only where it was passed: otherwise the run used its default.
     */
    private static List<String> mismatches(JsonNode json, Config asked) {
        List<String> out = new ArrayList<>();
        compare(out, json, "model_size", asked.modelSize(), ResultLine::presetOrName);
        compare(out, json, "ttt_type", asked.tttType().flag(), ResultLine::tttTypeOrName);
        compare(out, json, "backward", Boolean.toString(asked.backward()), s -> s);
        compare(out, json, "inner_only", Boolean.toString(asked.innerOnly()), s -> s);
        compare(out, json, "batch", Integer.toString(asked.batch()), s -> s);
        compare(out, json, "seq_len", Integer.toString(asked.seqLen()), s -> s);
        compare(out, json, "mini_batch", Integer.toString(asked.miniBatch()), s -> s);
        compare(out, json, "dtype", asked.dtype().flag(), ResultLine::dtypeOrName);
        if (asked.checkpointFlag()) {
            compare(out, json, "checkpoint_interval", Integer.toString(asked.checkpointInterval()), s -> s);
        }
        return out;
    }

    private static void compare(List<String> out, JsonNode json, String key, String asked,
                                java.util.function.Function<String, Object> meaning) {
        String got = json.get(key).asText();
        if (!Objects.equals(meaning.apply(got), meaning.apply(asked))) {
            out.add("the result line is for " + key + " " + got + ", but " + asked + " was asked for");
        }
    }

    /** "1.3b" and "1b" are one model; a size this suite does not know compares by name. */
    private static Object presetOrName(String size) {
        try {
            return Preset.byName(size);
        } catch (IllegalArgumentException e) {
            return size;
        }
    }

    private static Object tttTypeOrName(String type) {
        try {
            return TttType.parse(type);
        } catch (IllegalArgumentException e) {
            return type;
        }
    }

    private static Object dtypeOrName(String dtype) {
        try {
            return DType.parse(dtype);
        } catch (IllegalArgumentException e) {
            return dtype;
        }
    }

    /**
     * The line as a results directory stores it: the printed text with the device the sweep
     * gave the run added as the last key. Text, not re-serialised JSON, so every number stays
     * exactly as the benchmark printed it.
     */
    public String withSweepDevice(String device) throws NotAResult {
        if (json.has(SWEEP_DEVICE_KEY)) {
            throw new NotAResult("the result line has the key " + SWEEP_DEVICE_KEY + ", which the sweep sets itself");
        }
        String body = text.stripTrailing();
        String value = StrictJson.JSON.getNodeFactory().textNode(device).toString();
        return body.substring(0, body.length() - 1) + ",\"" + SWEEP_DEVICE_KEY + "\":" + value + "}";
    }

    private static String clip(String s) {
        if (s == null) return "";
        String line = s.strip().lines().findFirst().orElse("");
        return line.length() > 120 ? line.substring(0, 120) + "…" : line;
    }
}

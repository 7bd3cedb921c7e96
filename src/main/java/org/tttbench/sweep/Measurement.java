package org.tttbench.sweep;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * One benchmark's score, from a JMH result file or a sweep's result line, in a form two runs
 * can be compared in.
 *
 * @param benchmark      JMH's benchmark name (class.method), or "implementation direction" for a result line
 * @param params         the parameters that, with the benchmark, identify the measurement
 * @param low            lower end of the score's confidence interval (the score itself when unknown)
 * @param high           upper end
 * @param higherIsBetter true for throughput modes, false for times
 */
public record Measurement(String benchmark, Map<String, String> params, double score, double low, double high,
                          String unit, boolean higherIsBetter) {

    public Measurement {
        params = new TreeMap<>(params); // a stable order, so keys compare whatever order the file used
    }

    /** What two runs are matched by. */
    public String key() {
        return benchmark + " " + paramsText();
    }

    public String paramsText() {
        return params.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining(","));
    }

    /** Reads a JMH JSON result file ({@code -rf json}) or a sweep results directory. */
    public static List<Measurement> load(Path path) throws IOException {
        if (Files.isDirectory(path)) return fromResultsDir(path);
        if (Files.size(path) > ResultFile.MAX_FILE_BYTES) {
            throw new IOException(path + " is " + Files.size(path) + " bytes, more than a JMH result file may be ("
                    + (ResultFile.MAX_FILE_BYTES >> 20) + " MiB)");
        }
        JsonNode root;
        try {
            root = StrictJson.JSON.readTree(path.toFile());
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new IOException(path + " is neither a results directory nor JMH JSON: "
                    + e.getOriginalMessage().strip().lines().findFirst().orElse(""));
        }
        if (root == null || !root.isArray()) throw new IOException(path + " is not a JMH JSON result file (an array)");
        List<Measurement> out = new ArrayList<>();
        for (JsonNode b : root) out.add(fromJmh(b, path));
        return out;
    }

    static Measurement fromJmh(JsonNode b, Path source) throws IOException {
        JsonNode metric = b.path("primaryMetric");
        if (!b.path("benchmark").isTextual() || !metric.has("score")) {
            throw new IOException(source + ": an entry without benchmark or primaryMetric.score");
        }
        Map<String, String> params = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = b.path("params").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            params.put(e.getKey(), e.getValue().asText());
        }
        double score = number(metric.path("score"));
        JsonNode ci = metric.path("scoreConfidence");
        double low = ci.isArray() && ci.size() == 2 ? number(ci.get(0)) : Double.NaN;
        double high = ci.isArray() && ci.size() == 2 ? number(ci.get(1)) : Double.NaN;
        if (!Double.isFinite(low) || !Double.isFinite(high)) {
            low = score; // one iteration: JMH knows no interval, so the score stands alone
            high = score;
        }
        String unit = metric.path("scoreUnit").asText("");
        // Throughput is the only JMH mode where more is better; avgt, sample and ss are times.
        boolean higher = b.path("mode").asText().equals("thrpt");
        return new Measurement(b.path("benchmark").asText(), params, score, low, high, unit, higher);
    }

    static List<Measurement> fromResultsDir(Path dir) throws IOException {
        List<Measurement> out = new ArrayList<>();
        for (ResultFile f : new ResultsDir(dir).list().of(ResultFile.Kind.SUCCESS)) {
            double time = f.number("time_ms");
            if (!Double.isFinite(time)) continue;
            Config c = f.config();
            Map<String, String> params = new LinkedHashMap<>();
            params.put("model_size", c.modelSize());
            params.put("ttt_type", c.tttType().flag());
            params.put("batch", Integer.toString(c.batch()));
            params.put("seq_len", Integer.toString(c.seqLen()));
            params.put("mini_batch", Integer.toString(c.miniBatch()));
            params.put("dtype", c.dtype().flag());
            if (c.backward()) params.put("checkpoint_interval", Integer.toString(c.checkpointInterval()));
            double[] spread = spread(f, time);
            out.add(new Measurement(c.implementation() + " " + c.direction(), params, time, spread[0], spread[1], "ms",
                    false));
        }
        return out;
    }

    /**
     * The spread of the repeats as the interval: time_ms_min/time_ms_max when the line has
     * them, else the extremes of times_ms, else none.
     */
    private static double[] spread(ResultFile f, double time) {
        double min = f.number("time_ms_min");
        double max = f.number("time_ms_max");
        if (Double.isFinite(min) && Double.isFinite(max)) return new double[] {Math.min(min, time), Math.max(max, time)};
        JsonNode times = f.result().path("times_ms");
        if (times.isArray() && !times.isEmpty()) {
            double lo = time, hi = time;
            for (JsonNode t : times) {
                lo = Math.min(lo, t.asDouble());
                hi = Math.max(hi, t.asDouble());
            }
            return new double[] {lo, hi};
        }
        return new double[] {time, time};
    }

    /** JMH writes NaN and infinities as strings. */
    private static double number(JsonNode n) {
        if (n.isNumber()) return n.asDouble();
        try {
            return Double.parseDouble(n.asText());
        } catch (NumberFormatException e) {
            return Double.NaN;
        }
    }
}

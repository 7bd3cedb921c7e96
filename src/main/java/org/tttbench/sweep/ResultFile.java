package org.tttbench.sweep;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * One file of a results directory, read and judged.
 *
 * @param result the result line as JSON (SUCCESS only)
 * @param reason why the run failed (FAILED) or why the file is not a result (INVALID)
 */
public record ResultFile(Path path, Config config, Kind kind, JsonNode result, String reason) {

    public enum Kind { SUCCESS, FAILED, INVALID }

    /** SPEC §6: sweep tooling treats output under this many bytes as invalid. */
    public static final int MIN_VALID_BYTES = 100;

    /** Tombstones end with a line of this prefix that says why the sweep gave up on the run. */
    public static final String SWEEP_LINE_PREFIX = "[sweep] ";

    private static final ObjectMapper JSON = new ObjectMapper();

    static ResultFile read(Path path, Config.Named named) throws IOException {
        byte[] bytes = Files.readAllBytes(path);
        String text = new String(bytes, StandardCharsets.UTF_8);
        if (named.failed()) return new ResultFile(path, named.config(), Kind.FAILED, null, failureReason(text));
        if (bytes.length < MIN_VALID_BYTES) {
            return new ResultFile(path, named.config(), Kind.INVALID, null, "output under " + MIN_VALID_BYTES
                    + " bytes (" + bytes.length + ")");
        }
        String line = resultLine(text.lines().toList());
        if (line == null) {
            return new ResultFile(path, named.config(), Kind.INVALID, null, "no line starting with '{'");
        }
        JsonNode node = parseObject(line);
        if (node == null) {
            return new ResultFile(path, named.config(), Kind.INVALID, null, "result line is not a JSON object");
        }
        return new ResultFile(path, named.config(), Kind.SUCCESS, node, null);
    }

    /** The last stdout line that starts with '{', as SPEC §6 recognises a result; null if none. */
    static String resultLine(List<String> stdout) {
        for (int i = stdout.size() - 1; i >= 0; i--) {
            if (stdout.get(i).startsWith("{")) return stdout.get(i);
        }
        return null;
    }

    static JsonNode parseObject(String line) {
        try {
            JsonNode node = JSON.readTree(line);
            return node != null && node.isObject() ? node : null;
        } catch (IOException e) {
            return null;
        }
    }

    /**
     * The sweep's own verdict and the line of output that most looks like the error (stdout
     * and stderr interleave loosely, so the very last line need not be it).
     */
    static String failureReason(String tombstone) {
        List<String> lines = tombstone.lines().map(String::strip).filter(l -> !l.isEmpty()).toList();
        String prefix = SWEEP_LINE_PREFIX.strip();
        String verdict = null;
        String last = null;
        String lastError = null;
        for (String l : lines) {
            if (l.startsWith(prefix)) {
                verdict = l.substring(prefix.length()).strip();
                continue;
            }
            last = l;
            if (ERROR_WORDS.matcher(l).find()) lastError = l;
        }
        String detail = lastError != null ? lastError : last;
        if (detail != null && detail.length() > 300) detail = detail.substring(0, 300) + "…";
        if (verdict == null) return detail == null ? "no output" : detail;
        return detail == null ? verdict : verdict + ": " + detail;
    }

    private static final java.util.regex.Pattern ERROR_WORDS = java.util.regex.Pattern.compile(
            "(?i)error|exception|fail|out of memory|oom|killed|abort|fatal");

    /** A number of the result line, or NaN when the key is missing or not a number. */
    public double number(String key) {
        JsonNode n = result == null ? null : result.get(key);
        return n != null && n.isNumber() ? n.asDouble() : Double.NaN;
    }

    /** A value of the result line as text, "" when missing. */
    public String text(String key) {
        JsonNode n = result == null ? null : result.get(key);
        return n == null || n.isNull() ? "" : n.asText();
    }

    /**
     * Peak device memory in bytes if the result line reports it; the family has no common key,
     * so any key naming peak memory is read, in the unit its suffix says (MiB without one).
     */
    public double peakMemoryBytes() {
        if (result == null) return Double.NaN;
        for (var it = result.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            String k = key.toLowerCase();
            if (!k.contains("peak") || !(k.contains("mem"))) continue;
            JsonNode v = result.get(key);
            if (!v.isNumber()) continue;
            double x = v.asDouble();
            if (k.endsWith("bytes") || k.endsWith("_b")) return x;
            if (k.endsWith("gib") || k.endsWith("gb")) return x * (1L << 30);
            if (k.endsWith("kib") || k.endsWith("kb")) return x * 1024;
            return x * (1L << 20);
        }
        return Double.NaN;
    }
}

package org.tttbench.sweep;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * One file of a results directory, read and judged.
 *
 * @param result the result line as JSON (SUCCESS only)
 * @param reason why the run failed (FAILED) or why the file is not a result (INVALID)
 */
public record ResultFile(Path path, Config config, Kind kind, JsonNode result, String reason) {

    public enum Kind { SUCCESS, FAILED, INVALID }

    /** A result file is one line and a tombstone 51; a file over this is not one, and is not read. */
    public static final long MAX_FILE_BYTES = 100L << 20;

    /** Tombstones end with a line of this prefix that says why the sweep gave up on the run. */
    public static final String SWEEP_LINE_PREFIX = "[sweep] ";

    /** Judges the file at {@code path}, whose name is {@code named}; reads at most a line at a time. */
    static ResultFile read(Path path, Config.Named named) throws IOException {
        Config c = named.config();
        if (!Files.isRegularFile(path)) {
            return new ResultFile(path, c, Kind.INVALID, null, "not a regular file ("
                    + (Files.isDirectory(path) ? "a directory" : "a link to nothing or a special file")
                    + "); remove it to run this configuration");
        }
        long size = Files.size(path);
        if (size > MAX_FILE_BYTES) {
            return new ResultFile(path, c, Kind.INVALID, null, "a file of " + size + " bytes, over the "
                    + (MAX_FILE_BYTES >> 20) + " MiB a result may be; not read");
        }
        if (named.failed()) {
            FailureReason reason = new FailureReason();
            try (InputStream in = Files.newInputStream(path)) {
                BoundedLines.read(in, line -> reason.add(line.shown(MAX_REASON_CHARS)));
            }
            return new ResultFile(path, c, Kind.FAILED, null, reason.reason());
        }
        // SPEC §6: the family recognises a result by a line that starts with '{'; the last one counts.
        BoundedLines.Line[] last = new BoundedLines.Line[1];
        try (InputStream in = Files.newInputStream(path)) {
            BoundedLines.read(in, line -> {
                if (line.text().startsWith("{")) last[0] = line;
            });
        }
        if (size < ResultLine.MIN_BYTES) {
            return new ResultFile(path, c, Kind.INVALID, null, "output under " + ResultLine.MIN_BYTES
                    + " bytes (" + size + ")");
        }
        if (last[0] == null) return new ResultFile(path, c, Kind.INVALID, null, "no line starting with '{'");
        if (last[0].cut()) {
            return new ResultFile(path, c, Kind.INVALID, null, "the result line is " + last[0].bytes()
                    + " bytes, over the " + (BoundedLines.MAX_LINE_BYTES >> 20) + " MiB a result line may be");
        }
        try {
            return new ResultFile(path, c, Kind.SUCCESS, ResultLine.parse(last[0].text(), c).json(), null);
        } catch (ResultLine.NotAResult e) {
            return new ResultFile(path, c, Kind.INVALID, null, e.getMessage());
        }
    }

    private static final int MAX_REASON_CHARS = 300;

    /** The reason a tombstone gives, read from its text (tests and callers with the text at hand). */
    static String failureReason(String tombstone) {
        FailureReason reason = new FailureReason();
        tombstone.lines().forEach(reason::add);
        return reason.reason();
    }

    /**
     * The sweep's own verdict and the line of output that most looks like the error (stdout
     * and stderr interleave loosely, so the very last line need not be it), gathered line by line.
     */
    private static final class FailureReason {
        private static final Pattern ERROR_WORDS = Pattern.compile(
                "(?i)error|exception|fail|out of memory|oom|killed|abort|fatal");
        private String verdict;
        private String last;
        private String lastError;

        void add(String line) {
            String l = line.strip();
            if (l.isEmpty()) return;
            String prefix = SWEEP_LINE_PREFIX.strip();
            if (l.startsWith(prefix)) {
                verdict = l.substring(prefix.length()).strip();
                return;
            }
            last = l;
            if (ERROR_WORDS.matcher(l).find()) lastError = l;
        }

        String reason() {
            String detail = lastError != null ? lastError : last;
            if (detail != null && detail.length() > MAX_REASON_CHARS) {
                detail = detail.substring(0, MAX_REASON_CHARS) + "…";
            }
            if (verdict == null) return detail == null ? "no output" : detail;
            return detail == null ? verdict : verdict + ": " + detail;
        }
    }

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

package org.tttbench.sweep;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;

/**
 * Reads lines of UTF-8 text holding at most {@link #MAX_LINE_BYTES} of any one line. Benchmark
 * output and the files of a results directory come from programs the sweep does not control,
 * and one line of gigabytes must not take the sweep's memory with it.
 */
final class BoundedLines {

    /** A result line is one JSON object of a few hundred bytes; a line over this is not one. */
    static final int MAX_LINE_BYTES = 1 << 20;

    /**
     * One line without its line break.
     *
     * @param text  the line, or its first {@link #MAX_LINE_BYTES} bytes when it is longer
     * @param bytes the line's whole length in bytes
     */
    record Line(String text, long bytes) {
        boolean cut() {
            return bytes > MAX_LINE_BYTES;
        }

        /** The line as a tombstone or a message shows it: a cut line is named as such. */
        String shown(int maxChars) {
            if (!cut() && text.length() <= maxChars) return text;
            return text.substring(0, Math.min(maxChars, text.length())) + " … [line of " + bytes + " bytes, cut]";
        }
    }

    interface Sink {
        void line(Line line) throws IOException;
    }

    private BoundedLines() {}

    /** Calls {@code sink} for each line of {@code in} until its end; a last line without a break counts. */
    static void read(InputStream in, Sink sink) throws IOException {
        InputStream buffered = new BufferedInputStream(in, 1 << 16);
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        long length = 0;
        boolean any = false;
        for (int b; (b = buffered.read()) >= 0; ) {
            any = true;
            if (b == '\n') {
                sink.line(finish(line, length));
                line.reset();
                length = 0;
                any = false;
                continue;
            }
            length++;
            if (length <= MAX_LINE_BYTES) line.write(b);
        }
        if (any) sink.line(finish(line, length));
    }

    private static Line finish(ByteArrayOutputStream bytes, long length) {
        String text = bytes.toString(StandardCharsets.UTF_8);
        if (length <= MAX_LINE_BYTES && text.endsWith("\r")) {
            return new Line(text.substring(0, text.length() - 1), length - 1);
        }
        return new Line(text, length);
    }
}

package org.tttbench.gpu;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The hip/ sources packed into the jar under kernels/src/, for compiling a module at run time:
 * a family's .hip and every header of hip/ it includes by quoted name, found by following its
 * {@code #include "…"} lines.
 */
final class KernelSources {

    private static final Pattern QUOTED_INCLUDE = Pattern.compile("^\\s*#\\s*include\\s+\"([^\"]+)\"", Pattern.MULTILINE);

    /** One module's source and the hip/ headers it includes, by the names it includes them with. */
    record Program(String name, String source, Map<String, String> headers) {
    }

    private KernelSources() {
    }

    /** @return empty when this build packed no sources (then nothing is compiled at run time) */
    static java.util.Optional<Program> of(String module) {
        String name = module + ".hip";
        String source = read(name);
        if (source == null) return java.util.Optional.empty();
        Map<String, String> headers = new LinkedHashMap<>();
        Deque<String> todo = new ArrayDeque<>();
        todo.add(source);
        while (!todo.isEmpty()) {
            Matcher m = QUOTED_INCLUDE.matcher(todo.pop());
            while (m.find()) {
                String h = m.group(1);
                if (headers.containsKey(h)) continue;
                String text = read(h);
                if (text == null) throw new GpuException("kernels/src/" + name + " includes " + h + ", which the jar lacks");
                headers.put(h, text);
                todo.add(text);
            }
        }
        return java.util.Optional.of(new Program(name, source, headers));
    }

    private static String read(String file) {
        try (InputStream in = KernelSources.class.getResourceAsStream("/kernels/src/" + file)) {
            return in == null ? null : new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("reading kernels/src/" + file, e);
        }
    }
}

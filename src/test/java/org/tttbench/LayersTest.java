package org.tttbench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The layers of docs/architecture.md, held against the code: each package of src/main/java
 * uses only the packages below it (imports and qualified names in code; comments and strings do
 * not count). In particular the backend API knows no implementation, the GPU layer imports no
 * model, verification or harness, the model reads no files, and no library code uses the
 * developer tools.
 */
class LayersTest {

    /** Each package and the packages of org.tttbench it may use (besides itself and its subpackages). */
    static final Map<String, Set<String>> ALLOWED = Map.ofEntries(
            Map.entry("config", Set.of()),
            Map.entry("backend", Set.of("config")),
            Map.entry("model", Set.of("config", "backend")),
            Map.entry("cpu", Set.of("config", "backend")),
            Map.entry("gpu", Set.of("config", "backend")),
            Map.entry("io", Set.of("config", "backend", "model")),
            Map.entry("harness", Set.of("config", "backend", "model", "cpu", "gpu", "io")),
            Map.entry("validate", Set.of("config", "backend", "model", "cpu", "io", "harness")),
            Map.entry("verify", Set.of("config", "backend", "model", "cpu", "io", "harness", "validate")),
            Map.entry("tools", Set.of("config", "backend", "model", "cpu", "gpu", "io", "harness", "verify")),
            Map.entry("report", Set.of("config", "io", "sweep")),
            Map.entry("sweep", Set.of("config", "io")),
            Map.entry("cli", Set.of("config", "backend", "model", "cpu", "gpu", "io", "harness", "validate", "verify",
                    "sweep", "report")));

    private static final Pattern USE = Pattern.compile("\\borg\\.tttbench\\.([a-z]+)\\b");

    /** The text with comments and string and char literals blanked out. */
    static String code(String s) {
        StringBuilder out = new StringBuilder(s.length());
        int i = 0;
        while (i < s.length()) {
            char c = s.charAt(i);
            if (s.startsWith("//", i)) {
                while (i < s.length() && s.charAt(i) != '\n') i++;
            } else if (s.startsWith("/*", i)) {
                int end = s.indexOf("*/", i + 2);
                i = end < 0 ? s.length() : end + 2;
            } else if (s.startsWith("\"\"\"", i)) {
                int end = s.indexOf("\"\"\"", i + 3);
                i = end < 0 ? s.length() : end + 3;
            } else if (c == '"' || c == '\'') {
                i++;
                while (i < s.length() && s.charAt(i) != c) i += s.charAt(i) == '\\' ? 2 : 1;
                i++;
            } else {
                out.append(c);
                i++;
            }
        }
        return out.toString();
    }

    @Test
    void everyPackageUsesOnlyTheLayersBelowIt() throws IOException {
        Path root = Path.of("src/main/java/org/tttbench");
        List<String> violations = new ArrayList<>();
        Set<String> seen = new TreeSet<>();
        try (Stream<Path> files = Files.walk(root)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                String pkg = root.relativize(f).getName(0).toString();
                seen.add(pkg);
                Set<String> allowed = ALLOWED.get(pkg);
                if (allowed == null) {
                    violations.add(pkg + " is not a layer of LayersTest.ALLOWED (" + f + ")");
                    continue;
                }
                Matcher m = USE.matcher(code(Files.readString(f)));
                Set<String> bad = new TreeSet<>();
                while (m.find()) {
                    String used = m.group(1);
                    if (!used.equals(pkg) && !allowed.contains(used)) bad.add(used);
                }
                if (!bad.isEmpty()) violations.add(root.relativize(f) + " uses " + bad);
            }
        }
        assertEquals(ALLOWED.keySet(), seen, "every layer exists, and no other package");
        assertTrue(violations.isEmpty(), String.join("\n", violations));
    }

    @Test
    void theCheckSeesQualifiedNamesAndIgnoresComments() {
        Matcher m = USE.matcher(code("// org.tttbench.tools.X\nString s = \"org.tttbench.cli.Main\";\n"
                + "var r = org.tttbench.gpu.GpuRuntimes.probe();"));
        assertTrue(m.find());
        assertEquals("gpu", m.group(1));
        assertTrue(!m.find(), "comments and strings are not uses");
    }
}

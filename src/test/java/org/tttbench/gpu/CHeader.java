package org.tttbench.gpu;

import java.io.IOException;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The function declarations of a C header after the C preprocessor has run over it (so that
 * cuda.h's {@code #define cuMemAlloc cuMemAlloc_v2} and every #if are applied as a compiler
 * would), with each parameter and return type reduced to the FFM layout it is passed as on
 * x86-64 Linux (LP64): integers and enums by size, pointers and handles as addresses.
 */
final class CHeader {

    /** A declared function: return layout (null for void) and parameter layouts. */
    record Function(String name, MemoryLayout result, List<MemoryLayout> params) {
    }

    /** A declaration as written: return type and parameters, resolved when asked for. */
    private record Declared(String ret, List<String> params) {
    }

    /** What a C type is passed as: a value layout, void, or a struct by value (not supported here). */
    private static final MemoryLayout STRUCT_BY_VALUE = MemoryLayout.paddingLayout(1).withName("struct by value");

    private final Map<String, String> typedefs = new HashMap<>();
    private final Map<String, Declared> functions = new HashMap<>();
    private final String text;

    CHeader(String preprocessed) {
        this.text = clean(preprocessed);
        parse();
    }

    /** Runs the C preprocessor over {@code #include <include>} with the given flags. */
    static CHeader preprocess(String include, List<String> flags) throws IOException, InterruptedException {
        return new CHeader(runPreprocessor(include, flags));
    }

    static String runPreprocessor(String include, List<String> flags) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(compiler().orElseThrow(), "-E", "-P", "-x", "c"));
        cmd.addAll(flags);
        cmd.add("-");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(false).start();
        p.getOutputStream().write(("#include <" + include + ">\n").getBytes(StandardCharsets.UTF_8));
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException("preprocessing <" + include + "> failed: " + String.join(" ", cmd) + "\n" + err);
        }
        return new String(out, StandardCharsets.UTF_8);
    }

    /** A C compiler driver on PATH (cc, gcc or clang), for the preprocessor and the constant probes. */
    static Optional<String> compiler() {
        for (String c : List.of("cc", "gcc", "clang")) {
            for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
                if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, c))) return Optional.of(Path.of(dir, c).toString());
            }
        }
        return Optional.empty();
    }

    boolean mentions(String identifier) {
        return Pattern.compile("\\b" + Pattern.quote(identifier) + "\\b").matcher(text).find();
    }

    Optional<Function> function(String name) {
        Declared d = functions.get(name);
        if (d == null) return Optional.empty();
        List<MemoryLayout> params = new ArrayList<>();
        for (String p : d.params()) params.add(paramLayout(p));
        return Optional.of(new Function(name, layoutOf(d.ret()), params));
    }

    /** Removes what does not change a declaration's types: attributes, extern, inline bodies. */
    private static String clean(String s) {
        s = s.replaceAll("(?m)^\\s*#.*$", " "); // #pragma lines survive the preprocessor
        s = removeCalls(s, "__attribute__");
        s = removeCalls(s, "__declspec");
        s = removeCalls(s, "__asm__");
        s = s.replace("extern \"C\"", " ");
        s = s.replaceAll("\\b(extern|__extension__|__inline__|__inline|inline|static|__restrict|restrict|volatile)\\b", " ");
        return s;
    }

    /** Deletes each {@code name(...)} with balanced parentheses. */
    private static String removeCalls(String s, String name) {
        StringBuilder sb = new StringBuilder();
        int i = 0;
        while (true) {
            int at = s.indexOf(name, i);
            if (at < 0) break;
            sb.append(s, i, at);
            int j = at + name.length();
            while (j < s.length() && Character.isWhitespace(s.charAt(j))) j++;
            if (j < s.length() && s.charAt(j) == '(') {
                int depth = 0;
                for (; j < s.length(); j++) {
                    if (s.charAt(j) == '(') depth++;
                    else if (s.charAt(j) == ')' && --depth == 0) break;
                }
                i = j + 1;
            } else {
                i = at + name.length();
            }
        }
        sb.append(s.substring(i));
        return sb.toString();
    }

    private static final Pattern FUNCTION = Pattern.compile("^(.*?[\\w*\\s])(\\w+)\\s*\\((.*)\\)$", Pattern.DOTALL);

    private void parse() {
        List<String> typedefStatements = new ArrayList<>();
        List<String> declarations = new ArrayList<>();
        // Top-level statements: split at ';' outside braces, and drop function bodies.
        int depth = 0;
        StringBuilder cur = new StringBuilder();
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '{') depth++;
            if (c == '}') {
                depth--;
                if (depth == 0 && !cur.toString().strip().startsWith("typedef")
                        && !cur.toString().strip().matches("(?s)^(struct|enum|union)\\b.*")) {
                    cur.setLength(0); // a function body (static inline helpers in headers)
                    continue;
                }
            }
            if (c == ';' && depth == 0) {
                String st = cur.toString().replaceAll("\\s+", " ").strip();
                if (st.startsWith("typedef ")) typedefStatements.add(st);
                else declarations.add(st);
                cur.setLength(0);
                continue;
            }
            cur.append(c);
        }
        for (String t : typedefStatements) typedef(t);
        for (String d : declarations) {
            Matcher m = FUNCTION.matcher(d);
            if (!m.matches()) continue;
            String ret = m.group(1).strip();
            if (ret.isEmpty() || ret.endsWith("(")) continue;
            String name = m.group(2);
            List<String> params = new ArrayList<>();
            for (String p : splitTopLevel(m.group(3))) {
                String ps = p.strip();
                if (ps.isEmpty() || ps.equals("void")) continue;
                params.add(ps);
            }
            functions.put(name, new Declared(ret, params));
        }
    }

    private void typedef(String st) {
        String body = st.substring("typedef ".length()).strip();
        Matcher fp = Pattern.compile("\\(\\s*\\*\\s*(\\w+)\\s*\\)").matcher(body);
        if (fp.find() && body.indexOf('{') < 0) {
            typedefs.put(fp.group(1), "void *");
            return;
        }
        String type;
        String declarators;
        int close = body.lastIndexOf('}');
        if (close >= 0) {
            String head = body.substring(0, body.indexOf('{')).strip();
            type = head.startsWith("enum") ? "int" : "struct";
            declarators = body.substring(close + 1);
        } else {
            Matcher last = Pattern.compile("^(.*?)(\\**)\\s*(\\w+)\\s*(\\[.*\\])?$").matcher(body);
            if (!last.matches()) return;
            String base = last.group(1).strip();
            if (base.startsWith("enum ")) base = "int";
            else if (base.startsWith("struct ") || base.startsWith("union ")) base = "struct";
            type = base + (last.group(2).isEmpty() && last.group(4) == null ? "" : " *");
            typedefs.put(last.group(3), type);
            return;
        }
        for (String d : declarators.split(",")) {
            String dd = d.strip();
            if (dd.isEmpty()) continue;
            boolean pointer = dd.contains("*") || dd.contains("[");
            String n = dd.replaceAll("[*\\s]|\\[.*\\]", "");
            typedefs.put(n, pointer ? "void *" : type);
        }
    }

    private static List<String> splitTopLevel(String s) {
        List<String> parts = new ArrayList<>();
        int depth = 0;
        StringBuilder cur = new StringBuilder();
        for (char c : s.toCharArray()) {
            if (c == '(' || c == '[') depth++;
            if (c == ')' || c == ']') depth--;
            if (c == ',' && depth == 0) {
                parts.add(cur.toString());
                cur.setLength(0);
            } else {
                cur.append(c);
            }
        }
        parts.add(cur.toString());
        return parts;
    }

    private static final Set<String> TYPE_WORDS = Set.of("void", "char", "short", "int", "long", "float", "double",
            "signed", "unsigned", "_Bool", "const", "struct", "enum", "union");

    /** A parameter's layout: its declared name, if any, is dropped first. */
    private MemoryLayout paramLayout(String p) {
        if (p.contains("(")) return ValueLayout.ADDRESS; // function pointer
        if (p.contains("[")) return ValueLayout.ADDRESS; // arrays decay to pointers
        List<String> tokens = new ArrayList<>();
        Matcher m = Pattern.compile("\\w+|\\*").matcher(p);
        while (m.find()) tokens.add(m.group());
        String lastWord = tokens.get(tokens.size() - 1);
        long typeWords = tokens.stream().filter(t -> !t.equals("*") && !t.equals("const")).count();
        if (!lastWord.equals("*") && !TYPE_WORDS.contains(lastWord) && typeWords > 1) {
            tokens.remove(tokens.size() - 1);
        }
        return layoutOf(String.join(" ", tokens));
    }

    /** The layout of a type (without a declarator name); null for void. */
    MemoryLayout layoutOf(String type) {
        String t = type.replaceAll("\\bconst\\b", " ").replaceAll("\\s+", " ").strip();
        if (t.contains("*") || t.contains("[")) return ValueLayout.ADDRESS;
        if (t.startsWith("enum ")) return ValueLayout.JAVA_INT;
        if (t.startsWith("struct ") || t.startsWith("union ") || t.equals("struct")) return STRUCT_BY_VALUE;
        String words = t.replaceAll("\\bsigned\\b", "").replaceAll("\\s+", " ").strip();
        switch (words) {
            case "void":
                return null;
            case "char", "unsigned char", "_Bool":
                return ValueLayout.JAVA_BYTE;
            case "short", "unsigned short", "short int", "unsigned short int":
                return ValueLayout.JAVA_SHORT;
            case "int", "unsigned", "unsigned int", "":
                return ValueLayout.JAVA_INT;
            case "long", "unsigned long", "long int", "long unsigned int", "unsigned long int", "long long",
                    "unsigned long long", "long long int", "long long unsigned int", "unsigned long long int":
                return ValueLayout.JAVA_LONG;
            case "float":
                return ValueLayout.JAVA_FLOAT;
            case "double":
                return ValueLayout.JAVA_DOUBLE;
            default:
                break;
        }
        String resolved = typedefs.get(t);
        if (resolved == null) throw new IllegalStateException("unknown C type '" + type + "'");
        return layoutOf(resolved);
    }

    /** Two layouts pass the same way: same carrier and size (names and target layouts aside). */
    static boolean samePassing(MemoryLayout a, MemoryLayout b) {
        if (a == null || b == null) return a == b;
        if (a instanceof ValueLayout va && b instanceof ValueLayout vb) {
            return va.carrier() == vb.carrier() && va.byteSize() == vb.byteSize();
        }
        return false;
    }

    static String describe(MemoryLayout l) {
        if (l == null) return "void";
        if (l instanceof ValueLayout v) return v.carrier().getSimpleName() + "(" + v.byteSize() + ")";
        return l.toString();
    }

    /**
     * Compiles and runs a C program that prints each of {@code expressions} as an integer, with
     * {@code include} and {@code flags}, and returns the values by expression.
     */
    static Map<String, Long> evaluate(String include, List<String> flags, List<String> expressions, Path workDir)
            throws IOException, InterruptedException {
        StringBuilder c = new StringBuilder("#include <stdio.h>\n#include <stddef.h>\n#include <" + include + ">\nint main(void) {\n");
        for (String e : expressions) c.append("  printf(\"%lld\\n\", (long long)(").append(e).append("));\n");
        c.append("  return 0;\n}\n");
        Path source = workDir.resolve("probe.c");
        Path exe = workDir.resolve("probe");
        Files.writeString(source, c);
        List<String> cmd = new ArrayList<>(List.of(compiler().orElseThrow(), "-x", "c"));
        cmd.addAll(flags);
        cmd.addAll(List.of(source.toString(), "-o", exe.toString()));
        run(cmd);
        String[] lines = run(List.of(exe.toString())).strip().split("\n");
        Map<String, Long> values = new HashMap<>();
        for (int i = 0; i < expressions.size(); i++) values.put(expressions.get(i), Long.parseLong(lines[i].strip()));
        return values;
    }

    private static String run(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException(String.join(" ", cmd) + " failed:\n" + out);
        }
        return out;
    }
}

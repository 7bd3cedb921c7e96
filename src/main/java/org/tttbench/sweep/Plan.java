package org.tttbench.sweep;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import org.tttbench.config.DType;
import org.tttbench.config.Preset;
import org.tttbench.config.TttType;
import org.yaml.snakeyaml.error.MarkedYAMLException;

/**
 * A sweep plan: the implementations it drives, and named passes, each the cartesian product
 * of its lists. Read from JSON, or YAML when the file ends in .yaml/.yml.
 *
 * @param implementations every implementation the passes name, by name ("tttbench" always)
 */
public record Plan(Map<String, Implementation> implementations, List<Pass> passes) {

    /** The name of this suite in plans and result file names. */
    public static final String BUILTIN = "tttbench";

    /** More configurations than this are a mistake in the plan (a list too many), not a sweep to start. */
    public static final long MAX_CONFIGURATIONS = 100_000;

    /** A plan is a page of lists; a file larger than this is not one, and is not read into memory. */
    public static final long MAX_PLAN_BYTES = 10L << 20;

    /** A plan that cannot be used; the message is one line that names the file or key. */
    public static final class PlanException extends Exception {
        public PlanException(String message) {
            super(message);
        }
    }

    /**
     * One pass; lists left out of the file take the single default value of SPEC §5.
     *
     * @param checkpointIntervals the pass's {@code checkpoint_intervals}; empty when it lists none,
     *                            so its backward runs are not given {@code --checkpoint-interval}
     * @param flags               extra arguments for every run of the pass (e.g. {@code --tf32})
     * @param env                 variables added to the environment of every run of the pass
     */
    public record Pass(
            String name,
            List<String> implementations,
            List<String> modelSizes,
            List<TttType> tttTypes,
            List<Integer> seqLens,
            List<Integer> miniBatches,
            List<Integer> batches,
            List<Boolean> backward,
            List<DType> dtypes,
            List<Integer> checkpointIntervals,
            List<Boolean> innerOnly,
            Integer warmup,
            Integer repeats,
            List<String> flags,
            Map<String, String> env) {

        /** How many configurations the pass expands to, before duplicates and skips; saturates. */
        long size() {
            long perDirection = 0;
            if (backward.contains(false)) perDirection += 1; // a forward run has no checkpoint interval
            if (backward.contains(true)) perDirection += Math.max(1, checkpointIntervals.size());
            long n = perDirection;
            for (List<?> l : List.of(implementations, modelSizes, tttTypes, seqLens, miniBatches, batches, dtypes,
                    innerOnly)) {
                n = saturatedProduct(n, l.size());
            }
            return n;
        }
    }

    /** A configuration the plan asks for, and the pass it came from (its run counts, flags, env). */
    public record Planned(Config config, Pass pass) {}

    /** A configuration the plan asks for that cannot run, and why. */
    public record Skip(Config config, String pass, String reason) {}

    /** The plan unrolled: configurations in plan order (first occurrence wins), and the skipped ones. */
    public record Expansion(List<Planned> runs, List<Skip> skipped) {}

    private static final Set<String> PLAN_KEYS = Set.of("implementations", "passes");
    private static final Set<String> PASS_KEYS = Set.of("name", "implementations", "model_sizes", "ttt_types",
            "seq_lens", "mini_batches", "batches", "directions", "dtypes", "checkpoint_intervals", "inner_only",
            "warmup", "repeats", "flags", "env");
    private static final Set<String> IMPLEMENTATION_KEYS = Set.of("command", "builtin", "env", "supports");
    private static final Set<String> SUPPORTS_KEYS = Set.of("directions", "inner_only", "dtypes", "model_sizes",
            "checkpointing");
    /** The flags the sweep sets from the configuration itself; a pass giving them again would contradict it. */
    private static final Set<String> SWEEP_FLAGS = Set.of("--model-size", "--ttt-type", "--backward", "--batch",
            "--seq-len", "--mini-batch", "--dtype", "--warmup", "--repeats", "--json", "--inner-only",
            "--checkpoint-interval", "--comment");
    private static final Pattern ENV_NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");

    public static Plan load(Path file) throws PlanException {
        String name = file.getFileName().toString().toLowerCase();
        ObjectMapper mapper = name.endsWith(".yaml") || name.endsWith(".yml") ? StrictJson.YAML : StrictJson.JSON;
        JsonNode root;
        try {
            if (!Files.isRegularFile(file)) throw new PlanException("plan " + file + " is not a file");
            long size = Files.size(file);
            if (size > MAX_PLAN_BYTES) {
                throw new PlanException("plan " + file + " is " + size + " bytes, more than a plan may be ("
                        + MAX_PLAN_BYTES + ")");
            }
            root = mapper.readTree(Files.readAllBytes(file));
        } catch (JacksonException e) {
            throw new PlanException("plan " + file + " is not valid" + explain(e));
        } catch (IOException e) {
            throw new PlanException("cannot read plan " + file + ": " + e.getMessage());
        }
        try {
            return parse(root);
        } catch (PlanException e) {
            throw new PlanException("plan " + file + ": " + e.getMessage());
        }
    }

    /**
     * ", line 3, column 7: what is wrong", in one line. The YAML parser explains over several
     * lines with a drawing of the spot, and names the spot of the problem apart from the spot of
     * its context: the problem's is the one to report.
     */
    private static String explain(JacksonException e) {
        if (e.getCause() instanceof MarkedYAMLException y && y.getProblemMark() != null && y.getProblem() != null) {
            return ", line " + (y.getProblemMark().getLine() + 1) + ", column " + (y.getProblemMark().getColumn() + 1)
                    + ": " + y.getProblem().strip();
        }
        JsonLocation l = e.getLocation();
        String where = l == null || l.getLineNr() < 1 ? ""
                : ", line " + l.getLineNr() + (l.getColumnNr() > 0 ? ", column " + l.getColumnNr() : "");
        String message = e.getOriginalMessage() == null ? "" : e.getOriginalMessage().strip();
        return where + ": " + message.lines().findFirst().orElse("unreadable").strip();
    }

    static Plan parse(JsonNode root) throws PlanException {
        if (root == null || !root.isObject()) throw new PlanException("a plan must be an object with \"passes\"");
        checkKeys(root, PLAN_KEYS, "plan");
        Map<String, Implementation> impls = new LinkedHashMap<>();
        impls.put(BUILTIN, Implementation.builtin(BUILTIN));
        JsonNode implNode = root.path("implementations");
        if (!implNode.isMissingNode()) {
            if (!implNode.isObject()) throw new PlanException("\"implementations\" must map names to commands");
            for (Iterator<Map.Entry<String, JsonNode>> it = implNode.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                impls.put(e.getKey(), parseImplementation(e.getKey(), e.getValue()));
            }
        }
        JsonNode passesNode = root.path("passes");
        if (!passesNode.isArray() || passesNode.isEmpty()) throw new PlanException("\"passes\" must be a non-empty list");
        List<Pass> passes = new ArrayList<>();
        Set<String> names = new LinkedHashSet<>();
        long configurations = 0;
        for (JsonNode p : passesNode) {
            Pass pass = parsePass(p, passes.size(), impls);
            if (!names.add(pass.name())) throw new PlanException("two passes are named \"" + pass.name() + "\"");
            passes.add(pass);
            configurations = Math.addExact(configurations, pass.size()); // sizes saturate far below overflow
        }
        if (configurations > MAX_CONFIGURATIONS) {
            throw new PlanException("the passes expand to " + (configurations == Long.MAX_VALUE ? "more than 2^63"
                    : Long.toString(configurations)) + " configurations, more than " + MAX_CONFIGURATIONS
                    + "; shorten a list or split the plan");
        }
        return new Plan(Map.copyOf(impls), List.copyOf(passes));
    }

    private static Implementation parseImplementation(String name, JsonNode n) throws PlanException {
        checkImplementationName(name);
        String where = "implementation \"" + name + "\"";
        if (n.isTextual()) {
            if (n.asText().isBlank()) throw new PlanException(where + " needs a command string");
            return new Implementation(name, n.asText(), Map.of(), Implementation.Supports.ALL);
        }
        if (!n.isObject()) {
            throw new PlanException(where + " must be a command string or an object with \"command\"");
        }
        checkKeys(n, IMPLEMENTATION_KEYS, where);
        JsonNode command = n.path("command");
        JsonNode builtin = n.path("builtin");
        if (!builtin.isMissingNode() && !builtin.isBoolean()) {
            throw new PlanException(where + ": \"builtin\" must be true or false, got " + builtin);
        }
        boolean isBuiltin = builtin.asBoolean(false);
        if (isBuiltin == !command.isMissingNode()) {
            // Neither, or both: a forgotten command must not silently run this suite under another name.
            throw new PlanException(where + " needs either \"command\" (a shell command) or \"builtin\": true (this suite)");
        }
        if (!isBuiltin && (!command.isTextual() || command.asText().isBlank())) {
            throw new PlanException(where + ": \"command\" must be a non-empty string, got " + command);
        }
        Map<String, String> env = env(n, where);
        Implementation.Supports supports = parseSupports(n.path("supports"), where);
        return new Implementation(name, isBuiltin ? null : command.asText(), env, supports);
    }

    private static Implementation.Supports parseSupports(JsonNode n, String implementation) throws PlanException {
        Implementation.Supports all = Implementation.Supports.ALL;
        if (n.isMissingNode()) return all;
        String where = implementation + ": \"supports\"";
        if (!n.isObject()) throw new PlanException(where + " must be an object");
        checkKeys(n, SUPPORTS_KEYS, where);
        return new Implementation.Supports(
                n.has("directions") ? directions(n, where) : all.backward(),
                optionalBoolean(n, "inner_only", where, all.innerOnly()),
                n.has("dtypes") ? dtypes(n, where) : all.dtypes(),
                n.has("model_sizes") ? presets(n, where) : all.modelSizes(),
                optionalBoolean(n, "checkpointing", where, all.checkpointing()));
    }

    private static Pass parsePass(JsonNode p, int index, Map<String, Implementation> impls) throws PlanException {
        if (!p.isObject()) throw new PlanException("pass " + (index + 1) + " must be an object");
        JsonNode nameNode = p.path("name");
        if (!nameNode.isMissingNode() && (!nameNode.isTextual() || nameNode.asText().isBlank())) {
            throw new PlanException("pass " + (index + 1) + ": \"name\" must be a non-empty string, got " + nameNode);
        }
        String name = nameNode.isTextual() ? nameNode.asText() : "pass" + (index + 1);
        String where = "pass \"" + name + "\"";
        checkKeys(p, PASS_KEYS, where);
        List<String> implementations = list(p, "implementations", where, List.of(BUILTIN), JsonNode::isTextual,
                JsonNode::asText);
        for (String impl : implementations) {
            if (!impls.containsKey(impl)) {
                throw new PlanException(where + " names implementation \"" + impl
                        + "\", which is neither \"" + BUILTIN + "\" nor in \"implementations\"");
            }
        }
        if (p.path("model_sizes").isMissingNode()) throw new PlanException(where + " needs \"model_sizes\"");
        List<String> sizes = list(p, "model_sizes", where, null, JsonNode::isTextual, JsonNode::asText);
        for (String s : sizes) preset(s, where);
        List<TttType> types = new ArrayList<>();
        for (String t : list(p, "ttt_types", where, List.of("linear"), JsonNode::isTextual, JsonNode::asText)) {
            try {
                types.add(TttType.parse(t));
            } catch (IllegalArgumentException e) {
                throw new PlanException(where + ": " + e.getMessage());
            }
        }
        List<DType> dtypes = p.has("dtypes") ? dtypes(p, where) : List.of(DType.FLOAT32);
        List<Boolean> backward = p.has("directions") ? directions(p, where) : List.of(false);
        List<Integer> seqLens = positiveInts(p, "seq_lens", where, List.of(2048));
        List<Integer> miniBatches = positiveInts(p, "mini_batches", where, List.of(16));
        List<Integer> batches = positiveInts(p, "batches", where, List.of(1));
        List<Integer> ckpts = positiveInts(p, "checkpoint_intervals", where, List.of());
        List<Boolean> inner = list(p, "inner_only", where, List.of(false), JsonNode::isBoolean, JsonNode::asBoolean);
        Integer warmup = optionalInt(p, "warmup", where, 0);
        Integer repeats = optionalInt(p, "repeats", where, 1);
        List<String> flags = p.has("flags") ? flags(p, where) : List.of();
        Map<String, String> env = env(p, where);
        return new Pass(name, implementations, sizes, List.copyOf(types), seqLens, miniBatches, batches, backward,
                dtypes, ckpts, inner, warmup, repeats, flags, env);
    }

    /**
     * Every configuration of every pass, in plan order, each once. A forward run has no
     * checkpoint interval, so forward configurations ignore the pass's intervals instead of
     * repeating the same run under several names.
     *
     * @throws PlanException when two passes ask for one configuration with other flags or
     *                       environment: one result file cannot hold both measurements
     */
    public Expansion expand() throws PlanException {
        Map<String, Planned> runs = new LinkedHashMap<>();
        Map<String, Skip> skipped = new LinkedHashMap<>();
        Map<String, Pass> firstPass = new LinkedHashMap<>();
        for (Pass p : passes) {
            for (String size : p.modelSizes())
                for (TttType type : p.tttTypes())
                    for (boolean bwd : p.backward())
                        for (boolean inner : p.innerOnly())
                            for (DType dtype : p.dtypes())
                                for (int batch : p.batches())
                                    for (int len : p.seqLens())
                                        for (int mb : p.miniBatches())
                                            for (Integer ckpt : checkpointChoices(p, bwd))
                                                for (String impl : p.implementations()) {
                                                    Config c = new Config(impl, size, type, bwd, batch, len, mb,
                                                            dtype, ckpt == null ? 1 : ckpt, ckpt != null, inner);
                                                    String key = c.stem();
                                                    Pass first = firstPass.putIfAbsent(key, p);
                                                    if (first != null) {
                                                        checkSameRun(first, p, key);
                                                        continue;
                                                    }
                                                    String reason = invalidReason(c);
                                                    if (reason == null) {
                                                        reason = implementations.get(impl).supports()
                                                                .unsupportedReason(impl, c);
                                                    }
                                                    if (reason == null) runs.put(key, new Planned(c, p));
                                                    else skipped.put(key, new Skip(c, p.name(), reason));
                                                }
        }
        return new Expansion(List.copyOf(runs.values()), List.copyOf(skipped.values()));
    }

    /** The intervals a run of the pass is given: null (no flag) unless it is backward and the pass lists some. */
    private static List<Integer> checkpointChoices(Pass p, boolean backward) {
        if (!backward || p.checkpointIntervals().isEmpty()) return java.util.Collections.singletonList(null);
        return p.checkpointIntervals();
    }

    private static void checkSameRun(Pass first, Pass again, String stem) throws PlanException {
        if (first == again) return;
        if (!first.flags().equals(again.flags()) || !first.env().equals(again.env())) {
            throw new PlanException("passes \"" + first.name() + "\" and \"" + again.name() + "\" both ask for " + stem
                    + " with other flags or env; give one of them an implementation of its own name");
        }
    }

    /** Why no implementation can run this combination, or null when it can. */
    static String invalidReason(Config c) {
        if (c.seqLen() % c.miniBatch() != 0) {
            return "seq-len " + c.seqLen() + " is not divisible by mini-batch " + c.miniBatch();
        }
        int miniBatches = c.seqLen() / c.miniBatch();
        if (c.checkpointInterval() > miniBatches) {
            return "checkpoint interval " + c.checkpointInterval() + " exceeds the " + miniBatches + " mini-batches";
        }
        return null;
    }

    private static long saturatedProduct(long a, long b) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            return Long.MAX_VALUE;
        }
    }

    private static void checkImplementationName(String name) throws PlanException {
        if (!Config.IMPLEMENTATION_NAME.matcher(name).matches()) {
            throw new PlanException("implementation name \"" + name
                    + "\" may hold only letters, digits, '.', '+' and '-' (it becomes part of file names)");
        }
    }

    private static void checkKeys(JsonNode node, Set<String> allowed, String where) throws PlanException {
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!allowed.contains(key)) {
                throw new PlanException(where + " has unknown key \"" + key + "\" (allowed: "
                        + String.join(", ", allowed.stream().sorted().toList()) + ")");
            }
        }
    }

    private static List<Boolean> directions(JsonNode n, String where) throws PlanException {
        List<Boolean> backward = new ArrayList<>();
        for (String d : list(n, "directions", where, null, JsonNode::isTextual, JsonNode::asText)) {
            switch (d) {
                case "fwd" -> backward.add(false);
                case "bwd" -> backward.add(true);
                default -> throw new PlanException(where + ": unknown direction '" + d + "' (allowed: fwd, bwd)");
            }
        }
        return List.copyOf(backward);
    }

    private static List<DType> dtypes(JsonNode n, String where) throws PlanException {
        List<DType> dtypes = new ArrayList<>();
        for (String d : list(n, "dtypes", where, null, JsonNode::isTextual, JsonNode::asText)) {
            try {
                dtypes.add(DType.parse(d));
            } catch (IllegalArgumentException e) {
                throw new PlanException(where + ": " + e.getMessage());
            }
        }
        return List.copyOf(dtypes);
    }

    private static List<Preset> presets(JsonNode n, String where) throws PlanException {
        List<Preset> presets = new ArrayList<>();
        for (String s : list(n, "model_sizes", where, null, JsonNode::isTextual, JsonNode::asText)) {
            presets.add(preset(s, where));
        }
        return List.copyOf(presets);
    }

    private static Preset preset(String size, String where) throws PlanException {
        try {
            return Preset.byName(size);
        } catch (IllegalArgumentException e) {
            throw new PlanException(where + ": " + e.getMessage());
        }
    }

    private static List<String> flags(JsonNode p, String where) throws PlanException {
        if (!p.path("flags").isArray()) throw new PlanException(where + ": \"flags\" must be a list of strings");
        List<String> flags = new ArrayList<>();
        for (JsonNode e : p.path("flags")) {
            if (!e.isTextual() || e.asText().isEmpty() || e.asText().contains("\n") || e.asText().contains("\0")) {
                throw new PlanException(where + ": \"flags\" must hold non-empty one-line strings, got " + e);
            }
            flags.add(e.asText());
        }
        for (String f : flags) {
            String flag = f.contains("=") ? f.substring(0, f.indexOf('=')) : f;
            if (SWEEP_FLAGS.contains(flag)) {
                throw new PlanException(where + ": \"flags\" holds " + flag
                        + ", which the sweep sets from the configuration itself");
            }
        }
        return List.copyOf(flags);
    }

    private static Map<String, String> env(JsonNode owner, String where) throws PlanException {
        JsonNode n = owner.path("env");
        if (n.isMissingNode()) return Map.of();
        if (!n.isObject()) throw new PlanException(where + ": \"env\" must map variable names to values");
        Map<String, String> env = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = n.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!ENV_NAME.matcher(e.getKey()).matches()) {
                throw new PlanException(where + ": \"env\" has the name \"" + e.getKey()
                        + "\", which is not a variable name (letters, digits, '_')");
            }
            JsonNode v = e.getValue();
            if (!v.isValueNode() || v.isNull() || v.asText().contains("\0")) {
                throw new PlanException(where + ": \"env\" value of " + e.getKey() + " must be a string, got " + v);
            }
            env.put(e.getKey(), v.asText());
        }
        return Map.copyOf(env);
    }

    private static <T> List<T> list(JsonNode p, String key, String where, List<T> fallback,
                                    Predicate<JsonNode> accepts, Function<JsonNode, T> read) throws PlanException {
        JsonNode n = p.path(key);
        if (n.isMissingNode()) return Objects.requireNonNull(fallback, key);
        if (!n.isArray() || n.isEmpty()) throw new PlanException(where + ": \"" + key + "\" must be a non-empty list");
        List<T> out = new ArrayList<>();
        for (JsonNode e : n) {
            if (!accepts.test(e)) throw new PlanException(where + ": \"" + key + "\" has a bad entry " + e);
            T value = read.apply(e);
            if (!out.contains(value)) out.add(value);
        }
        return List.copyOf(out);
    }

    private static List<Integer> positiveInts(JsonNode p, String key, String where, List<Integer> fallback)
            throws PlanException {
        List<Integer> values = list(p, key, where, fallback, n -> n.canConvertToInt() && n.isIntegralNumber(),
                JsonNode::asInt);
        for (int v : values) {
            if (v <= 0) throw new PlanException(where + ": \"" + key + "\" must hold positive integers, got " + v);
        }
        return values;
    }

    private static Integer optionalInt(JsonNode p, String key, String where, int min) throws PlanException {
        JsonNode n = p.path(key);
        if (n.isMissingNode()) return null;
        if (!n.isIntegralNumber() || !n.canConvertToInt() || n.asInt() < min) {
            throw new PlanException(where + ": \"" + key + "\" must be an integer >= " + min + ", got " + n);
        }
        return n.asInt();
    }

    private static boolean optionalBoolean(JsonNode p, String key, String where, boolean fallback)
            throws PlanException {
        JsonNode n = p.path(key);
        if (n.isMissingNode()) return fallback;
        if (!n.isBoolean()) throw new PlanException(where + ": \"" + key + "\" must be true or false, got " + n);
        return n.asBoolean();
    }
}

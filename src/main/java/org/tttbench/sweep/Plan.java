package org.tttbench.sweep;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import org.tttbench.config.DType;
import org.tttbench.config.Preset;
import org.tttbench.config.TttType;

/**
 * A sweep plan: external implementations as command templates, and named passes, each the
 * cartesian product of its lists. Read from JSON, or YAML when the file ends in .yaml/.yml.
 *
 * @param implementations name → shell command template that accepts the standard flags
 */
public record Plan(Map<String, String> implementations, List<Pass> passes) {

    /** The name of this suite in plans and result file names. */
    public static final String BUILTIN = "tttbench";

    /** A plan that cannot be used; the message is one line that names the key. */
    public static final class PlanException extends Exception {
        public PlanException(String message) {
            super(message);
        }
    }

    /** One pass; lists left out of the file take the single default value of SPEC §5. */
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
            Integer repeats) {}

    /** A configuration the plan asks for, with the pass it came from and its run counts. */
    public record Planned(Config config, String pass, Integer warmup, Integer repeats) {}

    /** A configuration the plan asks for that cannot run, and why. */
    public record Skip(Config config, String pass, String reason) {}

    /** The plan unrolled: configurations in plan order (first occurrence wins), and the skipped ones. */
    public record Expansion(List<Planned> runs, List<Skip> skipped) {}

    private static final Set<String> PLAN_KEYS = Set.of("implementations", "passes");
    private static final Set<String> PASS_KEYS = Set.of("name", "implementations", "model_sizes", "ttt_types",
            "seq_lens", "mini_batches", "batches", "directions", "dtypes", "checkpoint_intervals", "inner_only",
            "warmup", "repeats");

    public static Plan load(Path file) throws PlanException {
        String name = file.getFileName().toString().toLowerCase();
        ObjectMapper mapper = name.endsWith(".yaml") || name.endsWith(".yml")
                ? new ObjectMapper(new YAMLFactory()) : new ObjectMapper();
        JsonNode root;
        try {
            root = mapper.readTree(Files.readString(file));
        } catch (JacksonException e) {
            throw new PlanException("plan " + file + " is not valid: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new PlanException("cannot read plan " + file + ": " + e.getMessage());
        }
        return parse(root);
    }

    static Plan parse(JsonNode root) throws PlanException {
        if (root == null || !root.isObject()) throw new PlanException("a plan must be an object with \"passes\"");
        checkKeys(root, PLAN_KEYS, "plan");
        Map<String, String> impls = new LinkedHashMap<>();
        JsonNode implNode = root.path("implementations");
        if (!implNode.isMissingNode()) {
            if (!implNode.isObject()) throw new PlanException("\"implementations\" must map names to commands");
            for (Iterator<Map.Entry<String, JsonNode>> it = implNode.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                checkImplementationName(e.getKey());
                if (!e.getValue().isTextual() || e.getValue().asText().isBlank()) {
                    throw new PlanException("implementation \"" + e.getKey() + "\" needs a command string");
                }
                impls.put(e.getKey(), e.getValue().asText());
            }
        }
        JsonNode passesNode = root.path("passes");
        if (!passesNode.isArray() || passesNode.isEmpty()) throw new PlanException("\"passes\" must be a non-empty list");
        List<Pass> passes = new ArrayList<>();
        Set<String> names = new LinkedHashSet<>();
        for (JsonNode p : passesNode) {
            Pass pass = parsePass(p, passes.size(), impls);
            if (!names.add(pass.name())) throw new PlanException("two passes are named \"" + pass.name() + "\"");
            passes.add(pass);
        }
        return new Plan(Map.copyOf(impls), List.copyOf(passes));
    }

    private static Pass parsePass(JsonNode p, int index, Map<String, String> impls) throws PlanException {
        if (!p.isObject()) throw new PlanException("pass " + (index + 1) + " must be an object");
        String name = p.path("name").isTextual() ? p.path("name").asText() : "pass" + (index + 1);
        String where = "pass \"" + name + "\"";
        checkKeys(p, PASS_KEYS, where);
        List<String> implementations = list(p, "implementations", where, List.of(BUILTIN), JsonNode::isTextual,
                JsonNode::asText);
        for (String impl : implementations) {
            if (!impl.equals(BUILTIN) && !impls.containsKey(impl)) {
                throw new PlanException(where + " names implementation \"" + impl
                        + "\", which is neither \"" + BUILTIN + "\" nor in \"implementations\"");
            }
        }
        if (p.path("model_sizes").isMissingNode()) throw new PlanException(where + " needs \"model_sizes\"");
        List<String> sizes = list(p, "model_sizes", where, null, JsonNode::isTextual, JsonNode::asText);
        for (String s : sizes) {
            try {
                Preset.byName(s);
            } catch (IllegalArgumentException e) {
                throw new PlanException(where + ": " + e.getMessage());
            }
        }
        List<TttType> types = new ArrayList<>();
        for (String t : list(p, "ttt_types", where, List.of("linear"), JsonNode::isTextual, JsonNode::asText)) {
            try {
                types.add(TttType.parse(t));
            } catch (IllegalArgumentException e) {
                throw new PlanException(where + ": " + e.getMessage());
            }
        }
        List<DType> dtypes = new ArrayList<>();
        for (String d : list(p, "dtypes", where, List.of("float32"), JsonNode::isTextual, JsonNode::asText)) {
            try {
                dtypes.add(DType.parse(d));
            } catch (IllegalArgumentException e) {
                throw new PlanException(where + ": " + e.getMessage());
            }
        }
        List<Boolean> backward = new ArrayList<>();
        for (String d : list(p, "directions", where, List.of("fwd"), JsonNode::isTextual, JsonNode::asText)) {
            switch (d) {
                case "fwd" -> backward.add(false);
                case "bwd" -> backward.add(true);
                default -> throw new PlanException(where + ": unknown direction '" + d + "' (allowed: fwd, bwd)");
            }
        }
        List<Integer> seqLens = positiveInts(p, "seq_lens", where, 2048);
        List<Integer> miniBatches = positiveInts(p, "mini_batches", where, 16);
        List<Integer> batches = positiveInts(p, "batches", where, 1);
        List<Integer> ckpts = positiveInts(p, "checkpoint_intervals", where, 1);
        List<Boolean> inner = list(p, "inner_only", where, List.of(false), JsonNode::isBoolean, JsonNode::asBoolean);
        Integer warmup = optionalInt(p, "warmup", where, 0);
        Integer repeats = optionalInt(p, "repeats", where, 1);
        return new Pass(name, implementations, sizes, List.copyOf(types), seqLens, miniBatches, batches,
                List.copyOf(backward), List.copyOf(dtypes), ckpts, inner, warmup, repeats);
    }

    /**
     * Every configuration of every pass, in plan order, each once. A forward run has no
     * checkpoint interval, so forward configurations ignore the pass's intervals instead of
     * repeating the same run under several names.
     */
    public Expansion expand() {
        Map<String, Planned> runs = new LinkedHashMap<>();
        Map<String, Skip> skipped = new LinkedHashMap<>();
        for (Pass p : passes) {
            for (String size : p.modelSizes())
                for (TttType type : p.tttTypes())
                    for (boolean bwd : p.backward())
                        for (boolean inner : p.innerOnly())
                            for (DType dtype : p.dtypes())
                                for (int batch : p.batches())
                                    for (int len : p.seqLens())
                                        for (int mb : p.miniBatches())
                                            for (int ckpt : bwd ? p.checkpointIntervals() : List.of(1))
                                                for (String impl : p.implementations()) {
                                                    Config c = new Config(impl, size, type, bwd, batch, len, mb,
                                                            dtype, ckpt, inner);
                                                    String key = c.stem();
                                                    if (runs.containsKey(key) || skipped.containsKey(key)) continue;
                                                    String reason = invalidReason(c);
                                                    if (reason == null) {
                                                        runs.put(key, new Planned(c, p.name(), p.warmup(), p.repeats()));
                                                    } else {
                                                        skipped.put(key, new Skip(c, p.name(), reason));
                                                    }
                                                }
        }
        return new Expansion(List.copyOf(runs.values()), List.copyOf(skipped.values()));
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

    private static <T> List<T> list(JsonNode p, String key, String where, List<T> fallback,
                                    java.util.function.Predicate<JsonNode> accepts, Function<JsonNode, T> read)
            throws PlanException {
        JsonNode n = p.path(key);
        if (n.isMissingNode()) return fallback;
        if (!n.isArray() || n.isEmpty()) throw new PlanException(where + ": \"" + key + "\" must be a non-empty list");
        List<T> out = new ArrayList<>();
        for (JsonNode e : n) {
            if (!accepts.test(e)) throw new PlanException(where + ": \"" + key + "\" has a bad entry " + e);
            T value = read.apply(e);
            if (!out.contains(value)) out.add(value);
        }
        return List.copyOf(out);
    }

    private static List<Integer> positiveInts(JsonNode p, String key, String where, int fallback) throws PlanException {
        List<Integer> values = list(p, key, where, List.of(fallback), n -> n.canConvertToInt() && n.isIntegralNumber(),
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
}

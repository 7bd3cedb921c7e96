package org.tttbench.io;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;
import org.tttbench.model.ParameterSpec;

/**
 * The safetensors format (SPEC §7): 8 bytes little-endian header length n, n bytes of JSON
 * ({name: {dtype, shape, data_offsets}, "__metadata__": {…}}), then raw little-endian data.
 * Values are read into float64 whatever their stored type, so golden files keep their precision.
 */
public final class Safetensors {

    private static final ObjectMapper JSON = new ObjectMapper();

    private Safetensors() {
    }

    /** One tensor as read: its stored type name (F64, F32, BF16, F16, I64, I32), shape and values. */
    public record Entry(String dtype, int[] shape, double[] values) {
        public long size() {
            long n = 1;
            for (int d : shape) n *= d;
            return n;
        }

        public float[] toFloats() {
            float[] f = new float[values.length];
            for (int i = 0; i < f.length; i++) f[i] = (float) values[i];
            return f;
        }

        public int[] toInts() {
            int[] r = new int[values.length];
            for (int i = 0; i < r.length; i++) r[i] = Math.toIntExact((long) values[i]);
            return r;
        }
    }

    /** A whole file: tensors in header order, and the string metadata. */
    public record Contents(Map<String, Entry> tensors, Map<String, String> metadata) {
        public Entry require(String name) {
            Entry e = tensors.get(name);
            if (e == null) throw new IllegalArgumentException("tensor '" + name + "' is missing");
            return e;
        }
    }

    /** The official reader's limit, and ours: a header is names and shapes, never this large. */
    public static final long MAX_HEADER_BYTES = 100L << 20;

    /** Java's largest array: a tensor with more values cannot be held as one. */
    private static final long MAX_VALUES = Integer.MAX_VALUE - 8;

    /** The stored types this reader decodes, with their widths in bytes. */
    private static final Map<String, Integer> WIDTHS = Map.of("F64", 8, "I64", 8, "F32", 4, "I32", 4, "F16", 2,
            "BF16", 2);

    /** Two values for one key, or anything after the header's object, mean the file is not what it claims. */
    private static final ObjectMapper STRICT_JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    /** Where one tensor's bytes lie: {@code [begin, end)} of the data that follows the header. */
    private record Placement(String name, String dtype, int[] shape, long count, long begin, long end) {}

    /** What the header says, checked against the file: the metadata, where each tensor lies, where the data begins. */
    private record Header(Map<String, String> metadata, List<Placement> placements, long dataStart) {
        int[] shape(String name) {
            for (Placement p : placements) {
                if (p.name().equals(name)) return p.shape();
            }
            return null;
        }
    }

    /**
     * Reads a whole file, after checking everything its header says against the file: header
     * length, JSON, dtypes, shapes and offsets (inside the data, in order, not overlapping, as
     * many bytes as the shape needs), and that the values fit this JVM's heap. Every check runs
     * before any data is read.
     *
     * @throws IOException one line naming the file and what is wrong with it
     */
    public static Contents read(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            return contents(ch, header(file, ch));
        }
    }

    /**
     * {@link #read}, and where the metadata describes a case (SPEC §7: ttt, V, D, N, H, I, K,
     * and B, L) every tensor the case must hold, with the shapes the model gives: what
     * {@code validate} needs of a file before it runs anything.
     */
    public static Contents readCase(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            Header h = header(file, ch);
            try {
                CaseLayout.check(h.metadata(), h::shape);
            } catch (IllegalArgumentException e) {
                throw invalid(file, e.getMessage());
            }
            return contents(ch, h);
        }
    }

    /**
     * Checks, from the header alone, that {@code file} holds every parameter of {@code model}
     * by the reference's names (plain, or {@code param.}-prefixed as a case names them) with
     * its shape: what {@code --weights} needs before a benchmark starts.
     */
    public static void checkWeights(Path file, ModelConfig model) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            Header h = header(file, ch);
            for (ParameterSpec p : ParameterSpec.model(model)) {
                int[] shape = h.shape(p.name());
                String name = p.name();
                if (shape == null) {
                    name = CaseLayout.PARAM_PREFIX + p.name();
                    shape = h.shape(name);
                }
                if (shape == null) {
                    throw invalid(file, "tensor '" + p.name() + "' is missing (the model needs it, shape "
                            + java.util.Arrays.toString(p.shape()) + ")");
                }
                if (!java.util.Arrays.equals(shape, p.shape())) {
                    throw invalid(file, "tensor '" + name + "' has shape " + java.util.Arrays.toString(shape)
                            + ", but the model needs " + java.util.Arrays.toString(p.shape()));
                }
            }
        }
    }

    private static Header header(Path file, FileChannel ch) throws IOException {
        long size = ch.size();
        if (size < 8) throw invalid(file, "shorter than its 8-byte header length (" + size + " bytes)");
        long n = readFully(ch, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        if (n < 2 || n > MAX_HEADER_BYTES) {
            throw invalid(file, "header length " + Long.toUnsignedString(n) + " is not between 2 and "
                    + MAX_HEADER_BYTES + " bytes");
        }
        if (n > size - 8) {
            throw invalid(file, "header length " + n + " runs past the end of the file (" + size + " bytes)");
        }
        JsonNode header;
        try {
            header = STRICT_JSON.readTree(readFully(ch, 8, (int) n).array());
        } catch (JacksonException e) {
            throw invalid(file, "header is not JSON: " + firstLine(e.getOriginalMessage()));
        }
        if (header == null || !header.isObject()) throw invalid(file, "header is not a JSON object");
        Map<String, String> metadata = metadata(file, header.path("__metadata__"));
        List<Placement> placements = placements(file, header, size - 8 - n);
        long values = placements.stream().mapToLong(Placement::count).sum();
        if (values > Runtime.getRuntime().maxMemory() / Double.BYTES) {
            throw invalid(file, "holds " + values + " values, " + (values * Double.BYTES >> 20)
                    + " MiB as float64, more than this JVM's heap (" + (Runtime.getRuntime().maxMemory() >> 20)
                    + " MiB; raise -Xmx)");
        }
        return new Header(metadata, placements, 8 + n);
    }

    private static Contents contents(FileChannel ch, Header h) throws IOException {
        Map<String, Entry> tensors = new LinkedHashMap<>();
        for (Placement p : h.placements()) tensors.put(p.name(), decode(ch, h.dataStart(), p));
        return new Contents(tensors, h.metadata());
    }

    private static IOException invalid(Path file, String what) {
        return new IOException(file + ": not a valid safetensors file: " + what);
    }

    private static Map<String, String> metadata(Path file, JsonNode n) throws IOException {
        Map<String, String> metadata = new LinkedHashMap<>();
        if (n.isMissingNode()) return metadata;
        if (!n.isObject()) throw invalid(file, "__metadata__ is not an object");
        for (Iterator<Map.Entry<String, JsonNode>> it = n.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> m = it.next();
            if (!m.getValue().isTextual()) {
                throw invalid(file, "__metadata__ value of '" + m.getKey() + "' is " + m.getValue() + ", not a string");
            }
            metadata.put(m.getKey(), m.getValue().asText());
        }
        return metadata;
    }

    /** Every tensor's placement, checked: known dtype, sane shape, offsets inside the data, no overlap. */
    private static List<Placement> placements(Path file, JsonNode header, long dataBytes) throws IOException {
        List<Placement> out = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            if (f.getKey().equals("__metadata__")) continue;
            String what = "tensor '" + f.getKey() + "'";
            JsonNode info = f.getValue();
            if (!info.isObject()) throw invalid(file, what + " is not an object");
            JsonNode dtypeNode = info.path("dtype");
            Integer width = dtypeNode.isTextual() ? WIDTHS.get(dtypeNode.asText()) : null;
            if (width == null) {
                throw invalid(file, what + " has dtype " + dtypeNode + " (known: "
                        + String.join(", ", new java.util.TreeSet<>(WIDTHS.keySet())) + ")");
            }
            JsonNode shapeNode = info.path("shape");
            if (!shapeNode.isArray()) throw invalid(file, what + " has no shape list");
            int[] shape = new int[shapeNode.size()];
            long count = 1;
            for (int i = 0; i < shape.length; i++) {
                JsonNode d = shapeNode.get(i);
                if (!d.isIntegralNumber() || !d.canConvertToInt() || d.asInt() < 0) {
                    throw invalid(file, what + " has shape " + shapeNode + ": dimensions must be integers >= 0");
                }
                shape[i] = d.asInt();
                count = multiply(file, what, shapeNode, count, shape[i]);
            }
            long bytes = multiply(file, what, shapeNode, count, width);
            JsonNode offsets = info.path("data_offsets");
            if (!offsets.isArray() || offsets.size() != 2 || !offsets.get(0).canConvertToLong()
                    || !offsets.get(1).canConvertToLong() || !offsets.get(0).isIntegralNumber()
                    || !offsets.get(1).isIntegralNumber()) {
                throw invalid(file, what + " has data_offsets " + offsets + ", not [begin, end]");
            }
            long begin = offsets.get(0).asLong();
            long end = offsets.get(1).asLong();
            if (begin < 0 || end < 0) throw invalid(file, what + " has negative data_offsets " + offsets);
            if (begin > end) throw invalid(file, what + " has data_offsets " + offsets + " that end before they begin");
            if (end > dataBytes) {
                throw invalid(file, what + " has data_offsets " + offsets + " past the end of the data (" + dataBytes
                        + " bytes)");
            }
            if (end - begin != bytes) {
                throw invalid(file, what + " has data_offsets " + offsets + " for " + (end - begin)
                        + " bytes, but its shape " + shapeNode + " of " + dtypeNode.asText() + " is " + bytes + " bytes");
            }
            if (count > MAX_VALUES) throw invalid(file, what + " has " + count + " values, more than one array holds");
            out.add(new Placement(f.getKey(), dtypeNode.asText(), shape, count, begin, end));
        }
        List<Placement> byOffset = new ArrayList<>(out);
        byOffset.removeIf(p -> p.begin() == p.end()); // an empty tensor occupies nothing
        byOffset.sort(java.util.Comparator.comparingLong(Placement::begin));
        for (int i = 1; i < byOffset.size(); i++) {
            Placement a = byOffset.get(i - 1);
            Placement b = byOffset.get(i);
            if (b.begin() < a.end()) {
                throw invalid(file, "tensors '" + a.name() + "' and '" + b.name() + "' overlap in the data");
            }
        }
        return out;
    }

    private static long multiply(Path file, String what, JsonNode shape, long a, long b) throws IOException {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw invalid(file, what + " has shape " + shape + ", whose size overflows 64 bits");
        }
    }

    /** Reads a tensor's values a few MiB at a time, so a tensor needs no byte copy of itself in memory. */
    private static Entry decode(FileChannel ch, long dataStart, Placement p) throws IOException {
        int width = WIDTHS.get(p.dtype());
        double[] values = new double[(int) p.count()];
        int perChunk = (8 << 20) / width;
        for (int done = 0; done < values.length; ) {
            int n = Math.min(perChunk, values.length - done);
            ByteBuffer buf = readFully(ch, dataStart + p.begin() + (long) done * width, n * width)
                    .order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < n; i++) values[done + i] = decode(buf, i * width, p.dtype());
            done += n;
        }
        return new Entry(p.dtype(), p.shape(), values);
    }

    private static ByteBuffer readFully(FileChannel ch, long position, int bytes) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(bytes);
        while (buf.hasRemaining()) {
            if (ch.read(buf, position + buf.position()) < 0) throw new java.io.EOFException("file ended early");
        }
        return buf.flip();
    }

    private static String firstLine(String message) {
        return message == null ? "" : message.strip().lines().findFirst().orElse("").strip();
    }

    private static int width(String dtype) {
        Integer w = WIDTHS.get(dtype);
        if (w == null) throw new IllegalArgumentException("unsupported dtype " + dtype);
        return w;
    }

    private static double decode(ByteBuffer b, int at, String dtype) {
        return switch (dtype) {
            case "F64" -> b.getDouble(at);
            case "I64" -> b.getLong(at);
            case "F32" -> b.getFloat(at);
            case "I32" -> b.getInt(at);
            case "F16" -> Float.float16ToFloat(b.getShort(at));
            case "BF16" -> Float.intBitsToFloat((b.getShort(at) & 0xFFFF) << 16);
            default -> throw new IllegalArgumentException("unsupported dtype " + dtype);
        };
    }

    /**
     * What a case file (SPEC §7) must hold, from its metadata: every {@code param.<name>} of
     * the model the metadata describes, and {@code input_ids} [B, L]; and the shapes of the
     * references it may hold ({@code logits}, {@code hidden.i}, {@code grad.<name>},
     * {@code inner.*}). A file whose metadata names no model (a plain state dict) is not a case.
     */
    private static final class CaseLayout {

        private static final List<String> MODEL_KEYS = List.of("ttt", "V", "D", "N", "H", "I", "K");
        static final String PARAM_PREFIX = "param.";

        /** @param shapeOf a tensor's shape, or null when the file lacks it */
        static void check(Map<String, String> meta, java.util.function.Function<String, int[]> shapeOf) {
            if (MODEL_KEYS.stream().noneMatch(meta::containsKey)) return;
            List<String> lacking = MODEL_KEYS.stream().filter(k -> !meta.containsKey(k)).toList();
            if (!lacking.isEmpty()) {
                throw new IllegalArgumentException("__metadata__ describes a case but lacks " + String.join(", ", lacking));
            }
            int[] sizes = new int[6];
            for (int i = 0; i < sizes.length; i++) sizes[i] = positive(meta, MODEL_KEYS.get(i + 1));
            ModelConfig c;
            try {
                c = new ModelConfig(sizes[0], sizes[1], sizes[2], sizes[3], sizes[4], sizes[5],
                        TttType.parse(meta.get("ttt")));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("__metadata__: " + e.getMessage());
            }
            Map<String, int[]> expected = new LinkedHashMap<>();
            for (ParameterSpec p : ParameterSpec.model(c)) {
                require(shapeOf, PARAM_PREFIX + p.name(), p.shape());
                expected.put("grad." + p.name(), p.shape());
            }
            int h = c.heads();
            int f = c.headDim();
            int wide = c.innerHidden();
            boolean mlp = c.tttType() == TttType.MLP;
            expected.put("inner.grad.W1", new int[] {h, f, wide});
            expected.put("inner.grad.b1", new int[] {h, 1, wide});
            if (mlp) {
                expected.put("inner.grad.W2", new int[] {h, wide, f});
                expected.put("inner.grad.b2", new int[] {h, 1, f});
            }
            expected.put("inner.grad.ttt_norm_weight", new int[] {h, f});
            expected.put("inner.grad.ttt_norm_bias", new int[] {h, f});
            expected.put("inner.token_eta", new int[] {c.miniBatch()});
            expected.put("inner.grad.token_eta", new int[] {c.miniBatch()});
            if (meta.containsKey("B") || meta.containsKey("L")) {
                int b = positive(meta, "B");
                int l = positive(meta, "L");
                require(shapeOf, "input_ids", new int[] {b, l});
                expected.put("logits", new int[] {b, l, c.vocab()});
                for (int i = 0; i <= c.layers(); i++) expected.put("hidden." + i, new int[] {b, l, c.hidden()});
                for (String x : List.of("XQ", "XK", "XV")) {
                    expected.put("inner." + x, new int[] {b, h, l, f});
                    expected.put("inner.grad." + x, new int[] {b, h, l, f});
                }
                expected.put("inner.ttt_lr_eta", new int[] {b, h, l});
                expected.put("inner.grad.ttt_lr_eta", new int[] {b, h, l});
                expected.put("inner.out", new int[] {b, l, c.hidden()});
                expected.put("inner.last.W1", new int[] {b, h, f, wide});
                expected.put("inner.last.b1", new int[] {b, h, 1, wide});
                if (mlp) {
                    expected.put("inner.last.W2", new int[] {b, h, wide, f});
                    expected.put("inner.last.b2", new int[] {b, h, 1, f});
                }
            }
            for (Map.Entry<String, int[]> e : expected.entrySet()) {
                int[] shape = shapeOf.apply(e.getKey());
                if (shape != null) sameShape(e.getKey(), shape, e.getValue());
            }
        }

        private static void require(java.util.function.Function<String, int[]> shapeOf, String name, int[] shape) {
            int[] actual = shapeOf.apply(name);
            if (actual == null) {
                throw new IllegalArgumentException("tensor '" + name + "' is missing (the metadata's model needs it, shape "
                        + java.util.Arrays.toString(shape) + ")");
            }
            sameShape(name, actual, shape);
        }

        private static void sameShape(String name, int[] actual, int[] expected) {
            if (!java.util.Arrays.equals(actual, expected)) {
                throw new IllegalArgumentException("tensor '" + name + "' has shape " + java.util.Arrays.toString(actual)
                        + ", but the metadata's model gives " + java.util.Arrays.toString(expected));
            }
        }

        private static int positive(Map<String, String> meta, String key) {
            String v = meta.get(key);
            if (v == null) throw new IllegalArgumentException("__metadata__ lacks " + key);
            try {
                int n = Integer.parseInt(v.strip());
                if (n > 0) return n;
            } catch (NumberFormatException e) {
                // reported below
            }
            throw new IllegalArgumentException("__metadata__ " + key + " = '" + v + "' is not a positive integer");
        }
    }

    /**
     * Writes tensors as F32 (or the type each entry names: F64, F32, I64, I32), with the given
     * metadata, in map order.
     */
    public static void write(Path file, Map<String, Entry> tensors, Map<String, String> metadata) throws IOException {
        ObjectNode header = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Map.Entry<String, Entry> e : tensors.entrySet()) {
            Entry t = e.getValue();
            ObjectNode info = header.putObject(e.getKey());
            info.put("dtype", t.dtype());
            var shape = info.putArray("shape");
            for (int d : t.shape()) shape.add(d);
            long bytes = t.size() * width(t.dtype());
            info.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] head = JSON.writeValueAsBytes(header);
        // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
        int padded = (head.length + 7) / 8 * 8;
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (OutputStream out = Files.newOutputStream(tmp)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded);
            out.write(len.array());
            out.write(head);
            for (int i = head.length; i < padded; i++) out.write(' ');
            for (Entry t : tensors.values()) {
                int w = width(t.dtype());
                ByteBuffer data = ByteBuffer.allocate(t.values().length * w).order(ByteOrder.LITTLE_ENDIAN);
                for (double v : t.values()) {
                    switch (t.dtype()) {
                        case "F64" -> data.putDouble(v);
                        case "F32" -> data.putFloat((float) v);
                        case "I64" -> data.putLong((long) v);
                        case "I32" -> data.putInt((int) v);
                        default -> throw new IllegalArgumentException("cannot write dtype " + t.dtype());
                    }
                }
                out.write(data.array());
            }
        }
        Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }
}

package org.tttbench.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

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

    public static Contents read(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        try {
            return parse(bytes);
        } catch (RuntimeException e) {
            throw new IOException(file + ": not a valid safetensors file: " + e.getMessage(), e);
        }
    }

    static Contents parse(byte[] bytes) throws IOException {
        ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (bytes.length < 8) throw new IllegalArgumentException("shorter than its 8-byte header length");
        long n = buf.getLong(0);
        if (n <= 0 || 8 + n > bytes.length) throw new IllegalArgumentException("header length " + n + " out of range");
        JsonNode header = JSON.readTree(new String(bytes, 8, (int) n, StandardCharsets.UTF_8));
        int base = 8 + (int) n;
        Map<String, Entry> tensors = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        Iterator<Map.Entry<String, JsonNode>> fields = header.fields();
        while (fields.hasNext()) {
            Map.Entry<String, JsonNode> f = fields.next();
            if (f.getKey().equals("__metadata__")) {
                f.getValue().fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
                continue;
            }
            JsonNode info = f.getValue();
            String dtype = info.get("dtype").asText();
            JsonNode shapeNode = info.get("shape");
            int[] shape = new int[shapeNode.size()];
            for (int i = 0; i < shape.length; i++) shape[i] = shapeNode.get(i).asInt();
            long begin = info.get("data_offsets").get(0).asLong();
            long end = info.get("data_offsets").get(1).asLong();
            long count = 1;
            for (int d : shape) count *= d;
            int width = width(dtype);
            if (end - begin != count * width || base + end > bytes.length) {
                throw new IllegalArgumentException("tensor " + f.getKey() + ": data_offsets do not fit its shape");
            }
            double[] values = new double[(int) count];
            int at = base + (int) begin;
            for (int i = 0; i < count; i++, at += width) values[i] = decode(buf, at, dtype);
            tensors.put(f.getKey(), new Entry(dtype, shape, values));
        }
        return new Contents(tensors, metadata);
    }

    private static int width(String dtype) {
        return switch (dtype) {
            case "F64", "I64" -> 8;
            case "F32", "I32" -> 4;
            case "F16", "BF16" -> 2;
            default -> throw new IllegalArgumentException("unsupported dtype " + dtype);
        };
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

package org.tttbench.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;

/**
 * Bad safetensors files: one line naming the file and what is wrong, never a stack trace or an
 * out-of-memory error, before anything is computed.
 */
class SafetensorsTest {

    @TempDir
    static Path tmp;

    private static final ObjectMapper JSON = new ObjectMapper();
    private static byte[] golden;
    private static ObjectNode goldenHeader;
    private static byte[] goldenData;

    @BeforeAll
    static void readGolden() throws Exception {
        golden = Files.readAllBytes(Path.of(SafetensorsTest.class.getResource("/golden/linear_tiny.safetensors").toURI()));
        long n = ByteBuffer.wrap(golden, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        goldenHeader = (ObjectNode) JSON.readTree(new String(golden, 8, (int) n, StandardCharsets.UTF_8));
        goldenData = Arrays.copyOfRange(golden, 8 + (int) n, golden.length);
    }

    private static int counter;

    /** A file of the given header length field, header text and data. */
    private static Path file(long headerLength, byte[] header, byte[] data) throws IOException {
        Path p = tmp.resolve("case" + (counter++) + ".safetensors");
        ByteBuffer buf = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(headerLength).put(header).put(data);
        Files.write(p, buf.array());
        return p;
    }

    private static Path file(String header, byte[] data) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        return file(h.length, h, data);
    }

    /** The golden case with its header changed by {@code edit}. */
    private static Path golden(Consumer<ObjectNode> edit) throws IOException {
        ObjectNode h = goldenHeader.deepCopy();
        edit.accept(h);
        return file(h.toString(), goldenData);
    }

    private static ObjectNode tensor(ObjectNode header, String name) {
        return (ObjectNode) header.get(name);
    }

    private static ArrayNode offsets(ObjectNode header, String name, long begin, long end) {
        ArrayNode a = tensor(header, name).putArray("data_offsets");
        return a.add(begin).add(end);
    }

    static List<Arguments> badFiles() throws IOException {
        String q = "param.model.layers.0.seq_modeling_block.q_proj.weight";
        String k = "param.model.layers.0.seq_modeling_block.k_proj.weight";
        return List.of(
                Arguments.of("no header", file(0, new byte[0], new byte[0]).toString(), "header length 0 is not between 2"),
                Arguments.of("short", Files.write(tmp.resolve("short.safetensors"), new byte[5]).toString(),
                        "shorter than its 8-byte header length (5 bytes)"),
                Arguments.of("huge header length", file(1L << 62, new byte[16], new byte[0]).toString(),
                        "header length 4611686018427387904 is not between 2 and 104857600 bytes"),
                Arguments.of("negative header length", file(-1, new byte[16], new byte[0]).toString(),
                        "header length 18446744073709551615 is not between 2 and"),
                Arguments.of("header over 100 MB", file(200L << 20, new byte[16], new byte[0]).toString(),
                        "header length 209715200 is not between"),
                Arguments.of("header past the end", file(500, "{}".getBytes(StandardCharsets.UTF_8), new byte[0]).toString(),
                        "header length 500 runs past the end of the file (10 bytes)"),
                Arguments.of("header not JSON", file("{nope", new byte[0]).toString(), "header is not JSON"),
                Arguments.of("header an array", file("[1, 2]", new byte[0]).toString(), "header is not a JSON object"),
                Arguments.of("duplicate tensor", file("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                        + " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", new byte[4]).toString(),
                        "header is not JSON: Duplicate field 'a'"),
                Arguments.of("trailing junk", file("{} {}", new byte[0]).toString(), "header is not JSON: Trailing token"),
                Arguments.of("metadata not strings", golden(h -> ((ObjectNode) h.get("__metadata__")).put("D", 64)).toString(),
                        "__metadata__ value of 'D' is 64, not a string"),
                Arguments.of("unknown dtype", golden(h -> tensor(h, q).put("dtype", "F8_E4M3")).toString(),
                        "tensor '" + q + "' has dtype \"F8_E4M3\" (known: BF16, F16, F32, F64, I32, I64)"),
                Arguments.of("dtype not a string", golden(h -> tensor(h, q).put("dtype", 7)).toString(), "has dtype 7"),
                Arguments.of("no shape", golden(h -> tensor(h, q).remove("shape")).toString(),
                        "tensor '" + q + "' has no shape list"),
                Arguments.of("negative dimension", golden(h -> tensor(h, q).putArray("shape").add(-64).add(64)).toString(),
                        "has shape [-64,64]: dimensions must be integers >= 0"),
                Arguments.of("shape that overflows", golden(h -> tensor(h, q).putArray("shape").add(Integer.MAX_VALUE)
                        .add(Integer.MAX_VALUE).add(Integer.MAX_VALUE)).toString(), "whose size overflows 64 bits"),
                Arguments.of("three offsets", golden(h -> offsets(h, q, 0, 8).add(16)).toString(),
                        "has data_offsets [0,8,16], not [begin, end]"),
                Arguments.of("negative offset", golden(h -> offsets(h, q, -16384, 0)).toString(),
                        "has negative data_offsets [-16384,0]"),
                Arguments.of("end before begin", golden(h -> offsets(h, q, 16384, 0)).toString(),
                        "has data_offsets [16384,0] that end before they begin"),
                Arguments.of("past the data", golden(h -> offsets(h, q, 1L << 40, (1L << 40) + 32768)).toString(),
                        "past the end of the data"),
                Arguments.of("bytes not the shape's", golden(h -> tensor(h, q).putArray("shape").add(64).add(65)).toString(),
                        "for 32768 bytes, but its shape [64,65] of F64 is 33280 bytes"),
                Arguments.of("overlap", golden(h -> {
                    ArrayNode qo = (ArrayNode) tensor(h, q).get("data_offsets");
                    offsets(h, k, qo.get(0).asLong() + 8, qo.get(1).asLong() + 8);
                }).toString(), "overlap in the data"),
                Arguments.of("a giant tensor in a small file", file("{\"big\": {\"dtype\": \"F64\", \"shape\": [1000000000],"
                        + " \"data_offsets\": [0, 8000000000]}}", new byte[64]).toString(), "past the end of the data"));
    }

    /**
     * Runs {@code validate FILE} as users do, in a JVM of 64 MiB heap: a reader that loaded what
     * a header claims would run out of memory here instead of answering.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("badFiles")
    void aBadFileIsOneLineOnStderrStatusTwoAndNothingOnStdout(String what, String file, String message)
            throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Path out = tmp.resolve("out-" + counter);
        Path err = tmp.resolve("err-" + counter++);
        Process p = new ProcessBuilder(java, "-Xmx64m", "--enable-native-access=ALL-UNNAMED", "-cp",
                System.getProperty("java.class.path"), "org.tttbench.cli.Main", "validate", file, "--backend", "cpu")
                .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), what);
        String stderr = Files.readString(err);
        assertEquals(2, p.exitValue(), what + ": " + stderr);
        assertEquals("", Files.readString(out), what);
        assertEquals(1, stderr.lines().count(), what + ": " + stderr);
        assertTrue(stderr.startsWith("tttbench: validate: " + file + ": not a valid safetensors file: "), stderr);
        assertTrue(stderr.contains(message), what + ": " + stderr);
    }

    static List<Arguments> badCases() {
        String b1 = "param.model.layers.0.seq_modeling_block.b1";
        String q = "param.model.layers.0.seq_modeling_block.q_proj.weight";
        return List.of(
                Arguments.of("missing parameter", (Consumer<ObjectNode>) h -> h.remove("param.model.norm.weight"),
                        "tensor 'param.model.norm.weight' is missing (the metadata's model needs it, shape [64])"),
                Arguments.of("missing input_ids", (Consumer<ObjectNode>) h -> h.remove("input_ids"),
                        "tensor 'input_ids' is missing (the metadata's model needs it, shape [2, 32])"),
                Arguments.of("reshaped parameter", (Consumer<ObjectNode>) h -> tensor(h, q).putArray("shape").add(32).add(128),
                        "tensor '" + q + "' has shape [32, 128], but the metadata's model gives [64, 64]"),
                Arguments.of("reshaped bias", (Consumer<ObjectNode>) h -> tensor(h, b1).putArray("shape").add(4).add(16),
                        "tensor '" + b1 + "' has shape [4, 16], but the metadata's model gives [4, 1, 16]"),
                Arguments.of("reshaped input_ids", (Consumer<ObjectNode>) h -> tensor(h, "input_ids").putArray("shape")
                        .add(4).add(16), "tensor 'input_ids' has shape [4, 16], but the metadata's model gives [2, 32]"),
                Arguments.of("reshaped logits", (Consumer<ObjectNode>) h -> tensor(h, "logits").putArray("shape")
                        .add(64).add(128), "tensor 'logits' has shape [64, 128], but the metadata's model gives [2, 32, 128]"),
                Arguments.of("reshaped inner state", (Consumer<ObjectNode>) h -> tensor(h, "inner.last.W1").putArray("shape")
                        .add(8).add(16).add(16), "tensor 'inner.last.W1' has shape [8, 16, 16]"),
                Arguments.of("metadata without K", (Consumer<ObjectNode>) h -> ((ObjectNode) h.get("__metadata__")).remove("K"),
                        "__metadata__ describes a case but lacks K"),
                Arguments.of("metadata D not a number", (Consumer<ObjectNode>) h -> ((ObjectNode) h.get("__metadata__"))
                        .put("D", "sixty-four"), "__metadata__ D = 'sixty-four' is not a positive integer"),
                Arguments.of("metadata of no model", (Consumer<ObjectNode>) h -> ((ObjectNode) h.get("__metadata__"))
                        .put("H", "3"), "__metadata__: hidden 64 is not divisible by heads 3"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badCases")
    void aCaseThatLacksWhatItsMetadataDescribesIsNamedBeforeAnythingRuns(String what, Consumer<ObjectNode> edit,
                                                                          String message) throws Exception {
        Path file = golden(edit);
        IOException e = assertThrows(IOException.class, () -> Safetensors.readCase(file), what);
        assertTrue(e.getMessage().startsWith(file + ": not a valid safetensors file: " + message), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        // The file's structure is sound: read without a case to check, it reads.
        Safetensors.read(file);
    }

    @Test
    void theGoldenCaseReadsAsItWasWritten() throws Exception {
        Path file = file(goldenHeader.toString(), goldenData);
        Safetensors.Contents c = Safetensors.readCase(file);
        assertEquals(goldenHeader.size() - 1, c.tensors().size());
        assertEquals("linear_tiny", c.metadata().get("name"));
        assertArrayEquals(new int[] {2, 32}, c.require("input_ids").shape());
        assertEquals(64, c.require("input_ids").values().length);
        // A round trip through the writer keeps every value.
        Path again = tmp.resolve("again.safetensors");
        Safetensors.write(again, c.tensors(), c.metadata());
        Safetensors.Contents d = Safetensors.readCase(again);
        for (String name : c.tensors().keySet()) {
            assertArrayEquals(c.tensors().get(name).values(), d.tensors().get(name).values(), name);
        }
    }

    @Test
    void weightsAreCheckedAgainstTheModelFromTheHeaderAlone() throws Exception {
        ModelConfig model = new ModelConfig(128, 64, 2, 4, 172, 8, TttType.LINEAR);
        Path caseFile = file(goldenHeader.toString(), goldenData);
        Safetensors.checkWeights(caseFile, model); // "param."-prefixed names, as a case holds them
        Map<String, Safetensors.Entry> plain = new LinkedHashMap<>();
        Safetensors.readCase(caseFile).tensors().forEach((name, e) -> {
            if (name.startsWith("param.")) plain.put(name.substring("param.".length()), e);
        });
        Path stateDict = tmp.resolve("state.safetensors");
        Safetensors.write(stateDict, plain, Map.of("format", "pt"));
        Safetensors.checkWeights(stateDict, model);
        Safetensors.readCase(stateDict); // metadata of no case: nothing more to check

        IOException mlp = assertThrows(IOException.class, () -> Safetensors.checkWeights(stateDict,
                new ModelConfig(128, 64, 2, 4, 172, 8, TttType.MLP)));
        assertEquals(stateDict + ": not a valid safetensors file: tensor 'model.layers.0.seq_modeling_block.W1' has"
                + " shape [4, 16, 16], but the model needs [4, 16, 64]", mlp.getMessage());
        plain.remove("model.norm.weight");
        Safetensors.write(stateDict, plain, Map.of());
        IOException missing = assertThrows(IOException.class, () -> Safetensors.checkWeights(stateDict, model));
        assertEquals(stateDict + ": not a valid safetensors file: tensor 'model.norm.weight' is missing (the model"
                + " needs it, shape [64])", missing.getMessage());
    }
}

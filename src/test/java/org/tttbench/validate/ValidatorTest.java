package org.tttbench.validate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tttbench.cpu.CpuBackend;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;
import org.tttbench.io.Safetensors;
import org.tttbench.io.WeightsLoader;
import org.tttbench.model.ParameterSpec;
import org.tttbench.model.Parameters;

class ValidatorTest {

    @TempDir
    Path dir;

    private Safetensors.Contents rewritten(Map<String, Safetensors.Entry> tensors, Map<String, String> metadata)
            throws IOException {
        Path file = dir.resolve("case.safetensors");
        Safetensors.write(file, tensors, metadata);
        return Safetensors.read(file);
    }

    private static Map<String, Safetensors.Entry> copy(Safetensors.Contents c) {
        return new LinkedHashMap<>(c.tensors());
    }

    @Test
    void aPerturbedReferenceFailsAndOnlyItsRowFails() throws IOException {
        Safetensors.Contents golden = Golden.read("linear_tiny");
        Map<String, Safetensors.Entry> tensors = copy(golden);
        String target = "inner.grad.XK";
        Safetensors.Entry e = tensors.get(target);
        double[] v = e.values().clone();
        double norm = 0;
        for (double x : v) norm += x * x;
        v[17] += 1e-3 * Math.sqrt(norm); // relative error 1e-3, ten times the float32 tolerance
        tensors.put(target, new Safetensors.Entry(e.dtype(), e.shape(), v));
        List<ValidationRow> rows = Validator.run(rewritten(tensors, golden.metadata()), new CpuBackend(DType.FLOAT32));
        for (ValidationRow r : rows) {
            if (r.name().equals(target)) {
                assertFalse(r.pass(), r.toString());
                assertEquals(1e-3, r.relativeError(), 1e-5);
            } else {
                assertTrue(r.pass(), r.toString());
            }
        }
        assertTrue(rows.stream().anyMatch(r -> r.name().equals(target)), "no row for " + target);
    }

    @Test
    void aPerturbedParameterFailsTheOutputs() throws IOException {
        Safetensors.Contents golden = Golden.read("mlp_k16");
        Map<String, Safetensors.Entry> tensors = copy(golden);
        String name = "param.model.layers.0.seq_modeling_block.W2";
        Safetensors.Entry e = tensors.get(name);
        double[] v = e.values().clone();
        for (int i = 0; i < v.length; i++) v[i] *= 1.01;
        tensors.put(name, new Safetensors.Entry(e.dtype(), e.shape(), v));
        List<ValidationRow> rows = Validator.run(rewritten(tensors, golden.metadata()), new CpuBackend(DType.FLOAT32));
        for (String out : List.of("logits", "inner.out", "inner.last.W2", "grad.model.layers.0.seq_modeling_block.W2")) {
            assertFalse(rows.stream().filter(r -> r.name().equals(out)).findFirst().orElseThrow().pass(), out);
        }
    }

    @Test
    void aMissingParameterIsNamed() throws IOException {
        Safetensors.Contents golden = Golden.read("linear_tiny");
        Map<String, Safetensors.Entry> tensors = copy(golden);
        tensors.remove("param.model.layers.1.mlp.up_proj.weight");
        Safetensors.Contents c = rewritten(tensors, golden.metadata());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Validator.run(c, new CpuBackend(DType.FLOAT32)));
        assertTrue(e.getMessage().contains("model.layers.1.mlp.up_proj.weight"), e.getMessage());
        assertTrue(e.getMessage().contains("[172, 64]"), e.getMessage());
    }

    @Test
    void aMisShapedParameterNamesBothShapes() throws IOException {
        Safetensors.Contents golden = Golden.read("linear_tiny");
        Map<String, Safetensors.Entry> tensors = copy(golden);
        String name = "param.model.layers.0.seq_modeling_block.b1";
        Safetensors.Entry e = tensors.get(name);
        tensors.put(name, new Safetensors.Entry(e.dtype(), new int[] {4, 16}, e.values()));
        Safetensors.Contents c = rewritten(tensors, golden.metadata());
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class,
                () -> Validator.run(c, new CpuBackend(DType.FLOAT32)));
        assertTrue(ex.getMessage().contains("model.layers.0.seq_modeling_block.b1"), ex.getMessage());
        assertTrue(ex.getMessage().contains("[4, 16]") && ex.getMessage().contains("[4, 1, 16]"), ex.getMessage());
    }

    @Test
    void missingMetadataIsNamed() throws IOException {
        Safetensors.Contents golden = Golden.read("linear_tiny");
        Map<String, String> meta = new LinkedHashMap<>(golden.metadata());
        meta.remove("K");
        Safetensors.Contents c = rewritten(copy(golden), meta);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GoldenCase.load(c));
        assertTrue(e.getMessage().contains("'K'"), e.getMessage());
    }

    @Test
    void goldenCaseReadsTheModelFromTheMetadata() {
        GoldenCase c = GoldenCase.load(Golden.read("linear_tiny"));
        assertEquals(new ModelConfig(128, 64, 2, 4, 172, 8, TttType.LINEAR), c.config());
        assertEquals(2, c.batch());
        assertEquals(32, c.seqLen());
        assertEquals(64, c.inputIds().length);
        assertEquals("linear_tiny", c.name());
    }

    @Test
    void weightsLoadByStateDictNamesFromAFile() throws IOException {
        Safetensors.Contents golden = Golden.read("mlp_tiny");
        Map<String, Safetensors.Entry> stateDict = new LinkedHashMap<>();
        golden.tensors().forEach((n, e) -> {
            if (n.startsWith("param.")) stateDict.put(n.substring("param.".length()), e);
        });
        Path file = dir.resolve("weights.safetensors");
        Safetensors.write(file, stateDict, Map.of());
        CpuBackend be = new CpuBackend(DType.FLOAT32);
        ModelConfig cfg = GoldenCase.load(golden).config();
        Parameters p = new Parameters(be, ParameterSpec.model(cfg));
        WeightsLoader.load(file, p, be);
        for (ParameterSpec s : p.specs()) {
            assertArrayEquals(stateDict.get(s.name()).toFloats(), be.download(p.get(s.name())), s.name());
        }
    }

    @Test
    void aNanRowFails() {
        assertFalse(ValidationRow.of("x", Double.NaN, 1).pass());
        assertFalse(ValidationRow.of("x", 0, Double.NaN).pass());
        assertTrue(ValidationRow.of("x", 0.5, 1).pass());
    }
}

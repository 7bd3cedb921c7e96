package org.tttbench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tttbench.io.Safetensors;

/** The validate subcommand as users call it: exit status and the row that names a bad tensor. */
class ValidateCommandTest {

    @TempDir
    Path dir;

    record Outcome(int status, String stdout, String stderr) {
    }

    static Outcome validate(String... args) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        String[] full = new String[args.length + 1];
        full[0] = "validate";
        System.arraycopy(args, 0, full, 1, args.length);
        int status = Main.run(full, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Outcome(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    static Path golden(String name) throws Exception {
        return Path.of(ValidateCommandTest.class.getResource("/golden/" + name + ".safetensors").toURI());
    }

    @Test
    void aGoldenCasePassesWithStatus0() throws Exception {
        Outcome o = validate(golden("linear_k16").toString(), "--backend", "cpu");
        assertEquals(0, o.status(), o.stdout() + o.stderr());
        assertTrue(o.stdout().contains("logits"), o.stdout());
        assertTrue(o.stdout().lines().filter(l -> l.endsWith("PASS")).count() > 30, o.stdout());
    }

    @Test
    void onePerturbedTensorFailsWithStatus1AndIsNamed() throws Exception {
        Safetensors.Contents c = Safetensors.read(golden("mlp_k16"));
        Map<String, Safetensors.Entry> tensors = new LinkedHashMap<>(c.tensors());
        Safetensors.Entry logits = tensors.get("logits");
        double[] v = logits.values().clone();
        v[5] += 1.0;
        tensors.put("logits", new Safetensors.Entry(logits.dtype(), logits.shape(), v));
        Path bad = dir.resolve("perturbed.safetensors");
        Safetensors.write(bad, tensors, c.metadata());

        Outcome o = validate(bad.toString(), "--backend", "cpu");
        assertEquals(1, o.status(), o.stdout() + o.stderr());
        String failing = o.stdout().lines().filter(l -> l.endsWith("FAIL")).reduce("", (a, b) -> a + b + "\n");
        assertEquals(1, failing.lines().count(), o.stdout());
        assertTrue(failing.startsWith("logits "), failing);
    }

    @Test
    void aMissingFileIsAUsageError() throws Exception {
        Outcome o = validate(dir.resolve("none.safetensors").toString());
        assertEquals(2, o.status());
        assertEquals("", o.stdout());
    }
}

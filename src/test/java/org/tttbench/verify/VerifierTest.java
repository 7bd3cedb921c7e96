package org.tttbench.verify;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.tttbench.backend.Backend;
import org.tttbench.backend.Tensor;
import org.tttbench.backend.cpu.CpuBackend;
import org.tttbench.config.DType;
import org.tttbench.config.Preset;
import org.tttbench.config.TttType;

class VerifierTest {

    /** The CPU backend with one op replaced: a stand-in for a broken kernel. */
    private static Backend sabotaged(Backend inner, String method, java.util.function.BiConsumer<Backend, Object[]> body) {
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (proxy, m, args) -> {
                    if (m.getName().equals(method)) {
                        body.accept(inner, args);
                        return null;
                    }
                    try {
                        return m.invoke(inner, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    private static List<Verifier.Row> failures(Verifier v) {
        return v.rows().stream().filter(r -> !r.passed()).toList();
    }

    @Test
    void theCpuBackendPassesAgainstItself() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Verifier.run(new String[] {"--backend", "cpu", "--dtype", "float32,bfloat16", "--seq-len", "32",
                "--batch", "1", "--layers", "1"}, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        String text = out.toString(StandardCharsets.UTF_8);
        assertEquals(0, status, text + err.toString(StandardCharsets.UTF_8));
        assertTrue(text.contains("innerForward mlp out"), text);
        assertTrue(text.contains("model forward linear logits"), text);
        assertFalse(text.contains("FAIL"), text);
    }

    @Test
    void anUnwrittenOutputFails() {
        try (CpuBackend ref = new CpuBackend(DType.FLOAT32); CpuBackend inner = new CpuBackend(DType.FLOAT32)) {
            // swiglu that writes only the first half of its output: the NaN poison shows in the rest.
            Backend broken = sabotaged(inner, "swiglu", (b, a) -> {
                Tensor out = (Tensor) a[2];
                Tensor full = b.allocate(out.shape());
                b.swiglu((Tensor) a[0], (Tensor) a[1], full);
                float[] written = b.download(out);
                System.arraycopy(b.download(full), 0, written, 0, written.length / 2);
                b.upload(written, out);
            });
            Verifier v = new Verifier(broken, ref, false, 1, null);
            v.checkOps(Preset.byName("12m").model(TttType.LINEAR, 16), 1, 16);
            List<Verifier.Row> bad = failures(v);
            assertEquals(1, bad.size(), bad.toString());
            assertEquals("swiglu", bad.get(0).op());
            assertTrue(Double.isNaN(bad.get(0).error()));
        }
    }

    @Test
    void aWrongInnerScanFails() {
        try (CpuBackend ref = new CpuBackend(DType.FLOAT32); CpuBackend inner = new CpuBackend(DType.FLOAT32)) {
            // An inner scan that forgets the learning rate (lr read as zero): the state never moves.
            Backend broken = sabotaged(inner, "innerForward", (b, a) -> {
                org.tttbench.backend.InnerInputs in = (org.tttbench.backend.InnerInputs) a[0];
                b.fill(in.lr(), 0f);
                b.innerForward(in, (Tensor) a[1], (Tensor) a[2], (Integer) a[3], (Tensor) a[4]);
            });
            Verifier v = new Verifier(broken, ref, false, 2, null);
            v.checkInner(Preset.byName("12m").model(TttType.MLP, 16), 1, 32);
            assertTrue(failures(v).stream().anyMatch(r -> r.op().startsWith("innerForward mlp last state")),
                    v.rows().toString());
        }
    }

    @Test
    void relativeErrorTreatsNonFiniteValuesAsFailure() {
        assertTrue(Double.isNaN(Verifier.relativeError(new float[] {1, Float.NaN}, new float[] {1, 2})));
        assertTrue(Double.isNaN(Verifier.relativeError(new float[] {1, Float.POSITIVE_INFINITY}, new float[] {1, 2})));
        assertTrue(Double.isNaN(Verifier.relativeError(new float[] {1, Float.POSITIVE_INFINITY},
                new float[] {1, Float.NEGATIVE_INFINITY})));
        // Overflowing where the reference overflows the same way is agreement; the finite rest is compared.
        assertEquals(0.5, Verifier.relativeError(new float[] {3, Float.NEGATIVE_INFINITY, 4},
                new float[] {6, Float.NEGATIVE_INFINITY, 8}), 1e-12);
        assertEquals(0.5, Verifier.relativeError(new float[] {3, 4}, new float[] {6, 8}), 1e-12);
        assertEquals(0.0, Verifier.relativeError(new float[] {0, 0}, new float[] {0, 0}));
    }

    @Test
    void usageErrorsExitWithTwo() {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8);
        PrintStream o = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        assertEquals(2, Verifier.run(new String[] {"--model-size", "7b"}, o, e));
        assertEquals(2, Verifier.run(new String[] {"--seq-len", "30"}, o, e));
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("unknown model size"));
    }
}

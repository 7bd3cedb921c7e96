package org.tttbench.verify;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;
import org.tttbench.backend.Backend;
import org.tttbench.backend.InnerInputs;
import org.tttbench.backend.Tensor;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;
import org.tttbench.cpu.CpuBackend;

class VerifierTest {

    /** 12m's layer shapes with a small vocabulary: every op and part at a size the CPU runs in moments. */
    static final ModelConfig SMALL = new ModelConfig(512, 256, 2, 4, 512, 16, TttType.LINEAR);

    static Verifier.Scope scope(Set<Verifier.Part> parts, boolean backward) {
        return new Verifier.Scope(SMALL, List.of(TttType.LINEAR, TttType.MLP), 1, 32, parts, backward);
    }

    static List<Row> failures(List<Row> rows) {
        return rows.stream().filter(r -> !r.passed()).toList();
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void theCpuBackendPassesAgainstItselfWithEveryRowJudged(DType dtype) {
        try (CpuBackend cpu = new CpuBackend(dtype)) {
            Set<Verifier.Part> parts = EnumSet.complementOf(EnumSet.of(Verifier.Part.INTERVALS));
            List<Row> rows = Verifier.check(cpu, CpuBackend::new, scope(parts, true), false, 7, null);
            assertEquals(List.of(), failures(rows), () -> String.join("\n", failures(rows).stream().map(Row::format).toList()));
            // No row is reported without being judged: every tolerance is a number.
            for (Row r : rows) assertTrue(Double.isFinite(r.tolerance()), r.format());
            assertTrue(rows.stream().anyMatch(r -> r.op().equals("training step mlp c=1 grad model.layers.*.seq_modeling_block.learnable_token_idx")));
            if (dtype != DType.FLOAT32) {
                // Both passes: the float32 instantiation's rows and the 16-bit ones, the same comparisons.
                long twin = rows.stream().filter(r -> r.dtype() == DType.FLOAT32).count();
                assertEquals(rows.size() - twin, twin);
            }
        }
    }

    /** The intervals' rows find their tolerances' float32 references too (float16: the training step walks 4 mini-batches). */
    @Test
    void intervalChecksRunInBothPassesOfA16BitCheck() {
        try (CpuBackend cpu = new CpuBackend(DType.FLOAT16)) {
            List<Row> rows = Verifier.check(cpu, CpuBackend::new, new Verifier.Scope(SMALL, List.of(TttType.LINEAR), 1, 32,
                    Set.of(Verifier.Part.INTERVALS), true), false, 8, null);
            assertEquals(List.of(), failures(rows));
            assertEquals(2 * (4 + 2 + 4 + 1), rows.size(), rows.toString());
            assertTrue(rows.stream().anyMatch(r -> r.op().equals("training step grads linear c=16 vs c=1 (64 tokens)")));
        }
    }

    @Test
    void anUnwrittenOutputFails() {
        // swiglu that writes only the first half of its output: the NaN poison shows in the rest.
        Intercepted.Op half = (b, a) -> {
            Tensor out = (Tensor) a[2];
            Tensor full = b.allocate(out.shape());
            b.swiglu((Tensor) a[0], (Tensor) a[1], full);
            float[] written = b.download(out);
            System.arraycopy(b.download(full), 0, written, 0, written.length / 2);
            b.upload(written, out);
            return null;
        };
        try (Backend broken = Intercepted.wrap(new CpuBackend(DType.FLOAT32), "swiglu", half)) {
            List<Row> bad = failures(Verifier.check(broken, null, scope(Set.of(Verifier.Part.OPS), false), false, 1, null));
            assertEquals(1, bad.size(), bad.toString());
            assertEquals("swiglu", bad.get(0).op());
            assertTrue(Double.isNaN(bad.get(0).error()));
        }
    }

    @Test
    void aWrongInnerScanFails() {
        // An inner scan that forgets the learning rate (lr read as zero): the state never moves.
        Intercepted.Op noLr = (b, a) -> {
            InnerInputs in = (InnerInputs) a[0];
            b.fill(in.lr(), 0f);
            b.innerForward(in, (Tensor) a[1], (Tensor) a[2], (Integer) a[3], (Tensor) a[4]);
            return null;
        };
        try (Backend broken = Intercepted.wrap(new CpuBackend(DType.FLOAT32), "innerForward", noLr)) {
            List<Row> rows = Verifier.check(broken, null, scope(Set.of(Verifier.Part.INNER), false), false, 2, null);
            assertTrue(failures(rows).stream().anyMatch(r -> r.op().startsWith("innerForward mlp last state")),
                    rows.toString());
        }
    }

    @Test
    void anOpThatThrowsIsAFailedRow() {
        Intercepted.Op fails = (b, a) -> {
            throw new IllegalStateException("launch failed");
        };
        try (Backend broken = Intercepted.wrap(new CpuBackend(DType.FLOAT32), "layerNorm", fails)) {
            List<Row> bad = failures(Verifier.check(broken, null, scope(Set.of(Verifier.Part.OPS), false), false, 3, null));
            assertEquals(1, bad.size(), bad.toString());
            assertTrue(bad.get(0).op().contains("launch failed"), bad.get(0).op());
        }
    }
}

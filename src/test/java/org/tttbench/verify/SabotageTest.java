package org.tttbench.verify;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Set;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.tttbench.backend.Backend;
import org.tttbench.backend.InnerGrads;
import org.tttbench.backend.InnerInputs;
import org.tttbench.backend.Tensor;
import org.tttbench.backend.TokenIds;
import org.tttbench.config.DType;
import org.tttbench.config.TttType;
import org.tttbench.config.Workload;
import org.tttbench.cpu.CpuBackend;

/**
 * The verifier against planted errors: the CPU backend with one op of each family (elementwise,
 * embedding, norms, TTT inputs, products, inner scan), forward and backward, off by a few percent or
 * missing an increment. Every dtype's check must fail that op's rows, in a 16-bit check both its
 * float32 instantiation's and its own, and a benchmark's setup check must refuse to time it.
 */
class SabotageTest {

    /**
     * One planted error: the method replaced, what it does instead, the parts of the check that run
     * it, and the start of the names of the rows that must fail (the method's own, and for the inner
     * backward the forward-and-backward row too).
     */
    record Sabotage(String name, String op, Set<Verifier.Part> parts, Intercepted.Op body) {

        boolean owns(Row r) {
            return r.op().startsWith(op) || op.equals("innerBackward") && r.op().startsWith("innerForward+Backward");
        }

        Backend on(DType dtype) {
            return Intercepted.wrap(new CpuBackend(dtype), op, body);
        }

        @Override
        public String toString() {
            return name;
        }
    }

    private static final Set<Verifier.Part> OPS = Set.of(Verifier.Part.OPS);
    private static final Set<Verifier.Part> INNER = Set.of(Verifier.Part.INNER);

    static Stream<Sabotage> sabotages() {
        return Stream.of(
                new Sabotage("swiglu ×1.03", "swiglu", OPS, (b, a) -> {
                    b.swiglu((Tensor) a[0], (Tensor) a[1], (Tensor) a[2]);
                    Intercepted.scale(b, (Tensor) a[2], 1.03);
                    return null;
                }),
                new Sabotage("swigluBackward dGate ×1.03", "swigluBackward", OPS, (b, a) -> {
                    b.swigluBackward((Tensor) a[0], (Tensor) a[1], (Tensor) a[2], (Tensor) a[3], (Tensor) a[4]);
                    Intercepted.scale(b, (Tensor) a[3], 1.03);
                    return null;
                }),
                new Sabotage("embedding ×1.03", "embedding", OPS, (b, a) -> {
                    b.embedding((TokenIds) a[0], (Tensor) a[1], (Tensor) a[2]);
                    Intercepted.scale(b, (Tensor) a[2], 1.03);
                    return null;
                }),
                new Sabotage("embeddingBackward adds 0.97 of its increment", "embeddingBackward", OPS, (b, a) -> {
                    b.embeddingBackward((TokenIds) a[0], scaledCopy(b, (Tensor) a[1], 0.97), (Tensor) a[2]);
                    return null;
                }),
                new Sabotage("rmsNorm out ×1.02", "rmsNorm", OPS, (b, a) -> {
                    b.rmsNorm((Tensor) a[0], (Tensor) a[1], (Tensor) a[2], (Tensor) a[3]);
                    Intercepted.scale(b, (Tensor) a[2], 1.02);
                    return null;
                }),
                new Sabotage("layerNormBackward dx ×1.03", "layerNormBackward", OPS, (b, a) -> {
                    b.layerNormBackward((Tensor) a[0], (Tensor) a[1], (Tensor) a[2], (Tensor) a[3], (Tensor) a[4],
                            (Tensor) a[5], (Tensor) a[6], (Tensor) a[7]);
                    Intercepted.scale(b, (Tensor) a[5], 1.03);
                    return null;
                }),
                new Sabotage("tttLearningRate ×1.03", "tttLearningRate", OPS, (b, a) -> {
                    b.tttLearningRate((Tensor) a[0], (Tensor) a[1], (Tensor) a[2], (Tensor) a[3]);
                    Intercepted.scale(b, (Tensor) a[3], 1.03);
                    return null;
                }),
                new Sabotage("tttLearningRateBackward never adds into dx", "tttLearningRateBackward", OPS, (b, a) -> {
                    Tensor dx = (Tensor) a[4];
                    b.tttLearningRateBackward((Tensor) a[0], (Tensor) a[1], (Tensor) a[2], (Tensor) a[3],
                            b.allocate(dx.dtype(), dx.shape()), (Tensor) a[5], (Tensor) a[6]);
                    return null;
                }),
                // The two gradients whose 16-bit training-step rows have the loosest derived tolerances (sums of
                // nearly cancelling terms over every token): a planted error in their ops is caught all the same.
                new Sabotage("tttLearningRateBackward dBias ×1.03", "tttLearningRateBackward", OPS, (b, a) -> {
                    Tensor db = (Tensor) a[6];
                    Tensor before = scaledCopy(b, db, 1);
                    b.tttLearningRateBackward((Tensor) a[0], (Tensor) a[1], (Tensor) a[2], (Tensor) a[3], (Tensor) a[4],
                            (Tensor) a[5], db);
                    // before + 1.03 · increment
                    float[] x = b.download(db);
                    float[] x0 = b.download(before);
                    for (int i = 0; i < x.length; i++) x[i] = (float) (x0[i] + 1.03 * (x[i] - x0[i]));
                    b.upload(x, db);
                    return null;
                }),
                new Sabotage("tokenEtaBackward adds 1.03 of its increment", "tokenEtaBackward", OPS, (b, a) -> {
                    b.tokenEtaBackward((Tensor) a[0], scaledCopy(b, (Tensor) a[1], 1.03), (Tensor) a[2]);
                    return null;
                }),
                new Sabotage("matmul ×1.02", "matmul", OPS, (b, a) -> {
                    b.matmul((Tensor) a[0], (Tensor) a[1], (Tensor) a[2], (Integer) a[3], (Integer) a[4], (Integer) a[5],
                            (Boolean) a[6], (Boolean) a[7], (Boolean) a[8]);
                    Intercepted.scale(b, (Tensor) a[2], 1.02);
                    return null;
                }),
                new Sabotage("matmulSum skips its last product", "matmulSum", OPS, (b, a) -> {
                    List<?> x = (List<?>) a[0];
                    List<?> y = (List<?>) a[1];
                    int n = Math.max(x.size(), y.size());
                    b.matmulSum(tensors(x.size() == 1 ? x : x.subList(0, n - 1)),
                            tensors(y.size() == 1 ? y : y.subList(0, n - 1)), (Tensor) a[2], (Integer) a[3],
                            (Integer) a[4], (Integer) a[5], (Boolean) a[6], (Boolean) a[7], (Boolean) a[8]);
                    return null;
                }),
                new Sabotage("innerForward out ×1.02", "innerForward", INNER, (b, a) -> {
                    b.innerForward((InnerInputs) a[0], (Tensor) a[1], (Tensor) a[2], (Integer) a[3],
                            (Tensor) a[4]);
                    Intercepted.scale(b, (Tensor) a[1], 1.02);
                    return null;
                }),
                new Sabotage("innerBackward dXK ×1.03", "innerBackward", INNER, (b, a) -> {
                    InnerGrads g = (InnerGrads) a[4];
                    b.innerBackward((InnerInputs) a[0], (Tensor) a[1], (Integer) a[2], (Tensor) a[3], g);
                    Intercepted.scale(b, g.xk(), 1.03);
                    return null;
                }));
    }

    private static List<Tensor> tensors(List<?> x) {
        return x.stream().map(Tensor.class::cast).toList();
    }

    private static Tensor scaledCopy(Backend b, Tensor t, double factor) {
        Tensor copy = b.allocate(t.dtype(), t.shape());
        b.upload(b.download(t), copy);
        Intercepted.scale(b, copy, factor);
        return copy;
    }

    static Stream<Arguments> cases() {
        return sabotages().flatMap(s -> Stream.of(DType.values()).map(d -> Arguments.of(s, d)));
    }

    @ParameterizedTest(name = "{0}, {1}")
    @MethodSource("cases")
    void everyDtypesCheckFailsTheSabotagedOp(Sabotage s, DType dtype) {
        try (Backend broken = s.on(dtype)) {
            Verifier.Scope scope = new Verifier.Scope(VerifierTest.SMALL, List.of(TttType.LINEAR), 1, 32, s.parts(), true);
            List<Row> rows = Verifier.check(broken, s::on, scope, false, 11, null);
            List<Row> failed = rows.stream().filter(r -> !r.passed()).toList();
            StringBuilder report = new StringBuilder(s + " " + dtype.flag() + ":");
            for (Row r : failed) report.append("\n  ").append(r.format());
            assertTrue(failed.stream().allMatch(s::owns), report::toString);
            assertTrue(failed.stream().anyMatch(r -> r.dtype() == dtype), report::toString);
            if (dtype != DType.FLOAT32) {
                assertTrue(failed.stream().anyMatch(r -> r.dtype() == DType.FLOAT32), report::toString);
            }
        }
    }

    /** Each sabotage once, the dtypes in turn. */
    static Stream<Arguments> gateCases() {
        List<Sabotage> all = sabotages().toList();
        return IntStream.range(0, all.size()).mapToObj(i -> Arguments.of(all.get(i), DType.values()[i % 3]));
    }

    /**
     * The setup check of a benchmark that runs the sabotaged op: a forward op's in the forward, a
     * backward op's in the training step (one mini-batch of 12m), the inner scan's in the inner
     * benchmarks.
     */
    @ParameterizedTest(name = "{0}, {1}")
    @MethodSource("gateCases")
    void aBenchmarksSetupCheckRefusesToTimeIt(Sabotage s, DType dtype) {
        boolean backward = s.op().contains("Backward") || s.op().equals("matmulSum");
        boolean inner = s.parts().contains(Verifier.Part.INNER);
        Workload w = new Workload("12m", TttType.LINEAR, backward, inner, 1, 16, 16, dtype, 1, false, null);
        try (Backend broken = s.on(dtype)) {
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> Verifier.checkConfig(broken, s::on, w, 5));
            assertTrue(e.getMessage().contains("refusing to time it"), e.getMessage());
            assertTrue(e.getMessage().contains("reproduce with: tttbench verify --model-size 12m --ttt-type linear --dtype "
                    + dtype.flag() + " --seed 5 --gate " + w.benchmark().method() + " "), e.getMessage());
        }
    }
}

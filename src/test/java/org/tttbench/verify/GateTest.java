package org.tttbench.verify;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.tttbench.backend.Backend;
import org.tttbench.backend.InnerInputs;
import org.tttbench.backend.KernelChoice;
import org.tttbench.backend.ScanShape;
import org.tttbench.config.DType;
import org.tttbench.config.TttType;
import org.tttbench.config.Workload;
import org.tttbench.cpu.CpuBackend;

/** What a benchmark's setup check runs: the timed run's kernels, at the timed run's batch, on a shorter sequence. */
class GateTest {

    static final KernelChoice CHOSEN = new KernelChoice("ttt_linear_forward_fused", "ttt_linear_backward_chain_fixed");

    /** A CPU backend that claims a choice of scan kernels and records what the check asks of it. */
    static final class Recorder {
        final List<ScanShape> asked = new ArrayList<>();
        final List<KernelChoice> forced = new ArrayList<>();
        /** Each scan: "forward"/"backward", the batch, sequence length and interval it ran at, and the kernels forced then. */
        final List<String> scans = new ArrayList<>();
        private KernelChoice current = KernelChoice.OWN;

        Backend on(DType dtype) {
            Backend inner = new CpuBackend(dtype);
            return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                    (proxy, m, args) -> {
                        switch (m.getName()) {
                            case "kernelOptions" -> {
                                return List.of(KernelChoice.forward(CHOSEN.forward()), KernelChoice.backward(CHOSEN.backward()));
                            }
                            case "kernels" -> {
                                asked.add((ScanShape) args[0]);
                                return CHOSEN;
                            }
                            case "force" -> {
                                current = (KernelChoice) args[0];
                                forced.add(current);
                                return null;
                            }
                            case "innerForward" -> scan("forward", (InnerInputs) args[0], (Integer) args[3]);
                            case "innerBackward" -> scan("backward", (InnerInputs) args[0], (Integer) args[2]);
                            default -> {
                            }
                        }
                        try {
                            return m.invoke(inner, args);
                        } catch (InvocationTargetException e) {
                            throw e.getCause();
                        }
                    });
        }

        private void scan(String direction, InnerInputs in, int interval) {
            scans.add(direction + " B=" + in.batch() + " L=" + in.seqLen() + " c=" + interval + " " + current.label());
        }
    }

    @Test
    void aTrainingBenchmarkChecksItsOwnKernelsAtItsBatchOnTwoSegments() {
        // batch 2 × 4 heads pick the kernels; interval 3 of 16-token mini-batches: 96 tokens cover two segments.
        Workload w = new Workload("12m", TttType.LINEAR, true, false, 2, 256, 16, DType.FLOAT32, 3, false, null);
        Recorder rec = new Recorder();
        try (Backend b = rec.on(DType.FLOAT32)) {
            Verifier.Verified v = Verifier.checkConfig(b, rec::on, w, 17);
            assertEquals("ttt_linear_forward_fused / ttt_linear_backward_chain_fixed", v.kernel());
            assertEquals(17, v.seed());
            assertEquals(new ScanShape(TttType.LINEAR, 64, 16, DType.FLOAT32, 8, 3), rec.asked.get(0));
            assertEquals(List.of(CHOSEN, KernelChoice.OWN), rec.forced);
            assertTrue(rec.scans.size() >= 4, rec.scans.toString());
            for (String s : rec.scans) {
                assertTrue(s.endsWith(" B=2 L=96 c=3 " + CHOSEN.label()), s);
            }
        }
    }

    @Test
    void aForwardBenchmarkForcesItsForwardKernelOnly() {
        Workload w = new Workload("12m", TttType.LINEAR, false, true, 5, 2048, 16, DType.FLOAT32, 1, false, null);
        Recorder rec = new Recorder();
        try (Backend b = rec.on(DType.FLOAT32)) {
            Verifier.Verified v = Verifier.checkConfig(b, rec::on, w, 3);
            assertEquals("ttt_linear_forward_fused", v.kernel());
            assertEquals(20, rec.asked.get(0).pairs());
            assertEquals(List.of("forward B=5 L=64 c=1 ttt_linear_forward_fused"), rec.scans);
        }
    }

    @Test
    void aSixteenBitCheckForcesTheSameKernelsOnItsFloat32Instantiation() {
        Workload w = new Workload("12m", TttType.MLP, false, true, 1, 64, 16, DType.BFLOAT16, 1, false, null);
        Recorder rec = new Recorder();
        try (Backend b = rec.on(DType.BFLOAT16)) {
            Verifier.Verified v = Verifier.checkConfig(b, rec::on, w, 3);
            assertTrue(v.passed());
            // The twin pass, then the 16-bit pass, each with the kernel forced and released.
            assertEquals(List.of(KernelChoice.forward(CHOSEN.forward()), KernelChoice.OWN,
                    KernelChoice.forward(CHOSEN.forward()), KernelChoice.OWN), rec.forced);
            assertEquals(2, v.rows().stream().map(Row::dtype).distinct().count());
        }
    }

    @Test
    void theSequenceShrinksButCoversTwoSegmentsWhereTheRunHasThem() {
        Workload forward = new Workload("12m", TttType.LINEAR, false, false, 1, 2048, 16, DType.FLOAT32, 1, false, null);
        assertEquals(64, Verifier.reducedLength(forward));
        assertEquals(64, Verifier.reducedLength(forward.as(org.tttbench.config.BenchmarkKind.BACKWARD)));
        Workload c16 = new Workload("12m", TttType.LINEAR, true, false, 1, 2048, 16, DType.FLOAT32, 16, false, null);
        assertEquals(512, Verifier.reducedLength(c16));
        // Three mini-batches at interval 2: the run's own length.
        Workload short3 = new Workload("12m", TttType.LINEAR, true, false, 1, 48, 16, DType.FLOAT32, 2, false, null);
        assertEquals(48, Verifier.reducedLength(short3));
        Workload k64 = new Workload("12m", TttType.LINEAR, false, false, 1, 128, 64, DType.FLOAT32, 1, false, null);
        assertEquals(64, Verifier.reducedLength(k64));
    }

    @Test
    void theSameSeedGivesTheSameCheckAndAnotherSeedAnother() {
        Workload w = new Workload("12m", TttType.LINEAR, true, true, 1, 64, 16, DType.BFLOAT16, 2, false, null);
        try (CpuBackend cpu = new CpuBackend(DType.BFLOAT16)) {
            List<Double> a = tolerances(Verifier.checkConfig(cpu, CpuBackend::new, w, 99));
            List<Double> b = tolerances(Verifier.checkConfig(cpu, CpuBackend::new, w, 99));
            List<Double> c = tolerances(Verifier.checkConfig(cpu, CpuBackend::new, w, 100));
            assertEquals(a, b);
            assertNotEquals(a, c);
        }
    }

    @Test
    void aBackendWithoutKernelsToChooseReportsNone() {
        Workload w = new Workload("12m", TttType.LINEAR, false, true, 1, 64, 16, DType.FLOAT32, 1, false, null);
        try (CpuBackend cpu = new CpuBackend(DType.FLOAT32)) {
            assertNull(Verifier.checkConfig(cpu, CpuBackend::new, w, 1).kernel());
        }
    }

    /** The 16-bit rows' tolerances, which the spread of the seed's inputs sets. */
    private static List<Double> tolerances(Verifier.Verified v) {
        return v.rows().stream().filter(r -> r.dtype() == DType.BFLOAT16).map(Row::tolerance).toList();
    }
}

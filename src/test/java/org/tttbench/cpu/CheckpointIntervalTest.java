package org.tttbench.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.tttbench.backend.InnerGrads;
import org.tttbench.backend.Tensor;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;
import org.tttbench.model.InnerProblem;
import org.tttbench.model.Parameters;
import org.tttbench.model.TttModel;

/** SPEC §4: gradients must not depend on the checkpoint interval c beyond rounding. */
class CheckpointIntervalTest {

    /** 7 mini-batches of 4: c = 2 and 3 leave a short last segment, c = 7 keeps one state. */
    private static final int SEQ_LEN = 28;
    private static final int[] INTERVALS = {1, 2, 3, 7};

    @ParameterizedTest
    @EnumSource(TttType.class)
    void modelGradientsDoNotDependOnTheInterval(TttType type) {
        CpuBackend be = new CpuBackend(DType.FLOAT32);
        ModelConfig cfg = RandomModel.config(type);
        Parameters weights = RandomModel.parameters(be, cfg, 11, true);
        int[] ids = RandomModel.ids(2 * SEQ_LEN, cfg.vocab(), 12);
        List<Map<String, Tensor>> grads = new ArrayList<>();
        for (int c : INTERVALS) {
            TttModel m = new TttModel(be, cfg, weights, ids, 2, SEQ_LEN, true, c);
            m.forward();
            m.backward();
            grads.add(m.gradients().byName());
        }
        for (int i = 1; i < INTERVALS.length; i++) {
            for (String name : grads.get(0).keySet()) {
                double err = RandomModel.relativeError(be.download(grads.get(i).get(name)),
                        be.download(grads.get(0).get(name)));
                assertTrue(err <= 1e-6, name + " with c=" + INTERVALS[i] + " differs from c=1 by " + err);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(TttType.class)
    void innerGradientsDoNotDependOnTheInterval(TttType type) {
        CpuBackend be = new CpuBackend(DType.FLOAT32);
        ModelConfig cfg = new ModelConfig(32, 32, 1, 4, 24, 4, type);
        List<InnerGrads> grads = new ArrayList<>();
        for (int c : INTERVALS) {
            InnerProblem p = new InnerProblem(be, cfg, 2, SEQ_LEN, 5, true, c);
            p.backward();
            grads.add(p.gradients());
        }
        for (int i = 1; i < INTERVALS.length; i++) {
            Tensor[] a = tensors(grads.get(i));
            Tensor[] ref = tensors(grads.get(0));
            for (int t = 0; t < a.length; t++) {
                if (ref[t] == null) continue;
                double err = RandomModel.relativeError(be.download(a[t]), be.download(ref[t]));
                assertTrue(err <= 1e-6, "inner gradient #" + t + " with c=" + INTERVALS[i] + " differs by " + err);
            }
        }
    }

    /** Slot j of the checkpoints holds the state before mini-batch j·c (innerForward's contract). */
    @ParameterizedTest
    @EnumSource(TttType.class)
    void checkpointSlotsHoldTheStateBeforeEveryCthMiniBatch(TttType type) {
        CpuBackend be = new CpuBackend(DType.FLOAT32);
        ModelConfig cfg = new ModelConfig(32, 32, 1, 4, 24, 4, type);
        InnerProblem p = new InnerProblem(be, cfg, 2, SEQ_LEN, 5, false, 1);
        int n = SEQ_LEN / cfg.miniBatch();
        int s = cfg.innerStateSize();
        int pairs = 2 * cfg.heads();
        Tensor out = be.allocate(2, SEQ_LEN, cfg.hidden());
        Tensor every = be.allocate(DType.FLOAT32, n, 2, cfg.heads(), s);
        Tensor last = be.allocate(DType.FLOAT32, 2, cfg.heads(), s);
        be.innerForward(p.inputs(), out, every, 1, last);
        float[] all = be.download(every);
        // Slot 0 is the initial state: the parameters W1, b1 (W2, b2) of head h.
        float[] w1 = be.download(p.inputs().w1());
        int f1 = cfg.innerHidden();
        int f = cfg.headDim();
        for (int pair = 0; pair < pairs; pair++) {
            int h = pair % cfg.heads();
            for (int i = 0; i < f * f1; i++) assertTrue(all[pair * s + i] == w1[h * f * f1 + i], "slot 0 is not W1");
        }
        for (int c : new int[] {2, 3}) {
            int slots = (n + c - 1) / c;
            Tensor some = be.allocate(DType.FLOAT32, slots, 2, cfg.heads(), s);
            Tensor out2 = be.allocate(2, SEQ_LEN, cfg.hidden());
            be.innerForward(p.inputs(), out2, some, c, null);
            float[] got = be.download(some);
            for (int j = 0; j < slots; j++) {
                float[] expected = java.util.Arrays.copyOfRange(all, j * c * pairs * s, (j * c + 1) * pairs * s);
                float[] actual = java.util.Arrays.copyOfRange(got, j * pairs * s, (j + 1) * pairs * s);
                assertArrayEquals(expected, actual, "c=" + c + " slot " + j);
            }
            assertArrayEquals(be.download(out), be.download(out2), "out must not depend on checkpointing");
        }
        // The state after the last mini-batch moved away from the one before it.
        float[] lastState = be.download(last);
        float[] beforeLast = java.util.Arrays.copyOfRange(all, (n - 1) * pairs * s, n * pairs * s);
        assertTrue(RandomModel.relativeError(beforeLast, lastState) > 1e-6, "lastState is not the updated state");
    }

    private static Tensor[] tensors(InnerGrads g) {
        return new Tensor[] {g.xq(), g.xk(), g.xv(), g.lr(), g.tok(), g.w1(), g.b1(), g.w2(), g.b2(), g.normWeight(),
                g.normBias()};
    }
}

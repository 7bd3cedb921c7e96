package org.tttbench.harness;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.tttbench.backend.InnerGrads;
import org.tttbench.backend.Backend;
import org.tttbench.backend.Tensor;
import org.tttbench.config.BenchmarkKind;
import org.tttbench.config.Workload;
import org.tttbench.config.ModelConfig;
import org.tttbench.io.WeightsLoader;
import org.tttbench.model.InnerProblem;
import org.tttbench.model.ParameterSpec;
import org.tttbench.model.Parameters;
import org.tttbench.model.TttModel;

/**
 * One benchmark of SPEC §4 built on a backend in setup (weights, inputs, every buffer), so that
 * {@link #run()} only issues the timed work. Weights come from the workload's safetensors file
 * or the seeded init.
 */
public final class BenchmarkWork {

    public static final long SEED = 20240704L;

    private final BenchmarkKind kind;
    private final TttModel model;
    private final InnerProblem inner;

    private BenchmarkWork(BenchmarkKind kind, TttModel model, InnerProblem inner) {
        this.kind = kind;
        this.model = model;
        this.inner = inner;
    }

    public static BenchmarkWork build(Backend backend, Workload workload) {
        BenchmarkKind kind = workload.benchmark();
        ModelConfig m = workload.model();
        if (kind.innerOnly()) {
            return new BenchmarkWork(kind, null, new InnerProblem(backend, m, workload.batch(), workload.seqLen(), SEED,
                    kind.backward(), workload.checkpointInterval()));
        }
        Parameters weights = new Parameters(backend, ParameterSpec.model(m));
        if (workload.weights() != null) {
            try {
                WeightsLoader.load(workload.weights(), weights, backend);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        } else {
            weights.initialize(backend, SEED);
        }
        int[] ids = randomTokens(m.vocab(), workload.batch() * workload.seqLen(), SEED);
        TttModel model = new TttModel(backend, m, weights, ids, workload.batch(), workload.seqLen(), kind.backward(),
                workload.checkpointInterval());
        return new BenchmarkWork(kind, model, null);
    }
    static int[] randomTokens(int vocab, int count, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] ids = new int[count];
        for (int i = 0; i < count; i++) ids[i] = r.nextInt(vocab);
        return ids;
    }

    public BenchmarkKind kind() {
        return kind;
    }

    /** Issues the timed work; the caller synchronizes. */
    public void run() {
        switch (kind) {
            case FORWARD -> model.forward();
            case BACKWARD -> {
                model.forward();
                model.backward();
            }
            case INNER_FORWARD -> inner.forward();
            case INNER_BACKWARD -> inner.backward();
        }
    }

    /** A tensor that the timed work wrote, so the work cannot be discarded. */
    public Tensor output() {
        return switch (kind) {
            case FORWARD -> model.logits();
            case BACKWARD -> model.gradients().get("model.embed_tokens.weight");
            case INNER_FORWARD -> inner.out();
            case INNER_BACKWARD -> inner.gradients().xq();
        };
    }

    /**
     * Every tensor a run writes that the benchmark's result consists of (SPEC §4), by name: the
     * logits, and for a backward every parameter's gradient; the inner output, and for the inner
     * backward every gradient it produces. Two ways of issuing the same run must agree on all.
     */
    public Map<String, Tensor> outputs() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        switch (kind) {
            case FORWARD -> out.put("logits", model.logits());
            case BACKWARD -> {
                out.put("logits", model.logits());
                model.gradients().byName().forEach((name, t) -> out.put("grad." + name, t));
            }
            case INNER_FORWARD -> out.put("inner.out", inner.out());
            case INNER_BACKWARD -> {
                out.put("inner.out", inner.out());
                InnerGrads g = inner.gradients();
                put(out, "inner.grad.XQ", g.xq());
                put(out, "inner.grad.XK", g.xk());
                put(out, "inner.grad.XV", g.xv());
                put(out, "inner.grad.ttt_lr_eta", g.lr());
                put(out, "inner.grad.token_eta", g.tok());
                put(out, "inner.grad.W1", g.w1());
                put(out, "inner.grad.b1", g.b1());
                put(out, "inner.grad.W2", g.w2());
                put(out, "inner.grad.b2", g.b2());
                put(out, "inner.grad.ttt_norm_weight", g.normWeight());
                put(out, "inner.grad.ttt_norm_bias", g.normBias());
            }
        }
        return out;
    }

    private static void put(Map<String, Tensor> out, String name, Tensor t) {
        if (t != null) out.put(name, t);
    }
}

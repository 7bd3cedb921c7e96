package org.tttbench.validate;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.tttbench.backend.Backend;
import org.tttbench.backend.InnerGrads;
import org.tttbench.backend.InnerInputs;
import org.tttbench.backend.Tensor;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;
import org.tttbench.cpu.CpuBackend;
import org.tttbench.io.Safetensors;
import org.tttbench.io.WeightsLoader;
import org.tttbench.model.ParameterSpec;
import org.tttbench.model.Parameters;
import org.tttbench.model.TttModel;

/**
 * Checks a backend against a case file in the golden format (SPEC §7): runs the model's
 * forward and backward (checkpoint interval 1) on the file's parameters and token ids, and the
 * inner loop of one layer on the file's own inner inputs, and compares every reference the
 * file holds: {@code logits}, {@code hidden.i}, {@code grad.<param>}, {@code inner.out},
 * {@code inner.last.*} and {@code inner.grad.*}.
 *
 * <p>Tolerances ({@link Tolerances#golden}): float32 {@value Tolerances#GOLDEN_FLOAT32} on every
 * tensor. In bfloat16 and float16 each tensor's own: the CPU backend runs the case in that storage
 * and in float32 (the float32 run is within 1e-6 of the float64 reference, so their difference is
 * what the storage costs, the rounding of the file's parameters and inputs included), and the tensor
 * is held to {@value Tolerances#SPREAD_FACTOR} times their relative difference. A forward tensor
 * that storage rounds once gets a tight tolerance, a gradient that sums nearly cancelling terms over
 * every token (the learning-rate bias, the token index) the loose one its own rounding earns; none
 * is left unjudged.
 */
public final class Validator {

    private Validator() {
    }

    /**
     * @throws IllegalArgumentException when the file lacks what the run needs (metadata, a
     *                                  parameter, an inner input) or has a tensor of the wrong shape
     */
    public static List<ValidationRow> run(Safetensors.Contents contents, Backend backend) {
        GoldenCase c = GoldenCase.load(contents);
        DType dtype = backend.dtype();
        Map<String, float[]> computed = outputs(c, backend);
        Map<String, float[]> reduced = null;
        Map<String, float[]> full = null;
        if (dtype != DType.FLOAT32) {
            try (CpuBackend r = new CpuBackend(dtype); CpuBackend f = new CpuBackend(DType.FLOAT32)) {
                reduced = outputs(c, r);
                full = outputs(c, f);
            }
        }
        List<ValidationRow> rows = new ArrayList<>();
        for (Map.Entry<String, float[]> e : computed.entrySet()) {
            String name = e.getKey();
            double spread = reduced == null ? 0 : RelativeError.spread(reduced.get(name), full.get(name));
            rows.add(ValidationRow.of(name, RelativeError.of(e.getValue(), contents.require(name).values()),
                    Tolerances.golden(dtype, spread)));
        }
        return rows;
    }

    /** Every tensor the case holds a reference for, computed on {@code backend}, by reference name, in the order of the rows. */
    private static Map<String, float[]> outputs(GoldenCase c, Backend backend) {
        Safetensors.Contents contents = c.contents();
        ModelConfig cfg = c.config();
        Parameters weights = new Parameters(backend, ParameterSpec.model(cfg));
        WeightsLoader.load(contents, weights, backend);
        Compare compare = new Compare(contents, backend, new LinkedHashMap<>());

        TttModel model = new TttModel(backend, cfg, weights, c.inputIds(), c.batch(), c.seqLen(), true, 1);
        model.forward();
        model.backward();
        backend.synchronize();
        compare.ifPresent("logits", model.logits());
        for (int i = 0; i <= cfg.layers(); i++) compare.ifPresent("hidden." + i, model.hidden(i));
        for (String name : contents.tensors().keySet()) {
            if (!name.startsWith("grad.")) continue;
            String param = name.substring("grad.".length());
            if (model.gradients().find(param) == null) {
                throw new IllegalArgumentException("case file holds " + name + ", but the model has no parameter " + param);
            }
        }
        for (ParameterSpec s : weights.specs()) compare.ifPresent("grad." + s.name(), model.gradients().get(s.name()));

        if (contents.tensors().containsKey("inner.out")) inner(c, weights, backend, compare);
        return compare.computed();
    }

    /** The inner loop of the case's layer on the file's inner inputs: out, final states, gradients. */
    private static void inner(GoldenCase c, Parameters weights, Backend be, Compare compare) {
        ModelConfig cfg = c.config();
        int b = c.batch();
        int h = cfg.heads();
        int l = c.seqLen();
        int f = cfg.headDim();
        int f1 = cfg.innerHidden();
        int k = cfg.miniBatch();
        boolean mlp = cfg.tttType() == TttType.MLP;
        String p = ParameterSpec.layerPrefix(c.innerLayer()) + "seq_modeling_block.";
        InnerInputs in = new InnerInputs(cfg.tttType(), b, h, l, f, k,
                compare.upload("inner.XQ", b, h, l, f), compare.upload("inner.XK", b, h, l, f),
                compare.upload("inner.XV", b, h, l, f), compare.upload("inner.ttt_lr_eta", b, h, l),
                compare.upload("inner.token_eta", k),
                weights.get(p + "W1"), weights.get(p + "b1"), weights.find(p + "W2"), weights.find(p + "b2"),
                weights.get(p + "ttt_norm_weight"), weights.get(p + "ttt_norm_bias"));
        int s = cfg.innerStateSize();
        Tensor out = be.allocate(b, l, cfg.hidden());
        Tensor checkpoints = be.allocate(DType.FLOAT32, in.miniBatches(), b, h, s);
        Tensor last = be.allocate(DType.FLOAT32, b, h, s);
        be.innerForward(in, out, checkpoints, 1, last);
        Tensor dOut = be.allocate(b, l, cfg.hidden());
        be.fill(dOut, 1f);
        InnerGrads g = new InnerGrads(
                be.allocate(b, h, l, f), be.allocate(b, h, l, f), be.allocate(b, h, l, f), be.allocate(b, h, l),
                be.allocate(k), be.allocate(h, f, f1), be.allocate(h, 1, f1),
                mlp ? be.allocate(h, f1, f) : null, mlp ? be.allocate(h, 1, f) : null,
                be.allocate(h, f), be.allocate(h, f));
        be.innerBackward(in, checkpoints, 1, dOut, g);
        be.synchronize();

        compare.ifPresent("inner.out", out);
        // The packed final state [B, H, S] unpacked into W1, b1, W2, b2, each [B, H, …].
        float[] state = be.download(last);
        Map<String, Integer> parts = new LinkedHashMap<>();
        parts.put("W1", f * f1);
        parts.put("b1", f1);
        if (mlp) {
            parts.put("W2", f1 * f);
            parts.put("b2", f);
        }
        int offset = 0;
        for (Map.Entry<String, Integer> part : parts.entrySet()) {
            int n = part.getValue();
            float[] values = new float[b * h * n];
            for (int seq = 0; seq < b * h; seq++) System.arraycopy(state, seq * s + offset, values, seq * n, n);
            compare.ifPresent("inner.last." + part.getKey(), values);
            offset += n;
        }
        Map<String, Tensor> grads = new LinkedHashMap<>();
        grads.put("W1", g.w1());
        grads.put("b1", g.b1());
        if (mlp) {
            grads.put("W2", g.w2());
            grads.put("b2", g.b2());
        }
        grads.put("ttt_norm_weight", g.normWeight());
        grads.put("ttt_norm_bias", g.normBias());
        grads.put("XQ", g.xq());
        grads.put("XK", g.xk());
        grads.put("XV", g.xv());
        grads.put("ttt_lr_eta", g.lr());
        grads.put("token_eta", g.tok());
        for (String name : compare.contents.tensors().keySet()) {
            if (name.startsWith("inner.grad.") && !grads.containsKey(name.substring("inner.grad.".length()))) {
                throw new IllegalArgumentException("case file holds " + name + ", which the inner loop does not produce");
            }
        }
        for (Map.Entry<String, Tensor> e : grads.entrySet()) compare.ifPresent("inner.grad." + e.getKey(), e.getValue());
    }

    /** Reads references and inputs from the file and keeps each computed tensor that has a reference. */
    private record Compare(Safetensors.Contents contents, Backend backend, Map<String, float[]> computed) {

        void ifPresent(String name, Tensor t) {
            if (contents.tensors().containsKey(name)) ifPresent(name, backend.download(t));
        }

        void ifPresent(String name, float[] values) {
            Safetensors.Entry ref = contents.tensors().get(name);
            if (ref == null) return;
            if (ref.size() != values.length) {
                throw new IllegalArgumentException(name + " has shape " + Arrays.toString(ref.shape()) + " ("
                        + ref.size() + " values), but the computed tensor has " + values.length);
            }
            computed.put(name, values);
        }

        /** A tensor of the file, checked against the expected shape, on the backend. */
        Tensor upload(String name, int... shape) {
            Safetensors.Entry e = contents.require(name);
            if (!Arrays.equals(e.shape(), shape)) {
                throw new IllegalArgumentException(name + " has shape " + Arrays.toString(e.shape()) + ", expected "
                        + Arrays.toString(shape));
            }
            Tensor t = backend.allocate(shape);
            backend.upload(e.toFloats(), t);
            return t;
        }
    }
}

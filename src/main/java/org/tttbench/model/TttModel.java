package org.tttbench.model;

import java.util.ArrayList;
import java.util.List;
import org.tttbench.backend.Backend;
import org.tttbench.backend.InnerGrads;
import org.tttbench.backend.InnerInputs;
import org.tttbench.backend.Tensor;
import org.tttbench.backend.TokenIds;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;

/**
 * The TTT language model of SPEC §3, written once against {@link org.tttbench.backend.TttOps}.
 * Every activation the backward needs, and every gradient, is allocated here, once; forward
 * and backward only issue ops.
 */
public final class TttModel {

    private final Backend be;
    private final ModelConfig cfg;
    private final int batch;
    private final int seqLen;
    private final int tokens;
    private final int interval;
    private final Parameters weights;
    private final Parameters grads;
    private final TokenIds ids;
    private final List<LayerActivations> acts = new ArrayList<>();
    private final Tensor hFinal;
    private final Tensor rstdFinal;
    private final Tensor logits;
    /** The residual stream after the last block (training keeps every block's input apart). */
    private final Tensor residualOut;
    /** d sum(logits) / d logits: all ones, filled once in setup. */
    private final Tensor dLogits;
    // Backward scratch, shared by all layers.
    private final Tensor dh;
    private final Tensor dTmp;
    private final Tensor dFfnS;
    private final Tensor dGate;
    private final Tensor dUp;
    private final Tensor dInnerOut;
    private final Tensor dq;
    private final Tensor dk;
    private final Tensor dv;
    private final InnerGrads innerGrads;
    /** The gradients only ever accumulated into (see {@link #overwritten}), zeroed before a backward. */
    private final List<Tensor> accumulatedGrads = new ArrayList<>();

    /** Activations of one block, kept from the forward for the backward. */
    private record LayerActivations(
            Tensor hIn, Tensor rstdSeq, Tensor xn, Tensor q, Tensor k, Tensor v,
            Tensor xqh, Tensor xkh, Tensor xvh, Tensor lr, Tensor tok, Tensor innerOut,
            Tensor postMean, Tensor postRstd, Tensor post, Tensor hMid, Tensor rstdFfn, Tensor y,
            Tensor gate, Tensor up, Tensor swi, Tensor checkpoints) {
    }

    /**
     * @param training   allocate gradients and the backward's state (checkpoints, scratch)
     * @param interval   checkpoint interval c of the inner scans (training only)
     * @param weights    the model's parameters on {@code backend} (see {@link ParameterSpec#model})
     */
    public TttModel(Backend backend, ModelConfig cfg, Parameters weights, int[] ids, int batch, int seqLen,
            boolean training, int interval) {
        this.be = backend;
        this.cfg = cfg;
        this.batch = batch;
        this.seqLen = seqLen;
        this.tokens = batch * seqLen;
        this.interval = interval;
        this.weights = weights;
        this.ids = backend.uploadIds(ids, batch, seqLen);
        int d = cfg.hidden();
        int h = cfg.heads();
        int f = cfg.headDim();
        int n = seqLen / cfg.miniBatch();
        int slots = (n + interval - 1) / interval;
        // Without training, one set of activations is reused by every layer.
        int sets = training ? cfg.layers() : 1;
        for (int i = 0; i < sets; i++) {
            // Outputs of one batched product lie at a fixed stride.
            List<Tensor> qkv = adjacent(3, tokens, d);
            List<Tensor> gateUp = adjacent(2, tokens, cfg.ffn());
            acts.add(new LayerActivations(
                    be.allocate(tokens, d), be.allocate(DType.FLOAT32, tokens), be.allocate(tokens, d),
                    qkv.get(0), qkv.get(1), qkv.get(2),
                    be.allocate(batch, h, seqLen, f), be.allocate(batch, h, seqLen, f), be.allocate(batch, h, seqLen, f),
                    be.allocate(batch, h, seqLen), be.allocate(cfg.miniBatch()), be.allocate(tokens, d),
                    be.allocate(DType.FLOAT32, tokens), be.allocate(DType.FLOAT32, tokens), be.allocate(tokens, d),
                    be.allocate(tokens, d), be.allocate(DType.FLOAT32, tokens), be.allocate(tokens, d),
                    gateUp.get(0), gateUp.get(1), be.allocate(tokens, cfg.ffn()),
                    training ? be.allocate(DType.FLOAT32, slots, batch, h, cfg.innerStateSize()) : null));
        }
        this.hFinal = be.allocate(tokens, d);
        this.rstdFinal = be.allocate(DType.FLOAT32, tokens);
        this.logits = be.allocate(tokens, cfg.vocab());
        this.residualOut = training ? be.allocate(tokens, d) : acts.get(0).hIn();
        if (training) {
            this.dLogits = be.allocate(tokens, cfg.vocab());
            be.fill(dLogits, 1f);
            // Gradients a product overwrites lie after the ones that are accumulated, which are zeroed as one range.
            this.grads = new Parameters(be, weights.specs(), name -> !overwritten(name));
            grads.byName().forEach((name, g) -> {
                if (!overwritten(name)) accumulatedGrads.add(g);
            });
            this.dh = be.allocate(tokens, d);
            this.dTmp = be.allocate(tokens, d);
            this.dFfnS = be.allocate(tokens, cfg.ffn());
            List<Tensor> dGateUp = adjacent(2, tokens, cfg.ffn());
            this.dGate = dGateUp.get(0);
            this.dUp = dGateUp.get(1);
            this.dInnerOut = be.allocate(tokens, d);
            List<Tensor> dqkv = adjacent(3, tokens, d);
            this.dq = dqkv.get(0);
            this.dk = dqkv.get(1);
            this.dv = dqkv.get(2);
            this.innerGrads = new InnerGrads(
                    be.allocate(batch, h, seqLen, f), be.allocate(batch, h, seqLen, f), be.allocate(batch, h, seqLen, f),
                    be.allocate(batch, h, seqLen), be.allocate(cfg.miniBatch()),
                    null, null, null, null, null, null);
        } else {
            this.grads = null;
            this.dLogits = null;
            this.dh = this.dTmp = this.dFfnS = this.dGate = this.dUp = this.dInnerOut = null;
            this.dq = this.dk = this.dv = null;
            this.innerGrads = null;
        }
    }

    /**
     * Whether the backward's first write to this gradient is a product that overwrites it
     * (the weights of linear layers, and the embedding, whose LM-head gradient comes before the
     * lookup's): each is written by exactly one product per backward, every other op only adds
     * to it later, so it needs no zeroing. Every other gradient is only ever accumulated.
     */
    static boolean overwritten(String name) {
        return name.equals("model.embed_tokens.weight") || name.endsWith("_proj.weight");
    }

    private List<Tensor> adjacent(int count, int... shape) {
        return be.allocateAdjacent(be.dtype(), java.util.Collections.nCopies(count, shape));
    }

    public ModelConfig config() {
        return cfg;
    }

    public Parameters weights() {
        return weights;
    }

    /** Gradients of sum(logits) after {@link #backward()}; null when not built for training. */
    public Parameters gradients() {
        return grads;
    }

    /** logits [B, L, V] of the last forward. */
    public Tensor logits() {
        return logits;
    }

    /**
     * The output of block i (i &lt; N), or after the final RMSNorm (i = N). Only a model built
     * for training keeps every block's output; otherwise only N−1 and N.
     */
    public Tensor hidden(int i) {
        if (i == cfg.layers()) return hFinal;
        if (i == cfg.layers() - 1) return residualOut;
        if (i + 1 < acts.size()) return acts.get(i + 1).hIn();
        throw new IllegalStateException("hidden." + i + " is not kept: only a model built for training keeps every block's output");
    }

    private String p(int layer, String name) {
        return ParameterSpec.layerPrefix(layer) + name;
    }

    private String t(int layer, String name) {
        return ParameterSpec.layerPrefix(layer) + "seq_modeling_block." + name;
    }

    private InnerInputs innerInputs(int layer, LayerActivations a) {
        return new InnerInputs(cfg.tttType(), batch, cfg.heads(), seqLen, cfg.headDim(), cfg.miniBatch(),
                a.xqh(), a.xkh(), a.xvh(), a.lr(), a.tok(),
                weights.get(t(layer, "W1")), weights.get(t(layer, "b1")),
                weights.find(t(layer, "W2")), weights.find(t(layer, "b2")),
                weights.get(t(layer, "ttt_norm_weight")), weights.get(t(layer, "ttt_norm_bias")));
    }

    /** The full forward of SPEC §3; keeps what the backward needs when built for training. */
    public void forward() {
        int d = cfg.hidden();
        int hh = cfg.heads();
        int k = cfg.miniBatch();
        boolean training = grads != null;
        Tensor embed = weights.get("model.embed_tokens.weight");
        Tensor h = acts.get(0).hIn();
        be.embedding(ids, embed, h);
        for (int l = 0; l < cfg.layers(); l++) {
            LayerActivations a = acts.get(training ? l : 0);
            if (a.hIn() != h) throw new IllegalStateException("activation chain broken at layer " + l);
            // The norm of every block's input after the first ran with the residual add that made it.
            if (l == 0) be.rmsNorm(h, weights.get(p(l, "seq_norm.weight")), a.xn(), a.rstdSeq());
            Tensor wq = weights.get(t(l, "q_proj.weight"));
            Tensor wk = weights.get(t(l, "k_proj.weight"));
            Tensor wv = weights.get(t(l, "v_proj.weight"));
            be.matmulBatched(List.of(a.xn()), List.of(wq, wk, wv), List.of(a.q(), a.k(), a.v()), tokens, d, d,
                    false, true, false);
            be.splitHeads(a.q(), a.xqh(), hh, k, true);
            be.splitHeads(a.k(), a.xkh(), hh, k, true);
            be.splitHeads(a.v(), a.xvh(), hh, k, false);
            be.tttLearningRate(a.xn(), weights.get(t(l, "learnable_ttt_lr_weight")),
                    weights.get(t(l, "learnable_ttt_lr_bias")), a.lr());
            be.tokenEta(weights.get(t(l, "learnable_token_idx")), a.tok());
            be.innerForward(innerInputs(l, a), a.innerOut(), a.checkpoints(), interval, null);
            be.layerNorm(a.innerOut(), weights.get(t(l, "post_norm.weight")), weights.get(t(l, "post_norm.bias")),
                    a.post(), a.postMean(), a.postRstd());
            // hMid = h + post · Woᵀ: the projection lands in hMid, then the residual is added.
            be.matmul(a.post(), weights.get(t(l, "o_proj.weight")), a.hMid(), tokens, d, d, false, true, false);
            Tensor ffnGain = weights.get(p(l, "ffn_norm.weight"));
            be.addRmsNorm(a.hMid(), h, a.hMid(), ffnGain, a.y(), a.rstdFfn());
            Tensor wGate = weights.get(p(l, "mlp.gate_proj.weight"));
            Tensor wUp = weights.get(p(l, "mlp.up_proj.weight"));
            be.matmulBatched(List.of(a.y()), List.of(wGate, wUp), List.of(a.gate(), a.up()), tokens, cfg.ffn(), d,
                    false, true, false);
            be.swiglu(a.gate(), a.up(), a.swi());
            Tensor next = l + 1 < acts.size() ? acts.get(l + 1).hIn() : residualOut;
            be.matmul(a.swi(), weights.get(p(l, "mlp.down_proj.weight")), next, tokens, d, cfg.ffn(), false, true,
                    false);
            // next = hMid + swi · Wdownᵀ, normed for the next block (or by the final norm) in the same pass.
            if (l + 1 < cfg.layers()) {
                LayerActivations an = acts.get(training ? l + 1 : 0);
                be.addRmsNorm(next, a.hMid(), next, weights.get(p(l + 1, "seq_norm.weight")), an.xn(),
                        an.rstdSeq());
            } else {
                be.addRmsNorm(next, a.hMid(), next, weights.get("model.norm.weight"), hFinal, rstdFinal);
            }
            h = next;
        }
        be.matmul(hFinal, embed, logits, tokens, cfg.vocab(), d, false, true, false);
    }

    /**
     * Sets every element of the seed gradient (1, the gradient of sum(logits), unless set here).
     * Checks in float16 scale it down, as loss scaling does in float16 training: the gradients of
     * sum(logits) over a 32000-word vocabulary pass float16's largest value at a few hundred tokens.
     */
    public void seedGradient(float value) {
        if (dLogits == null) throw new IllegalStateException("model was not built for training");
        be.fill(dLogits, value);
    }

    /**
     * The gradient of sum(logits) for every parameter, after {@link #forward()} on a model
     * built for training.
     */
    public void backward() {
        if (grads == null) throw new IllegalStateException("model was not built for training");
        int d = cfg.hidden();
        int hh = cfg.heads();
        int k = cfg.miniBatch();
        int ffn = cfg.ffn();
        // The products below overwrite the gradients of the linear layers (beta = 0 on a GPU: the old
        // contents are never read), so only the accumulated ones are zeroed.
        be.fillAll(accumulatedGrads, 0f);
        Tensor embed = weights.get("model.embed_tokens.weight");
        Tensor dEmbed = grads.get("model.embed_tokens.weight");
        be.matmul(dLogits, embed, dTmp, tokens, d, cfg.vocab(), false, false, false);
        be.matmul(dLogits, hFinal, dEmbed, cfg.vocab(), d, tokens, true, false, false);
        be.fill(dh, 0f);
        be.rmsNormBackward(residualOut, weights.get("model.norm.weight"), rstdFinal, dTmp, dh,
                grads.get("model.norm.weight"));
        for (int l = cfg.layers() - 1; l >= 0; l--) {
            LayerActivations a = acts.get(l);
            // Feed-forward: next = hMid + swi · Wdownᵀ.
            // For y = x Wᵀ: dW[out, in] = Σ_t dy[t, out] x[t, in] = dyᵀ x, and dx = dy W.
            be.matmul(dh, a.swi(), grads.get(p(l, "mlp.down_proj.weight")), d, ffn, tokens, true, false,
                    false);
            be.matmul(dh, weights.get(p(l, "mlp.down_proj.weight")), dFfnS, tokens, ffn, d, false, false, false);
            be.swigluBackward(a.gate(), a.up(), dFfnS, dGate, dUp);
            Tensor gGate = grads.get(p(l, "mlp.gate_proj.weight"));
            Tensor gUp = grads.get(p(l, "mlp.up_proj.weight"));
            be.matmulBatched(List.of(dGate, dUp), List.of(a.y()), List.of(gGate, gUp), ffn, d, tokens, true, false,
                    false);
            Tensor wGate = weights.get(p(l, "mlp.gate_proj.weight"));
            Tensor wUp = weights.get(p(l, "mlp.up_proj.weight"));
            be.matmulSum(List.of(dGate, dUp), List.of(wGate, wUp), dTmp, tokens, d, ffn, false, false, false);
            be.rmsNormBackward(a.hMid(), weights.get(p(l, "ffn_norm.weight")), a.rstdFfn(), dTmp, dh,
                    grads.get(p(l, "ffn_norm.weight")));
            // TTT layer: hMid = hIn + post · Woᵀ.
            be.matmul(dh, a.post(), grads.get(t(l, "o_proj.weight")), d, d, tokens, true, false, false);
            be.matmul(dh, weights.get(t(l, "o_proj.weight")), dTmp, tokens, d, d, false, false, false);
            be.layerNormBackward(a.innerOut(), weights.get(t(l, "post_norm.weight")), a.postMean(), a.postRstd(),
                    dTmp, dInnerOut, grads.get(t(l, "post_norm.weight")), grads.get(t(l, "post_norm.bias")));
            InnerGrads g = new InnerGrads(innerGrads.xq(), innerGrads.xk(), innerGrads.xv(), innerGrads.lr(),
                    innerGrads.tok(), grads.get(t(l, "W1")), grads.get(t(l, "b1")), grads.find(t(l, "W2")),
                    grads.find(t(l, "b2")), grads.get(t(l, "ttt_norm_weight")), grads.get(t(l, "ttt_norm_bias")));
            be.innerBackward(innerInputs(l, a), a.checkpoints(), interval, dInnerOut, g);
            be.tokenEtaBackward(weights.get(t(l, "learnable_token_idx")), g.tok(),
                    grads.get(t(l, "learnable_token_idx")));
            be.splitHeadsBackward(g.xq(), dq, hh, k, true);
            be.splitHeadsBackward(g.xk(), dk, hh, k, true);
            be.splitHeadsBackward(g.xv(), dv, hh, k, false);
            Tensor gq = grads.get(t(l, "q_proj.weight"));
            Tensor gk = grads.get(t(l, "k_proj.weight"));
            Tensor gv = grads.get(t(l, "v_proj.weight"));
            be.matmulBatched(List.of(dq, dk, dv), List.of(a.xn()), List.of(gq, gk, gv), d, d, tokens, true, false,
                    false);
            Tensor wq = weights.get(t(l, "q_proj.weight"));
            Tensor wk = weights.get(t(l, "k_proj.weight"));
            Tensor wv = weights.get(t(l, "v_proj.weight"));
            be.matmulSum(List.of(dq, dk, dv), List.of(wq, wk, wv), dTmp, tokens, d, d, false, false, false);
            be.tttLearningRateBackward(a.xn(), weights.get(t(l, "learnable_ttt_lr_weight")), a.lr(), g.lr(), dTmp,
                    grads.get(t(l, "learnable_ttt_lr_weight")), grads.get(t(l, "learnable_ttt_lr_bias")));
            be.rmsNormBackward(a.hIn(), weights.get(p(l, "seq_norm.weight")), a.rstdSeq(), dTmp, dh,
                    grads.get(p(l, "seq_norm.weight")));
        }
        be.embeddingBackward(ids, dh, dEmbed);
    }
}

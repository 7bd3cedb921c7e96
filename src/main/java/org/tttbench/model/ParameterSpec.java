package org.tttbench.model;

import java.util.ArrayList;
import java.util.List;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;

/**
 * One parameter of the model: its name in the reference's state dict, its shape and how the
 * benchmarks initialise it (SPEC §2).
 */
public record ParameterSpec(String name, int[] shape, Init init) {

    public enum Init { NORMAL, ZERO, ONE }

    public long size() {
        long n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    public static String layerPrefix(int layer) {
        return "model.layers." + layer + ".";
    }

    /** Every parameter of the model, in state-dict order. */
    public static List<ParameterSpec> model(ModelConfig c) {
        List<ParameterSpec> specs = new ArrayList<>();
        specs.add(new ParameterSpec("model.embed_tokens.weight", new int[] {c.vocab(), c.hidden()}, Init.NORMAL));
        for (int i = 0; i < c.layers(); i++) {
            String p = layerPrefix(i);
            specs.add(new ParameterSpec(p + "seq_norm.weight", new int[] {c.hidden()}, Init.ONE));
            specs.add(new ParameterSpec(p + "ffn_norm.weight", new int[] {c.hidden()}, Init.ONE));
            specs.addAll(tttLayer(c, p + "seq_modeling_block."));
            specs.add(new ParameterSpec(p + "mlp.gate_proj.weight", new int[] {c.ffn(), c.hidden()}, Init.NORMAL));
            specs.add(new ParameterSpec(p + "mlp.up_proj.weight", new int[] {c.ffn(), c.hidden()}, Init.NORMAL));
            specs.add(new ParameterSpec(p + "mlp.down_proj.weight", new int[] {c.hidden(), c.ffn()}, Init.NORMAL));
        }
        specs.add(new ParameterSpec("model.norm.weight", new int[] {c.hidden()}, Init.ONE));
        return specs;
    }

    /** The parameters of one TTT layer (the seq_modeling_block), names prefixed. */
    public static List<ParameterSpec> tttLayer(ModelConfig c, String prefix) {
        int d = c.hidden();
        int h = c.heads();
        int f = c.headDim();
        int f4 = 4 * f;
        List<ParameterSpec> specs = new ArrayList<>();
        for (String proj : List.of("q_proj", "k_proj", "v_proj", "o_proj")) {
            specs.add(new ParameterSpec(prefix + proj + ".weight", new int[] {d, d}, Init.NORMAL));
        }
        specs.add(new ParameterSpec(prefix + "learnable_ttt_lr_weight", new int[] {h, 1, d}, Init.NORMAL));
        specs.add(new ParameterSpec(prefix + "learnable_ttt_lr_bias", new int[] {h, 1}, Init.ZERO));
        specs.add(new ParameterSpec(prefix + "learnable_token_idx", new int[] {c.miniBatch()}, Init.ZERO));
        specs.add(new ParameterSpec(prefix + "ttt_norm_weight", new int[] {h, f}, Init.ONE));
        specs.add(new ParameterSpec(prefix + "ttt_norm_bias", new int[] {h, f}, Init.ZERO));
        specs.add(new ParameterSpec(prefix + "post_norm.weight", new int[] {d}, Init.ONE));
        specs.add(new ParameterSpec(prefix + "post_norm.bias", new int[] {d}, Init.ZERO));
        if (c.tttType() == TttType.LINEAR) {
            specs.add(new ParameterSpec(prefix + "W1", new int[] {h, f, f}, Init.NORMAL));
            specs.add(new ParameterSpec(prefix + "b1", new int[] {h, 1, f}, Init.ZERO));
        } else {
            specs.add(new ParameterSpec(prefix + "W1", new int[] {h, f, f4}, Init.NORMAL));
            specs.add(new ParameterSpec(prefix + "b1", new int[] {h, 1, f4}, Init.ZERO));
            specs.add(new ParameterSpec(prefix + "W2", new int[] {h, f4, f}, Init.NORMAL));
            specs.add(new ParameterSpec(prefix + "b2", new int[] {h, 1, f}, Init.ZERO));
        }
        return specs;
    }
}

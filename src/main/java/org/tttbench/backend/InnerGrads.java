package org.tttbench.backend;

/**
 * Gradients the inner backward produces (SPEC §4, inner backward). Input gradients have the
 * shapes of {@link InnerInputs}' inputs and are overwritten (tok [K] summed over B and H); parameter gradients have the
 * parameters' shapes and are accumulated. {@code w2}, {@code b2} are null for TTT-Linear.
 */
public record InnerGrads(
        Tensor xq, Tensor xk, Tensor xv, Tensor lr, Tensor tok,
        Tensor w1, Tensor b1, Tensor w2, Tensor b2, Tensor normWeight, Tensor normBias) {
}

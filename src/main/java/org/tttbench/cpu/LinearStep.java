package org.tttbench.cpu;

import org.tttbench.config.ModelConfig;

/**
 * TTT-Linear, one mini-batch (SPEC §3 step 4), with the hand-derived backward. State: W [F, F]
 * then b [F]. Zb's two tril terms are folded into one matrix M = tril(eta ∘ (Q Kxᵀ + 1)).
 */
final class LinearStep implements InnerStep {

    private final int f;
    private final double[] gamma;
    private final double[] beta;

    // The last forward's inputs and intermediates.
    private MiniBatch x;
    private double[][] w;
    private double[] b;
    private LnL2Grad loss;
    private double[][] g;
    private double[][] a;
    private double[][] m;
    private RowNorm outNorm;

    LinearStep(int headDim, double[] gamma, double[] beta) {
        this.f = headDim;
        this.gamma = gamma;
        this.beta = beta;
    }

    @Override
    public double[][] forward(MiniBatch x, float[] state) {
        this.x = x;
        w = Dense.rows(state, 0, f, f);
        b = Dense.rows(state, f * f, 1, f)[0];
        // Z = Kx W + b;  G = lnL2grad(Z, Vx − Kx)
        double[][] z = Dense.mul(x.k(), w);
        Dense.addRows(z, b);
        loss = LnL2Grad.forward(z, x.target(), gamma, beta);
        g = loss.result();
        // Zb = Q W − (eta ∘ tril(Q Kxᵀ)) G + b − tril(eta) G = Q W + b − M G
        a = Dense.mulTransB(x.q(), x.k());
        m = InnerStep.trilCoefficients(x.eta(), a);
        double[][] zb = Dense.mul(x.q(), w);
        Dense.addRows(zb, b);
        Dense.addScaled(zb, -1, Dense.mul(m, g));
        // W ← W − Σ_j eta[K−1, j] Kx[j]ᵀ G[j];  b ← b − Σ_j eta[K−1, j] G[j]
        double[][] eg = Dense.scaleRows(g, x.eta()[x.eta().length - 1]);
        int at = Dense.storeDifference(w, Dense.mulTransA(x.k(), eg), state, 0);
        Dense.storeDifference(Dense.row(b), Dense.row(Dense.sumRows(eg)), state, at);
        // out = Q + LN(Zb; γ, β)
        outNorm = RowNorm.of(zb, ModelConfig.LAYER_NORM_EPS);
        double[][] out = outNorm.affine(gamma, beta);
        Dense.addScaled(out, 1, x.q());
        return out;
    }

    @Override
    public Grads backward(double[][] dOut, double[] dState, double[] dGamma, double[] dBeta) {
        // out = Q + LN(Zb)
        double[][] dq = Dense.copy(dOut);
        double[][] dzb = outNorm.backwardAffine(dOut, gamma, dGamma, dBeta);
        // W' = W − Kxᵀ diag(e) G, b' = b − Gᵀ e (and W, b pass straight through). With
        // P = Kx dW' + db': dG = −diag(e) P, dKx = −diag(e) G dW'ᵀ, de[j] = −Σ_c G[j, c] P[j, c].
        double[][] dwNext = Dense.rows(dState, 0, f, f);
        double[] dbNext = Dense.rows(dState, f * f, 1, f)[0];
        double[][] dw = Dense.copy(dwNext);
        double[] db = dbNext.clone();
        double[] negE = InnerStep.negatedLastRow(x.eta());
        double[][] p = Dense.mul(x.k(), dwNext);
        Dense.addRows(p, dbNext);
        double[][] dg = Dense.scaleRows(p, negE);
        double[][] dk = Dense.scaleRows(Dense.mulTransB(g, dwNext), negE);
        double[][] deta = Dense.zeros(negE.length, negE.length);
        InnerStep.subtractRowDots(deta, g, p);
        // Zb = Q W + b − M G
        Dense.addScaled(dq, 1, Dense.mulTransB(dzb, w));
        Dense.addScaled(dw, 1, Dense.mulTransA(x.q(), dzb));
        Dense.axpy(1, Dense.sumRows(dzb), db);
        Dense.addScaled(dg, -1, Dense.mulTransA(m, dzb));
        double[][] da = InnerStep.trilBackward(Dense.mulTransB(dzb, g), a, x.eta(), deta);
        // A = Q Kxᵀ
        Dense.addScaled(dq, 1, Dense.mul(da, x.k()));
        Dense.addScaled(dk, 1, Dense.mulTransA(da, x.q()));
        // G = lnL2grad(Z, T), T = Vx − Kx
        LnL2Grad.Grads lg = loss.backward(dg, dGamma, dBeta);
        double[][] dv = lg.dTarget();
        Dense.addScaled(dk, -1, dv);
        // Z = Kx W + b
        Dense.addScaled(dk, 1, Dense.mulTransB(lg.dz(), w));
        Dense.addScaled(dw, 1, Dense.mulTransA(x.k(), lg.dz()));
        Dense.axpy(1, Dense.sumRows(lg.dz()), db);
        Dense.store(Dense.row(db), dState, Dense.store(dw, dState, 0));
        return new Grads(dq, dk, dv, deta);
    }
}

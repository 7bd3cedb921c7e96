package org.tttbench.cpu;

import org.tttbench.config.ModelConfig;

/**
 * TTT-MLP, one mini-batch (SPEC §3 step 4), with the hand-derived backward. Hidden width
 * F1 = 4F; state: W1 [F, F1], b1 [F1], W2 [F1, F], b2 [F]. As in {@link LinearStep}, each pair
 * of tril terms is folded into one matrix M = tril(eta ∘ (A + 1)).
 */
final class MlpStep implements InnerStep {

    private final int f;
    private final int f1;
    private final double[] gamma;
    private final double[] beta;

    // The last forward's inputs and intermediates.
    private MiniBatch x;
    private double[][] w1;
    private double[] b1;
    private double[][] w2;
    private double[] b2;
    private double[][] z1;
    private double[][] x2;
    private LnL2Grad loss;
    private double[][] g2;
    private double[][] p1;
    private double[][] g1;
    private double[][] a1;
    private double[][] m1;
    private double[][] zb1;
    private double[][] xb2;
    private double[][] a2;
    private double[][] m2;
    private RowNorm outNorm;

    MlpStep(int headDim, double[] gamma, double[] beta) {
        this.f = headDim;
        this.f1 = 4 * headDim;
        this.gamma = gamma;
        this.beta = beta;
    }

    @Override
    public double[][] forward(MiniBatch x, float[] state) {
        this.x = x;
        w1 = Dense.rows(state, 0, f, f1);
        b1 = Dense.rows(state, f * f1, 1, f1)[0];
        w2 = Dense.rows(state, f * f1 + f1, f1, f);
        b2 = Dense.rows(state, f * f1 + f1 + f1 * f, 1, f)[0];
        // Z1 = Kx W1 + b1;  X2 = gelu(Z1);  Z2 = X2 W2 + b2
        z1 = Dense.mul(x.k(), w1);
        Dense.addRows(z1, b1);
        x2 = map(z1, Gelu::gelu);
        double[][] z2 = Dense.mul(x2, w2);
        Dense.addRows(z2, b2);
        // G2 = lnL2grad(Z2, Vx − Kx);  G1 = (G2 W2ᵀ) ∘ gelu′(Z1)
        loss = LnL2Grad.forward(z2, x.target(), gamma, beta);
        g2 = loss.result();
        p1 = Dense.mulTransB(g2, w2);
        g1 = map(z1, Gelu::geluBwd);
        for (int i = 0; i < g1.length; i++) {
            for (int j = 0; j < f1; j++) g1[i][j] *= p1[i][j];
        }
        // Zb1 = Q W1 − (eta ∘ tril(Q Kxᵀ)) G1 + b1 − tril(eta) G1;  Xb2 = gelu(Zb1)
        a1 = Dense.mulTransB(x.q(), x.k());
        m1 = InnerStep.trilCoefficients(x.eta(), a1);
        zb1 = Dense.mul(x.q(), w1);
        Dense.addRows(zb1, b1);
        Dense.addScaled(zb1, -1, Dense.mul(m1, g1));
        xb2 = map(zb1, Gelu::gelu);
        // Zb2 = Xb2 W2 − (eta ∘ tril(Xb2 X2ᵀ)) G2 + b2 − tril(eta) G2
        a2 = Dense.mulTransB(xb2, x2);
        m2 = InnerStep.trilCoefficients(x.eta(), a2);
        double[][] zb2 = Dense.mul(xb2, w2);
        Dense.addRows(zb2, b2);
        Dense.addScaled(zb2, -1, Dense.mul(m2, g2));
        // W1 ← W1 − Σ_j eta[K−1,j] Kx[j]ᵀ G1[j], b1 likewise; W2, b2 with X2 and G2
        double[] e = x.eta()[x.eta().length - 1];
        double[][] eg1 = Dense.scaleRows(g1, e);
        double[][] eg2 = Dense.scaleRows(g2, e);
        int at = Dense.storeDifference(w1, Dense.mulTransA(x.k(), eg1), state, 0);
        at = Dense.storeDifference(Dense.row(b1), Dense.row(Dense.sumRows(eg1)), state, at);
        at = Dense.storeDifference(w2, Dense.mulTransA(x2, eg2), state, at);
        Dense.storeDifference(Dense.row(b2), Dense.row(Dense.sumRows(eg2)), state, at);
        // out = Q + LN(Zb2; γ, β)
        outNorm = RowNorm.of(zb2, ModelConfig.LAYER_NORM_EPS);
        double[][] out = outNorm.affine(gamma, beta);
        Dense.addScaled(out, 1, x.q());
        return out;
    }

    @Override
    public Grads backward(double[][] dOut, double[] dState, double[] dGamma, double[] dBeta) {
        // out = Q + LN(Zb2)
        double[][] dq = Dense.copy(dOut);
        double[][] dzb2 = outNorm.backwardAffine(dOut, gamma, dGamma, dBeta);
        double[][] dw1Next = Dense.rows(dState, 0, f, f1);
        double[] db1Next = Dense.rows(dState, f * f1, 1, f1)[0];
        double[][] dw2Next = Dense.rows(dState, f * f1 + f1, f1, f);
        double[] db2Next = Dense.rows(dState, f * f1 + f1 + f1 * f, 1, f)[0];
        double[][] dw1 = Dense.copy(dw1Next);
        double[] db1 = db1Next.clone();
        double[][] dw2 = Dense.copy(dw2Next);
        double[] db2 = db2Next.clone();
        double[] negE = InnerStep.negatedLastRow(x.eta());
        double[][] deta = Dense.zeros(negE.length, negE.length);
        // W1' = W1 − Kxᵀ diag(e) G1, b1' = b1 − G1ᵀ e; with P = Kx dW1' + db1':
        // dG1 = −diag(e) P, dKx = −diag(e) G1 dW1'ᵀ, de[j] = −Σ G1[j] ∘ P[j].
        double[][] pu1 = Dense.mul(x.k(), dw1Next);
        Dense.addRows(pu1, db1Next);
        double[][] dg1 = Dense.scaleRows(pu1, negE);
        double[][] dk = Dense.scaleRows(Dense.mulTransB(g1, dw1Next), negE);
        InnerStep.subtractRowDots(deta, g1, pu1);
        // W2' = W2 − X2ᵀ diag(e) G2, b2' = b2 − G2ᵀ e, likewise.
        double[][] pu2 = Dense.mul(x2, dw2Next);
        Dense.addRows(pu2, db2Next);
        double[][] dg2 = Dense.scaleRows(pu2, negE);
        double[][] dx2 = Dense.scaleRows(Dense.mulTransB(g2, dw2Next), negE);
        InnerStep.subtractRowDots(deta, g2, pu2);
        // Zb2 = Xb2 W2 + b2 − M2 G2, M2 = tril(eta ∘ (A2 + 1)), A2 = Xb2 X2ᵀ
        double[][] dxb2 = Dense.mulTransB(dzb2, w2);
        Dense.addScaled(dw2, 1, Dense.mulTransA(xb2, dzb2));
        Dense.axpy(1, Dense.sumRows(dzb2), db2);
        Dense.addScaled(dg2, -1, Dense.mulTransA(m2, dzb2));
        double[][] da2 = InnerStep.trilBackward(Dense.mulTransB(dzb2, g2), a2, x.eta(), deta);
        Dense.addScaled(dxb2, 1, Dense.mul(da2, x2));
        Dense.addScaled(dx2, 1, Dense.mulTransA(da2, xb2));
        // Xb2 = gelu(Zb1)
        double[][] dzb1 = map(zb1, Gelu::geluGrad);
        multiplyInto(dzb1, dxb2);
        // Zb1 = Q W1 + b1 − M1 G1, M1 = tril(eta ∘ (A1 + 1)), A1 = Q Kxᵀ
        Dense.addScaled(dq, 1, Dense.mulTransB(dzb1, w1));
        Dense.addScaled(dw1, 1, Dense.mulTransA(x.q(), dzb1));
        Dense.axpy(1, Dense.sumRows(dzb1), db1);
        Dense.addScaled(dg1, -1, Dense.mulTransA(m1, dzb1));
        double[][] da1 = InnerStep.trilBackward(Dense.mulTransB(dzb1, g1), a1, x.eta(), deta);
        Dense.addScaled(dq, 1, Dense.mul(da1, x.k()));
        Dense.addScaled(dk, 1, Dense.mulTransA(da1, x.q()));
        // G1 = P1 ∘ gelu′(Z1), P1 = G2 W2ᵀ
        double[][] dp1 = map(z1, Gelu::geluBwd);
        multiplyInto(dp1, dg1);
        double[][] dz1 = map(z1, Gelu::geluBwdGrad);
        multiplyInto(dz1, dg1);
        multiplyInto(dz1, p1);
        Dense.addScaled(dg2, 1, Dense.mul(dp1, w2));
        Dense.addScaled(dw2, 1, Dense.mulTransA(dp1, g2));
        // G2 = lnL2grad(Z2, T), T = Vx − Kx
        LnL2Grad.Grads lg = loss.backward(dg2, dGamma, dBeta);
        double[][] dv = lg.dTarget();
        Dense.addScaled(dk, -1, dv);
        // Z2 = X2 W2 + b2
        Dense.addScaled(dx2, 1, Dense.mulTransB(lg.dz(), w2));
        Dense.addScaled(dw2, 1, Dense.mulTransA(x2, lg.dz()));
        Dense.axpy(1, Dense.sumRows(lg.dz()), db2);
        // X2 = gelu(Z1)
        double[][] dz1FromX2 = map(z1, Gelu::geluGrad);
        multiplyInto(dz1FromX2, dx2);
        Dense.addScaled(dz1, 1, dz1FromX2);
        // Z1 = Kx W1 + b1
        Dense.addScaled(dk, 1, Dense.mulTransB(dz1, w1));
        Dense.addScaled(dw1, 1, Dense.mulTransA(x.k(), dz1));
        Dense.axpy(1, Dense.sumRows(dz1), db1);
        int at = Dense.store(dw1, dState, 0);
        at = Dense.store(Dense.row(db1), dState, at);
        at = Dense.store(dw2, dState, at);
        Dense.store(Dense.row(db2), dState, at);
        return new Grads(dq, dk, dv, deta);
    }

    private static double[][] map(double[][] a, java.util.function.DoubleUnaryOperator fn) {
        double[][] r = new double[a.length][a[0].length];
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[i].length; j++) r[i][j] = fn.applyAsDouble(a[i][j]);
        }
        return r;
    }

    /** a ∘= b, elementwise. */
    private static void multiplyInto(double[][] a, double[][] b) {
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[i].length; j++) a[i][j] *= b[i][j];
        }
    }
}

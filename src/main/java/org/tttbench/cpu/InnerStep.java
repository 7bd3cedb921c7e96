package org.tttbench.cpu;

/**
 * One mini-batch of the inner loop for one (b, h) (SPEC §3 step 4): its forward, which
 * updates the inner state, and the backward of that forward. An instance keeps what the last
 * {@link #forward} computed, so a backward always follows the forward of the same mini-batch.
 */
sealed interface InnerStep permits LinearStep, MlpStep {

    /**
     * The mini-batch's rows [K, F] of XQ, XK, XV as float64, the target Vx − Kx, and
     * eta[i, j] = tok[i] · lr[j] [K, K].
     */
    record MiniBatch(double[][] q, double[][] k, double[][] v, double[][] target, double[][] eta) {
    }

    /** Gradients of one mini-batch's inputs: dQ, dKx, dVx [K, F] and d eta [K, K]. */
    record Grads(double[][] dq, double[][] dk, double[][] dv, double[][] deta) {
    }

    /**
     * Computes out = Q + LN(Zb) [K, F] from the state before the mini-batch and replaces the
     * state (float32, packed W1, b1, W2, b2) with the state after it.
     */
    double[][] forward(MiniBatch x, float[] state);

    /**
     * The backward of the last forward. {@code dState} (packed like the state) holds the
     * gradient w.r.t. the state after the mini-batch and is replaced by the gradient w.r.t.
     * the state before it; dγ and dβ (this head's ttt_norm weight and bias) are accumulated.
     */
    Grads backward(double[][] dOut, double[] dState, double[] dGamma, double[] dBeta);

    /** The coefficients of G[j] in row i of Zb: eta[i, j]·(A[i, j] + 1) for j ≤ i, else 0. */
    static double[][] trilCoefficients(double[][] eta, double[][] a) {
        int k = eta.length;
        double[][] m = new double[k][k];
        for (int i = 0; i < k; i++) {
            for (int j = 0; j <= i; j++) m[i][j] = eta[i][j] * (a[i][j] + 1);
        }
        return m;
    }

    /**
     * Backward of M = tril(eta ∘ (A + 1)) given dZG = dZb Gᵀ (Zb = … − M G, so dM = −dZG on
     * the tril): accumulates d eta and returns dA.
     */
    static double[][] trilBackward(double[][] dzg, double[][] a, double[][] eta, double[][] deta) {
        int k = eta.length;
        double[][] da = new double[k][k];
        for (int i = 0; i < k; i++) {
            for (int j = 0; j <= i; j++) {
                double dm = -dzg[i][j];
                deta[i][j] += dm * (a[i][j] + 1);
                da[i][j] = dm * eta[i][j];
            }
        }
        return da;
    }

    /**
     * deta[K−1, j] −= Σ_c g[j, c]·p[j, c]: the last row of eta scales the state update,
     * whose gradient reaches it through P = (input rows) dW' + db'.
     */
    static void subtractRowDots(double[][] deta, double[][] g, double[][] p) {
        int k = deta.length;
        for (int j = 0; j < k; j++) {
            double s = 0;
            for (int c = 0; c < g[j].length; c++) s += g[j][c] * p[j][c];
            deta[k - 1][j] -= s;
        }
    }

    /** Row K−1 of eta, negated: the coefficients of the state update. */
    static double[] negatedLastRow(double[][] eta) {
        double[] e = eta[eta.length - 1].clone();
        for (int j = 0; j < e.length; j++) e[j] = -e[j];
        return e;
    }
}

package org.tttbench.cpu;

import org.tttbench.config.ModelConfig;

/**
 * lnL2grad(Z, T) of SPEC §3 step 4, row by row over F: the gradient at Z of the inner loss
 * ½‖LN(Z; γ, β) − T‖², and the backward of that gradient (the inner loop differentiates
 * through it).
 */
final class LnL2Grad {

    private final double[][] target;
    private final double[] gamma;
    private final double[] beta;
    private final RowNorm norm;
    /** g = (γ ẑ + β − T) ∘ γ. */
    private final double[][] g;
    private final double[][] result;

    private LnL2Grad(double[][] target, double[] gamma, double[] beta, RowNorm norm, double[][] g, double[][] result) {
        this.target = target;
        this.gamma = gamma;
        this.beta = beta;
        this.norm = norm;
        this.g = g;
        this.result = result;
    }

    /** result = (F·g − Σg − ẑ·Σ(g∘ẑ)) / (F σ), per row. */
    static LnL2Grad forward(double[][] z, double[][] target, double[] gamma, double[] beta) {
        int f = gamma.length;
        RowNorm norm = RowNorm.of(z, ModelConfig.LAYER_NORM_EPS);
        double[][] g = new double[z.length][f];
        double[][] result = new double[z.length][f];
        for (int r = 0; r < z.length; r++) {
            double[] zh = norm.xhat[r];
            double sumG = 0;
            double sumGZ = 0;
            for (int j = 0; j < f; j++) {
                g[r][j] = (gamma[j] * zh[j] + beta[j] - target[r][j]) * gamma[j];
                sumG += g[r][j];
                sumGZ += g[r][j] * zh[j];
            }
            for (int j = 0; j < f; j++) result[r][j] = (f * g[r][j] - sumG - zh[j] * sumGZ) / (f * norm.sigma[r]);
        }
        return new LnL2Grad(target, gamma, beta, norm, g, result);
    }

    double[][] result() {
        return result;
    }

    /**
     * Given dR, the gradient w.r.t. the result: returns dZ and dT, and accumulates dγ, dβ.
     * With S2 = Σ g ẑ, D1 = Σ dR, D2 = Σ dR ẑ per row: dg = (F dR − D1 − ẑ D2) / (Fσ);
     * through ẑ directly: (−dR S2 − g D2) / (Fσ); through the explicit σ: −Σ dR∘result / σ,
     * with ∂σ/∂z = ẑ / F.
     */
    Grads backward(double[][] dr, double[] dGamma, double[] dBeta) {
        int f = gamma.length;
        double[][] dzhat = new double[dr.length][f];
        double[][] dTarget = new double[dr.length][f];
        double[] dsigma = new double[dr.length];
        for (int r = 0; r < dr.length; r++) {
            double s = norm.sigma[r];
            double[] zh = norm.xhat[r];
            double sumGZ = 0;
            double d1 = 0;
            double d2 = 0;
            for (int j = 0; j < f; j++) {
                sumGZ += g[r][j] * zh[j];
                d1 += dr[r][j];
                d2 += dr[r][j] * zh[j];
                dsigma[r] -= dr[r][j] * result[r][j] / s;
            }
            for (int j = 0; j < f; j++) {
                double dg = (f * dr[r][j] - d1 - zh[j] * d2) / (f * s);
                dzhat[r][j] = (-dr[r][j] * sumGZ - g[r][j] * d2) / (f * s);
                // g = (γ ẑ + β − T) ∘ γ
                dzhat[r][j] += dg * gamma[j] * gamma[j];
                dGamma[j] += dg * (2 * gamma[j] * zh[j] + beta[j] - target[r][j]);
                dBeta[j] += dg * gamma[j];
                dTarget[r][j] = -dg * gamma[j];
            }
        }
        double[][] dz = norm.backward(dzhat);
        for (int r = 0; r < dz.length; r++) {
            for (int j = 0; j < f; j++) dz[r][j] += dsigma[r] * norm.xhat[r][j] / f;
        }
        return new Grads(dz, dTarget);
    }

    record Grads(double[][] dz, double[][] dTarget) {
    }
}

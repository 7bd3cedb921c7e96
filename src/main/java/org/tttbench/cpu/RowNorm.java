package org.tttbench.cpu;

/**
 * Normalisation of each row of a float64 matrix, x̂ = (x − μ) / σ with σ = sqrt(var + eps)
 * (biased variance), kept for the backward.
 */
final class RowNorm {

    final double[][] xhat;
    final double[] sigma;

    private RowNorm(double[][] xhat, double[] sigma) {
        this.xhat = xhat;
        this.sigma = sigma;
    }

    static RowNorm of(double[][] x, double eps) {
        int n = x[0].length;
        double[][] xhat = new double[x.length][n];
        double[] sigma = new double[x.length];
        for (int r = 0; r < x.length; r++) {
            double mean = 0;
            for (double v : x[r]) mean += v;
            mean /= n;
            double var = 0;
            for (double v : x[r]) var += (v - mean) * (v - mean);
            var /= n;
            sigma[r] = Math.sqrt(var + eps);
            for (int j = 0; j < n; j++) xhat[r][j] = (x[r][j] - mean) / sigma[r];
        }
        return new RowNorm(xhat, sigma);
    }

    /** γ x̂ + β, row by row. */
    double[][] affine(double[] gamma, double[] beta) {
        double[][] y = new double[xhat.length][gamma.length];
        for (int r = 0; r < y.length; r++) {
            for (int j = 0; j < gamma.length; j++) y[r][j] = gamma[j] * xhat[r][j] + beta[j];
        }
        return y;
    }

    /**
     * dx given dx̂, the gradient w.r.t. x̂ (σ's dependence on x included):
     * dx = (dx̂ − mean(dx̂) − x̂ · mean(dx̂ ∘ x̂)) / σ.
     */
    double[][] backward(double[][] dxhat) {
        int n = xhat[0].length;
        double[][] dx = new double[xhat.length][n];
        for (int r = 0; r < xhat.length; r++) {
            double m1 = 0;
            double m2 = 0;
            for (int j = 0; j < n; j++) {
                m1 += dxhat[r][j];
                m2 += dxhat[r][j] * xhat[r][j];
            }
            m1 /= n;
            m2 /= n;
            for (int j = 0; j < n; j++) dx[r][j] = (dxhat[r][j] - m1 - xhat[r][j] * m2) / sigma[r];
        }
        return dx;
    }

    /** Backward of y = γ x̂ + β: returns dx; accumulates dγ and dβ. */
    double[][] backwardAffine(double[][] dy, double[] gamma, double[] dGamma, double[] dBeta) {
        double[][] dxhat = new double[dy.length][gamma.length];
        for (int r = 0; r < dy.length; r++) {
            for (int j = 0; j < gamma.length; j++) {
                dxhat[r][j] = dy[r][j] * gamma[j];
                dGamma[j] += dy[r][j] * xhat[r][j];
                dBeta[j] += dy[r][j];
            }
        }
        return backward(dxhat);
    }
}

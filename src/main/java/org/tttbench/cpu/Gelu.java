package org.tttbench.cpu;

/**
 * The tanh approximation of gelu (SPEC §3 step 4) and the derivatives the inner loop and its
 * backward need. The inner loop's own gelu′ uses the reference's rounded constants; its
 * derivative is that formula differentiated, as the reference's autograd does.
 */
final class Gelu {

    private static final double SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
    private static final double KAPPA = 0.044715;
    // The reference's gelu_bwd constants, rounded as it writes them.
    private static final double C0 = 0.79788456;
    private static final double C2 = 0.1070322243;

    private Gelu() {
    }

    /** 0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³))). */
    static double gelu(double x) {
        return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + KAPPA * x * x * x)));
    }

    /** The exact derivative of {@link #gelu}: what autograd uses for X2 and Xb2. */
    static double geluGrad(double x) {
        double t = Math.tanh(SQRT_2_OVER_PI * (x + KAPPA * x * x * x));
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * KAPPA * x * x);
    }

    /**
     * The inner loop's gelu′: t = tanh(0.79788456·x(1 + 0.044715x²)),
     * 0.5x(1 − t²)(0.79788456 + 0.1070322243x²) + 0.5(1 + t).
     */
    static double geluBwd(double x) {
        double t = Math.tanh(C0 * x * (1 + KAPPA * x * x));
        return 0.5 * x * (1 - t * t) * (C0 + C2 * x * x) + 0.5 * (1 + t);
    }

    /** d/dx of {@link #geluBwd}, with dt/dx = (1 − t²)(C0 + 3·C0·0.044715·x²). */
    static double geluBwdGrad(double x) {
        double t = Math.tanh(C0 * x * (1 + KAPPA * x * x));
        double dt = (1 - t * t) * (C0 + 3 * C0 * KAPPA * x * x);
        double poly = C0 + C2 * x * x;
        return 0.5 * (1 - t * t) * poly - x * t * dt * poly + x * x * (1 - t * t) * C2 + 0.5 * dt;
    }
}

package org.tttbench.validate;

import org.tttbench.config.DType;

/**
 * Every tolerance of {@code verify} (a backend against the CPU backend) and {@code validate} (a
 * backend against a golden file's float64 reference), as a largest accepted {@link RelativeError}.
 *
 * <p>Float32 results have fixed tolerances by what the op does: a few hundred float32 roundings
 * against float64 arithmetic. In 16-bit storage a fixed number is either too loose for an op that
 * stores once or too tight for a gradient that sums nearly cancelling terms over every token (the
 * learning-rate bias: 5e-1 in bfloat16 on the golden case mlp_k16, while one rounding of an
 * elementwise output costs 1e-3), so there a tolerance is measured, not guessed: the CPU backend
 * runs the same computation on the same inputs in that storage and in float32, and their relative
 * difference, the <em>spread</em>, is what 16-bit storage alone costs that tensor. A result under
 * test is held to {@value #SPREAD_FACTOR} times the spread, and never to less than float32's
 * tolerance for the same work (where storage loses nothing, as for float32 statistics, float32
 * arithmetic still differs from float64).
 */
public final class Tolerances {

    /** What an op does, which sets how far its float32 result may stray from float64 arithmetic. */
    public enum Kind {
        /** Copies values: nothing may differ. */
        EXACT,
        /** One rounding per element after float32 arithmetic. */
        ELEMENT,
        /** Float32 sums over rows (norms, dot products). */
        REDUCE,
        /** Vendor BLAS products. */
        MATMUL,
        /** The inner scan: float32 state carried over all mini-batches. */
        SCAN,
        /** The whole model: every op above, layer after layer. */
        MODEL,
        /**
         * A model gradient that sums nearly cancelling terms over every token of every head (the
         * token-index and learning-rate-bias gradients): its 16-bit error depends on the order of
         * the sum, so one measured spread bounds it loosely ({@link #CANCELLING_SPREAD_FACTOR}).
         */
        CANCELLING
    }

    /**
     * The factor on the spread. A correct backend stores at the same points as the CPU backend (the
     * GPU kernels load 16-bit operands into float32 and keep every intermediate of a scan in float32,
     * as the CPU backend keeps float64) but sums in float32 and in its own order, so it differs from
     * the CPU backend's 16-bit result only where a sum lands near a rounding boundary and rounds the
     * other way, while the spread differs at every stored value: the former stays below the latter,
     * except where a long chain amplifies the flips to the same size (the 16-bit training step of
     * TTT-Linear at 125m-h32, whose gradients spread by 0.1 to 0.45 in layer 0 between seeds). The
     * largest GPU-versus-CPU error on record, an H100's bfloat16 token-index gradient at 125m-h32
     * (1.4e-1), is within 1.5 times the CPU backend's spread of that gradient at those shapes (0.1 to
     * 0.25 for TTT-Linear); a measured spread is one sample, which varies 2× between seeds: hence 3.
     * A kernel error the factor hides in 16-bit storage is caught where the same kernel runs
     * instantiated for float32, at float32 tolerance.
     */
    public static final double SPREAD_FACTOR = 3;

    /**
     * The factor on the spread of a {@link Kind#CANCELLING} gradient. Its terms nearly cancel, so
     * its 16-bit error is set by where along the sum the roundings fall: the CPU backend's spread is
     * one such sample and a GPU's sum in another order another. On an H200, the bfloat16 token-index
     * gradient of the TTT-MLP training step at 125m came out at 6.8 times the CPU backend's spread
     * (7.7e-3 against 1.1e-3) while the same kernels instantiated for float32 passed at float32
     * tolerance; with the 2× a spread varies between seeds, 15. A kernel error in these sums is caught
     * by that float32 instantiation and by the op checks of the token and learning-rate backward.
     */
    public static final double CANCELLING_SPREAD_FACTOR = 15;

    /** {@code validate} in float32: any tensor, against the reference's float64. */
    public static final double GOLDEN_FLOAT32 = 1e-4;

    private Tolerances() {
    }

    /**
     * Float32 results against the CPU backend (float64 arithmetic, float32 storage): a few hundred
     * float32 roundings; with TF32 matrix units a product keeps 10 bits of each operand.
     */
    public static double float32(Kind kind, boolean tf32) {
        return switch (kind) {
            case EXACT -> 0;
            case ELEMENT -> 1e-6;
            case REDUCE -> 1e-5;
            case MATMUL -> tf32 ? 5e-3 : 2e-5;
            case SCAN -> 1e-4;
            case MODEL, CANCELLING -> tf32 ? 2e-2 : 1e-3;
        };
    }

    /**
     * A result in 16-bit storage: {@value #SPREAD_FACTOR} × {@code spread}, at least {@code floor};
     * NaN (which fails) when the spread could not be measured.
     */
    public static double fromSpread(double spread, double floor) {
        return fromSpread(spread, floor, SPREAD_FACTOR);
    }

    private static double fromSpread(double spread, double floor, double factor) {
        return Double.isNaN(spread) ? Double.NaN : Math.max(floor, factor * spread);
    }

    /**
     * {@link #fromSpread} with float32's tolerance for the same work as the floor ({@link
     * #CANCELLING_SPREAD_FACTOR} for a cancelling sum); a copy stays exact.
     */
    public static double reduced(Kind kind, double spread) {
        if (kind == Kind.EXACT) return 0;
        return fromSpread(spread, float32(kind, false),
                kind == Kind.CANCELLING ? CANCELLING_SPREAD_FACTOR : SPREAD_FACTOR);
    }

    /**
     * {@code validate}: {@value #GOLDEN_FLOAT32} in float32; in 16-bit storage {@link #fromSpread}
     * of the CPU backend's spread on the case itself, at least that.
     */
    public static double golden(DType dtype, double spread) {
        return dtype == DType.FLOAT32 ? GOLDEN_FLOAT32 : fromSpread(spread, GOLDEN_FLOAT32);
    }
}

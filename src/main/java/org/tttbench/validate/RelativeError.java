package org.tttbench.validate;

/**
 * How far a result is from its reference: ‖x − ref‖ / ‖ref‖ in float64 (‖x − ref‖ when the
 * reference is all zeros), the measure behind every row of {@code verify} and {@code validate}.
 */
public final class RelativeError {

    private RelativeError() {
    }

    /**
     * The relative error of {@code x} against {@code ref}. NaN (which never passes a tolerance)
     * when either holds a NaN, when one is infinite where the other is not or has the other sign,
     * and when no entry is finite in both: a tensor that has overflowed everywhere agrees with
     * nothing, even a reference that overflowed too. An infinity equal to the reference's is
     * agreement there (a float16 sum past 65504 overflows in both) and the finite rest is compared.
     */
    public static double of(float[] x, double[] ref) {
        requireSameLength(x.length, ref.length);
        double diff = 0;
        double norm = 0;
        int finite = 0;
        for (int i = 0; i < x.length; i++) {
            double r = ref[i];
            if (Double.isNaN(x[i]) || Double.isNaN(r)) return Double.NaN;
            if (Double.isInfinite(x[i]) || Double.isInfinite(r)) {
                if (x[i] == r) continue;
                return Double.NaN;
            }
            double d = x[i] - r;
            diff += d * d;
            norm += r * r;
            finite++;
        }
        if (finite == 0 && x.length > 0) return Double.NaN;
        return norm == 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
    }

    /** {@link #of(float[], double[])} against a float32 reference. */
    public static double of(float[] x, float[] ref) {
        return of(x, widen(ref));
    }

    /**
     * The spread of a result computed in 16-bit storage against the same computation in float32:
     * the relative error over the entries finite in both (where the 16-bit one overflowed, the
     * result under test has to overflow the same way, which {@link #of} checks), NaN when no
     * entry is.
     */
    public static double spread(float[] reduced, float[] full) {
        requireSameLength(reduced.length, full.length);
        int n = 0;
        for (int i = 0; i < reduced.length; i++) if (Float.isFinite(reduced[i]) && Float.isFinite(full[i])) n++;
        float[] x = new float[n];
        double[] ref = new double[n];
        int j = 0;
        for (int i = 0; i < reduced.length; i++) {
            if (Float.isFinite(reduced[i]) && Float.isFinite(full[i])) {
                x[j] = reduced[i];
                ref[j++] = full[i];
            }
        }
        return n == 0 && reduced.length > 0 ? Double.NaN : of(x, ref);
    }

    private static double[] widen(float[] x) {
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) out[i] = x[i];
        return out;
    }

    private static void requireSameLength(int x, int ref) {
        if (x != ref) throw new IllegalArgumentException("size mismatch: " + x + " computed vs " + ref + " reference");
    }
}

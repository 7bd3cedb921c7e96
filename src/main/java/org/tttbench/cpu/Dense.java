package org.tttbench.cpu;

/**
 * Small dense float64 matrices for the inner loop, held as arrays of rows ({@code m[i][j]}).
 * Each product returns a fresh matrix; the inner loop's matrices are at most K × 4F, so
 * allocation is cheap next to the arithmetic. Products are written as row updates
 * y += s·x over whole rows: with no offsets into the arrays the JIT can vectorise them.
 */
final class Dense {

    private Dense() {
    }

    static double[][] zeros(int rows, int cols) {
        return new double[rows][cols];
    }

    /** a [m, k] · b [k, n]. */
    static double[][] mul(double[][] a, double[][] b) {
        double[][] c = new double[a.length][b[0].length];
        for (int i = 0; i < a.length; i++) {
            for (int k = 0; k < b.length; k++) axpy(a[i][k], b[k], c[i]);
        }
        return c;
    }

    /** a [m, k] · b [n, k]ᵀ. */
    static double[][] mulTransB(double[][] a, double[][] b) {
        return mul(a, transpose(b));
    }

    /** a [k, m]ᵀ · b [k, n]. */
    static double[][] mulTransA(double[][] a, double[][] b) {
        double[][] c = new double[a[0].length][b[0].length];
        for (int k = 0; k < a.length; k++) {
            for (int i = 0; i < c.length; i++) axpy(a[k][i], b[k], c[i]);
        }
        return c;
    }

    /** y += s · x. */
    static void axpy(double s, double[] x, double[] y) {
        if (s == 0) return;
        for (int j = 0; j < y.length; j++) y[j] += s * x[j];
    }

    /** a += s · b, elementwise. */
    static void addScaled(double[][] a, double s, double[][] b) {
        for (int i = 0; i < a.length; i++) axpy(s, b[i], a[i]);
    }

    /** Adds the row vector v to every row of a. */
    static void addRows(double[][] a, double[] v) {
        for (double[] row : a) axpy(1, v, row);
    }

    /** Σ_i a[i]. */
    static double[] sumRows(double[][] a) {
        double[] s = new double[a[0].length];
        for (double[] row : a) axpy(1, row, s);
        return s;
    }

    /** Row i of a times d[i]. */
    static double[][] scaleRows(double[][] a, double[] d) {
        double[][] r = new double[a.length][a[0].length];
        for (int i = 0; i < a.length; i++) axpy(d[i], a[i], r[i]);
        return r;
    }

    static double[][] transpose(double[][] a) {
        double[][] t = new double[a[0].length][a.length];
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[0].length; j++) t[j][i] = a[i][j];
        }
        return t;
    }

    static double[][] copy(double[][] a) {
        double[][] c = new double[a.length][];
        for (int i = 0; i < a.length; i++) c[i] = a[i].clone();
        return c;
    }

    /** The row-major [rows, cols] block of s starting at {@code from}, as float64. */
    static double[][] rows(float[] s, int from, int rows, int cols) {
        double[][] m = new double[rows][cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) m[i][j] = s[from + i * cols + j];
        }
        return m;
    }

    /** The row-major [rows, cols] block of s starting at {@code from}. */
    static double[][] rows(double[] s, int from, int rows, int cols) {
        double[][] m = new double[rows][cols];
        for (int i = 0; i < rows; i++) System.arraycopy(s, from + i * cols, m[i], 0, cols);
        return m;
    }

    /** Writes m row-major into dst at {@code from}; returns the offset after it. */
    static int store(double[][] m, double[] dst, int from) {
        for (double[] row : m) {
            System.arraycopy(row, 0, dst, from, row.length);
            from += row.length;
        }
        return from;
    }

    /** Writes m − d row-major into the float32 array dst at {@code from} (a state update). */
    static int storeDifference(double[][] m, double[][] d, float[] dst, int from) {
        for (int i = 0; i < m.length; i++) {
            for (int j = 0; j < m[i].length; j++) dst[from++] = (float) (m[i][j] - d[i][j]);
        }
        return from;
    }

    /** A vector as a one-row matrix. */
    static double[][] row(double[] v) {
        return new double[][] {v};
    }
}

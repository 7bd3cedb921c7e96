package org.tttbench.config;

/** The four benchmarks of SPEC §4, named as the JMH methods are. */
public enum BenchmarkKind {
    FORWARD("forward"),
    BACKWARD("backward"),
    INNER_FORWARD("innerForward"),
    INNER_BACKWARD("innerBackward");

    private final String method;

    BenchmarkKind(String method) {
        this.method = method;
    }

    /** The JMH benchmark method that times this benchmark. */
    public String method() {
        return method;
    }

    public boolean backward() {
        return this == BACKWARD || this == INNER_BACKWARD;
    }

    public boolean innerOnly() {
        return this == INNER_FORWARD || this == INNER_BACKWARD;
    }

    public static BenchmarkKind of(boolean backward, boolean innerOnly) {
        if (innerOnly) return backward ? INNER_BACKWARD : INNER_FORWARD;
        return backward ? BACKWARD : FORWARD;
    }

    public static BenchmarkKind byMethod(String method) {
        for (BenchmarkKind k : values()) {
            if (k.method.equals(method)) return k;
        }
        throw new IllegalArgumentException("no benchmark method " + method);
    }
}

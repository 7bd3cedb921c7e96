package org.tttbench.config;

/** The inner model of the TTT layer (SPEC §3 step 4). */
public enum TttType {
    LINEAR("linear"),
    MLP("mlp");

    private final String flag;

    TttType(String flag) {
        this.flag = flag;
    }

    /** The value as the standard flags spell it. */
    public String flag() {
        return flag;
    }

    public static TttType parse(String value) {
        for (TttType t : values()) {
            if (t.flag.equals(value)) return t;
        }
        throw new IllegalArgumentException("unknown ttt type '" + value + "' (allowed: linear, mlp)");
    }
}

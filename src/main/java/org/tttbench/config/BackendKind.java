package org.tttbench.config;

/** Where the benchmark runs: {@code auto} picks a usable GPU, else the CPU. */
public enum BackendKind {
    AUTO("auto"),
    CPU("cpu"),
    HIP("hip"),
    CUDA("cuda");

    private final String flag;

    BackendKind(String flag) {
        this.flag = flag;
    }

    public String flag() {
        return flag;
    }

    public static BackendKind parse(String value) {
        for (BackendKind b : values()) {
            if (b.flag.equals(value)) return b;
        }
        throw new IllegalArgumentException("unknown backend '" + value + "' (allowed: auto, cpu, hip, cuda)");
    }
}

package org.tttbench.config;

/**
 * Storage type of weights and activations. Arithmetic always accumulates in float32;
 * the reduced types only change what is stored (SPEC §4, precision).
 */
public enum DType {
    FLOAT32("float32", 4),
    BFLOAT16("bfloat16", 2),
    FLOAT16("float16", 2);

    private final String flag;
    private final int bytes;

    DType(String flag, int bytes) {
        this.flag = flag;
        this.bytes = bytes;
    }

    public String flag() {
        return flag;
    }

    /** Bytes one stored element takes. */
    public int bytes() {
        return bytes;
    }

    public static DType parse(String value) {
        for (DType d : values()) {
            if (d.flag.equals(value)) return d;
        }
        throw new IllegalArgumentException("unknown dtype '" + value + "' (allowed: float16, bfloat16, float32)");
    }

    /** The float32 value nearest to {@code x} that this type can hold (round to nearest even). */
    public float round(float x) {
        return switch (this) {
            case FLOAT32 -> x;
            case BFLOAT16 -> roundBf16(x);
            case FLOAT16 -> Float.float16ToFloat(Float.floatToFloat16(x));
        };
    }

    /** Rounds every element in place. */
    public void round(float[] data) {
        if (this == FLOAT32) return;
        for (int i = 0; i < data.length; i++) data[i] = round(data[i]);
    }

    private static float roundBf16(float x) {
        if (Float.isNaN(x)) return x;
        int bits = Float.floatToRawIntBits(x);
        int lsb = (bits >>> 16) & 1;
        bits += 0x7FFF + lsb;
        return Float.intBitsToFloat(bits & 0xFFFF0000);
    }
}

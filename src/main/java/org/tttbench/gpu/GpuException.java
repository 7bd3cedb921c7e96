package org.tttbench.gpu;

/**
 * A failed GPU runtime or BLAS call, with the call's name and the runtime's error string, or a
 * GPU library that could not be found. {@link #summary()} is the part that fits on one line
 * (a notice); the message may add the details (every place a library was looked for).
 */
public final class GpuException extends RuntimeException {

    private final String summary;

    public GpuException(String message) {
        super(message);
        this.summary = message;
    }

    public GpuException(String summary, String detail) {
        super(summary + " (" + detail + ")");
        this.summary = summary;
    }

    public GpuException(String message, Throwable cause) {
        super(message, cause);
        this.summary = message;
    }

    /** The message without its details. */
    public String summary() {
        return summary;
    }
}

package org.tttbench.gpu;

/** A failed GPU runtime or BLAS call, with the call's name and the runtime's error string. */
public final class GpuException extends RuntimeException {
    public GpuException(String message) {
        super(message);
    }

    public GpuException(String message, Throwable cause) {
        super(message, cause);
    }
}

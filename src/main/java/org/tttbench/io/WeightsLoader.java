package org.tttbench.io;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import org.tttbench.backend.Backend;
import org.tttbench.model.ParameterSpec;
import org.tttbench.model.Parameters;

/** Loads parameters by the reference's names from a safetensors file (prefix "param." optional). */
public final class WeightsLoader {

    private WeightsLoader() {
    }

    public static void load(Path file, Parameters into, Backend backend) throws IOException {
        try {
            load(Safetensors.read(file), into, backend);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Every parameter must be present, as {@code name} or {@code param.name} (the golden
     * files' spelling), with exactly its shape; the first that is not is named in the error.
     */
    public static void load(Safetensors.Contents file, Parameters into, Backend backend) {
        for (ParameterSpec spec : into.specs()) {
            Safetensors.Entry e = file.tensors().get(spec.name());
            if (e == null) e = file.tensors().get("param." + spec.name());
            if (e == null) throw new IllegalArgumentException("missing tensor " + spec.name());
            if (!Arrays.equals(e.shape(), spec.shape())) {
                throw new IllegalArgumentException("tensor " + spec.name() + " has shape " + Arrays.toString(e.shape())
                        + ", expected " + Arrays.toString(spec.shape()));
            }
            backend.upload(e.toFloats(), into.get(spec.name()));
        }
    }
}

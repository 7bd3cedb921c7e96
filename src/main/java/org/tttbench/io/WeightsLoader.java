package org.tttbench.io;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import org.tttbench.backend.Backend;
import org.tttbench.model.ParameterSpec;
import org.tttbench.model.Parameters;

/**
 * Loads a model's parameters from a safetensors file by the reference's names (SPEC §2), as a
 * state dict names them ({@code model.layers.0.mlp.up_proj.weight}) or as a golden case does
 * ({@code param.model.layers.0.mlp.up_proj.weight}). Other tensors in the file are ignored.
 */
public final class WeightsLoader {

    private static final String CASE_PREFIX = "param.";

    private WeightsLoader() {
    }

    public static void load(Path file, Parameters into, Backend backend) throws IOException {
        load(Safetensors.read(file), into, backend);
    }

    /** @throws IllegalArgumentException naming the first tensor that is missing or has another shape */
    public static void load(Safetensors.Contents contents, Parameters into, Backend backend) {
        for (ParameterSpec spec : into.specs()) {
            Safetensors.Entry e = contents.tensors().get(spec.name());
            if (e == null) e = contents.tensors().get(CASE_PREFIX + spec.name());
            if (e == null) {
                throw new IllegalArgumentException("weights: tensor '" + spec.name() + "' is missing (expected shape "
                        + Arrays.toString(spec.shape()) + ")");
            }
            if (!Arrays.equals(e.shape(), spec.shape())) {
                throw new IllegalArgumentException("weights: tensor '" + spec.name() + "' has shape "
                        + Arrays.toString(e.shape()) + ", expected " + Arrays.toString(spec.shape()));
            }
            backend.upload(e.toFloats(), into.get(spec.name()));
        }
    }
}

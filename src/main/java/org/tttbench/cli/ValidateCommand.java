package org.tttbench.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import org.tttbench.backend.Backend;
import org.tttbench.harness.Backends;
import org.tttbench.config.BackendKind;
import org.tttbench.config.DType;
import org.tttbench.io.Safetensors;
import org.tttbench.validate.ValidationRow;
import org.tttbench.validate.Validator;

/**
 * {@code validate FILE.safetensors [--backend …] [--dtype …]}: computes everything a case file
 * in the golden format holds a reference for and prints one row per tensor. Exit status 0 only
 * when every row passes.
 */
public final class ValidateCommand {

    private ValidateCommand() {
    }

    public static int run(String[] args, PrintStream out, PrintStream err) throws UsageException {
        Path file = null;
        BackendKind backend = BackendKind.AUTO;
        DType dtype = DType.FLOAT32;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--backend" -> backend = parse(args, ++i, "--backend", BackendKind::parse);
                case "--dtype" -> dtype = parse(args, ++i, "--dtype", DType::parse);
                default -> {
                    if (args[i].startsWith("-") || file != null) {
                        throw new UsageException("validate: unexpected argument " + args[i]
                                + " (usage: validate FILE.safetensors [--backend auto|cpu|hip|cuda] [--dtype …])");
                    }
                    file = Path.of(args[i]);
                }
            }
        }
        if (file == null) throw new UsageException("validate needs a case file (validate FILE.safetensors)");
        Safetensors.Contents contents;
        try {
            contents = Safetensors.readCase(file);
        } catch (IOException e) {
            throw new UsageException("validate: " + e.getMessage());
        }
        List<ValidationRow> rows;
        try (Backend be = Backends.open(backend, dtype, false)) {
            err.printf("tttbench: validating %s on %s (%s), %s%n", file, be.name(), be.device(), dtype.flag());
            rows = Validator.run(contents, be);
        } catch (IllegalArgumentException | UnsupportedOperationException e) {
            err.println("tttbench: validate: " + e.getMessage());
            return 1;
        }
        int width = Math.max(6, rows.stream().mapToInt(r -> r.name().length()).max().orElse(6));
        out.printf("%-" + width + "s  %12s  %10s  %s%n", "tensor", "rel. error", "tolerance", "result");
        long failed = 0;
        for (ValidationRow r : rows) {
            out.printf("%-" + width + "s  %12.3e  %10.1e  %s%n", r.name(), r.relativeError(), r.tolerance(),
                    r.pass() ? "PASS" : "FAIL");
            if (!r.pass()) failed++;
        }
        out.printf("%d of %d tensors within tolerance%n", rows.size() - failed, rows.size());
        return failed == 0 && !rows.isEmpty() ? 0 : 1;
    }

    private static <T> T parse(String[] args, int i, String flag, java.util.function.Function<String, T> parser)
            throws UsageException {
        if (i >= args.length) throw new UsageException(flag + " needs a value");
        try {
            return parser.apply(args[i]);
        } catch (IllegalArgumentException e) {
            throw new UsageException(flag + ": " + e.getMessage());
        }
    }
}

package org.tttbench.validate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.tttbench.backend.cpu.CpuBackend;
import org.tttbench.config.DType;
import org.tttbench.io.Safetensors;

/** The CPU backend against the reference's float64 vectors (SPEC §7), through the validator. */
class GoldenValidationTest {

    static Stream<String> cases() {
        return Golden.CASES.stream();
    }

    static Stream<Arguments> reducedCases() {
        return Golden.CASES.stream()
                .flatMap(c -> Stream.of(Arguments.of(c, DType.BFLOAT16), Arguments.of(c, DType.FLOAT16)));
    }

    @ParameterizedTest
    @MethodSource("cases")
    void float32MatchesEveryReferenceWithin1e4(String name) {
        Safetensors.Contents contents = Golden.read(name);
        List<ValidationRow> rows = Validator.run(contents, new CpuBackend(DType.FLOAT32));
        assertEquals(references(contents), rows.stream().map(ValidationRow::name).collect(Collectors.toCollection(TreeSet::new)),
                "one row per reference tensor");
        for (ValidationRow r : rows) {
            assertEquals(1e-4, r.tolerance(), r.name());
            assertTrue(r.pass() && r.relativeError() <= 1e-4, name + ": " + r);
        }
    }

    @ParameterizedTest
    @MethodSource("reducedCases")
    void reducedPrecisionKeepsLogitsAndInnerOutWithin3e2(String name, DType dtype) {
        List<ValidationRow> rows = Validator.run(Golden.read(name), new CpuBackend(dtype));
        for (String output : List.of("logits", "inner.out")) {
            ValidationRow r = rows.stream().filter(x -> x.name().equals(output)).findFirst().orElseThrow();
            assertTrue(r.relativeError() <= 3e-2, name + " " + dtype.flag() + ": " + r);
        }
        for (ValidationRow r : rows) assertTrue(r.pass(), name + " " + dtype.flag() + ": " + r);
        // Reduced storage must actually lose something, or the emulation is not running.
        double logits = rows.stream().filter(x -> x.name().equals("logits")).findFirst().orElseThrow().relativeError();
        assertTrue(logits > 1e-5, dtype.flag() + " logits suspiciously exact: " + logits);
    }

    private static Set<String> references(Safetensors.Contents contents) {
        return contents.tensors().keySet().stream()
                .filter(n -> n.equals("logits") || n.startsWith("hidden.") || n.startsWith("grad.")
                        || n.equals("inner.out") || n.startsWith("inner.last.") || n.startsWith("inner.grad."))
                .collect(Collectors.toCollection(TreeSet::new));
    }
}

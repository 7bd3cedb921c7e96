package org.tttbench.gpu;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Writes a C++ file that checks a binding class against the vendor's real header with the
 * vendor's own compiler, for headers the tests cannot read where they run (nvrtc.h comes only
 * with the CUDA toolkit). Compiling the file fails, naming the function or constant, when:
 * <ul>
 * <li>a bound function is not declared by the header;</li>
 * <li>its declaration does not pass its result and parameters the way the binding's
 * FunctionDescriptor does: the number of parameters, and each one's class (any pointer an
 * address; an integer or enum by its size; float; double). That is all FFM relies on, and the
 * same comparison BindingSignaturesTest makes through {@link CHeader}. A descriptor cannot say
 * which pointer a parameter is, so {@code const char*} against {@code char*} is not a mismatch
 * here either;</li>
 * <li>a public static final int of the binding has another value in the header.</li>
 * </ul>
 *
 * <p>Usage, after {@code ./mvnw -o -q -Dkernels.skip=true test-compile}:
 * <pre>
 * java -cp target/classes:target/test-classes org.tttbench.gpu.CDeclarations \
 *     org.tttbench.gpu.cuda.Nvrtc nvrtc.h target/nvrtc_bindings.cu
 * nvcc -std=c++17 -c target/nvrtc_bindings.cu -o /dev/null
 * </pre>
 * Without OUT the file goes to stdout.
 */
final class CDeclarations {

    private CDeclarations() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2 || args.length > 3) {
            System.err.println("usage: CDeclarations BINDING_CLASS HEADER [OUT]"
                    + "  (e.g. org.tttbench.gpu.cuda.Nvrtc nvrtc.h target/nvrtc_bindings.cu)");
            System.exit(2);
        }
        String text = generate(Class.forName(args[0]), args[1]);
        if (args.length == 3) Files.writeString(Path.of(args[2]), text);
        else System.out.print(text);
    }

    /** The checking file for {@code binding} against {@code #include <header>}. */
    static String generate(Class<?> binding, String header) throws IllegalAccessException {
        StringBuilder c = new StringBuilder();
        c.append("// Written by org.tttbench.gpu.CDeclarations from ").append(binding.getName()).append(".\n");
        c.append("// Compiles only where every binding below passes as the header declares it.\n");
        c.append(PREAMBLE.replace("HEADER", header));
        for (Map.Entry<String, FunctionDescriptor> e : BindingSignaturesTest.functionsOf(binding).entrySet()) {
            String passing = passing(e.getValue());
            c.append("static_assert(tttbench_check::passes(&").append(e.getKey()).append(", \"").append(passing)
                    .append("\"),\n              \"").append(e.getKey()).append(" is bound as ").append(passing)
                    .append(" (result, then parameters; legend above); the header declares it otherwise\");\n");
        }
        for (Field f : binding.getFields()) {
            if (!Modifier.isStatic(f.getModifiers()) || f.getType() != int.class) continue;
            int value = f.getInt(null);
            c.append("static_assert(").append(f.getName()).append(" == ").append(value).append(", \"")
                    .append(f.getName()).append(" is ").append(value).append(" in ").append(binding.getSimpleName())
                    .append("\");\n");
        }
        return c.toString();
    }

    /** The descriptor as the letters of the legend: the result, then each parameter. */
    static String passing(FunctionDescriptor d) {
        StringBuilder s = new StringBuilder();
        s.append(d.returnLayout().map(CDeclarations::letter).orElse('v'));
        for (MemoryLayout l : d.argumentLayouts()) s.append(letter(l));
        return s.toString();
    }

    private static char letter(MemoryLayout l) {
        if (!(l instanceof ValueLayout v)) throw new IllegalArgumentException("not passed as a value: " + l);
        if (v.carrier() == MemorySegment.class) return 'a';
        if (v.carrier() == float.class) return 'f';
        if (v.carrier() == double.class) return 'd';
        return switch ((int) v.byteSize()) {
            case 1 -> 'b';
            case 2 -> 's';
            case 4 -> 'i';
            case 8 -> 'l';
            default -> throw new IllegalArgumentException("no C integer of " + v.byteSize() + " bytes");
        };
    }

    /** The part every file shares: the header, and the compile-time reduction of a C type to its letter. */
    private static final String PREAMBLE = """
            #include <cstddef>
            #include <type_traits>
            #include <HEADER>

            namespace tttbench_check {
            // How FFM passes a C type on x86-64 Linux: v void, a any pointer, b/s/i/l an integer or
            // enum of 1/2/4/8 bytes, f float, d double, ? anything else (a struct by value).
            template <typename T>
            constexpr char kind() {
                using U = std::remove_cv_t<T>;
                if constexpr (std::is_void_v<U>) return 'v';
                else if constexpr (std::is_pointer_v<U>) return 'a';
                else if constexpr (std::is_same_v<U, float>) return 'f';
                else if constexpr (std::is_same_v<U, double>) return 'd';
                else if constexpr (std::is_integral_v<U> || std::is_enum_v<U>)
                    return sizeof(U) == 1 ? 'b' : sizeof(U) == 2 ? 's' : sizeof(U) == 4 ? 'i' : sizeof(U) == 8 ? 'l' : '?';
                else return '?';
            }

            // Whether the function's declared type passes as the letters of `bound`.
            template <typename R, typename... A>
            constexpr bool passes(R (*)(A...), const char* bound) {
                const char declared[] = {kind<R>(), kind<A>()..., '\\0'};
                for (std::size_t i = 0; i < sizeof declared; i++) {
                    if (declared[i] != bound[i]) return false;
                }
                return true;
            }
            }  // namespace tttbench_check

            """;
}

package org.tttbench.gpu;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.TreeSet;
import java.util.function.Function;
import org.tukaani.xz.XZInputStream;

/**
 * The kernel objects scripts/build-kernels.sh compiled from hip/ and packed into the jar under
 * kernels/VENDOR/ARCH/NAME.EXT (EXT: co for AMD code objects, cubin and ptx for NVIDIA), listed
 * in kernels/index.txt, and the choice of the one a device can run:
 * <ul>
 * <li>AMD: the code object built for exactly the device's gfx processor;
 * <li>NVIDIA: the cubin for exactly the device's sm; else a cubin of the same major version and
 * a lower minor (binary compatible by CUDA's rules); else the newest PTX not newer than the
 * device, which the driver compiles at load time.
 * </ul>
 */
public final class KernelImages {

    private KernelImages() {
    }

    /** One built object: "nvidia/sm_90/smoke.cubin" → vendor nvidia, arch sm_90, name smoke, kind cubin. */
    public record Image(String vendor, String arch, String name, String kind) {

        public static Image parse(String path) {
            String[] parts = path.split("/");
            int dot = parts.length == 3 ? parts[2].lastIndexOf('.') : -1;
            if (dot <= 0) throw new IllegalArgumentException("not VENDOR/ARCH/NAME.EXT: " + path);
            return new Image(parts[0], parts[1], parts[2].substring(0, dot), parts[2].substring(dot + 1));
        }

        public String path() {
            return vendor + "/" + arch + "/" + name + "." + kind;
        }
    }

    /** The vendor folder of a runtime: "cuda" → "nvidia", "hip" → "amd". */
    public static String vendorOf(GpuRuntime runtime) {
        return switch (runtime.name()) {
            case "cuda" -> "nvidia";
            case "hip" -> "amd";
            default -> throw new IllegalArgumentException("unknown runtime " + runtime.name());
        };
    }

    /**
     * Loads kernel object {@code name} built for the runtime's device.
     *
     * @return the module handle
     * @throws GpuException when nothing built fits the device, naming its architecture and the ones built
     */
    public static long load(GpuRuntime runtime, String name) {
        Image image = pick(vendorOf(runtime), runtime.architecture(), name, index());
        return runtime.loadModule(read(image));
    }

    /** Everything listed in kernels/index.txt; empty when no kernel was built. */
    public static List<Image> index() {
        try (InputStream in = KernelImages.class.getResourceAsStream("/kernels/index.txt")) {
            if (in == null) return List.of();
            List<Image> images = new ArrayList<>();
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                if (!line.isBlank()) images.add(Image.parse(line.strip()));
            }
            return images;
        } catch (IOException e) {
            throw new UncheckedIOException("reading kernels/index.txt", e);
        }
    }

    /**
     * The bytes of one built object, to load a particular one (the PTX, say) rather than the best fit.
     * The bundle (scripts/bundle.sh) stores each object xz-compressed as NAME.xz, a third of its
     * deflated size; a build folder or the jar Maven makes holds them plain.
     */
    public static byte[] read(Image image) {
        return read(image, KernelImages.class::getResourceAsStream);
    }

    /** {@link #read(Image)} from {@code resources}: a resource path to its stream, or null where none is. */
    static byte[] read(Image image, Function<String, InputStream> resources) {
        String path = "/kernels/" + image.path();
        try (InputStream in = resources.apply(path)) {
            if (in != null) return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + path, e);
        }
        try (InputStream in = resources.apply(path + ".xz")) {
            if (in == null) throw new GpuException("kernels/" + image.path() + " is listed in kernels/index.txt but missing");
            try (InputStream xz = new XZInputStream(in)) {
                return xz.readAllBytes();
            }
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + path + ".xz", e);
        }
    }

    /**
     * The image of {@code name} that a device of {@code vendor} and {@code arch} runs.
     *
     * @throws GpuException when none fits
     */
    public static Image pick(String vendor, String arch, String name, List<Image> built) {
        return find(vendor, arch, name, built).orElseThrow(() -> new GpuException(whyNone(vendor, arch, name, built)));
    }

    /** Why no image of {@code name} fits the device: what was built instead, and what to do. */
    static String whyNone(String vendor, String arch, String name, List<Image> built) {
        List<Image> mine = built.stream().filter(i -> i.vendor().equals(vendor) && i.name().equals(name)).toList();
        if (mine.isEmpty()) {
            TreeSet<String> names = new TreeSet<>();
            for (Image i : built) names.add(i.name());
            return "no kernel '" + name + "' was built for " + vendor
                    + (names.isEmpty() ? " (this build has no kernels: was scripts/build-kernels.sh run"
                            + " with hipcc / nvcc installed?)" : " (built: " + String.join(", ", names) + ")");
        }
        TreeSet<String> archs = new TreeSet<>();
        for (Image i : mine) archs.add(i.kind().equals("ptx") ? i.arch() + " (PTX)" : i.arch());
        return "no kernel '" + name + "' for this device's architecture " + arch + "; built for "
                + String.join(", ", archs) + (vendor.equals("amd")
                        ? " (add the target to scripts/build-kernels.sh and rebuild)"
                        : " (a cubin runs on its own sm and newer minors of it, PTX on its version and newer)");
    }

    /** The image of {@code name} that a device of {@code vendor} and {@code arch} runs, if one was built. */
    public static Optional<Image> find(String vendor, String arch, String name, List<Image> built) {
        List<Image> mine = built.stream().filter(i -> i.vendor().equals(vendor) && i.name().equals(name)).toList();
        return switch (vendor) {
            case "amd" -> mine.stream().filter(i -> i.kind().equals("co") && i.arch().equals(arch)).findFirst();
            case "nvidia" -> pickNvidia(arch, mine);
            default -> throw new IllegalArgumentException("unknown vendor " + vendor);
        };
    }

    private static Optional<Image> pickNvidia(String arch, List<Image> mine) {
        int device = computeCapability(arch, "sm_");
        if (device < 0) return Optional.empty();
        Optional<Image> exact = mine.stream().filter(i -> i.kind().equals("cubin") && i.arch().equals(arch)).findFirst();
        if (exact.isPresent()) return exact;
        Optional<Image> sameMajor = mine.stream()
                .filter(i -> i.kind().equals("cubin"))
                .filter(i -> {
                    int cc = computeCapability(i.arch(), "sm_");
                    return cc >= 0 && cc / 10 == device / 10 && cc <= device;
                })
                .max(Comparator.comparingInt(i -> computeCapability(i.arch(), "sm_")));
        if (sameMajor.isPresent()) return sameMajor;
        return mine.stream()
                .filter(i -> i.kind().equals("ptx"))
                .filter(i -> {
                    int cc = computeCapability(i.arch(), "compute_");
                    return cc >= 0 && cc <= device;
                })
                .max(Comparator.comparingInt(i -> computeCapability(i.arch(), "compute_")));
    }

    /** "sm_90" → 90, "sm_100" → 100, "compute_90" → 90; -1 for anything else (arch-specific "sm_90a" too). */
    static int computeCapability(String arch, String prefix) {
        if (!arch.startsWith(prefix)) return -1;
        String digits = arch.substring(prefix.length());
        if (digits.length() < 2 || !digits.chars().allMatch(Character::isDigit)) return -1;
        return Integer.parseInt(digits);
    }
}

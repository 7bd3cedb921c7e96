package org.tttbench.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.tukaani.xz.LZMA2Options;
import org.tukaani.xz.XZOutputStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.tttbench.gpu.hip.HipRuntime;

/** Which built object a device gets, and what it is told when none fits. */
class KernelImagesTest {

    private static final List<KernelImages.Image> BUILT = Stream.of(
            "amd/gfx1030/smoke.co", "amd/gfx90a/smoke.co", "amd/gfx90a/norms.co",
            "nvidia/sm_80/smoke.cubin", "nvidia/sm_90/smoke.cubin", "nvidia/compute_90/smoke.ptx",
            "nvidia/sm_90/norms.cubin").map(KernelImages.Image::parse).toList();

    private static String pick(String vendor, String arch, String name) {
        return KernelImages.pick(vendor, arch, name, BUILT).path();
    }

    @Test
    void readsAnObjectPlainOrXzCompressedAsTheBundleStoresIt() throws IOException {
        byte[] object = new byte[5000];
        new Random(7).nextBytes(object);
        ByteArrayOutputStream packed = new ByteArrayOutputStream();
        try (XZOutputStream xz = new XZOutputStream(packed, new LZMA2Options(6))) {
            xz.write(object);
        }
        KernelImages.Image image = KernelImages.Image.parse("nvidia/sm_90/ttt_mlp.cubin");
        Map<String, byte[]> plain = Map.of("/kernels/nvidia/sm_90/ttt_mlp.cubin", object);
        Map<String, byte[]> bundled = Map.of("/kernels/nvidia/sm_90/ttt_mlp.cubin.xz", packed.toByteArray());
        assertArrayEquals(object, KernelImages.read(image, path -> stream(plain, path)));
        assertArrayEquals(object, KernelImages.read(image, path -> stream(bundled, path)));
        assertThrows(GpuException.class, () -> KernelImages.read(image, path -> null));
    }

    private static InputStream stream(Map<String, byte[]> resources, String path) {
        byte[] b = resources.get(path);
        return b == null ? null : new ByteArrayInputStream(b);
    }

    @Test
    void nvidiaTakesTheExactCubinFirst() {
        assertEquals("nvidia/sm_90/smoke.cubin", pick("nvidia", "sm_90", "smoke"));
        assertEquals("nvidia/sm_80/smoke.cubin", pick("nvidia", "sm_80", "smoke"));
    }

    @Test
    void nvidiaTakesACubinOfTheSameMajorAndLowerMinor() {
        assertEquals("nvidia/sm_80/smoke.cubin", pick("nvidia", "sm_86", "smoke"));
        assertEquals("nvidia/sm_80/smoke.cubin", pick("nvidia", "sm_89", "smoke"));
    }

    @Test
    void newerNvidiaDevicesCompileThePtx() {
        assertEquals("nvidia/compute_90/smoke.ptx", pick("nvidia", "sm_100", "smoke"));
        assertEquals("nvidia/compute_90/smoke.ptx", pick("nvidia", "sm_120", "smoke"));
    }

    @Test
    void olderNvidiaDevicesAreToldWhatWasBuilt() {
        GpuException e = assertThrows(GpuException.class, () -> pick("nvidia", "sm_75", "smoke"));
        assertTrue(e.getMessage().contains("sm_75"), e.getMessage());
        assertTrue(e.getMessage().contains("sm_80, sm_90") && e.getMessage().contains("compute_90 (PTX)"), e.getMessage());
        // norms has no PTX: a newer device cannot run it either.
        assertThrows(GpuException.class, () -> pick("nvidia", "sm_100", "norms"));
    }

    @Test
    void amdTakesOnlyTheExactProcessor() {
        assertEquals("amd/gfx90a/smoke.co", pick("amd", "gfx90a", "smoke"));
        assertEquals("amd/gfx1030/smoke.co", pick("amd", "gfx1030", "smoke"));
        GpuException e = assertThrows(GpuException.class, () -> pick("amd", "gfx942", "smoke"));
        assertTrue(e.getMessage().contains("gfx942") && e.getMessage().contains("gfx1030, gfx90a"), e.getMessage());
        assertThrows(GpuException.class, () -> pick("amd", "gfx1030", "norms"));
    }

    @Test
    void anUnknownKernelNamesTheBuiltOnes() {
        GpuException e = assertThrows(GpuException.class, () -> pick("nvidia", "sm_90", "nope"));
        assertTrue(e.getMessage().contains("'nope'") && e.getMessage().contains("norms, smoke"), e.getMessage());
        GpuException none = assertThrows(GpuException.class, () -> KernelImages.pick("amd", "gfx90a", "smoke", List.of()));
        assertTrue(none.getMessage().contains("no kernels"), none.getMessage());
    }

    @Test
    void featureSuffixesAreNotPartOfTheArchitecture() {
        assertEquals("gfx90a", HipRuntime.baseArchitecture("gfx90a:sramecc+:xnack-"));
        assertEquals("gfx1030", HipRuntime.baseArchitecture("gfx1030"));
    }

    @Test
    void pathsParseBothWays() {
        KernelImages.Image i = KernelImages.Image.parse("nvidia/compute_90/ttt_linear.ptx");
        assertEquals(new KernelImages.Image("nvidia", "compute_90", "ttt_linear", "ptx"), i);
        assertEquals("nvidia/compute_90/ttt_linear.ptx", i.path());
        assertThrows(IllegalArgumentException.class, () -> KernelImages.Image.parse("smoke.co"));
    }
}

package org.tttbench.gpu;

import java.util.List;
import java.util.regex.Pattern;
import org.tttbench.gpu.hip.Hiprtc;

/**
 * hipRTC, building a code object for the device's gfx target ({@code --offload-arch=gfxNNN}),
 * optimised as hipcc builds the kernels ahead of time (-O3), in C++17 like them. It needs no GPU,
 * only the library.
 *
 * <p>hipRTC builds in the HIP runtime's device headers (what hip_runtime.h and hip_fp16.h
 * declare), so it needs no include folder. A source that also includes those files from the
 * ROCm folder gets them twice (ROCm 5.2: redefinition errors); sources meant for both hipcc and
 * hipRTC include them only {@code #ifndef __HIPCC_RTC__}.
 */
public final class HiprtcCompiler extends RtcCompiler {

    /** A gfx target, with or without feature suffixes ("gfx90a", "gfx90a:xnack-"). */
    private static final Pattern GFX = Pattern.compile("gfx[0-9a-f]+(:[a-z]+[+-])*");

    /** The bindings, as the compile flow calls them. */
    static final Calls CALLS = new Calls("hipRTC", Hiprtc::hiprtcVersion, Hiprtc::hiprtcCreateProgram,
            Hiprtc::hiprtcDestroyProgram, Hiprtc::hiprtcCompileProgram, Hiprtc::hiprtcGetProgramLogSize,
            Hiprtc::hiprtcGetProgramLog, Hiprtc::hiprtcGetCodeSize, Hiprtc::hiprtcGetCode,
            s -> Ffm.cString(Hiprtc.hiprtcGetErrorString(s)));

    /**
     * hipRTC for {@code architecture} ("gfx90a").
     *
     * @throws GpuException when neither libhiprtc nor a HIP runtime with hipRTC built in is installed
     */
    public HiprtcCompiler(String architecture) {
        this(architecture, version(CALLS, Hiprtc.load()), CALLS);
    }

    /** Over any calls: the tests' way in, without the library. */
    HiprtcCompiler(String architecture, String version, Calls calls) {
        super("hiprtc", checked(architecture), version, List.of("--offload-arch=" + architecture, "-O3", "-std=c++17"),
                calls);
    }

    private static String checked(String architecture) {
        if (!GFX.matcher(architecture).matches()) {
            throw new IllegalArgumentException("hipRTC builds for a gfx target such as gfx90a, not '" + architecture + "'");
        }
        return architecture;
    }
}

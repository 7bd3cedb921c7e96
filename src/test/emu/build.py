#!/usr/bin/env python3
"""Builds the kernels of hip/ for the CPU emulation (emu_runtime.h), for tests on machines with
no GPU: each hip/NAME.hip (one op family, forward and backward) becomes a shared library with,
for every extern "C" kernel K, a function emu_call_K(void** kernelParams) that unpacks the
launch's argument array and calls K.
The libraries are laid out as the jar's kernels/ folder with the names a CUDA device of sm_80
looks for (kernels/nvidia/sm_80/NAME.cubin and kernels/index.txt), so KernelImages finds them
when this folder comes first on the class path; EmulatedRuntime loads them.

With --sm 90 the kernels are built as for an sm_90 device, thread block clusters included
(TTT_HAS_CLUSTERS is 1), into kernels/nvidia/sm_90/, which an EmulatedRuntime of sm_90 picks
(-Dtttbench.emu.arch=sm_90); such a runtime needs every module it loads built so. Every library
also says each kernel's cluster size (emu_cluster_K, 1 without clusters).

usage: build.py [--sm 80|90] HIP_DIR OUT_DIR [NAME ...]   (default: every hip/*.hip)
"""
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED_FLOATS = 65536  # 256 KB of dynamic shared memory (EMU_SHARED_BYTES)


def transform(text):
    # Dynamic shared memory becomes a plain array defined below; static shared memory a static
    # variable, one per declaration, which the fibers of a block share.
    text = re.sub(r'extern\s+__shared__', 'extern', text)
    return re.sub(r'__shared__', 'static', text)


def shared_memory(pre):
    """The definitions a module (preprocessed as pre) needs after its includes: every dynamic shared
    array is the one buffer the emulation swaps between the blocks of a cluster."""
    arrays = set(re.findall(r'extern\s+(\w+)\s+(\w+)\s*\[\s*\]\s*;', pre)) - {('float', 'emu_dynamic_shared')}
    spaces = set(re.findall(r'namespace\s+(\w+)\s*\{', pre))
    lines = ['extern "C" { alignas(16) float emu_dynamic_shared[%d]; }' % SHARED_FLOATS]
    for typ, arr in sorted(arrays):
        alias = '%s %s[%d * 4 / sizeof(%s)] __attribute__((alias("emu_dynamic_shared")));' % (
            typ, arr, SHARED_FLOATS, typ)
        lines.append('extern ' + alias)
        for ns in sorted(spaces):
            lines.append('namespace %s { extern %s }' % (ns, alias))
    return lines


def param_type(p):
    p = p.strip()
    m = re.match(r'^(.*?)(\w+)$', p)
    if not m:
        raise ValueError('cannot parse parameter ' + p)
    return m.group(1).strip()


def main():
    args = sys.argv[1:]
    sm = 80
    if args and args[0] == '--sm':
        sm = int(args[1])
        args = args[2:]
    hip_dir, out_dir = args[0], args[1]
    names = args[2:] or sorted(f[:-4] for f in os.listdir(hip_dir) if f.endswith('.hip'))
    target = os.path.join(out_dir, 'kernels', 'nvidia', 'sm_%d' % sm)
    os.makedirs(target, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for f in os.listdir(hip_dir):
            if f.endswith('.h') or f.endswith('.hip'):
                with open(os.path.join(hip_dir, f)) as src, open(os.path.join(tmp, f), 'w') as dst:
                    dst.write(transform(src.read()))
        for name in names:
            hip = os.path.join(tmp, name + '.hip')
            # EMU_CXXFLAGS adds compiler flags (scripts/check-kernels.sh plants errors with them).
            flags = ['-std=c++17', '-I', HERE, '-I', tmp, '-DTTT_EMU_SM=%d' % sm] + os.environ.get('EMU_CXXFLAGS', '').split()
            pre = subprocess.run(['g++', '-E', '-P', '-x', 'c++'] + flags + [hip], check=True, capture_output=True,
                                 text=True).stdout
            kernels = re.findall(r'extern\s+"C"\s+void\s+(?:\[\[emu::cluster\((\d+)\)\]\]\s*)?(\w+)\s*\(([^)]*)\)\s*\{',
                                 pre)
            if not kernels:
                raise SystemExit('no kernels found in ' + name)
            lines = ['#include "%s.hip"' % name] + shared_memory(pre)
            for cluster, k, params in kernels:
                lines.append('extern "C" int emu_cluster_%s = %s;' % (k, cluster or '1'))
                types = [param_type(p) for p in params.split(',')] if params.strip() else []
                call = ', '.join('*reinterpret_cast<%s*>(a[%d])' % (t, i) for i, t in enumerate(types))
                lines.append('extern "C" void emu_call_%s(void** a) { %s(%s); }' % (k, k, call))
            wrapper = os.path.join(tmp, name + '_emu.cpp')
            with open(wrapper, 'w') as w:
                w.write('\n'.join(lines) + '\n')
            out = os.path.join(target, name + '.cubin')
            subprocess.run(['g++', '-O2', '-g', '-shared', '-fPIC', '-w'] + flags + [wrapper, '-o', out], check=True)
            print('emu: %s (%d kernels)' % (name, len(kernels)))
    nvidia = os.path.join(out_dir, 'kernels', 'nvidia')
    with open(os.path.join(out_dir, 'kernels', 'index.txt'), 'w') as idx:
        for arch in sorted(os.listdir(nvidia)):
            for f in sorted(os.listdir(os.path.join(nvidia, arch))):
                if f.endswith('.cubin'):
                    idx.write('nvidia/%s/%s\n' % (arch, f))


if __name__ == '__main__':
    main()

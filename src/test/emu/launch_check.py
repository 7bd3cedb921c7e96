#!/usr/bin/env python3
"""Checks the launch index (kernels/launch.txt, from the TTT_LAUNCH and TTT_SIZE descriptors of
hip/) three ways, for a grid of shapes: every expression is parsed with the index's grammar and
evaluated; the shared memory and buffer sizes are compared with the layout functions the kernels
themselves check against (compiled from the kernel sources on the CPU, through the emulation's
headers); and every launch field and size is compared with the formulas the Java host used before
the index existed (InnerScanLayout, InnerBackwardLayout, GpuBackend and GpuBackwardOps, transcribed
below once). Prints each mismatch and exits non-zero on any.

usage: launch_check.py [--index LAUNCH_TXT] [--c-hip DIR] HIP_DIR
  HIP_DIR       the kernel sources the index is made from (scripts/build-kernels.sh with
                KERNELS_INDEX_ONLY=1), unless --index names a launch.txt already made
  --c-hip DIR   take the layout functions from another kernel tree (one before the families were
                merged, say): its ttt_*.hip are compiled together instead of HIP_DIR's
"""
import itertools
import os
import random
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, '..', '..', '..'))
sys.path.insert(0, HERE)
import build  # noqa: E402  (the emulation's transform of the kernel sources)

VARIABLES = {'N', 'MAXB', 'ROWS', 'D', 'CHUNK', 'H', 'TOKENS', 'PAIRS', 'MB', 'F', 'K', 'INTERVAL'}
COMPARISONS = {'==': lambda a, b: a == b, '!=': lambda a, b: a != b, '<': lambda a, b: a < b,
               '<=': lambda a, b: a <= b, '>': lambda a, b: a > b, '>=': lambda a, b: a >= b,
               '&&': lambda a, b: a != 0 and b != 0, '||': lambda a, b: a != 0 or b != 0}
FUNCTIONS = {'min': min, 'max': max, 'cdiv': lambda a, b: -(-a // b)}


# ---------------------------------------------------------------- the index's expressions

def tokens(text):
    out = []
    for m in re.finditer(r'\s*(?:(\d+)|([A-Za-z_]\w*)|(.))', text):
        num, word, op = m.groups()
        if num is not None:
            out.append(('num', int(num)))
        elif word is not None:
            out.append(('word', word))
        elif op is not None and not op.isspace():
            if op not in '+-*/%(),=!<>&|':
                raise ValueError('character %r' % op)
            if out and out[-1][0] == 'op' and out[-1][1] + op in ('==', '!=', '<=', '>=', '&&', '||') \
                    and m.group(0) == op:
                out[-1] = ('op', out[-1][1] + op)
            else:
                out.append(('op', op))
    return out


class Expr:
    """An expression of the index's grammar: integer literals, the launch variables, + - * / %
    (left to right, * / % before + -, / and % truncating as in Java and C), the comparisons
    == != < <= > >= and && || (1 or 0, with C's precedence), parentheses and min(a,b), max(a,b),
    cdiv(a,b). No unary minus."""

    def __init__(self, text):
        self.text = text
        self.toks = tokens(text)
        self.pos = 0
        self.variables = set()
        self.tree = self.logical_or()
        if self.pos != len(self.toks):
            raise ValueError('trailing %r in %s' % (self.toks[self.pos], text))

    def peek(self):
        return self.toks[self.pos] if self.pos < len(self.toks) else (None, None)

    def take(self, kind=None, value=None):
        t = self.peek()
        if t[0] is None or (kind and t[0] != kind) or (value and t[1] != value):
            raise ValueError('expected %s at %d in %s' % (value or kind, self.pos, self.text))
        self.pos += 1
        return t

    def binary(self, ops, operand):
        node = operand()
        while self.peek()[0] == 'op' and self.peek()[1] in ops:
            node = (self.take()[1], node, operand())
        return node

    def logical_or(self):
        return self.binary(('||',), self.logical_and)

    def logical_and(self):
        return self.binary(('&&',), self.equality)

    def equality(self):
        return self.binary(('==', '!='), self.relational)

    def relational(self):
        return self.binary(('<', '<=', '>', '>='), self.sum)

    def sum(self):
        node = self.product()
        while self.peek() in (('op', '+'), ('op', '-')):
            node = (self.take()[1], node, self.product())
        return node

    def product(self):
        node = self.factor()
        while self.peek() in (('op', '*'), ('op', '/'), ('op', '%')):
            node = (self.take()[1], node, self.factor())
        return node

    def factor(self):
        kind, value = self.peek()
        if kind == 'num':
            self.take()
            return ('num', value)
        if kind == 'word':
            self.take()
            if value in FUNCTIONS:
                self.take('op', '(')
                a = self.logical_or()
                self.take('op', ',')
                b = self.logical_or()
                self.take('op', ')')
                return ('call', value, a, b)
            if value not in VARIABLES:
                raise ValueError('unknown name %s in %s' % (value, self.text))
            self.variables.add(value)
            return ('var', value)
        self.take('op', '(')
        node = self.logical_or()
        self.take('op', ')')
        return node

    def eval(self, env, node=None):
        node = self.tree if node is None else node
        kind = node[0]
        if kind == 'num':
            return node[1]
        if kind == 'var':
            return env[node[1]]
        if kind == 'call':
            return FUNCTIONS[node[1]](self.eval(env, node[2]), self.eval(env, node[3]))
        a, b = self.eval(env, node[1]), self.eval(env, node[2])
        if kind in COMPARISONS:
            return int(COMPARISONS[kind](a, b))
        if kind == '+':
            return a + b
        if kind == '-':
            return a - b
        if kind == '*':
            return a * b
        q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
        return q if kind == '/' else a - q * b


def read_index(path):
    launches, sizes = {}, {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            if not fields:
                continue
            if ' '.join(fields) != line.rstrip('\n'):
                raise ValueError('fields not one space apart: ' + line)
            if fields[1] == '@launch' and len(fields) == 8:
                if not (fields[3].isdigit() and fields[4].isdigit()):
                    raise ValueError('threads and cluster must be literals: ' + line)
                launches[fields[2]] = (fields[0], [Expr(x) for x in fields[3:]])
            elif fields[1] == '@size' and len(fields) == 4 and fields[2].endswith('_has_instance'):
                continue  # which shapes the build's objects hold instances for: no size to compare
            elif fields[1] == '@size' and len(fields) == 4:
                sizes[fields[2]] = (fields[0], Expr(fields[3]))
            else:
                raise ValueError('not a descriptor: ' + line)
    return launches, sizes


# ---------------------------------------------------------------- the kernels' layout functions

# name -> C++ expression of F, K (and C where the name says), taken from the kernel sources.
C_FUNCTIONS = {
    'lin_state': 'ttt_scan::linear_state_floats(F)',
    'lin_scratch': 'ttt_scan::linear_scratch_floats(F, K)',
    'lin_fused_scratch': 'ttt_scan::linear_fused_scratch_floats(F, K)',
    'lin_bwd_state': 'ttt_bwd::linear_bwd_state_floats(F)',
    'lin_bwd_scratch': 'ttt_bwd::linear_bwd_scratch_floats(F, K)',
    'lin_record': 'ttt_bwd::par_record_floats(F, K)',
    'lin_local': 'ttt_bwd::par_local_floats(F, K)',
    'lin_chain': 'ttt_bwd::par_chain_floats(F, K)',
    'lin_finish': 'ttt_bwd::par_finish_floats(F, K)',
    'lin_chain_fixed': 'ttt_bwd::fixed_chain_floats(F, K)',
    'mlp_bwd_state': 'ttt_bwd::mlp_bwd_state_floats(F)',
    'mlp_bwd_scratch': 'ttt_bwd::mlp_bwd_scratch_floats(F, K)',
    'mlp_record': 'ttt_bwd::mpar_record_floats(F, K)',
    'mlp_local': 'ttt_bwd::mpar_local_floats(F, K, false)',
    'mlp_local_inrecord': 'ttt_bwd::mpar_local_floats(F, K, true)',
    'mlp_chain': 'ttt_bwd::mpar_chain_floats(F, K)',
    'mlp_finish': 'ttt_bwd::mpar_finish_floats(F, K)',
}
for _c in (1, 2, 4, 8):
    C_FUNCTIONS['mlp_state%d' % _c] = 'ttt_scan::mlp_state_floats(F, %d)' % _c
    C_FUNCTIONS['mlp_scratch%d' % _c] = 'ttt_scan::mlp_scratch_floats(F, K, %d)' % _c
    C_FUNCTIONS['mlp_fused_scratch%d' % _c] = 'ttt_scan::mlp_fused_scratch_floats(F, K, %d)' % _c
for _c in (2, 4, 8):
    C_FUNCTIONS['mlp_chain_cluster%d' % _c] = 'ttt_bwd::mpar_cluster_chain_floats(F, K, %d)' % _c
# What the kernels compute in line from the size macros (the sources before the macros have none).
C_MACROS = {
    'lin_packed': 'TTT_LINEAR_PACKED_STATE_FLOATS(F)',
    'lin_partial': 'TTT_LINEAR_BACKWARD_PARTIAL_FLOATS(F, K)',
    'lin_finish_partial': 'TTT_LINEAR_BACKWARD_FINISH_PARTIAL_FLOATS(F, K)',
    'mlp_packed': 'TTT_MLP_PACKED_STATE_FLOATS(F)',
    'mlp_partial': 'TTT_MLP_BACKWARD_PARTIAL_FLOATS(F, K)',
    'mlp_finish_partial': 'TTT_MLP_BACKWARD_FINISH_PARTIAL_FLOATS(F, K)',
}
SHAPES_F = (32, 64, 96, 128)
SHAPES_K = (8, 16, 32, 64)


def c_values(hip_dir):
    """{(F, K): {name: value}} from the layout functions of hip_dir's ttt_*.hip."""
    with tempfile.TemporaryDirectory() as tmp:
        for f in os.listdir(hip_dir):
            if f.endswith('.h') or f.endswith('.hip'):
                with open(os.path.join(hip_dir, f)) as src, open(os.path.join(tmp, f), 'w') as dst:
                    dst.write(build.transform(src.read()))
        modules = sorted(f for f in os.listdir(hip_dir) if f.startswith('ttt_') and f.endswith('.hip')
                         and f != 'ttt_inputs.hip' and not f.startswith('ttt_inputs_'))
        flags = ['-std=c++17', '-I', HERE, '-I', tmp, '-DTTT_EMU_SM=80']
        head = ''.join('#include "%s"\n' % m for m in modules)
        with open(os.path.join(tmp, 'head.cpp'), 'w') as w:
            w.write(head)
        pre = subprocess.run(['g++', '-E', '-P', '-x', 'c++'] + flags + [os.path.join(tmp, 'head.cpp')], check=True,
                             capture_output=True, text=True).stdout
        lines = [head] + build.shared_memory(pre) + ['#include <cstdio>', 'int main() {']
        lines.append('    for (int F : {%s}) for (int K : {%s}) {' % (', '.join(map(str, SHAPES_F)),
                                                                     ', '.join(map(str, SHAPES_K))))
        for name, expr in C_FUNCTIONS.items():
            lines.append('        std::printf("%%d %%d %s %%ld\\n", F, K, (long)(%s));' % (name, expr))
        for name, expr in C_MACROS.items():
            macro = expr.split('(')[0]
            lines.append('#ifdef %s' % macro)
            lines.append('        std::printf("%%d %%d %s %%ld\\n", F, K, (long)(%s));' % (name, expr))
            lines.append('#endif')
        lines += ['    }', '}']
        with open(os.path.join(tmp, 'values.cpp'), 'w') as w:
            w.write('\n'.join(lines) + '\n')
        exe = os.path.join(tmp, 'values')
        subprocess.run(['g++', '-O0', '-w'] + flags + [os.path.join(tmp, 'values.cpp'), '-o', exe], check=True)
        out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
    values = {}
    for line in out.splitlines():
        f, k, name, v = line.split()
        values.setdefault((int(f), int(k)), {})[name] = int(v)
    return values


def c_side(name, cv):
    """A descriptor's value (launch: shared bytes only) as the kernels compute it, from their layout
    functions: the sizes they check the host's against (need_smem, need_ws) and index with."""
    def placed(state, scratch):
        return {'shared': (4 * (state + scratch), 0), 'stateglobal': (4 * scratch, state),
                'global': (0, state + scratch)}
    table = {}
    for p, (smem, ws) in placed(cv['lin_state'], cv['lin_scratch']).items():
        table['ttt_linear_forward_' + p] = smem
        table['ttt_linear_forward_%s_workspace_floats' % p] = ws
    table['ttt_linear_forward_fused'] = 4 * (cv['lin_state'] + cv['lin_fused_scratch'])
    table['ttt_linear_forward_fused_workspace_floats'] = 0
    for p, (smem, ws) in placed(cv['mlp_state1'], cv['mlp_scratch1']).items():
        table['ttt_mlp_forward_' + p] = smem
        table['ttt_mlp_forward_%s_workspace_floats' % p] = ws
    for c in (2, 4):
        table['ttt_mlp_forward_cluster%d' % c] = 4 * (cv['mlp_state%d' % c] + cv['mlp_scratch%d' % c])
    for c in (2, 4, 8):
        table['ttt_mlp_forward_fusedcluster%d' % c] = 4 * (cv['mlp_state%d' % c] + cv['mlp_fused_scratch%d' % c])
    for k in ('cluster2', 'cluster4', 'fusedcluster2', 'fusedcluster4', 'fusedcluster8'):
        table['ttt_mlp_forward_%s_workspace_floats' % k] = 0
    for fam in ('linear', 'mlp'):
        pre = 'lin' if fam == 'linear' else 'mlp'
        for p, (smem, ws) in placed(cv[pre + '_bwd_state'], cv[pre + '_bwd_scratch']).items():
            table['ttt_%s_backward_walk_%s' % (fam, p)] = smem
            table['ttt_%s_backward_walk_%s_workspace_floats' % (fam, p)] = ws
        for part in ('local', 'chain', 'finish'):
            table['ttt_%s_backward_%s' % (fam, part)] = 4 * cv['%s_%s' % (pre, part)]
        table['ttt_%s_backward_record_floats' % fam] = cv[pre + '_record']
        if pre + '_packed' in cv:
            table['ttt_%s_state_floats' % fam] = cv[pre + '_packed']
            table['ttt_%s_backward_chain_partial_floats' % fam] = cv[pre + '_packed']
            table['ttt_%s_backward_walk_partial_floats' % fam] = cv[pre + '_partial']
            table['ttt_%s_backward_finish_partial_floats' % fam] = cv[pre + '_finish_partial']
    table['ttt_linear_backward_chain_fixed'] = 4 * cv['lin_chain_fixed']
    table['ttt_mlp_backward_local_inrecord'] = 4 * cv['mlp_local_inrecord']
    for c in (2, 4, 8):
        table['ttt_mlp_backward_chain_cluster%d' % c] = 4 * cv['mlp_chain_cluster%d' % c]
    return table.get(name)


# ---------------------------------------------------------------- the Java host's formulas before the index

def java_blocks(n, maxb):  # GpuBackend.blocks, GpuBackwardOps.blocks
    return max(1, min((n + 255) // 256, maxb))


def java_scan(mlp, f, k, cluster, fused):  # InnerScanLayout: (stateFloats, scratchFloats)
    f1c = 4 * f // cluster
    fc = f // cluster
    if mlp:
        state = f * (f1c + 4) + f1c + f1c * (f + 4) + f
        sets = 1 if cluster == 1 else 2
        scratch = (5 + sets * 2) * k * (f + 4) + 3 * k * (f1c + 4) + 2 * k * (k + 4) + 2 * k + 2 * f \
            + (3 * k * (f + 4) + k if fused else 0)
    else:
        state = f * (fc + 4) + fc
        scratch = 10 * k * (f + 4) + k * (k + 4) + 3 * k + 2 * f if fused else \
            9 * k * (f + 4) + k * (k + 4) + 3 * k + 2 * f
    return state, scratch


def java_placed(state, scratch, p):  # sharedBytes, workspaceFloats of both layouts
    return {'shared': (4 * (state + scratch), 0), 'stateglobal': (4 * scratch, state),
            'global': (0, state + scratch)}[p]


def java_backward(mlp, f, k):  # InnerBackwardLayout
    f1 = 4 * f
    packed = 8 * f * f + 5 * f if mlp else f * f + f
    state = 2 * (f * (4 * f + 4) + 4 * f + 4 * f * (f + 4) + f) if mlp else 2 * (f * (f + 4) + f)
    scratch = 13 * k * (f + 4) + 9 * k * (4 * f + 4) + 9 * k * (k + 4) + 4 * k + 4 * f if mlp else \
        14 * k * (f + 4) + 5 * k * (k + 4) + 4 * k + 4 * f
    record = 9 * k * 4 * f + 7 * k * f + k * k + k + 2 * f if mlp else 8 * k * f + k * k + k + 2 * f
    local = 13 * k * (f + 4) + 9 * k * (4 * f + 4) + 11 * k * (k + 4) + 3 * k + 2 * f if mlp else \
        f * (f + 4) + f + 10 * k * (f + 4) + 4 * k * (k + 4) + 3 * k + 2 * f
    chain = 13 * k * (f + 4) + 8 * k * (4 * f + 4) + 3 * k + 2 * f if mlp else \
        f * (f + 4) + f + 9 * k * (f + 4) + 3 * k + 2 * f
    finish = k * (4 * f + 4) + 2 * k + 2 * f if mlp else f * (f + 4) + f + k * (f + 4) + 2 * k + 2 * f
    fixed = 2 * (8 * k * (f + 4) + 3 * k) + f * (f + 4) + f + k * (f + 4) + 2 * f + k

    def cluster_chain(c):
        f1c = 4 * f // c
        return 13 * k * (f + 4) + 8 * k * (f1c + 4) + f1c * (f + 4) + f * (f1c + 4) + f1c * (f + 4) + f1c + f \
            + 3 * k + 2 * f
    del f1
    return dict(packed=packed, partial=packed + 2 * f + k, state=state, scratch=scratch, record=record,
                local=local, chain=chain, finish=finish, fixed=fixed, cluster_chain=cluster_chain)


def java_side(name, e):
    """(threads, cluster, grid_x, grid_y, shared_bytes) of a launch, or a size, as the Java host
    computed it; None where the Java side had no formula of its own."""
    f, k, pairs = e['F'], e['K'], e['PAIRS']
    stride = (256, 1, java_blocks(e['N'], e['MAXB']), 1, 0)
    if name in ('elementwise_fill', 'elementwise_add', 'elementwise_swiglu', 'elementwise_swiglu_backward',
                'elementwise_sum_partials', 'embedding_forward', 'embedding_backward', 'ttt_inputs_split_heads',
                'ttt_inputs_split_heads_backward'):
        return stride
    if name in ('ttt_inputs_token_eta', 'ttt_inputs_token_eta_backward'):
        return (256, 1, java_blocks(k, e['MAXB']), 1, 0)
    if name in ('norms_rmsnorm', 'norms_add_rmsnorm', 'norms_layernorm'):
        return (256, 1, min(e['ROWS'], 65535), 1, 0)
    chunks = (e['ROWS'] + e['CHUNK'] - 1) // e['CHUNK']
    if name == 'norms_rmsnorm_backward':
        return (256, 1, chunks, 1, 4 * e['D'])
    if name == 'norms_layernorm_backward':
        return (256, 1, chunks, 1, 8 * e['D'])
    if name == 'norms_rmsnorm_backward_partial_floats':
        return chunks * e['D']
    if name == 'norms_layernorm_backward_partial_floats':
        return 8 * chunks * e['D'] // 4
    tchunks = (e['TOKENS'] + e['CHUNK'] - 1) // e['CHUNK']
    if name == 'ttt_inputs_lr':
        return (256, 1, min(e['TOKENS'], 65535), 1, 0)
    if name == 'ttt_inputs_lr_backward':
        return (256, 1, min(e['TOKENS'], 65535), 1, 4 * e['H'])
    if name == 'ttt_inputs_lr_backward_params':
        return (256, 1, java_blocks(e['H'] * (e['D'] + 1), e['MAXB']), tchunks, 0)
    if name == 'ttt_inputs_lr_backward_dz_floats':
        return e['TOKENS'] * e['H']
    if name == 'ttt_inputs_lr_backward_params_partial_floats':
        return tchunks * e['H'] * (e['D'] + 1)
    if name == 'smoke_warp_size':
        return (64, 1, 1, 1, 0)
    m = re.match(r'ttt_(linear|mlp)_', name)
    if not m:
        return None
    fam = m.group(1)
    mlp = fam == 'mlp'
    slots = (e['MB'] + e['INTERVAL'] - 1) // e['INTERVAL']
    if name == 'ttt_%s_checkpoint_slots' % fam:
        return slots
    bw = java_backward(mlp, f, k)
    if name == 'ttt_%s_state_floats' % fam:
        return bw['packed']
    m = re.match(r'ttt_%s_forward_(shared|stateglobal|global)(_workspace_floats)?$' % fam, name)
    if m:
        smem, ws = java_placed(*java_scan(mlp, f, k, 1, False), m.group(1))
        return ws if m.group(2) else (256, 1, pairs, 1, smem)
    m = re.match(r'ttt_%s_forward_(fused|cluster|fusedcluster)(\d*)$' % fam, name)
    if m:
        c = int(m.group(2) or 1)
        state, scratch = java_scan(mlp, f, k, c, m.group(1) != 'cluster')
        return (256, c, pairs * c, 1, 4 * (state + scratch))
    if name == 'ttt_linear_forward_fused_workspace_floats' or re.match(
            r'ttt_mlp_forward_(fused)?cluster\d_workspace_floats$', name):
        return 0
    m = re.match(r'ttt_%s_backward_walk_(shared|stateglobal|global)(_workspace_floats|_buffer_floats)?$' % fam, name)
    if m:
        smem, ws = java_placed(bw['state'], bw['scratch'], m.group(1))
        rs = max(0, e['INTERVAL'] - 2)
        if m.group(2) == '_workspace_floats':
            return ws
        if m.group(2) == '_buffer_floats':
            return ws + rs * bw['packed']
        return (256, 1, pairs, 1, smem)
    if name == 'ttt_%s_backward_walk_recomputed_states' % fam:
        return max(0, e['INTERVAL'] - 2)
    if name == 'ttt_%s_backward_walk_partial_floats' % fam:
        return bw['partial']
    if name == 'ttt_%s_backward_local' % fam:
        return (256, 1, pairs, e['MB'], 4 * bw['local'])
    if name == 'ttt_%s_backward_chain' % fam:
        return (256, 1, pairs, 1, 4 * bw['chain'])
    if name == 'ttt_linear_backward_chain_fixed':
        # The host took it at these shapes only (its table row said so), where this was its size.
        return (256, 1, pairs, 1, 4 * bw['fixed']) if f in (32, 64) and k in (8, 16) else None
    m = re.match(r'ttt_mlp_backward_chain_cluster(\d)$', name)
    if m:
        c = int(m.group(1))
        return (256, c, pairs * c, 1, 4 * bw['cluster_chain'](c))
    if name == 'ttt_%s_backward_finish' % fam:
        return (256, 1, pairs, e['MB'], 4 * bw['finish'])
    if name == 'ttt_%s_backward_record_floats' % fam:
        return bw['record']
    if name == 'ttt_%s_backward_chain_partial_floats' % fam:
        return bw['packed']
    if name == 'ttt_%s_backward_finish_partial_floats' % fam:
        return 2 * f + k
    return None


# ---------------------------------------------------------------- the check

def environments():
    rnd = random.Random(20240704)
    choices = dict(N=(1, 255, 256, 257, 4096, 10 ** 6, 10 ** 8), MAXB=(64, 4224), ROWS=(1, 17, 2048, 70000),
                   D=(64, 768, 2048), CHUNK=(16, 64), H=(1, 4, 12, 32), TOKENS=(1, 100, 2048, 70000),
                   PAIRS=(1, 12, 48), MB=(1, 5, 128), INTERVAL=(1, 2, 3, 4, 8, 16))
    for f, k in itertools.product(SHAPES_F, SHAPES_K):
        for _ in range(40):
            e = {v: rnd.choice(c) for v, c in choices.items()}
            e['F'], e['K'] = f, k
            yield e


def main():
    args = sys.argv[1:]
    index = c_hip = None
    while args and args[0].startswith('--'):
        if args[0] == '--index':
            index = args[1]
        elif args[0] == '--c-hip':
            c_hip = args[1]
        else:
            raise SystemExit(__doc__)
        args = args[2:]
    if len(args) != 1:
        raise SystemExit(__doc__)
    hip_dir = args[0]
    with tempfile.TemporaryDirectory() as tmp:
        if index is None:
            subprocess.run(['bash', os.path.join(ROOT, 'scripts', 'build-kernels.sh'), hip_dir, tmp], check=True,
                           env=dict(os.environ, KERNELS_INDEX_ONLY='1'), stdout=subprocess.DEVNULL)
            index = os.path.join(tmp, 'launch.txt')
        launches, sizes = read_index(index)
    cvals = c_values(c_hip or hip_dir)
    mismatches = 0
    checked = {'java': 0, 'c': 0}
    no_java, no_c = set(), set()

    def report(what, name, e, got, want):
        nonlocal mismatches
        mismatches += 1
        if mismatches <= 40:
            used = sorted(v for v in VARIABLES if v in e)
            print('MISMATCH %s %s: index %s, %s %s at %s' % (what, name, got, what, want,
                                                              ' '.join('%s=%d' % (v, e[v]) for v in used)))

    def against(what, side, missing, name, e, got, want):
        """got against one side's value want; a side without one notes the name in missing."""
        if want is None:
            missing.add(name)
            return
        checked[side] += 1
        if got != want:
            report(what, name, e, got, want)

    def against_both(name, e, cv, got, got_c):
        """got against the Java formula, and got_c (its shared memory or size) against the kernel's layout."""
        against('java', 'java', no_java, name, e, got, java_side(name, e))
        against('kernel', 'c', no_c, name, e, got_c, c_side(name, cv))

    for e in environments():
        cv = cvals[(e['F'], e['K'])]
        for name, (module, exprs) in sorted(launches.items()):
            got = tuple(x.eval(e) for x in exprs)
            against_both(name, e, cv, got, got[4])
        for name, (module, expr) in sorted(sizes.items()):
            got = expr.eval(e)
            against_both(name, e, cv, got, got)
    print('launch_check: %d launch descriptors and %d sizes, %d shapes (F %s, K %s), %d comparisons with the '
          'Java formulas and %d with the kernels\' layout functions (%s)' % (
              len(launches), len(sizes), len(list(environments())), SHAPES_F, SHAPES_K, checked['java'], checked['c'],
              c_hip or hip_dir))
    print('  no Java formula of its own: %s' % (', '.join(sorted(no_java)) or 'none'))
    print('  no layout function (a grid-stride or row kernel, or one the kernels size in line): %d of %d' % (
        len(no_c), len(launches) + len(sizes)))
    print('launch_check: %s' % ('%d mismatch(es)' % mismatches if mismatches else 'no mismatch'))
    sys.exit(1 if mismatches else 0)


if __name__ == '__main__':
    main()

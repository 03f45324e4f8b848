#!/usr/bin/env python3
"""rewrite_launches.py IN OUT: copies a CUDA source with each kernel launch  K<<<grid, block, shm, stream>>>(args)
rewritten as  emu_launch(EmuCfg(grid, block, shm, stream), K, args)  (cuda_emu.h), so that a C++ compiler
builds it for the CPU emulation of the kernel tests (tests/cuda_emu/README.md). Each one-line declaration of
shared arrays,  __shared__ T a[n], b[m];  is followed on its line by  emu_shared_fresh(a, sizeof a);  for each
array, which fills it with bytes 0xff once per block: a block's shared memory starts as garbage on the GPU."""
import re
import sys

SHARED = re.compile(r'^([ \t]*__shared__[^;\n]*;)', re.M)


def fresh_shared(s):
    """Each __shared__ declaration line with its arrays' emu_shared_fresh calls after it."""
    def calls(m):
        names = re.findall(r'(\w+)\s*\[', m.group(1))
        return m.group(1) + ''.join(f' emu_shared_fresh({n}, sizeof {n});' for n in names)
    return SHARED.sub(calls, s)


def kernel_start(s, j):
    """The start of the kernel expression that ends just before s[j] (a name, a name<...> or a (...) group)."""
    k = j
    while k > 0 and s[k - 1] in ' \t':
        k -= 1
    close = s[k - 1]
    if close in '>)':
        opening = '<' if close == '>' else '('
        depth = 0
        while True:
            k -= 1
            if s[k] == close:
                depth += 1
            elif s[k] == opening:
                depth -= 1
                if depth == 0:
                    break
    while k > 0 and (s[k - 1].isalnum() or s[k - 1] in '_:'):
        k -= 1
    return k


def rewrite(s, path):
    out, i = [], 0
    while True:
        j = s.find('<<<', i)
        if j < 0:
            out.append(s[i:])
            return ''.join(out)
        k = kernel_start(s, j)
        e = s.find('>>>', j)
        p = s.find('(', e)
        if e < 0 or p < 0 or s[e + 3:p].strip():
            sys.exit(f'{path}: a launch at offset {j} that this rewriter does not understand')
        q = p + 1
        while s[q] in ' \t\n\\':
            q += 1
        sep = '' if s[q] == ')' else ', '
        out.append(s[i:k])
        out.append(f'emu_launch(EmuCfg({s[j + 3:e]}), {s[k:j].strip()}{sep}')
        i = p + 1


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit('usage: rewrite_launches.py IN OUT')
    src = open(sys.argv[1]).read()
    open(sys.argv[2], 'w').write(f'#line 1 "{sys.argv[1]}"\n' + fresh_shared(rewrite(src, sys.argv[1])))

#!/usr/bin/env python3
"""Every program's man page (man/PROGRAM.{1,8}, one roff source each):
renders with man -l without warnings, and names every option (--x) and
every setting (the hyphenated keys after "keys:") that the program's own
--help lists, compared at test time so that a --help that grows without
its man page fails here. Also: every installed program has a man page.

usage: man_check.py BUILD_DIR SOURCE_DIR
"""
import os, re, subprocess, sys

build, src = sys.argv[1], sys.argv[2]
programs = ['esim', 'esim-pki', 'esim-euicc', 'esim-smdp', 'esim-operator', 'esim-smds']
failures = []
checked = 0
for prog in programs:
    exe = os.path.join(build, prog)
    if not os.path.exists(exe):
        continue
    pages = [os.path.join(src, 'man', f'{prog}.{s}') for s in ('1', '8')]
    pages = [p for p in pages if os.path.exists(p)]
    if not pages:
        failures.append(f'{prog}: no man page in man/ ({prog}.1 or {prog}.8)')
        continue
    page = pages[0]
    r = subprocess.run(['man', '--warnings', '-l', page], capture_output=True, text=True,
                       env=dict(os.environ, MANWIDTH='100', LC_ALL='C.UTF-8', MANPAGER='cat', PAGER='cat'))
    if r.returncode != 0 or r.stderr.strip():
        failures.append(f'{page}: man -l: rc {r.returncode}: {r.stderr.strip()[:300]}')
    text = open(page).read()
    text = re.sub(r'\\f[BIRP]', '', text).replace('\\-', '-').replace('\\&', '')
    h = subprocess.run([exe, '--help'], capture_output=True, text=True)
    help_text = h.stdout + h.stderr
    if h.returncode != 0:
        failures.append(f'{prog} --help: exit {h.returncode}')
    v = subprocess.run([exe, '--version'], capture_output=True, text=True)
    if v.returncode != 0 or not re.fullmatch(re.escape(prog) + r' \d+\.\d+\.\d+\n', v.stdout):
        failures.append(f'{prog} --version: exit {v.returncode}, {v.stdout!r}')
    wanted = set(re.findall(r'(?<![\w-])(--[a-z][a-z0-9-]*[a-z0-9])', help_text))
    wanted.add('--version')
    k = re.search(r'^keys:', help_text, re.M)
    if k:
        wanted |= set(re.findall(r'(?<![\w/.-])([a-z][a-z0-9]*(?:-[a-z0-9]+)+)(?![\w-])',
                                 help_text[k.start():]))
    missing = sorted(w for w in wanted
                     if not re.search(r'(?<![\w-])' + re.escape(w) + r'(?![\w-])', text))
    if missing:
        failures.append(f'{page}: does not document what {prog} --help lists: ' + ', '.join(missing))
    checked += 1
    print(f'{prog}: {page}: {len(wanted)} options and settings documented')
if checked == 0:
    failures.append(f'no program found in {build}')
for f in failures:
    print('FAIL: ' + f, file=sys.stderr)
sys.exit(1 if failures else 0)

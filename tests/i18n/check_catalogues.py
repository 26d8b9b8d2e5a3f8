#!/usr/bin/env python3
"""Build check of the translations (CTest: i18n_catalogues).

    tests/i18n/check_catalogues.py SOURCE_DIR

Fails, naming each problem, when
  - a web catalogue (src/operator/web/i18n/{en,nl,fr,zh}.json) is not a JSON
    object of non-empty strings, lacks a key another one has, a value's
    {placeholders} differ from the English one's, or a value is the English
    text where tests/i18n/same-as-english.txt does not allow it;
  - a key the pages use has no entry: data-i18n / data-i18n-attr in the
    HTML, t('key') / P.t('key') in the scripts, and the key families the
    scripts build ('state.' + s with the list of s written next to it);
  - a key the operator's C code reads (op_tr(o, lang, "key", "English")) is
    missing, or its built-in English differs from en.json's;
  - a po file (po/{nl,fr,zh_CN}.po) does not pass `msgfmt --check`, has an
    untranslated or fuzzy message, or po/esim.pot is not what xgettext finds
    in src/lpa, src/apdu and esim_strerror's texts (a _() string or an
    esim_errctx_set format added without updating the catalogues).
Adding a string: see docs/i18n.md.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

LANGS = ['en', 'nl', 'fr', 'zh']
PO_LANGS = ['nl', 'fr', 'zh_CN']
PLACEHOLDER = re.compile(r'\{(\w+)\}')

problems = []


def bad(msg):
    problems.append(msg)


def load_catalogues(web):
    cats = {}
    for lang in LANGS:
        path = os.path.join(web, 'i18n', lang + '.json')
        try:
            with open(path, encoding='utf-8') as f:
                data = json.load(f, object_pairs_hook=no_duplicates(path))
        except (OSError, ValueError) as e:
            bad('%s: %s' % (path, e))
            continue
        if not isinstance(data, dict):
            bad('%s: not a JSON object' % path)
            continue
        for k, v in data.items():
            if not isinstance(v, str) or not v.strip():
                bad('%s: key %r has an empty or non-string value' % (path, k))
        cats[lang] = data
    return cats


def no_duplicates(path):
    def hook(pairs):
        seen = {}
        for k, v in pairs:
            if k in seen:
                bad('%s: key %r appears twice' % (path, k))
            seen[k] = v
        return seen
    return hook


def check_same_keys(cats):
    keys = set()
    for c in cats.values():
        keys |= set(c)
    for lang, c in cats.items():
        for k in sorted(keys - set(c)):
            bad('i18n/%s.json: missing key %r' % (lang, k))
    en = cats.get('en', {})
    for lang, c in cats.items():
        for k, v in c.items():
            if k in en and isinstance(v, str) and isinstance(en[k], str):
                if set(PLACEHOLDER.findall(v)) != set(PLACEHOLDER.findall(en[k])):
                    bad('i18n/%s.json: %r has placeholders %s, English has %s' % (
                        lang, k, sorted(set(PLACEHOLDER.findall(v))),
                        sorted(set(PLACEHOLDER.findall(en[k])))))


def check_translated(cats, here):
    """A value equal to the English one is an untranslated copy unless
    same-as-english.txt says the word is the same in that language."""
    allowed = set()
    with open(os.path.join(here, 'same-as-english.txt'), encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].split()
            if len(line) == 2:
                allowed.add((line[0], line[1]))
    en = cats.get('en', {})
    for lang, c in cats.items():
        if lang == 'en':
            continue
        for k, v in c.items():
            if k in en and v == en[k] and (lang, k) not in allowed:
                bad('i18n/%s.json: %r is the English text %r (translate it, or list "%s %s" in '
                    'tests/i18n/same-as-english.txt when the word is the same)' % (lang, k, v, lang, k))


def used_keys(web):
    """(key, where) pairs the pages and scripts use."""
    used = []
    for name in sorted(os.listdir(web)):
        path = os.path.join(web, name)
        if not os.path.isfile(path):
            continue
        with open(path, encoding='utf-8') as f:
            text = f.read()
        if name.endswith('.html'):
            for m in re.finditer(r'data-i18n="([^"]+)"', text):
                used.append((m.group(1), name))
            for m in re.finditer(r'data-i18n-attr="([^"]+)"', text):
                for pair in m.group(1).split(';'):
                    if ':' in pair:
                        used.append((pair.split(':', 1)[1].strip(), name))
        elif name.endswith('.js'):
            for m in re.finditer(r"\bt\('([a-z0-9_.]+)'\s*[,)]", text):
                used.append((m.group(1), name))
            # families: [...].indexOf(x) >= 0 ? P.t('prefix.' + x [+ 'suffix'])
            # and NAME.indexOf(x) >= 0 ? t('prefix.' + x) with var NAME = [...]
            arrays = {m.group(1): m.group(2) for m in
                      re.finditer(r'var (\w+) = \[([^\]]*)\]', text)}
            for m in re.finditer(
                    r"(\[[^\]]*\]|\b\w+)\.indexOf\((\w+)\) >= 0 \?\s*(?:P\.)?t\('([a-z0-9_.]+)' \+ \2"
                    r"(?: \+ '([a-z0-9_.]+)')?", text):
                lst = m.group(1)
                lst = arrays.get(lst, '') if not lst.startswith('[') else lst
                values = re.findall(r"'([a-z0-9_]+)'", lst)
                if not values:
                    bad('%s: cannot read the list of keys for %r' % (name, m.group(3)))
                for v in values:
                    used.append((m.group(3) + v + (m.group(4) or ''), name))
            # the state explanations go with the labels
            if "t('state.' + s + '.explain')" in text:
                for v in re.findall(r"'([a-z_]+)'", arrays.get('STATES', '')):
                    used.append(('state.' + v + '.explain', name))
            # documentText's table: [/re/, 'kind'] -> doc.refused.kind
            for m in re.finditer(r"\[/[^/]+/, '([a-z]+)'\]", text):
                used.append(('doc.refused.' + m.group(1), name))
            if "'doc.refused.unknown'" in text:
                used.append(('doc.refused.unknown', name))
    return used


def c_unescape(s):
    return bytes(s, 'utf-8').decode('unicode_escape').encode('latin-1').decode('utf-8')


def c_keys(src):
    """op_tr(o, lang, "key", "English" "continued") calls and the state
    tables {"state", "key", "English"} in src/operator."""
    found = []
    d = os.path.join(src, 'src', 'operator')
    for name in sorted(os.listdir(d)):
        if not name.endswith('.c'):
            continue
        with open(os.path.join(d, name), encoding='utf-8') as f:
            text = f.read()
        strs = r'((?:\s*"(?:[^"\\]|\\.)*")+)'
        for m in re.finditer(r'op_tr\([^,]+,\s*[^,]+,\s*"([a-z0-9_.]+)",' + strs + r'\s*\)', text):
            found.append((m.group(1), join_c(m.group(2)), name))
        for m in re.finditer(r'\{"[a-z_]+",\s*"((?:notice\.)?state\.[a-z_]+)",' + strs + r'\s*\}', text):
            found.append((m.group(1), join_c(m.group(2)), name))
    return found


def join_c(lits):
    return ''.join(c_unescape(x) for x in re.findall(r'"((?:[^"\\]|\\.)*)"', lits))


def check_po(src):
    po = os.path.join(src, 'po')
    pot = os.path.join(po, 'esim.pot')
    if not os.path.isfile(pot):
        bad('po/esim.pot is missing')
        return
    for lang in PO_LANGS:
        path = os.path.join(po, lang + '.po')
        if not os.path.isfile(path):
            bad('po/%s.po is missing' % lang)
            continue
        r = subprocess.run(['msgfmt', '--check', '--statistics', '-o', os.devnull, path],
                           capture_output=True, text=True)
        if r.returncode != 0:
            bad('po/%s.po: msgfmt --check: %s' % (lang, r.stderr.strip()))
        stats = r.stderr.strip()
        if 'untranslated' in stats or 'fuzzy' in stats:
            bad('po/%s.po: %s' % (lang, stats))
        # every msgid of the template is in the po (msgcmp: po covers pot)
        r = subprocess.run(['msgcmp', path, pot], capture_output=True, text=True)
        if r.returncode != 0:
            bad('po/%s.po does not cover po/esim.pot: %s' % (lang, r.stderr.strip()))
    # the template against the sources
    with tempfile.TemporaryDirectory() as tmp:
        fresh = os.path.join(tmp, 'esim.pot')
        # esim's own texts, and the lower layers' ones it shows: the APDU
        # drivers' details (esim_errctx_set) and esim_strerror's texts
        files = []
        for d in ('lpa', 'apdu'):
            files += sorted(os.path.join('src', d, f) for f in os.listdir(os.path.join(src, 'src', d))
                            if f.endswith('.c'))
        files += [os.path.join('src', 'util', 'err.c'), os.path.join('include', 'esim', 'err.h')]
        r = subprocess.run(['xgettext', '--from-code=UTF-8', '-k_', '-kN_', '-kngettext:1,2', '-klpa_fail:3',
                            '-klpa_warn:2', '-kesim_errctx_set:2', '-kX:3', '--omit-header',
                            '--no-location', '-o', fresh] + files, cwd=src, capture_output=True,
                           text=True)
        if r.returncode != 0:
            bad('xgettext: %s' % r.stderr.strip())
            return
        have = msgids(pot)
        now = msgids(fresh) if os.path.exists(fresh) else set()
        for m in sorted(now - have):
            bad('po/esim.pot lacks %r (run po/update.sh)' % m)
        for m in sorted(have - now):
            bad('po/esim.pot has %r, no longer in the sources (run po/update.sh)' % m)


def msgids(path):
    r = subprocess.run(['msgcat', '--no-wrap', '--no-location', path], capture_output=True, text=True)
    out = set()
    cur = None
    for line in r.stdout.splitlines():
        if line.startswith('msgid '):
            cur = json.loads(line[6:])
        elif line.startswith('"') and cur is not None:
            cur += json.loads(line)
        else:
            if cur:
                out.add(cur)
            cur = None
    if cur:
        out.add(cur)
    return out


def main():
    src = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                          os.path.join(os.path.dirname(__file__), '..', '..'))
    web = os.path.join(src, 'src', 'operator', 'web')
    cats = load_catalogues(web)
    check_same_keys(cats)
    check_translated(cats, os.path.dirname(os.path.abspath(__file__)))
    en = cats.get('en', {})
    uses = used_keys(web)
    for key, where in uses:
        for lang, c in cats.items():
            if key not in c:
                bad('%s uses %r, missing in i18n/%s.json' % (where, key, lang))
    ckeys = c_keys(src)
    for key, english, where in ckeys:
        for lang, c in cats.items():
            if key not in c:
                bad('%s reads %r, missing in i18n/%s.json' % (where, key, lang))
        if key in en and en[key] != english:
            bad('%s: the built-in English of %r differs from en.json:\n  C:    %r\n  json: %r' % (
                where, key, english, en[key]))
    check_po(src)
    if problems:
        for p in problems:
            print('i18n_catalogues: ' + p, file=sys.stderr)
        print('i18n_catalogues: FAILED (%d problems)' % len(problems), file=sys.stderr)
        return 1
    print('i18n_catalogues: %d keys in %d web catalogues, %d uses in the pages, %d in the '
          'operator, po files for %s: all present' % (len(en), len(cats), len(uses), len(ckeys),
                                                     ', '.join(PO_LANGS)))
    return 0


if __name__ == '__main__':
    sys.exit(main())

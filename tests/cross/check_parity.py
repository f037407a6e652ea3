#!/usr/bin/env python3
"""Static error-kind parity check of the tables outside the core.

The core is the one table: ``ErrorKind`` (with ``EventKind``, ``Purpose``,
``KeyStatus``) has ``code``/``from_code``/``name`` defined once in
core/src, with no wildcard arms, and core/tests/codes.rs pins every number
and name (the compiler and that test check the Rust side; this script no
longer parses the enum). The Python binding reads names and codes from the
core and checks each exception class's ``code`` against it at import, so
the Python suite catches drift there; this script only checks the binding
still does so.

What is left are the copies that do not read the core yet, compared with
the pinned table in either direction (a kind missing, an extra kind, a
different number or name):

- C: the ``ks_status`` enum in include/keystrata.h (``KS_ERR_<UPPER_SNAKE>``;
  codes 100 and up are C-specific and ignored), and the Rust side of the C
  ABI in ffi/src/lib.rs (``from_kind`` and ``ks_status_name``);
- Go: the sentinels in bindings/go/errors.go (``Err<Name> = &Error{Code: N}``)
  and its ``kindNames`` table;
- the harness's own tables (tests/cross/go/main.go, tests/cross/run.sh).

When ffi and Go take their codes and names from the core (``ErrorKind::code``
and ``name``), their checks here go too.

Usage:
    python3 tests/cross/check_parity.py [--root DIR]   # last line: error-parity: N passed, M failed
    python3 tests/cross/check_parity.py --self-test    # mutates copies in a temp dir, each must fail

Exit status 0 when everything agrees, 1 otherwise.
"""

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile

PINNED = "core/tests/codes.rs"
C_HEADER = "include/keystrata.h"
FFI = "ffi/src/lib.rs"
GO = "bindings/go/errors.go"
PY_SRC = "bindings/python/src/errors.rs"
GO_TOOL = "tests/cross/go/main.go"
DRIVER = "tests/cross/run.sh"
FILES = [PINNED, C_HEADER, FFI, GO, PY_SRC, GO_TOOL, DRIVER]

# Codes at or above this are language-specific (C's NULL argument, ...).
SPECIFIC = 100


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {what}")
        return ok


def read(root, rel):
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        return f.read()


def strip_rust_comments(s):
    s = re.sub(r"/\*.*?\*/", "", s, flags=re.S)
    return re.sub(r"//[^\n]*", "", s)


def block(text, start_re, what, rel):
    """The text between the brace opened by start_re and its match."""
    m = re.search(start_re, text)
    if not m:
        raise ValueError(f"{rel}: cannot find {what}")
    i = text.index("{", m.start())
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    raise ValueError(f"{rel}: unbalanced braces after {what}")


def upper_snake(name):
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def pinned_kinds(root, rep):
    """[(name, code)] from the pinned table in core/tests/codes.rs."""
    src = strip_rust_comments(read(root, PINNED))
    body = block(src, r"fn\s+error_kind_codes\s*\(", "fn error_kind_codes", PINNED)
    kinds = []
    for name, code, text in re.findall(r"\(\s*ErrorKind::(\w+)\s*,\s*(\d+)\s*,\s*\"(\w+)\"\s*\)", body):
        rep.check(name == text, f"{PINNED}: ErrorKind::{name} is named {text!r}")
        kinds.append((name, int(code)))
    rep.check(bool(kinds), f"{PINNED}: no (ErrorKind::Name, code, \"Name\") rows found")
    codes = [c for _, c in kinds]
    rep.check(len(set(codes)) == len(codes), f"{PINNED}: duplicate ErrorKind codes {codes}")
    return kinds


def compare(rep, lang, expected, found, render):
    """expected: {name: code} from the core; found: {name: code} in lang."""
    for name, code in sorted(expected.items(), key=lambda kv: kv[1]):
        got = found.get(name)
        if got is None:
            rep.check(False, f"{lang}: kind {name} (code {code}) is missing: expected {render(name, code)}")
        else:
            rep.check(got == code, f"{lang}: {render(name, got)} has code {got}, the core says {code}")
    for name, code in sorted(found.items(), key=lambda kv: kv[1]):
        if name not in expected:
            rep.check(False, f"{lang}: {render(name, code)} is not a core ErrorKind (add it to the core and to {PINNED} first)")
    codes = list(found.values())
    dups = sorted({c for c in codes if codes.count(c) > 1})
    rep.check(not dups, f"{lang}: codes used twice: {dups}")


def c_kinds(root):
    src = re.sub(r"/\*.*?\*/", "", read(root, C_HEADER), flags=re.S)
    m = re.search(r"typedef\s+enum\s+ks_status\s*\{(.*?)\}\s*ks_status\s*;", src, re.S)
    if not m:
        raise ValueError(f"{C_HEADER}: cannot find typedef enum ks_status")
    out = {}
    for name, code in re.findall(r"\b(KS_\w+)\s*=\s*(\d+)", m.group(1)):
        code = int(code)
        if code == 0 or code >= SPECIFIC:
            continue
        out[name] = code
    return out


def ffi_maps(root):
    src = strip_rust_comments(read(root, FFI))
    fk = block(src, r"fn\s+from_kind\s*\(", "ks_status::from_kind", FFI)
    from_kind = dict(re.findall(r"ErrorKind::(\w+)\s*=>\s*(KS_\w+)", fk))
    # ErrorKind is non_exhaustive: the catch-all arm may stand for Internal
    # (and only for it: any other kind reaching it would be a bug).
    m = re.search(r"\b_\s*=>\s*(KS_\w+)", fk)
    if m and m.group(1) == "KS_ERR_INTERNAL":
        from_kind.setdefault("Internal", "KS_ERR_INTERNAL")
    names = {int(c): n for c, n in re.findall(r"\b(\d+)\s*=>\s*c\"(KS_\w+)\"", src)}
    return from_kind, names


def go_kinds(root):
    src = read(root, GO)
    out = {}
    for name, code in re.findall(r"\bErr(\w+)\s*=\s*&Error\{\s*Code:\s*(\d+)\s*\}", src):
        if int(code) < SPECIFIC:
            out[name] = int(code)
    m = re.search(r"var\s+kindNames\s*=\s*map\[int\]string\s*\{(.*?)\n\}", src, re.S)
    table = {int(c) for c in re.findall(r"\b(\d+)\s*:", m.group(1))} if m else set()
    return out, table


def py_binding_derives_classes(root):
    """The Python binding builds its kind -> class table from the core's
    one table (ErrorKind::ALL), naming each class `<Name>Error` and checking
    its `code` at import; there are no per-kind arms to drift."""
    src = strip_rust_comments(read(root, PY_SRC))
    return {
        "iterates ErrorKind::ALL": re.search(r"for\s+kind\s+in\s+ErrorKind::ALL", src) is not None,
        "names classes <Name>Error": re.search(r'format!\(\s*"\{\}Error"\s*,\s*kind\.name\(\)\s*\)', src) is not None,
        "checks each class's code": re.search(r"code\s*!=\s*kind\.code\(\)", src) is not None,
    }


def run_checks(root):
    rep = Report()
    try:
        kinds = pinned_kinds(root, rep)
        expected = dict(kinds)

        # C header
        compare(rep, f"C {C_HEADER}", {f"KS_ERR_{upper_snake(n)}": c for n, c in kinds}, c_kinds(root),
                lambda n, c: f"{n} = {c}")
        # ffi glue
        from_kind, status_names = ffi_maps(root)
        for n, c in kinds:
            want = f"KS_ERR_{upper_snake(n)}"
            rep.check(from_kind.get(n) == want,
                      f"C {FFI}: ks_status::from_kind maps ErrorKind::{n} to {from_kind.get(n) or 'nothing (the `_` arm)'}, not {want}")
            rep.check(status_names.get(c) == want,
                      f"C {FFI}: ks_status_name({c}) is {status_names.get(c)!r}, not {want!r}")
        # Go
        go, go_table = go_kinds(root)
        compare(rep, f"Go {GO}", expected, go, lambda n, c: f"Err{n} = &Error{{Code: {c}}}")
        for n, c in kinds:
            rep.check(c in go_table, f"Go {GO}: kindNames has no entry for code {c} ({n})")
        # Python: the binding reads the core and checks its classes at import
        for what, ok in py_binding_derives_classes(root).items():
            rep.check(ok, f"Python {PY_SRC}: the binding no longer {what}")
        # the harness's own tables
        tool = read(root, GO_TOOL)
        m = re.search(r"var\s+kindNames\s*=\s*map\[int\]string\s*\{(.*?)\n\}", tool, re.S)
        tool_names = {int(c): n for c, n in re.findall(r"(\d+)\s*:\s*\"(\w+)\"", m.group(1))} if m else {}
        for n, c in kinds:
            rep.check(tool_names.get(c) == n, f"harness {GO_TOOL}: kindNames[{c}] is {tool_names.get(c)!r}, not {n!r}")
        driver = read(root, DRIVER)
        m = re.search(r"declare -A CODE=\((.*?)\)\n", driver, re.S)
        drv = {n: int(c) for n, c in re.findall(r"\[(\w+)\]=(\d+)", m.group(1))} if m else {}
        compare(rep, f"harness {DRIVER}", expected, drv, lambda n, c: f"[{n}]={c}")
    except (OSError, ValueError, SyntaxError) as e:
        rep.check(False, f"cannot parse: {e}")
    return rep


# --- self-test ----------------------------------------------------------------

def sub(rel, old, new):
    def f(root):
        p = os.path.join(root, rel)
        s = open(p, encoding="utf-8").read()
        if old not in s:
            raise AssertionError(f"self-test mutation: {old!r} not in {rel}")
        open(p, "w", encoding="utf-8").write(s.replace(old, new, 1))
    return f


MUTATIONS = [
    ("pinned kind removed (Io)", sub(PINNED, '            (ErrorKind::Io, 11, "Io"),\n', "")),
    ("kind added to the pinned table only (Quota = 13)", sub(PINNED, '            (ErrorKind::Internal, 12, "Internal"),\n', '            (ErrorKind::Internal, 12, "Internal"),\n            (ErrorKind::Quota, 13, "Quota"),\n')),
    ("kind added in C only (KS_ERR_QUOTA = 13)", sub(C_HEADER, "  KS_ERR_INTERNAL = 12,\n", "  KS_ERR_INTERNAL = 12,\n  KS_ERR_QUOTA = 13,\n")),
    ("C code changed (KS_ERR_FORMAT = 13)", sub(C_HEADER, "KS_ERR_FORMAT = 10", "KS_ERR_FORMAT = 13")),
    ("C kind removed (KS_ERR_POLICY)", sub(C_HEADER, "  KS_ERR_POLICY = 6,\n", "")),
    ("kind added in Go only (ErrQuota)", sub(GO, "\tErrInternal = &Error{Code: 12}\n", "\tErrInternal = &Error{Code: 12}\n\tErrQuota = &Error{Code: 13}\n")),
    ("Go sentinel code changed (ErrPolicy = 7)", sub(GO, "ErrPolicy = &Error{Code: 6}", "ErrPolicy = &Error{Code: 7}")),
    ("Go sentinel renamed (ErrIo -> ErrIO)", sub(GO, "ErrIo = &Error{Code: 11}", "ErrIO = &Error{Code: 11}")),
    ("ffi from_kind arm removed (Io falls to Internal)", sub(FFI, "            ErrorKind::Io => KS_ERR_IO,\n", "")),
    ("Python binding stops checking class codes", sub(PY_SRC, "if code != kind.code() {", "if false {")),
    ("Python binding stops naming classes by kind", sub(PY_SRC, 'format!("{}Error", kind.name())', 'format!("{}", kind.name())')),
]


def self_test(repo):
    ok = fail = 0
    with tempfile.TemporaryDirectory(prefix="ks-parity.") as tmp:
        def fresh():
            root = os.path.join(tmp, "root")
            shutil.rmtree(root, ignore_errors=True)
            for rel in FILES:
                os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
                shutil.copy(os.path.join(repo, rel), os.path.join(root, rel))
            return root

        def check(root):
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--root", root],
                               capture_output=True, text=True)
            return r.returncode, r.stdout

        rc, out = check(fresh())
        if rc == 0:
            ok += 1
        else:
            fail += 1
            print(f"FAIL self-test: the unmodified copy does not pass:\n{out}")
        for what, mutate in MUTATIONS:
            root = fresh()
            mutate(root)
            rc, out = check(root)
            lines = [l for l in out.splitlines() if l.startswith("FAIL ")]
            if rc != 0 and lines:
                ok += 1
                print(f"ok   {what}: fails as it must ({lines[0][5:]})")
            else:
                fail += 1
                print(f"FAIL self-test: '{what}' went unnoticed")
    print(f"error-parity self-test: {ok} passed, {fail} failed")
    return fail == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--root", default=os.path.normpath(os.path.join(here, "..", "..")))
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    if a.self_test:
        sys.exit(0 if self_test(a.root) else 1)
    rep = run_checks(a.root)
    print(f"error-parity: {rep.passed} passed, {rep.failed} failed")
    sys.exit(0 if rep.failed == 0 else 1)


if __name__ == "__main__":
    main()

"""The source policy: every hostile construct is reported with its rule and line, legitimate code passes.

Pure Python, no compilers: each test hands a source text to check_rust / check_c and compares
(rule, line) pairs exactly.
"""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from synapse_ng.toolchain.policy import (
    C_ALLOWED_HEADERS,
    Violation,
    check_c,
    check_rust,
)


def src(text: str) -> str:
    """Dedented source whose line 1 is the first line after the opening quotes."""
    return textwrap.dedent(text).removeprefix("\n")


def rust(text: str) -> list[tuple[str, int]]:
    return [(v.rule, v.line) for v in check_rust(src(text))]


def c(text: str) -> list[tuple[str, int]]:
    return [(v.rule, v.line) for v in check_c(src(text))]


# ------------------------------------------------------------------------------------ Violation


def test_violation_str_names_line_rule_and_message():
    v = Violation("include-macro", 3, "include_str! reads a host file")
    assert str(v) == "line 3: [include-macro] include_str! reads a host file"


def test_violation_is_frozen():
    v = Violation("env-macro", 1, "m")
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.line = 2  # type: ignore[misc]


def test_allowed_headers():
    assert C_ALLOWED_HEADERS == frozenset({"stdint.h", "stddef.h", "stdbool.h", "float.h", "limits.h"})


# ------------------------------------------------------------------------ Rust: legitimate code

BIN_PACKING = r"""
//! First-fit-decreasing bin packing with a best-fit tie-break.
//! Talking about include_str!("/etc/passwd"), env!("HOME"), std::fs or `mod x;` in a comment is fine.
/* A block comment /* with a nested one */ that mentions asm!("nop") and extern "C" { } */

use core::cmp::Ordering;
use std::collections::HashMap;
use std::f64::consts::E;
use std::{cmp, f64};

const BANNER: &str = "never call include_str!(\"/etc/passwd\") or std::fs::read(\"x\")";
const RAW: &str = r##"a raw string with "# inside, "quotes", env!("X") and std::process"##;
const RAW_BYTES: &[u8] = br#"mod secrets;"#;
const QUOTE: char = '"';
const APOSTROPHE: char = '\'';

/// Clamp a value into [lo, hi].
macro_rules! clamp {
    ($x:expr, $lo:expr, $hi:expr) => {
        if $x < $lo { $lo } else if $x > $hi { $hi } else { $x }
    };
}

mod helpers {
    /// How much room a bin has left, weighted so nearly full bins are preferred.
    pub fn slack_score(fill: f64, capacity: f64) -> f64 {
        let slack = (capacity - fill).max(0.0);
        slack.powf(1.5) / capacity
    }
}

pub(crate) mod stats {
    pub fn mean(xs: &[f64]) -> f64 {
        if xs.is_empty() { 0.0 } else { xs.iter().sum::<f64>() / xs.len() as f64 }
    }
}

struct Packer<'a> {
    sizes: &'a [f64],
    capacity: f64,
}

impl<'a> Packer<'a> {
    fn label<'b>(&self, name: &'b str) -> &'b str
    where
        'a: 'b,
    {
        name
    }

    fn pack(&self) -> Vec<f64> {
        let mut order: Vec<usize> = (0..self.sizes.len()).collect();
        order.sort_by(|&a, &b| self.sizes[b].partial_cmp(&self.sizes[a]).unwrap_or(Ordering::Equal));
        let mut bins: Vec<f64> = Vec::new();
        let mut placed: HashMap<usize, usize> = HashMap::new();
        'items: for &i in &order {
            let size = clamp!(self.sizes[i], 0.0, self.capacity);
            let mut best: Option<(usize, f64)> = None;
            for (b, &fill) in bins.iter().enumerate() {
                if fill + size > self.capacity {
                    continue;
                }
                let score = helpers::slack_score(fill + size, self.capacity);
                match best {
                    Some((_, s)) if s <= score => {}
                    _ => best = Some((b, score)),
                }
            }
            if let Some((b, _)) = best {
                bins[b] += size;
                placed.insert(i, b);
                continue 'items;
            }
            placed.insert(i, bins.len());
            bins.push(size);
        }
        debug_assert!(bins.iter().all(|&f| f <= self.capacity + f64::EPSILON));
        debug_assert!(stats::mean(&bins) < std::f64::MAX);
        bins
    }
}

fn penalty(bins: usize, lower_bound: usize) -> f64 {
    let extra = cmp::max(bins, lower_bound) - lower_bound;
    (extra as f64).powf(E) + f64::from(u8::from(QUOTE == '"' && APOSTROPHE != '"'))
}

/// A callback type: `extern "C" fn` here is a type, not an import.
type Scorer = extern "C" fn(f64, f64) -> f64;

#[no_mangle]
pub extern "C" fn pack_bins(sizes: *const f64, len: usize, capacity: f64) -> u32 {
    let sizes = unsafe { core::slice::from_raw_parts(sizes, len) };
    let packer = Packer { sizes, capacity };
    let bins = packer.pack();
    let lower = (sizes.iter().sum::<f64>() / capacity).ceil() as usize;
    let _ = (penalty(bins.len(), lower), packer.label("ffd"), BANNER.len(), RAW.len(), RAW_BYTES.len());
    bins.len() as u32
}

#[no_mangle]
pub unsafe extern "C" fn slack(fill: f64, capacity: f64) -> f64 {
    helpers::slack_score(fill, capacity)
}

#[export_name = "heuristic_version"]
pub extern "C" fn version() -> u32 {
    let table: Scorer = slack_c;
    let path = [1u32, 2, 3];
    let process = |x: u32| x + 1;
    let env = path.len() as u32;
    if env != 3 { 0 } else { process(table(0.0, 1.0) as u32) + 2 }
}

extern "C" fn slack_c(fill: f64, capacity: f64) -> f64 {
    helpers::slack_score(fill, capacity)
}
"""


def test_realistic_bin_packing_heuristic_passes():
    assert check_rust(src(BIN_PACKING)) == []


@pytest.mark.parametrize(
    "code",
    [
        'let s = "include_str!(\\"/etc/passwd\\")";',
        'let s = "std::fs::read(\\"/etc/passwd\\")";',
        '// std::fs::read("/etc/passwd"); include_bytes!("x")',
        '/* env!("HOME") */',
        '/* outer /* inner */ still comment: include!("x") */',
        'let s = r#"he said "include_str!" "#;',
        'let s = r##"a "# inside std::net "##;',
        'let s = br#"extern "C" { fn f(); }"#;',
        'let b = b"mod x;";',
        'let s = c"std::process";',
        "let c = '\"'; let d = '\\''; let e = '\\\\';",
        "fn f<'a>(x: &'a str) -> &'a str { x }",
        "'outer: loop { break 'outer; }",
        '/// Doc comment: `#[path = "x"] mod y;` is banned.',
        '#[cfg(feature = "std")] fn f() {}',
        "#[derive(Clone, Copy, Debug)] struct P;",
        "let x = 1.0e-5_f64.powf(2.0) + 0x1f as f64 + 1e10;",
        "extern crate alloc; extern crate core; extern crate std;",
        "use std::io::{self, Write}; use std::collections::{BTreeMap, HashMap};",
        "let m = std::cmp::max(1, 2); let pi = std::f64::consts::PI; let o = core::cmp::Ordering::Less;",
        "fn f() -> impl Sized + use<> {}",
        "let v = vec![std::f64::INFINITY; 3]; assert!(v.len() < std::usize::MAX);",
        "let include = 1; let env = 2; let asm = 3; let path = include + env + asm;",
        'let env = 1; let s = format!("{}", env); assert_eq!(env, 1);',
        "fn f() {}\r\nmod inline {\r\n}\r\n",
        "mod inline_module { pub fn f() {} }",
        "macro_rules! make { ($n:ident) => { mod $n { pub fn f() {} } }; } make!(generated);",
        (
            'macro_rules! export { ($n:ident) => { #[no_mangle] pub extern "C" fn $n() -> u32 { 1 } }; }'
            " export!(one);"
        ),
        '#[no_mangle] pub unsafe extern "C" fn f() {}',
        "#!/usr/bin/env run-cargo-script\nfn main() {}",
    ],
)
def test_legitimate_rust_passes(code):
    assert check_rust(code) == []


# ------------------------------------------------------------------------ Rust: one rule at a time

RUST_ATTACKS = {
    # include-macro
    "include_str": ('fn f() -> &\'static str { include_str!("/etc/passwd") }', [("include-macro", 1)]),
    "include_bytes": ('static B: &[u8] = include_bytes!("/etc/shadow");', [("include-macro", 1)]),
    "include": ('include!("/etc/passwd");', [("include-macro", 1)]),
    "include spaced": ('const S: &str = include_str !("/etc/passwd");', [("include-macro", 1)]),
    "include split over lines": (
        'const S: &str =\n    include_str\n    !\n    ("/etc/passwd");',
        [("include-macro", 2)],
    ),
    "include via core path": ('const S: &str = core::include_str!("/etc/passwd");', [("include-macro", 1)]),
    "include via std path": ('const B: &[u8] = std::include_bytes!("/etc/passwd");', [("include-macro", 1)]),
    "include via ::core path": ('::core::include!("/etc/passwd");', [("include-macro", 1)]),
    "include raw identifier": ('const S: &str = r#include_str!("/etc/passwd");', [("include-macro", 1)]),
    "include aliased by use": (
        'use core::include_str as text;\nconst S: &str = text!("/etc/passwd");',
        [("include-macro", 1)],
    ),
    "include in doc attribute": ('#[doc = include_str!("/etc/passwd")]\nfn f() {}', [("include-macro", 1)]),
    "include named through a macro": (
        'macro_rules! call { ($m:ident) => { $m!("/etc/passwd") }; }\nconst S: &str = call!(include_str);',
        [("include-macro", 2)],
    ),
    "include after a char literal quote": (
        'const Q: char = \'"\';\nconst S: &str = include_str!("/etc/passwd");',
        [("include-macro", 2)],
    ),
    "include after a raw string with quote-hash": (
        'const R: &str = r##"x "# y"##; const S: &str = include_str!("/etc/passwd");',
        [("include-macro", 1)],
    ),
    "include after nested comment": (
        '/* a /* b */ c */ const S: &str = include_str!("/etc/passwd");',
        [("include-macro", 1)],
    ),
    "include after lifetime": (
        "fn f<'a>(x: &'a u8) -> &'a u8 { x }\nconst S: &str = include_str!(\"x\");",
        [("include-macro", 2)],
    ),
    # env-macro
    "env": ('const H: &str = env!("HOME");', [("env-macro", 1)]),
    "option_env": ('const K: Option<&str> = option_env!("AWS_SECRET_ACCESS_KEY");', [("env-macro", 1)]),
    "env via std path": ('const H: &str = std::env!("HOME");', [("env-macro", 1)]),
    "option_env via core path": ('const H: Option<&str> = ::core::option_env!("HOME");', [("env-macro", 1)]),
    "env spaced": ('const H: &str = env ! ("HOME");', [("env-macro", 1)]),
    # path-attribute
    "path attribute": ('#[path = "/etc/passwd"] mod x;', [("path-attribute", 1), ("file-module", 1)]),
    "inner path attribute": ('#![path = "/etc/passwd"]\nfn f() {}', [("path-attribute", 1)]),
    "path in cfg_attr": ('#[cfg_attr(all(), path = "/etc/passwd")]\nmod x {}', [("path-attribute", 1)]),
    "path in nested cfg_attr": (
        '#[cfg_attr(any(), cfg_attr(all(),\n    path = "/etc/passwd"))]\nmod x {}',
        [("path-attribute", 2)],
    ),
    "debugger_visualizer": (
        '#![debugger_visualizer(gdb_script_file = "/etc/passwd")]',
        [("path-attribute", 1)],
    ),
    # file-module
    "file module": ("mod secrets;", [("file-module", 1)]),
    "pub file module": ("fn f() {}\npub mod secrets;", [("file-module", 2)]),
    "pub(crate) file module": ("pub(crate) mod secrets;", [("file-module", 1)]),
    "cfg'd file module": ("#[cfg(test)]\nmod tests;", [("file-module", 2)]),
    "file module from macro_rules body": (
        "macro_rules! m { ($n:ident) => { mod $n; }; }",
        [("file-module", 1)],
    ),
    "file module reassembled by a macro": (
        "macro_rules! cut { ($a:tt $b:tt $c:tt) => { $a $b; }; }\ncut!(mod secrets {});",
        [("file-module", 2)],
    ),
    # extern-block
    "extern C block": ('extern "C" { fn f(); }', [("extern-block", 1)]),
    "extern block without abi": ("extern {\n    fn f();\n}", [("extern-block", 1)]),
    "unsafe extern block": ('fn g() {}\nunsafe extern "C" {\n    fn f();\n}', [("extern-block", 2)]),
    "empty extern block": ('extern "C" {}', [("extern-block", 1)]),
    "extern block reassembled by a macro": (
        'macro_rules! m { ($($t:tt)*) => { $($t)* }; }\nm!(extern "C" { fn f(); });',
        [("extern-block", 2)],
    ),
    # link-attribute
    "link wasm import module": (
        '#[link(wasm_import_module = "env")]\nextern "C" { fn f(); }',
        [("link-attribute", 1), ("extern-block", 2)],
    ),
    "link_name": ('#[link_name = "host_fn"]\nfn f() {}', [("link-attribute", 1)]),
    "wasm_import_module": ('#[wasm_import_module = "env"]\nfn f() {}', [("link-attribute", 1)]),
    "link_section": ('#[link_section = ".custom"]\nstatic X: [u8; 1] = [0];', [("link-attribute", 1)]),
    "link_section in unsafe()": (
        '#[unsafe(link_section = ".custom")]\nstatic X: u8 = 0;',
        [("link-attribute", 1)],
    ),
    "link in cfg_attr": ('#[cfg_attr(any(), link(name = "c"))]\nfn f() {}', [("link-attribute", 1)]),
    "link_section spliced by a macro": (
        'macro_rules! at { ($($a:tt)*) => { #[$($a)*] static X: u8 = 0; }; }\nat!(link_section = ".x");',
        [("link-attribute", 2)],
    ),
    # inline-asm
    "asm": ('fn f() { unsafe { core::arch::asm!("nop") } }', [("inline-asm", 1)]),
    "global_asm": ('std::arch::global_asm!(".globl x");', [("inline-asm", 1)]),
    "naked_asm": ('fn f() { core::arch::naked_asm!("ret") }', [("inline-asm", 1)]),
    "llvm_asm": ('fn f() { unsafe { llvm_asm!("nop") } }', [("inline-asm", 1)]),
    "asm imported": ("use core::arch::asm;", [("inline-asm", 1)]),
    # feature-gate
    "feature": ("#![feature(asm_experimental_arch)]\nfn f() {}", [("feature-gate", 1)]),
    "feature in cfg_attr": ("#![cfg_attr(all(), feature(never_type))]", [("feature-gate", 1)]),
    # extern-crate
    "extern crate libc": ("extern crate libc;", [("extern-crate", 1)]),
    "extern crate proc_macro": ("fn f() {}\nextern crate proc_macro;", [("extern-crate", 2)]),
    # proc-macro
    "proc_macro": ("#[proc_macro]\npub fn m(x: u8) -> u8 { x }", [("proc-macro", 1)]),
    "proc_macro_derive": ("#[proc_macro_derive(Evil)]\npub fn m(x: u8) -> u8 { x }", [("proc-macro", 1)]),
    "proc_macro_attribute": ("#[proc_macro_attribute]\npub fn m(x: u8) -> u8 { x }", [("proc-macro", 1)]),
}


@pytest.mark.parametrize("code, expected", RUST_ATTACKS.values(), ids=RUST_ATTACKS.keys())
def test_rust_attack_is_reported(code, expected):
    assert [(v.rule, v.line) for v in check_rust(code)] == expected


# ------------------------------------------------------------------- Rust: std OS modules, every spelling

STD_OS = {
    "fs expression": ('fn f() { let _ = std::fs::read("/etc/passwd"); }', 1),
    "env with leading ::": ('fn f() { let _ = ::std::env::var("HOME"); }', 1),
    "net": ('fn f() { let _ = std::net::TcpStream::connect("10.0.0.1:80"); }', 1),
    "process": ("fn f() { std::process::exit(1) }", 1),
    "thread": ("fn f() { std::thread::spawn(|| {}); }", 1),
    "type position": ("fn f(_: std::fs::File) {}", 1),
    "use module": ("use std::fs;", 1),
    "use item": ("use std::fs::File;", 1),
    "use group": ("use std::{fs, io};", 1),
    "use nested group": ("use std::{io::{self}, net::TcpStream};", 1),
    "use group over lines": ("use std::{\n    io,\n    process,\n};", 3),
    "use renamed": ("use std::process as p;\nfn f() { p::exit(0) }", 1),
    "use leading ::": ("use ::std::thread;", 1),
    "use env module": ("use std::env;", 1),
    "use env in group": ("use std::{env, io};", 1),
    "use env item": ("use std::env::var;", 1),
    "alias by self in group": ('use std::{self as s};\nfn f() { let _ = s::fs::read("x"); }', 2),
    "alias by use": ('use std as s;\nfn f() { let _ = s::fs::read("x"); }', 2),
    "alias by extern crate": ("extern crate std as s;\nfn f() { s::thread::spawn(|| {}); }", 2),
    "alias used in use": ("use std as s;\nuse s::net::UdpSocket;", 2),
    "alias of an alias": ("use std as a;\nuse a as b;\nfn f() { let _ = b::env::args(); }", 3),
    "alias declared after use": ('fn f() { let _ = s::fs::read("x"); }\nuse std as s;', 1),
    "alias inside a module": ('mod m { pub use std as s; }\nfn f() { let _ = m::s::fs::read("x"); }', 2),
    "spaces in path": ('fn f() { let _ = std :: fs :: read("x"); }', 1),
    "newlines in path": ('fn f() {\n    let _ = std\n        ::\n        fs::read("x");\n}', 4),
    "comment in path": ('fn f() { let _ = std /* hi */ :: fs::read("x"); }', 1),
    "raw identifier": ('fn f() { let _ = r#std::fs::read("x"); }', 1),
    "glob": ("use std::*;", 1),
    "glob in group": ("use std::{*};", 1),
    "glob with leading ::": ("use ::std::*;", 1),
    "glob of alias": ("use std as s;\nuse s::*;", 2),
    "macro metavariable completes std path": (
        'macro_rules! pick { ($m:ident) => { std::$m::read("x") }; }\nfn f() { pick!(fs); }',
        1,
    ),
    "std passed into a macro": (
        "macro_rules! g { ($a:tt) => { use $a as s; }; }\ng!(std);",
        2,
    ),
    "std path passed into a macro": (
        "macro_rules! id { ($($t:tt)*) => { $($t)* }; }\nfn f() { id!(std::io); }",
        2,
    ),
    "std passed into a redefined std macro": (
        "macro_rules! vec { ($($t:tt)*) => { $($t)* }; }\nfn f() { vec![std::io]; }",
        2,
    ),
}


@pytest.mark.parametrize("code, line", STD_OS.values(), ids=STD_OS.keys())
def test_std_os_module_is_reported(code, line):
    assert [(v.rule, v.line) for v in check_rust(code)] == [("std-os-module", line)]


def test_std_os_message_names_module_and_alias():
    (v,) = check_rust('use std as s;\nfn f() { let _ = s::net::TcpStream::connect("x"); }')
    assert "s::net" in v.message and "std::net" in v.message


# ------------------------------------------------------------------------ Rust: reporting


def test_rust_reports_every_violation_sorted_by_line():
    code = src(
        """
        #![feature(never_type)]
        use std::fs;
        extern crate libc;
        mod secrets;

        const KEY: &str = env!("AWS_SECRET"); const PW: &str = include_str!("/etc/passwd");
        extern "C" { fn host(); }

        #[no_mangle]
        pub extern "C" fn run() -> u32 {
            unsafe { core::arch::asm!("nop") }
            let _ = std::process::Command::new("sh");
            0
        }
        """
    )
    assert [(v.rule, v.line) for v in check_rust(code)] == [
        ("feature-gate", 1),
        ("std-os-module", 2),
        ("extern-crate", 3),
        ("file-module", 4),
        ("env-macro", 6),
        ("include-macro", 6),
        ("extern-block", 7),
        ("inline-asm", 11),
        ("std-os-module", 12),
    ]


def test_rust_messages_explain_the_ban():
    (v,) = check_rust('const S: &str = include_str!("/etc/passwd");')
    assert v.message.startswith("include_str! reads a host file at compile time")
    (v,) = check_rust("mod secrets;")
    assert "mod secrets { ... }" in v.message


def test_rust_unterminated_literal_does_not_crash():
    assert check_rust('const S: &str = "never closed') == []
    assert check_rust("/* never closed") == []


def test_rust_crlf_line_numbers():
    assert [(v.rule, v.line) for v in check_rust("fn f() {}\r\n\r\nmod secrets;\r\n")] == [("file-module", 3)]


def test_c_crlf_line_numbers():
    assert [(v.rule, v.line) for v in check_c("#include <stdint.h>\r\n\r\n#include <stdio.h>\r\n")] == [
        ("c-include", 3)
    ]


def test_rust_shebang_line_cannot_hide_code():
    # rustc ignores a first line starting with #! (not #![), so a quote there opens no string.
    code = '#!/bin/sh "\nconst S: &str = include_str!("/etc/passwd"); // "'
    assert [(v.rule, v.line) for v in check_rust(code)] == [("include-macro", 2)]


# ------------------------------------------------------------------------------- C: legitimate code

C_PROGRAM = r"""
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

/* Greedy best-fit. No asm here: the word asm in a comment is fine, and so is __asm__. */
// #include "/etc/passwd" in a line comment is fine too.

#define CAPACITY 100u
#define MIN(a, b) ((a) < (b) ? (a) : (b))

static const char *banner = "#include <stdio.h> asm(\"nop\") import_module";
static const char quote = '"';
static const char apostrophe = '\'';

__attribute__((export_name("pack")))
uint32_t pack(const uint32_t *sizes, size_t n) {
    uint32_t bins[64] = {0};
    uint32_t used = 0;
    for (size_t i = 0; i < n; i++) {
        bool placed = false;
        for (uint32_t b = 0; b < used && !placed; b++) {
            if (bins[b] + sizes[i] <= CAPACITY) {
                bins[b] += sizes[i];
                placed = true;
            }
        }
        if (!placed && used < 64) {
            bins[used++] = MIN(sizes[i], CAPACITY);
        }
    }
    double scale = 1e+5 * 0x1.8p-3;
    return used + (uint32_t)(scale * 0) + (banner[0] == '#') + (quote != apostrophe) - 2;
}
"""


def test_realistic_c_program_passes():
    assert check_c(src(C_PROGRAM)) == []


@pytest.mark.parametrize("header", sorted(C_ALLOWED_HEADERS))
def test_every_allowed_header_passes(header):
    assert check_c(f"#include <{header}>\n") == []


@pytest.mark.parametrize(
    "code",
    [
        '// a line comment ending in a splice \\\nasm("nop");',  # the splice pulls asm into the comment
        "// clang also splices backslash, newline, carriage return \\\n\r asm;",
        "#include <stdint.h> // trailing comment\n",
        "  #  include   <limits.h>\n",
        "%:include <float.h>\n",
        "#include /* comment */ <stddef.h>\n",
        "int x = 1'2'; /* a char literal, not a separator, in old C */",
        "#pragma once\n#define STR(x) #x\nconst char *s = STR(hello);",
    ],
)
def test_legitimate_c_passes(code):
    assert check_c(code) == []


# --------------------------------------------------------------------------- C: one rule at a time

C_ATTACKS = {
    # c-include
    "system header": ("#include <stdio.h>", [("c-include", 1)]),
    "quoted allowed header": ('#include "stdint.h"', [("c-include", 1)]),
    "absolute path": ('int x;\n#include "/etc/passwd"', [("c-include", 2)]),
    "angled absolute path": ("#include </etc/passwd>", [("c-include", 1)]),
    "path escaping an allowed header": ("#include <stdint.h/../../../etc/passwd>", [("c-include", 1)]),
    "computed include": ('#define FOO "/etc/passwd"\n#include FOO', [("c-include", 2)]),
    "include_next": ("#include_next <stdint.h>", [("c-include", 1)]),
    "import": ("#import <stdint.h>", [("c-include", 1)]),
    "spaced directive": ('   #   include "x.h"', [("c-include", 1)]),
    "digraph": ('%:include "x.h"', [("c-include", 1)]),
    "trigraph": ('??=include "x.h"', [("c-include", 1)]),
    "spliced directive": ('#\\\ninclude "x.h"', [("c-include", 1)]),
    "spliced header": ("#include <std\\\nio.h>", [("c-include", 1)]),
    "after block comment": ('/* c */ #include "x.h"', [("c-include", 1)]),
    "after multi-line comment": ('/*\n*/ #include "x.h"', [("c-include", 2)]),
    "comment between # and name": ('# /*\n*/ include "x.h"', [("c-include", 1)]),
    "comment inside angle brackets": ("#include <std/**/int.h>", [("c-include", 1)]),
    "carriage return newline": ('int a;\r#include "x.h"', [("c-include", 2)]),
    "has_include probe": ('#if __has_include("/etc/shadow")\n#endif', [("c-include", 1)]),
    # c-embed
    "embed": ('const unsigned char k[] = {\n#embed "/etc/passwd"\n};', [("c-embed", 2)]),
    "embed angled": ("#embed <id_rsa>", [("c-embed", 1)]),
    "has_embed": ('#if __has_embed("/etc/passwd")\n#endif', [("c-embed", 1)]),
    # c-asm
    "asm": ('void f(void) { asm("nop"); }', [("c-asm", 1)]),
    "__asm__": ('void f(void) {\n    __asm__ volatile("" ::: "memory");\n}', [("c-asm", 2)]),
    "__asm": ('void f(void) { __asm("nop"); }', [("c-asm", 1)]),
    "asm after a trigraph-spliced comment": ('// ??/\nasm("nop");', [("c-asm", 2)]),
    "asm hidden from non-raw lexing": (
        'const char *s = R"x(")x"; void f(void) { asm("nop"); }',
        [("c-asm", 1)],
    ),
    # Inside a raw string clang undoes line splices: the string ends at the second )x", not the first.
    "asm after raw string with splice": (
        'const char *s = R"x( )x\\\n"\' )x"; void f(void) { asm("nop"); }',
        [("c-asm", 2)],
    ),
    "asm between digit separators": (
        "int a = 1'2; void f(void) { asm(\"nop\"); } int b = 3'4;",
        [("c-asm", 1)],
    ),
    # c-import
    "import_module": (
        '__attribute__((import_module("env"), import_name("read")))\nint host_read(int);',
        [("c-import", 1), ("c-import", 1)],
    ),
    "import_name": ('__attribute__((import_name("fd_write"))) int w(int);', [("c-import", 1)]),
    "import_module underscores": (
        '__attribute__((__import_module__("wasi"))) int w(int);',
        [("c-import", 1)],
    ),
    # c-token-paste: ## could assemble asm or import_module out of harmless pieces
    "token paste": ('#define CAT(a, b) a##b\nvoid f(void) { CAT(as, m)("nop"); }', [("c-token-paste", 1)]),
    "token paste digraph": ("#define CAT(a, b) a%:%:b", [("c-token-paste", 1)]),
    # c-build-time: the same source must give the same bytes on every voter
    "__DATE__": ("const char *built = __DATE__;", [("c-build-time", 1)]),
    "__TIME__ in a macro": ("#define STAMP __TIME__\nconst char *t = STAMP;", [("c-build-time", 1)]),
    "__TIMESTAMP__ spliced": ("int x;\nconst char *t = __TIME\\\nSTAMP__;", [("c-build-time", 2)]),
    "__TIME__ seeding a score": ("int seed(void) { return __TIME__[7] - '0'; }", [("c-build-time", 1)]),
}


@pytest.mark.parametrize("code, expected", C_ATTACKS.values(), ids=C_ATTACKS.keys())
def test_c_attack_is_reported(code, expected):
    assert [(v.rule, v.line) for v in check_c(code)] == expected


def test_c_include_message_lists_allowed_headers():
    (v,) = check_c('#include "stdint.h"')
    for header in C_ALLOWED_HEADERS:
        assert f"<{header}>" in v.message
    assert "quotes" in v.message


def test_c_reports_every_violation_sorted_by_line():
    code = src(
        """
        #include <stdint.h>
        #include <stdio.h>
        #include "secrets.h"
        __attribute__((import_module("env"))) int host(int);
        int f(void) {
            __asm__("nop");
            return 0;
        }
        #embed "/etc/passwd"
        """
    )
    assert [(v.rule, v.line) for v in check_c(code)] == [
        ("c-include", 2),
        ("c-include", 3),
        ("c-import", 4),
        ("c-asm", 6),
        ("c-embed", 9),
    ]


def test_c_unterminated_literals_do_not_crash():
    assert check_c('const char *s = "never closed') == []
    assert check_c("/* never closed") == []
    assert check_c('const char *s = R"x(never closed') == []


@pytest.mark.parametrize(
    "source",
    [
        '#pragma GCC dependency "/etc/passwd"\nint f(void) { return 0; }\n',
        (
            '#pragma clang attribute push (__attribute__((visibility("default"))), apply_to = function)\n'
            "int f(void) { return 0; }\n"
        ),
        '_Pragma("GCC dependency \\"/etc/passwd\\"")\nint f(void) { return 0; }\n',
        "%:pragma GCC poison x\nint f(void) { return 0; }\n",
    ],
)
def test_c_pragmas_are_rejected(source):
    violations = check_c(source)
    assert [v.rule for v in violations] == ["c-pragma"]
    assert violations[0].line == 1


def test_optimisation_pragmas_are_allowed():
    source = (
        "#pragma once\nint f(int n) {\n  int s = 0;\n#pragma clang loop vectorize(enable)\n"
        "  for (int i = 0; i < n; i++) s += i;\n#pragma unroll\n  for (int i = 0; i < 4; i++) s += i;\n"
        "  return s;\n}\n"
    )
    assert check_c(source) == []


def test_c_build_time_macros_say_the_build_must_be_reproducible():
    violations = check_c(
        "const char *a = __DATE__;\nconst char *b = __TIME__;\nconst char *c = __TIMESTAMP__;\n"
    )
    assert [(v.rule, v.line) for v in violations] == [
        ("c-build-time", 1),
        ("c-build-time", 2),
        ("c-build-time", 3),
    ]
    for violation, name in zip(violations, ("__DATE__", "__TIME__", "__TIMESTAMP__"), strict=True):
        assert name in violation.message
        assert "reproducible" in violation.message and "SHA-256" in violation.message


def test_build_time_names_in_strings_comments_or_longer_identifiers_pass():
    source = (
        '// __DATE__ in a comment\nconst char *s = "__TIME__";\nint __DATE___x = 1, my__TIMESTAMP__ = 2;\n'
    )
    assert check_c(source) == []

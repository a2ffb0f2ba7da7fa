"""Source policy: refuse candidate programs that would reach the host while they are compiled.

Threat model. Candidates are untrusted, LLM-written Rust or C. The compiler runs on our machine, in a
fresh directory, with an empty environment and resource limits (see `isolate.py`), and the wasm module
it produces runs sandboxed. What is left is what the *compiler itself* does on the candidate's behalf,
before any sandbox applies, and what the program asks of its host:

- read host files into the program (`include_str!`, `#[path]`, `mod x;`, `#[debugger_visualizer]`,
  C `#include "..."`, `#embed`) and so leak them into a binary we publish or run;
- bake the build environment into the binary (`env!`, `option_env!`), or the build time (C `__DATE__`,
  `__TIME__`, `__TIMESTAMP__`), which would also break reproducibility: every voter rebuilds the source
  and must get the same SHA-256;
- declare host imports (`extern` blocks, `#[link]`, C `import_module`), hide code from review
  (inline assembly), or change the language (`#![feature]`, proc macros, outside crates);
- use OS facilities through std (`std::fs`, `std::net`, `std::process`, `std::thread`, `std::env`).

The policy runs before any compiler and reports every violation with its rule and line, so a rejected
candidate can be repaired. It is a lexical scan, not a compiler: where it cannot tell what code means it
errs toward rejecting. Its lexers (`synapse_ng.languages.rust` and `.c`, shared with the tools that read
code) therefore mirror rustc's and clang's own tokenisation (comments, nested comments, raw strings,
lifetimes, line splices, trigraphs), because any place where the scanner thinks "this is a comment or a
string" and the compiler disagrees is a place to hide an attack. This package holds only the rules:
`rust.py`, `c.py`, and `report.py` for what a finding looks like.

Macros deserve a word. A macro can reassemble tokens: `m!(include_str)` with `$x!("/etc/passwd")` in its
body calls include_str!, and `($a:tt $b:tt $c:tt) => { $a $b; }` turns `mod x { }` into `mod x;`. The only
thing a macro cannot do (on stable Rust, without `##` in C) is invent an identifier. So inside macro
invocations and macro_rules bodies, the policy bans the dangerous *names* and keywords themselves,
however they are arranged.
"""

from .c import C_ALLOWED_HEADERS, check_c
from .report import Violation
from .rust import check_rust

__all__ = ["C_ALLOWED_HEADERS", "Violation", "check_c", "check_rust"]

"""What the compiler says it read, from the compile that already runs.

The source policy decides from its own lexing whether a source can reach outside itself (`include_str!`,
`#[path]`, `#include "/etc/passwd"`, `env!`). Lexers can disagree in corners, so the compiler is asked
too: rustc (`--emit=link,dep-info=FILE`) and clang (`-MD -MF FILE`) write a make-style dependency file
naming every file they read and, for rustc, every environment variable a macro read (`# env-dep:NAME`).
A module whose compiler read anything but its own source (and, for C, clang's own freestanding headers)
is refused and its bytes thrown away, whatever the policy thought. When the two disagree, the policy
has a hole: the violation says so.
"""

from __future__ import annotations

import os

from .policy import Violation

DEPENDENCY_FILE = "inputs.d"
RULE = "compiler-input"


def read_dependencies(text: str) -> tuple[list[str], list[str]]:
    """(every prerequisite of every rule, every `# env-dep:` variable) in a make-style dependency file.
    Escapes as the compilers write them: `\\ ` is a space inside a name, `$$` a dollar sign, and a
    backslash at the end of a line continues it."""
    files: list[str] = []
    variables: list[str] = []
    logical = text.replace("\\\r\n", " ").replace("\\\n", " ")
    for line in logical.splitlines():
        if line.startswith("# env-dep:"):
            variables.append(line.removeprefix("# env-dep:").split("=", 1)[0])
            continue
        if not line.strip() or line.startswith("#"):
            continue
        _target, separator, prerequisites = _split_rule(line)
        if separator:
            files.extend(_words(prerequisites))
    return files, variables


def _split_rule(line: str) -> tuple[str, str, str]:
    """target, ":", prerequisites: split at the first colon not escaped as `\\:`."""
    index = 0
    while True:
        index = line.find(":", index)
        if index < 0:
            return line, "", ""
        if index > 0 and line[index - 1] == "\\":
            index += 1
            continue
        return line[:index], ":", line[index + 1 :]


def _words(text: str) -> list[str]:
    words, current, i = [], [], 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in " #:\\":
            current.append(text[i + 1])
            i += 2
            continue
        if char == "$" and text[i + 1 : i + 2] == "$":
            current.append("$")
            i += 2
            continue
        if char in " \t":
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(char)
        i += 1
    if current:
        words.append("".join(current))
    return words


def unexpected_inputs(workdir: str, source_name: str, header_dirs: tuple[str, ...] = ()) -> list[Violation]:
    """Violations for everything the compiler in `workdir` read besides `source_name` and files inside
    `header_dirs`; one violation if it wrote no dependency file (then nothing it read can be vouched for)."""
    path = os.path.join(workdir, DEPENDENCY_FILE)
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            files, variables = read_dependencies(handle.read())
    except OSError:
        return [Violation(RULE, 1, "the compiler wrote no dependency file, so what it read is unknown")]
    allowed_dirs = [os.path.realpath(d) + os.sep for d in header_dirs]
    own_source = os.path.realpath(os.path.join(workdir, source_name))
    found = []
    for name in dict.fromkeys(files):
        real = os.path.realpath(os.path.join(workdir, name))
        if real == own_source or any(real.startswith(d) for d in allowed_dirs):
            continue
        found.append(f"the file {name!r}")
    found += [f"the environment variable {name!r}" for name in dict.fromkeys(variables)]
    return [
        Violation(
            RULE,
            1,
            f"the compiler read {what} besides the candidate's source; a candidate must be self-contained "
            "(the source policy did not see this: report it as a policy bug)",
        )
        for what in found
    ]

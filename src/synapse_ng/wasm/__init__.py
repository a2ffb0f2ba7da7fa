"""WebAssembly: the static checks a candidate module must pass, and the sandbox that runs it.

    policy.py    what a module may contain (ExportSpec, WasmPolicy); components declare it
    inspect.py   inspect_wasm(bytes, policy) -> WasmReport: validate, read, check; never compiles
    checks.py    the rules, each worded as the reason a model reads to fix its program
    sections.py  the section walk: imports, exports, limits, counts as the bytes declare them
    binary.py    the bounds-checked reader of the binary format under the section walk
    sandbox.py   Sandbox/Instance: wasmtime with fuel, an epoch deadline and store limits
    memory.py    typed, bounds-checked reads and writes of a module's linear memory

The static checks read the bytes themselves (binary.py, sections.py) instead of asking a compiled
wasmtime Module, for the reasons in inspect.py's docstring; the sandbox, which compiles anyway, asks
wasmtime's own Module.exports for the memory and functions it needs.
"""

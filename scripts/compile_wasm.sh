#!/usr/bin/env bash
# The seed's compile script, kept for its callers: compile one Rust file to WebAssembly.
# Usage: scripts/compile_wasm.sh INPUT.rs OUTPUT.wasm
# Exit codes: 0 ok, 1 usage or file error, 2 rustc not found, 3 compilation failed,
#             4 wasm32 target missing; and, new since the seed, 5 rejected by the source policy.
# It calls `synapse-ng compile`, so the compile is isolated and policy-checked like every other.
set -uo pipefail
if [ "$#" -ne 2 ]; then
    echo "usage: $0 INPUT.rs OUTPUT.wasm" >&2
    exit 1
fi
input="$1"
output="$2"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cli="$root/.venv/bin/synapse-ng"
[ -x "$cli" ] || cli="$(command -v synapse-ng || true)"
if [ -z "$cli" ]; then
    echo "error: synapse-ng is not installed; run scripts/setup.sh first" >&2
    exit 1
fi
python="$(dirname "$cli")/python"
[ -x "$python" ] || python=python3

echo "Compiling Rust to WebAssembly"
echo "Input:  $input"
echo "Output: $output"
report="$("$cli" compile "$input" -o "$output" --language rust --json)"
status=$?
echo "$report" | "$python" -c '
import json, sys
r = json.load(sys.stdin)
if "error" in r:
    print("Error:", r["error"]); sys.exit()
print("rustc version:", r["compiler_version"])
if r["ok"]:
    print("Compilation successful")
    print("Size:   ", r["size"], "bytes")
    print("SHA-256:", r["sha256"])
elif r["status"] == "rejected":
    print("Rejected by the source policy:")
    for v in r["violations"]:
        print("  line %d: [%s] %s" % (v["line"], v["rule"], v["message"]))
else:
    print("Compilation %s:" % r["status"]); print(r["log"])
'
exit "$status"

"""The wasmtime sandbox, attacked with modules written inline as WAT."""

from __future__ import annotations

import struct
import time

import pytest
import wasmtime

from synapse_ng.errors import SandboxError
from synapse_ng.wasm.memory import MemoryAccessError
from synapse_ng.wasm.sandbox import WASMTIME_VERSION, Sandbox, SandboxLimits, TrapKind


def wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


INFINITE_LOOP = wat('(module (func (export "spin") (loop $l (br $l))))')
COUNT = wat(
    """(module (func (export "count") (param $n i32) (result i32) (local $i i32)
         (block $done (loop $l (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
           (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l)))
         (local.get $i)))"""
)


def test_results_are_typed_and_multi_value_is_a_tuple():
    module = wat(
        """(module
             (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
             (func (export "pair") (param i64 f64) (result i64 f64) local.get 0 local.get 1)
             (func (export "nothing")))"""
    )
    sandbox = Sandbox(module)
    assert sandbox.run("add", 2, 3).values == (5,)
    assert sandbox.run("pair", -7, 2.5).values == (-7, 2.5)
    assert sandbox.run("nothing").values == ()
    assert sandbox.run("add", 0xFFFFFFFF, 1).values == (0,)  # unsigned spelling of -1 wraps


def test_fuel_is_deterministic_and_grows_with_work():
    sandbox = Sandbox(COUNT)
    small = [sandbox.run("count", 1000).fuel_used for _ in range(3)]
    big = sandbox.run("count", 2000).fuel_used
    assert len(set(small)) == 1
    assert big > small[0] * 1.9
    assert WASMTIME_VERSION == "50.0.1"  # pinned: fuel is only comparable within one version


def test_an_infinite_loop_runs_out_of_fuel():
    result = Sandbox(INFINITE_LOOP, SandboxLimits(fuel=5_000_000)).run("spin")
    assert not result.ok
    assert result.trap.kind is TrapKind.OUT_OF_FUEL
    assert result.fuel_used == 5_000_000


def test_the_wall_clock_deadline_stops_a_loop_that_fuel_would_allow():
    started = time.monotonic()
    result = Sandbox(INFINITE_LOOP, SandboxLimits(fuel=10**15, timeout_s=0.3)).run("spin")
    elapsed = time.monotonic() - started
    assert result.trap.kind is TrapKind.TIMEOUT
    assert 0.25 < elapsed < 5
    assert result.fuel_used is None  # wasmtime does not report fuel burnt before an interrupt: say so


def test_memory_grow_in_a_loop_hits_the_memory_limit():
    module = wat(
        """(module (memory (export "memory") 1)
             (func (export "grow") (loop $l (drop (memory.grow (i32.const 1))) (br $l))))"""
    )
    result = Sandbox(module, SandboxLimits(memory_bytes=4 << 20, fuel=10_000_000)).run("grow")
    assert result.trap.kind is TrapKind.MEMORY_LIMIT
    assert "4 MiB limit" in result.trap.message


def test_growth_refused_by_the_module_own_maximum_is_a_memory_limit_too():
    module = wat(
        """(module (memory (export "memory") 1 3)
             (func (export "grow")
               (loop $l
                 (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
                 (br $l))))"""
    )
    result = Sandbox(module, SandboxLimits(memory_bytes=64 << 20)).run("grow")
    assert result.trap.kind is TrapKind.MEMORY_LIMIT
    assert "192 KiB limit" in result.trap.message


def test_an_allocator_that_aborts_at_the_limit_is_a_memory_limit():
    module = wat(
        """(module (memory (export "memory") 1)
             (func (export "alloc") (loop $l
               (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
               (br $l))))"""
    )
    result = Sandbox(module, SandboxLimits(memory_bytes=8 << 20)).run("alloc")
    assert result.trap.kind is TrapKind.MEMORY_LIMIT
    assert result.trap.code == "unreachable"


def test_a_loop_in_a_module_whose_memory_sits_at_its_maximum_is_a_loop_not_a_memory_limit():
    module = wat(
        """(module (memory (export "memory") 2 2)
             (func (export "spin") (loop $l (br $l))))"""
    )
    assert Sandbox(module, SandboxLimits(fuel=1_000_000)).run("spin").trap.kind is TrapKind.OUT_OF_FUEL
    timed = Sandbox(module, SandboxLimits(fuel=10**15, timeout_s=0.2)).run("spin")
    assert timed.trap.kind is TrapKind.TIMEOUT
    # Unexported memory at a store limit the module starts at: the same.
    hidden = wat('(module (memory 16) (func (export "spin") (loop $l (br $l))))')
    assert (
        Sandbox(hidden, SandboxLimits(fuel=1_000_000, memory_bytes=16 * 65536)).run("spin").trap.kind
        is TrapKind.OUT_OF_FUEL
    )


def test_growing_to_the_cap_and_then_spinning_in_the_same_call_is_a_memory_limit():
    module = wat(
        """(module (memory (export "memory") 1 4)
             (func (export "grow_then_spin")
               (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
               (loop $s (br $s))))"""
    )
    result = Sandbox(module, SandboxLimits(fuel=1_000_000)).run("grow_then_spin")
    assert result.trap.kind is TrapKind.MEMORY_LIMIT and result.trap.code == "out_of_fuel"


def test_a_module_whose_initial_memory_exceeds_the_limit_is_refused_at_instantiation():
    result = Sandbox(
        wat('(module (memory 100) (func (export "f")))'), SandboxLimits(memory_bytes=1 << 20)
    ).run("f")
    assert result.trap.kind is TrapKind.MEMORY_LIMIT


def test_unbounded_recursion_is_a_stack_overflow():
    module = wat(
        '(module (func $r (export "r") (param i32) (result i32) '
        "(call $r (i32.add (local.get 0) (i32.const 1)))))"
    )
    result = Sandbox(module).run("r", 0)
    assert result.trap.kind is TrapKind.STACK_OVERFLOW


def test_a_start_function_that_loops_forever_is_bounded_by_fuel():
    module = wat('(module (func $s (loop $l (br $l))) (start $s) (func (export "f")))')
    sandbox = Sandbox(module, SandboxLimits(fuel=1_000_000))
    instance = sandbox.instantiate()
    assert instance.startup.trap.kind is TrapKind.OUT_OF_FUEL
    assert instance.call("f").trap.kind is TrapKind.OUT_OF_FUEL  # never runs on a broken instance


def test_ordinary_traps_carry_their_wasm_trap_code():
    module = wat(
        """(module (memory 1 1)
             (func (export "div") (param i32) (result i32) i32.const 1 local.get 0 i32.div_s)
             (func (export "oob") (result i32) i32.const 70000 i32.load)
             (func (export "stop") unreachable))"""
    )
    sandbox = Sandbox(module)
    cases = {"div": (0,), "oob": (), "stop": ()}
    codes = {name: sandbox.run(name, *args).trap for name, args in cases.items()}
    assert codes["div"].kind is TrapKind.TRAP and codes["div"].code == "integer_division_by_zero"
    assert codes["oob"].code == "memory_out_of_bounds"
    assert codes["stop"].code == "unreachable"
    assert "divide by zero" in codes["div"].message


def test_no_host_functions_are_provided():
    module = wat(
        '(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))) '
        '(func (export "f")))'
    )
    result = Sandbox(module).run("f")
    assert result.trap.kind is TrapKind.TRAP
    assert "import" in result.trap.message


def test_nan_results_are_canonical():
    module = wat(
        """(module (func (export "nan_bits") (param f32) (result i32)
             (i32.reinterpret_f32 (f32.div (local.get 0) (local.get 0)))))"""
    )
    assert Sandbox(module).run("nan_bits", 0.0).values == (0x7FC00000,)


def test_a_shared_memory_module_does_not_even_compile_in_the_sandbox():
    header, memory_section = "0061736d01000000", "050401030101"  # (memory 1 1 shared)
    shared = bytes.fromhex(header + memory_section)
    with pytest.raises(SandboxError, match="verify"):
        Sandbox(shared)


def test_calling_a_missing_export_or_with_wrong_arity_is_a_clear_error():
    sandbox = Sandbox(COUNT)
    with pytest.raises(SandboxError, match="exports: count"):
        sandbox.run("nope")
    with pytest.raises(SandboxError, match="takes 1 argument"):
        sandbox.run("count")


def test_impossible_limits_are_refused():
    with pytest.raises(SandboxError):
        SandboxLimits(fuel=0)
    with pytest.raises(SandboxError):
        SandboxLimits(memory_bytes=100)


def test_typed_arrays_round_trip_through_linear_memory():
    module = wat(
        """(module (memory (export "memory") 1 1)
             (func (export "sum") (param $ptr i32) (param $n i32) (result i64) (local $acc i64)
               (block $done (loop $l (br_if $done (i32.eqz (local.get $n)))
                 (local.set $acc (i64.add (local.get $acc) (i64.load32_s (local.get $ptr))))
                 (local.set $ptr (i32.add (local.get $ptr) (i32.const 4)))
                 (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br $l)))
               (local.get $acc)))"""
    )
    instance = Sandbox(module).instantiate()
    values = [5, -3, 2_000_000_000, 7]
    instance.memory.write_array(64, values, "i32")
    assert instance.memory.read_array(64, 4, "i32") == values
    assert instance.call("sum", 64, 4).values == (sum(values),)
    instance.memory.write_array(0, [1.5, -0.25], "f64")
    assert instance.memory.read_array(0, 2, "f64") == [1.5, -0.25]
    assert instance.memory.read_bytes(0, 8) == struct.pack("<d", 1.5)  # little-endian, as wasm defines


def test_memory_access_outside_linear_memory_is_refused():
    instance = Sandbox(wat('(module (memory (export "memory") 1 1))')).instantiate()
    with pytest.raises(MemoryAccessError, match="outside linear memory"):
        instance.memory.read_array(65530, 4, "i32")
    with pytest.raises(MemoryAccessError, match="outside"):
        instance.memory.write_array(-4, [1], "i32")
    with pytest.raises(MemoryAccessError, match="does not fit"):
        instance.memory.write_array(0, [1 << 40], "i32")
    with pytest.raises(MemoryAccessError, match="unknown element type"):
        instance.memory.read_array(0, 1, "i128")

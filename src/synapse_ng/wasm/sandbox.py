"""Run untrusted WebAssembly under hard bounds and get typed results back, never a hang or a crash.

Bounds, each enforced by wasmtime itself:
- fuel: a deterministic CPU budget per call (the same module and input burn the same fuel on every
  machine running this wasmtime version, which is what lets nodes reproduce each other's figures),
- an epoch deadline: the wall-clock backstop, ticked by one shared clock thread while calls run,
- store limits: linear memory, table elements, one instance, one table, one memory,
- a small wasm stack, so unbounded recursion ends as stack_overflow long before the host's stack,
- NaN canonicalisation, so float results are bit-identical across hosts,
- no imports are provided (no WASI): a module that needs the host cannot even be instantiated.

The module's exports (its memory, its functions) are taken from wasmtime's own compiled `Module`.

Failures come back as `Trap(kind=...)`: out_of_fuel, timeout, memory_limit, stack_overflow, or trap with
the wasm trap code. Isolation from crashes of the runtime itself is the caller's business: evaluation
runs sandboxes in a worker process.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from importlib.metadata import version as package_version
from typing import cast

import wasmtime

from ..errors import SandboxError
from .memory import LinearMemory
from .policy import PAGE_BYTES

WASMTIME_VERSION = package_version("wasmtime")


@dataclass(frozen=True)
class SandboxLimits:
    """The bounds every call into a sandboxed module runs under."""

    fuel: int = 2_000_000_000  # per call (and for instantiation)
    memory_bytes: int = 64 << 20
    timeout_s: float = 10.0  # per call, wall clock
    max_stack_bytes: int = 512 << 10
    table_elements: int = 10_000

    def __post_init__(self) -> None:
        too_small = self.memory_bytes < PAGE_BYTES or self.max_stack_bytes < 4096
        if self.fuel <= 0 or self.timeout_s <= 0 or too_small:
            raise SandboxError(
                f"impossible sandbox limits {self}: fuel and timeout must be positive, memory at least one "
                f"64 KiB page, stack at least 4 KiB"
            )


class TrapKind(StrEnum):
    """Which bound ended a call, or `trap` for the module's own trap."""

    OUT_OF_FUEL = "out_of_fuel"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    STACK_OVERFLOW = "stack_overflow"
    TRAP = "trap"


@dataclass(frozen=True)
class Trap:
    """Why a call (or instantiation) ended without values."""

    kind: TrapKind
    code: str | None  # the wasm trap code ("unreachable", "integer_divide_by_zero", ...) when there is one
    message: str

    def __str__(self) -> str:
        code = f" ({self.code})" if self.code and self.kind is TrapKind.TRAP else ""
        return f"{self.kind.value}{code}: {self.message}"


@dataclass(frozen=True)
class CallResult:
    """A call's values, or its trap, with the fuel and wall time it took."""

    values: tuple = ()
    fuel_used: int | None = 0  # None when unknown: wasmtime does not report fuel burnt before an interrupt
    wall_s: float = 0.0
    trap: Trap | None = None

    @property
    def ok(self) -> bool:
        return self.trap is None

    def to_dict(self) -> dict:
        trap = self.trap
        return {
            "ok": self.ok,
            "values": list(self.values),
            "fuel_used": self.fuel_used,
            "wall_s": round(self.wall_s, 6),
            "trap": None
            if trap is None
            else {"kind": trap.kind.value, "code": trap.code, "message": trap.message},
        }


class _EpochClock:
    """Ticks an engine's epoch while at least one call is running; idle otherwise."""

    TICK_S = 0.005

    def __init__(self, engine: wasmtime.Engine):
        self._engine = engine
        self._users = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def ticks_for(self, seconds: float) -> int:
        return math.ceil(seconds / self.TICK_S) + 1

    def __enter__(self) -> _EpochClock:
        with self._lock:
            self._users += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="synapse-epoch-clock", daemon=True)
                self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._users -= 1

    def _run(self) -> None:
        while True:
            time.sleep(self.TICK_S)
            with self._lock:
                if self._users == 0:
                    self._thread = None
                    return
                self._engine.increment_epoch()


_engines: dict[int, tuple[wasmtime.Engine, _EpochClock]] = {}
_engines_lock = threading.Lock()


def _engine(max_stack_bytes: int) -> tuple[wasmtime.Engine, _EpochClock]:
    """One engine per stack size, shared: compiling an engine is costly, stores are cheap."""
    with _engines_lock:
        if max_stack_bytes not in _engines:
            config = wasmtime.Config()
            config.consume_fuel = True
            config.epoch_interruption = True
            config.max_wasm_stack = max_stack_bytes
            config.cranelift_nan_canonicalization = True
            config.wasm_threads = False  # no shared memory, no atomics waiting on the host
            config.wasm_memory64 = False
            config.wasm_multi_memory = False
            engine = wasmtime.Engine(config)
            _engines[max_stack_bytes] = (engine, _EpochClock(engine))
        return _engines[max_stack_bytes]


class Sandbox:
    """A compiled module and the limits every instance of it runs under."""

    def __init__(self, wasm: bytes, limits: SandboxLimits = SandboxLimits()):
        self.limits = limits
        self._engine, self._clock = _engine(limits.max_stack_bytes)
        try:
            self.module = wasmtime.Module(self._engine, wasm)
        except wasmtime.WasmtimeError as error:
            raise SandboxError(
                f"the module does not compile in the sandbox: {error}; run `synapse-ng verify` on it"
            ) from None

    def instantiate(self) -> Instance:
        return Instance(self)

    def run(self, name: str, *args) -> CallResult:
        """Instantiate afresh and call one export: the usual one-shot use."""
        instance = self.instantiate()
        if instance.startup.trap is not None:
            return instance.startup
        return instance.call(name, *args)


class Instance:
    """One store with one instance. `startup` tells whether instantiation itself succeeded."""

    def __init__(self, sandbox: Sandbox):
        self._sandbox = sandbox
        limits = sandbox.limits
        self.store = wasmtime.Store(sandbox._engine)
        self.store.set_limits(
            memory_size=limits.memory_bytes,
            table_elements=limits.table_elements,
            instances=1,
            tables=1,
            memories=1,
        )
        self._instance: wasmtime.Instance | None = None
        self._memory: wasmtime.Memory | None = None
        self._functions: dict[str, tuple[wasmtime.Func, list[str]]] = {}
        # Growth stops at the store limit or at the module's own declared maximum, whichever is lower.
        self._memory_cap = limits.memory_bytes
        self._bytes_at_start = 0  # memory size when the current call began
        # Instantiation runs the start function and data initialisers: bounded like any call.
        self.startup = self._bounded(self._instantiate)

    def _instantiate(self) -> tuple:
        self._instance = wasmtime.Instance(self.store, self._sandbox.module, [])
        exported = self._instance.exports(self.store)
        for export in self._sandbox.module.exports:
            if isinstance(export.type, wasmtime.MemoryType):
                # The engine has threads off, so a memory export is never a SharedMemory.
                self._memory = cast(wasmtime.Memory, exported[export.name])
                declared_max = export.type.limits.max
                if declared_max is not None:
                    self._memory_cap = min(self._memory_cap, declared_max * PAGE_BYTES)
                break
        return ()

    @property
    def memory(self) -> LinearMemory:
        if self._memory is None:
            raise SandboxError("the module exports no memory, so there is nothing to read or write")
        return LinearMemory(self.store, self._memory)

    def call(self, name: str, *args) -> CallResult:
        if self.startup.trap is not None:
            return self.startup
        func, params = self._function(name)
        if len(params) != len(args):
            raise SandboxError(
                f"{name} takes {len(params)} argument(s) ({', '.join(map(str, params))}), got {len(args)}"
            )
        typed = [_to_val(value, kind) for value, kind in zip(args, params, strict=True)]
        return self._bounded(lambda: _as_tuple(func(self.store, *typed)))

    def _function(self, name: str) -> tuple[wasmtime.Func, list[str]]:
        """The export and its parameter types, looked up once per instance: calls are the hot path."""
        if name not in self._functions:
            func = self._instance.exports(self.store).get(name) if self._instance else None
            if not isinstance(func, wasmtime.Func):
                exports = self._sandbox.module.exports
                functions = ", ".join(e.name for e in exports if isinstance(e.type, wasmtime.FuncType))
                raise SandboxError(
                    f"no exported function {name!r}; the module exports: {functions or 'none'}"
                )
            self._functions[name] = (func, [str(kind) for kind in func.type(self.store).params])
        return self._functions[name]

    def _bounded(self, action) -> CallResult:
        limits = self._sandbox.limits
        self.store.set_fuel(limits.fuel)
        clock = self._sandbox._clock
        self._bytes_at_start = self._memory.data_len(self.store) if self._memory is not None else 0
        with clock:
            self.store.set_epoch_deadline(clock.ticks_for(limits.timeout_s))
            started = time.perf_counter()
            try:
                values = action()
                trap = None
            except wasmtime.Trap as error:
                values, trap = (), self._classify(error)
            except wasmtime.WasmtimeError as error:
                values, trap = (), self._classify_error(error)
            wall = time.perf_counter() - started
        fuel_used: int | None = limits.fuel - self.store.get_fuel()
        if trap is not None and trap.code == "interrupt":
            fuel_used = None
        return CallResult(values, fuel_used, wall, trap)

    def _memory_exhausted(self) -> bool:
        """Whether memory sits at its cap. Only an exported memory can be seen from the host; every
        toolchain here exports it, and a module that hides it gets its traps reported as they are."""
        if self._memory is None:
            return False
        return self._memory.data_len(self.store) + PAGE_BYTES > self._memory_cap

    def _classify(self, error: wasmtime.Trap) -> Trap:
        trap = self._trap_of(error)
        # A grow refused at the memory limit returns -1 to the module instead of trapping; what follows
        # is the module giving up (an allocator's abort) or spinning until fuel or time run out. When
        # memory sits at the cap, that is the binding limit, so it is what we report, unless fuel or time
        # ran out in a call that never grew memory: a loop in a module whose memory merely sits at its
        # declared maximum is a loop, not a memory problem.
        grew = self._memory is not None and self._memory.data_len(self.store) > self._bytes_at_start
        ran_out = trap.kind in (TrapKind.OUT_OF_FUEL, TrapKind.TIMEOUT)
        if trap.kind is not TrapKind.STACK_OVERFLOW and self._memory_exhausted() and (grew or not ran_out):
            cap = self._memory_cap
            size = f"{cap >> 20} MiB" if cap >= 1 << 20 else f"{cap >> 10} KiB"
            message = f"memory reached its {size} limit, then: {trap.message}"
            return Trap(TrapKind.MEMORY_LIMIT, trap.code, message)
        return trap

    def _trap_of(self, error: wasmtime.Trap) -> Trap:
        limits = self._sandbox.limits
        code = error.trap_code
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return Trap(TrapKind.OUT_OF_FUEL, "out_of_fuel", f"used all {limits.fuel} units of fuel")
        if code == wasmtime.TrapCode.INTERRUPT:
            return Trap(TrapKind.TIMEOUT, "interrupt", f"still running after {limits.timeout_s:g} s")
        if code == wasmtime.TrapCode.STACK_OVERFLOW:
            message = f"call stack exceeded {limits.max_stack_bytes} bytes"
            return Trap(TrapKind.STACK_OVERFLOW, "stack_overflow", message)
        code_name = code.name.lower() if code is not None else None
        return Trap(TrapKind.TRAP, code_name, _trap_message(error.message or str(error)))

    def _classify_error(self, error: wasmtime.WasmtimeError) -> Trap:
        message = str(error).splitlines()[0]
        if "memory" in message and ("limit" in message or "exceeds" in message or "grow" in message):
            return Trap(TrapKind.MEMORY_LIMIT, None, message)
        return Trap(TrapKind.TRAP, None, message)


def _trap_message(text: str) -> str:
    """wasmtime puts the backtrace first and the cause ("wasm trap: ...") last; keep the cause."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    causes = [line for line in lines if line.startswith("wasm trap:")]
    return causes[-1] if causes else (lines[-1] if lines else "trap")


def _to_val(value, name: str):
    if name == "i32":
        return wasmtime.Val.i32(_wrap(int(value), 32))
    if name == "i64":
        return wasmtime.Val.i64(_wrap(int(value), 64))
    if name == "f32":
        return wasmtime.Val.f32(float(value))
    if name == "f64":
        return wasmtime.Val.f64(float(value))
    raise SandboxError(f"parameters of type {name} cannot be passed from the host; use i32, i64, f32 or f64")


def _wrap(value: int, bits: int) -> int:
    """Two's-complement wrap, so 0xFFFFFFFF is accepted for an i32 as -1."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _as_tuple(result) -> tuple:
    if result is None:
        return ()
    if isinstance(result, (list, tuple)):
        return tuple(result)
    return (result,)

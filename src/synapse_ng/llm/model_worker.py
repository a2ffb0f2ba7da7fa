"""The embedded model's worker process: llama.cpp runs here, never in the process that asked.

    python -m synapse_ng.llm.model_worker REQUEST_FD REPLY_FD      (started by local.ModelWorker)

Native code can crash (a CPU path that segfaults, an abort inside ggml, the kernel's out-of-memory
killer); in this process a crash ends only the worker, and the caller turns its exit into an LLMError
that names the signal. The worker loads one model, then answers requests one at a time:

    {"op": "chat", "id", "messages", "max_tokens", "temperature", "seed", "timeout_s"}
        -> {"id", "response": <llama-cpp-python chat completion>, "timings": {...}}
        |  {"id", "stopped": {"tokens_out", "where"}}          the deadline or a cancel stopped it
        |  {"id", "error": "...", "kind": "value" | "runtime"}
    {"op": "cancel", "id"}    stop that generation at its next check (a token, or a node of the graph)

The first message it sends is {"ready": {...}} (load time, threads, the llama.cpp build's features) or
{"load_error": "..."}. It exits when the request pipe closes: when its parent closes it, or dies (the
main thread reads the pipe even while another thread generates, so a dead parent ends a generation too).
Requests and replies are pickled over two pipes of their own: stdout and stderr are left to llama.cpp,
whose log lines go to stderr, where the parent keeps the last ones to quote if the worker dies.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import sys
import threading
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 continuation of the previous line
_LOG_WARN = 3
_LOG_CONT = 5


class _Deadline:
    def __init__(self, at: float):
        self.at = at
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def expired(self) -> bool:
        return self._event.is_set() or time.monotonic() >= self.at


class _Generation:
    """Deadline checks for one model: a stopping criterion after every token and, while the prompt is
    evaluated (no token yet), llama.cpp's abort callback, which it calls between nodes of the graph."""

    def __init__(self, llama_cpp: Any, llama: Any) -> None:
        self._llama_cpp = llama_cpp
        self.llama = llama
        self.deadline: _Deadline | None = None
        self.tokens = 0
        self.first_token_at: float | None = None
        self.stopped = False
        # Keep the ctypes callbacks alive as long as the model: llama.cpp holds raw pointers to them.
        self._abort = llama_cpp.ggml_abort_callback(self._abort_check)
        self._no_abort = llama_cpp.ggml_abort_callback(0)
        self._abort_on = False

    def _abort_check(self, _data) -> bool:
        deadline = self.deadline
        return deadline is not None and deadline.expired()

    def set_abort(self, on: bool) -> None:
        self._llama_cpp.llama_set_abort_callback(self.llama.ctx, self._abort if on else self._no_abort, None)
        self._abort_on = on

    def check(self, input_ids, logits) -> bool:
        self.tokens += 1
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
        if self._abort_on:
            # The prompt is evaluated: from here the per-token check suffices and costs less than a
            # callback at every node of the graph.
            self.set_abort(False)
        deadline = self.deadline
        if deadline is not None and deadline.expired():
            self.stopped = True
            return True
        return False


class _CancellableFormatter:
    """The GGUF's chat template, plus the per-token deadline check."""

    def __init__(self, llama_cpp, inner, generation: _Generation):
        self._llama_cpp = llama_cpp
        self._inner = inner
        self._generation = generation

    def __call__(self, **kwargs):
        result = self._inner(**kwargs)
        criteria = self._llama_cpp.StoppingCriteriaList([self._generation.check])
        if result.stopping_criteria is not None:
            criteria.extend(result.stopping_criteria)
        return replace(result, stopping_criteria=criteria)


def load_cpu_variants(llama_cpp) -> str | None:
    """A llama.cpp built with runtime CPU dispatch (GGML_BACKEND_DL with GGML_CPU_ALL_VARIANTS, as
    scripts/build_llama.sh builds it) ships one CPU backend per instruction-set level,
    libggml-cpu-<level>.so, beside libllama in llama_cpp/lib (or, built without GGML_BACKEND_DIR, in
    site-packages/bin). ggml looks for them only next to the executable and in the working directory,
    so they are loaded here, from where they were installed, before the model: ggml scores each against
    this CPU and keeps the best. Returns which one it chose, or None for a build with the CPU backend
    linked in."""
    package = Path(llama_cpp.__file__).resolve().parent
    variants = next(
        (d for d in (package / "lib", package.parent / "bin") if any(d.glob("libggml-cpu-*.so"))), None
    )
    if variants is None:
        return None
    # The copy of libggml that libllama loaded: a wheel cannot hold symlinks, so libggml.so, .so.0 and
    # .so.0.x are separate files, and opening another name would load a second, empty backend registry.
    loaded = _mapped(package / "lib", lambda name: name.startswith("libggml.so"))
    ggml = ctypes.CDLL(loaded or str(package / "lib" / "libggml.so.0"))
    ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
    ggml.ggml_backend_load_all_from_path(str(variants).encode())
    chosen = _mapped(variants, lambda name: name.startswith("libggml-cpu-"))
    count = len(list(variants.glob("libggml-cpu-*.so")))
    return (
        f"{Path(chosen).name if chosen else 'none'} (chosen at run time among {count} variants in {variants})"
    )


def _mapped(directory: Path, wanted) -> str | None:
    """The path of a library from `directory` that this process has mapped and whose name is `wanted`."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        path = Path(line.split()[-1]) if len(line.split()) >= 6 else None
        if path is not None and path.parent == directory and wanted(path.name):
            return str(path)
    return None


class Worker:
    def __init__(self, requests: Connection, replies: Connection, options: dict):
        self.requests = requests
        self.replies = replies
        self.options = options
        self._send_lock = threading.Lock()
        self._current: tuple[int, _Deadline] | None = None
        self._busy = threading.Lock()

    def send(self, message: dict) -> None:
        with self._send_lock:
            self.replies.send(message)

    # ---------------------------------------------------------------------------------- loading

    def load(self):
        import llama_cpp
        from llama_cpp import llama_chat_format

        self._llama_cpp = llama_cpp
        self._route_logs(llama_cpp)
        backends = load_cpu_variants(llama_cpp)
        if not self.options.get("extra_buffer_types", True):
            # llama-cpp-python has no argument for this model parameter; its Llama() reads the
            # defaults from this function, so the worker (and only the worker) wraps it.
            defaults = llama_cpp.llama_model_default_params

            def without_extra_bufts():
                params = defaults()
                params.use_extra_bufts = False
                return params

            llama_cpp.llama_cpp.llama_model_default_params = without_extra_bufts
        started = time.monotonic()
        llama = llama_cpp.Llama(
            model_path=self.options["path"],
            n_ctx=self.options["n_ctx"],
            n_threads=self.options["n_threads"],
            n_threads_batch=self.options.get("n_threads_batch"),
            verbose=False,
        )
        self.llama = llama
        self.generation = _Generation(llama_cpp, llama)
        template = llama.metadata.get("tokenizer.chat_template")
        if template:
            eos_id, bos_id = llama.token_eos(), llama.token_bos()
            inner = llama_chat_format.Jinja2ChatFormatter(
                template=template,
                eos_token=llama._model.token_get_text(eos_id) if eos_id != -1 else "",
                bos_token=llama._model.token_get_text(bos_id) if bos_id != -1 else "",
                stop_token_ids=[eos_id],
            )
            # The same formatter llama-cpp-python builds from the GGUF, with the deadline added.
            llama.chat_handler = llama_chat_format.chat_formatter_to_chat_completion_handler(
                _CancellableFormatter(llama_cpp, inner, self.generation)
            )
        # Without a template llama-cpp-python picks a format itself; the abort callback (then kept for
        # the whole generation) still enforces the deadline.
        self._per_token_check = bool(template)
        return {
            "load_s": time.monotonic() - started,
            "n_threads": self.options["n_threads"],
            "n_threads_batch": llama.n_threads_batch,
            "n_ctx": self.options["n_ctx"],
            "system_info": llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(),
            "extra_buffer_types": self.options.get("extra_buffer_types", True),
            "cpu_backend": backends or "built in (one instruction set, chosen at build time)",
            "pid": os.getpid(),
        }

    def _route_logs(self, llama_cpp) -> None:
        """llama.cpp's warnings and errors go to stderr, where the parent keeps the last lines; its
        chatter (info, debug) is dropped."""
        level = {"last": 0}

        @llama_cpp.llama_log_callback
        def forward(log_level: int, text: bytes, _user_data) -> None:
            if log_level != _LOG_CONT:
                level["last"] = log_level
            if level["last"] >= _LOG_WARN:
                sys.stderr.write(text.decode("utf-8", "replace"))
                sys.stderr.flush()

        self._log_callback = forward  # keep it alive
        llama_cpp.llama_log_set(forward, ctypes.c_void_p(0))

    # ------------------------------------------------------------------------------- generation

    def chat(self, request: dict) -> dict:
        generation = self.generation
        request_id = request["id"]
        assert self._current is not None  # the loop sets it before it starts the chat thread
        deadline = self._current[1]
        generation.deadline, generation.tokens, generation.stopped, generation.first_token_at = (
            deadline,
            0,
            False,
            None,
        )
        generation.set_abort(True)
        started = time.monotonic()
        try:
            response = self.llama.create_chat_completion(
                messages=request["messages"],
                max_tokens=request["max_tokens"],
                temperature=request["temperature"],
                seed=request["seed"],
            )
        except RuntimeError as error:
            if deadline.expired():  # llama_decode was aborted while evaluating the prompt
                self.llama.reset()
                return {"id": request_id, "stopped": {"tokens_out": generation.tokens, "where": "prompt"}}
            return {"id": request_id, "error": str(error), "kind": "runtime"}
        except ValueError as error:  # a prompt longer than the context, bad arguments
            return {"id": request_id, "error": str(error), "kind": "value"}
        finally:
            generation.set_abort(False)
            generation.deadline = None
        if generation.stopped:
            return {"id": request_id, "stopped": {"tokens_out": generation.tokens, "where": "tokens"}}
        ended = time.monotonic()
        first = generation.first_token_at or ended
        usage = response.get("usage") or {}
        timings = {
            "prompt_s": first - started,
            "generation_s": ended - first,
            "prompt_tokens": usage.get("prompt_tokens", 0),
            "completion_tokens": usage.get("completion_tokens", 0),
        }
        return {"id": request_id, "response": response, "timings": timings}

    def _run_chat(self, request: dict) -> None:
        try:
            reply = self.chat(request)
        except BaseException as error:  # report, never leave the caller waiting
            reply = {"id": request["id"], "error": f"{type(error).__name__}: {error}", "kind": "runtime"}
        # Free before replying: the caller may send its next request the moment the reply arrives.
        self._current = None
        self._busy.release()
        self.send(reply)

    # --------------------------------------------------------------------------------- the loop

    def serve(self) -> None:
        while True:
            try:
                request = self.requests.recv()
            except (EOFError, OSError):
                return  # the parent closed the pipe, or died
            op = request.get("op")
            if op == "chat":
                if not self._busy.acquire(blocking=False):
                    self.send(
                        {
                            "id": request["id"],
                            "error": "the worker is busy with another generation",
                            "kind": "busy",
                        }
                    )
                    continue
                self._current = (request["id"], _Deadline(time.monotonic() + float(request["timeout_s"])))
                threading.Thread(target=self._run_chat, args=(request,), daemon=True).start()
            elif op == "cancel":
                current = self._current
                if current is not None and current[0] == request.get("id"):
                    current[1].cancel()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    request_fd, reply_fd = int(argv[0]), int(argv[1])
    faulthandler.enable()  # a native crash prints the Python stack to stderr before the process dies
    requests = Connection(request_fd, writable=False)
    replies = Connection(reply_fd, readable=False)
    try:
        options = requests.recv()
    except EOFError:
        return 0
    worker = Worker(requests, replies, options)
    try:
        ready = worker.load()
    except BaseException as error:  # noqa: BLE001 - every load failure goes back to the caller
        replies.send({"load_error": f"{type(error).__name__}: {error}"})
        return 1
    replies.send({"ready": ready})
    worker.serve()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    # Leave without running llama.cpp's destructors: at interpreter shutdown llama-cpp-python frees its
    # context after ggml's backends are gone and segfaults; the kernel frees everything anyway.
    os._exit(code)

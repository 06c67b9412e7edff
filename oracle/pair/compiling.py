"""How the twin's programs are compiled: one place, used by the checks and the reproducer.

A run over many small shapes is dominated by XLA compiling, not by running: each new
shape is a new program. Small programs (fewer than :data:`SMALL_PROGRAM` elements over
all their arrays) are therefore compiled for compile time, not run time:

- ``xla_backend_optimization_level=0``: no LLVM optimisation passes;
- on the CPU, ``xla_cpu_use_fusion_emitters=False``: XLA's older elemental emitter for
  fused loops, which compiles 2-3x faster than the MLIR fusion emitters for the same
  HLO (measured: 31 -> 12 ms for a small elementwise vjp, 72 -> 32 ms for a
  matmul + log_softmax one; ``python tests/benchmarks/run.py --only speed``).

Neither changes what the program computes (the same HLO, fused the same way); both
change how fast it runs, which at these sizes is microseconds. Large programs keep
XLA's defaults.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SMALL_PROGRAM", "options_for"]

#: the twin's programs whose arrays (all arguments together) have fewer elements than
#: this are compiled for compile time; the reproducer does the same
SMALL_PROGRAM = 1 << 16

_SMALL = {"xla_backend_optimization_level": 0}
_SMALL_CPU = {**_SMALL, "xla_cpu_use_fusion_emitters": False}


#: the naive implementation in a low dtype rounds every operation to that dtype, as plain
#: PyTorch code does: without this, XLA may keep a fused chain (tanh, then a sum that
#: jnp.sum upcasts) in float32 and be more accurate than any eager code in bfloat16
_LOW_DTYPE = {"xla_allow_excess_precision": False}


def options_for(small: bool, device: str, *, low_dtype: bool = False) -> dict[str, Any]:
    """XLA compiler options for a program of this size on this device (``low_dtype``: a
    bfloat16 or float16 program, rounded at every operation)."""
    options = dict(_LOW_DTYPE) if low_dtype else {}
    if small:
        options.update(_SMALL_CPU if device == "cpu" else _SMALL)
    return options

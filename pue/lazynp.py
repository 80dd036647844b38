"""numpy, imported when first used rather than when a module using it is imported.

A report whose partial blocks were all kept (figures.keptparts) computes nothing with
arrays, and importing numpy is a sixth of its start-up as a new process. ``np`` here
stands for the numpy module: the first attribute read imports numpy and copies its names
into this object, so later reads cost what a module attribute costs.

Imported here, numpy's OpenBLAS starts one thread, not one per CPU (OPENBLAS_NUM_THREADS,
unless the environment sets it): nothing in pue-monitor multiplies matrices, and
starting the pool costs each process that imports numpy (each worker of a cold report)
about 0.06 s of CPU and of wall time on a 2-CPU machine.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

BLAS_THREADS_ENV = "OPENBLAS_NUM_THREADS"

_LOCK = threading.Lock()


class _Numpy:
    def __getattr__(self, name: str) -> Any:
        # Only names not copied yet come here: the first read, or one numpy itself
        # resolves lazily (a submodule it loads on demand).
        if "numpy" not in sys.modules:
            os.environ.setdefault(BLAS_THREADS_ENV, "1")
        import numpy

        with _LOCK:
            if "ndarray" not in self.__dict__:
                self.__dict__.update(vars(numpy))
        return getattr(numpy, name)

    def __repr__(self) -> str:
        return "<numpy, imported on first use>"


np: Any = _Numpy()

__all__ = ["np"]

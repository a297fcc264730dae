"""The optional C accumulators (``_accum.c``): ``c_accum`` is None when the extension was not built.

Callers read ``native.c_accum`` at call time, so the tests can switch to the numpy fallback in one place.
"""

from __future__ import annotations

import types

c_accum: types.ModuleType | None
try:
    from wardwatch.inventory import _accum as c_accum
except ImportError:  # built without a C compiler: the numpy accumulators do the same work
    c_accum = None

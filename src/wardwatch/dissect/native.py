"""The optional C parser of the DNS wire format (``_dnswire.c``): ``c_dnswire`` is None when it was not built.

Callers read ``native.c_dnswire`` at call time, so the tests can switch to the Python reference in one place.
"""

from __future__ import annotations

import types

c_dnswire: types.ModuleType | None
try:
    from wardwatch.dissect import _dnswire as c_dnswire
except ImportError:  # built without a C compiler: the Python functions do the same work
    c_dnswire = None

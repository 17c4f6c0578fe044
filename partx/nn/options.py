"""Keyword options that are checked, not swallowed: a typo raises, naming the option and the valid ones.

Model and mixer options reach constructors from the command line (weaver's ``-o mixer_options {...}``),
where a misspelled key must not silently change nothing. ``strict_options`` wraps an ``__init__`` whose
signature lists every option explicitly (no ``**kwargs``) so that an unknown keyword raises a
``TypeError`` that also lists what the class does take (Python's own error names only the bad key).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable


def option_names(init: Callable) -> list[str]:
    """The keyword-passable parameters of ``init`` (``self`` and ``*args``/``**kwargs`` excluded)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in inspect.signature(init).parameters.values() if p.kind in kinds and p.name != "self"]


def check_options(owner: str, given: Iterable[str], valid: Iterable[str]) -> None:
    """Raise ``TypeError`` if ``given`` has a name outside ``valid``; the message names both."""
    valid = list(valid)
    unknown = [name for name in given if name not in valid]
    if unknown:
        raise TypeError(f"{owner}: unknown option(s) {', '.join(map(repr, unknown))}; valid options: {', '.join(valid)}")


def strict_options(init: Callable | None = None, *, forwarded: Iterable[str] = ()) -> Callable:
    """Decorate an ``__init__`` so that unknown keyword options raise a ``TypeError`` listing the valid ones.

    ``forwarded``: names an ``__init__`` with ``**kwargs`` passes on (to its parent class) and so accepts too.
    Use as ``@strict_options`` or ``@strict_options(forwarded=(...))``.
    """
    if init is None:
        return functools.partial(strict_options, forwarded=forwarded)
    valid = option_names(init) + [name for name in forwarded if name not in option_names(init)]

    @functools.wraps(init)
    def checked(self, *args: object, **kwargs: object) -> None:
        check_options(type(self).__name__, kwargs, valid)
        init(self, *args, **kwargs)

    checked.valid_options = tuple(valid)
    return checked

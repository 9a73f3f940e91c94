"""Command-line glue shared by the option sets: passing a parsed option set on to a child process.

Each option set declares its flags once, in a function ``add_*_arguments(parser)`` beside its
dataclass (:func:`pmr_stream.backends.options.add_backend_arguments`,
:func:`pmr_stream.anonymizer.options.add_service_arguments`, ...). A launcher that starts a
``pmr`` command as a process (``pmr stream``, the benchmarks) declares the same set with the same
function and hands the values on with :func:`forward_argv`, so no flag is declared or rebuilt twice.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable


def forward_argv(
    add_arguments: Callable[[argparse.ArgumentParser], None],
    args: argparse.Namespace,
    skip: Iterable[str] = (),
) -> list[str]:
    """The flags ``add_arguments`` declares, as a command line carrying the values in ``args``.

    Only values that differ from their default are written (the child applies the same
    defaults). ``skip``: destinations the caller passes on itself.
    """
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    skipped = set(skip)
    out: list[str] = []
    for action in parser._actions:
        if not action.option_strings or action.dest in skipped or not hasattr(args, action.dest):
            continue
        value = getattr(args, action.dest)
        if value == action.default:
            continue
        flag = action.option_strings[0]
        if isinstance(action, argparse.BooleanOptionalAction):
            out.append(flag if value else f"--no-{flag[2:]}")
        elif isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            out.append(flag)
        elif isinstance(action, argparse._AppendAction):
            for item in value or ():
                out += [flag, str(item)]
        elif action.nargs in ("+", "*") or isinstance(action.nargs, int):
            out += [flag, *(str(v) for v in value)]
        else:
            out += [flag, str(value)]
    return out


__all__ = ["forward_argv"]

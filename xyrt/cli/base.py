"""What every command's parser is built from: the parser class (malformed command lines: one
line, exit 2), the option-applicability rule (`applies_when`) and hidden aliases, which keep an
old spelling working without showing it in ``--help``."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HIDDEN = argparse.SUPPRESS  # the help of an alias: accepted, not listed


class Parser(argparse.ArgumentParser):
    """Malformed command lines: one line on stderr naming the problem and where help is, exit 2."""

    def error(self, message: str):  # type: ignore[override]
        # a required group whose other members are hidden aliases has one name left
        message = re.sub(
            r"^one of the arguments (\S+) is required$",
            r"the following arguments are required: \1",
            message,
        )
        hint = f"see {self.prog} --help"
        if "required" in message:  # which arguments exist: the usage, as one line
            hint = " ".join(self.format_usage().split()) + "; " + hint
        self.exit(2, f"{self.prog}: error: {message} ({hint})\n")

    def format_usage(self) -> str:
        with self._listed_as_required():
            return super().format_usage()

    def format_help(self) -> str:
        with self._listed_as_required():
            return super().format_help()

    @contextmanager
    def _listed_as_required(self) -> Iterator[None]:
        """A required group whose other members are hidden aliases (`model_option`) shows its
        one listed option as required (``--model DIR``, not ``[--model DIR]``), while the
        group, not the option, stays what parsing requires."""
        sole = []
        for group in self._mutually_exclusive_groups:
            listed = [a for a in group._group_actions if a.help is not HIDDEN]
            if group.required and len(listed) == 1 and not listed[0].required:
                sole.append(listed[0])
        for action in sole:
            action.required = True
        try:
            yield
        finally:
            for action in sole:
                action.required = False


Subparsers = argparse._SubParsersAction  # what each ``add_<command>(sub)`` adds its parser to


def alias(p: argparse.ArgumentParser | argparse._ActionsContainer, *flags: str, dest: str) -> None:
    """Old spellings ``flags`` of the option that sets ``dest``: they set the same ``dest`` the
    same way and are left out of ``--help`` (declare the option first)."""
    (option,) = {a for a in p._actions if a.dest == dest and a.help is not HIDDEN}
    kwargs: dict[str, Any] = {"type": option.type, "default": option.default}
    if option.choices is not None:
        kwargs["choices"] = option.choices
    if option.nargs is not None:
        kwargs["nargs"] = option.nargs
    p.add_argument(*flags, dest=dest, help=HIDDEN, **kwargs)


def model_option(
    p: argparse.ArgumentParser,
    help: str,
    *,
    dest: str = "model",
    old_flags: Sequence[str] = (),
    positional: bool = False,
    required: bool = True,
    metavar: str = "MODEL",
) -> argparse._MutuallyExclusiveGroup:
    """``--model``, the model a command reads, setting ``dest``; its old spellings (``old_flags``
    such as ``--checkpoint``, and with ``positional`` a positional argument named ``dest``) are
    hidden aliases. They exclude each other; the group is returned for other sources
    (``--server``)."""
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument("--model", dest=dest, type=Path, metavar=metavar, help=help)
    for flag in old_flags:
        group.add_argument(flag, dest=dest, type=Path, help=HIDDEN)
    if positional:  # absent, it leaves ``dest`` alone (default SUPPRESS), so --model can set it
        group.add_argument(
            dest, nargs="?", type=_path, default=HIDDEN, metavar=metavar, help=HIDDEN
        )
    return group


def _path(text: str) -> Path | str:
    """A path, but the SUPPRESS default of an absent positional as itself: argparse converts a
    string default, and a converted one would count as given and be stored."""
    return text if text is HIDDEN else Path(text)


@dataclass(frozen=True)
class AppliesWhen:
    """An option that takes effect only in some cases (``when``, in words: "with --stream");
    given in any other case it is refused, naming it, rather than silently ignored."""

    option: str  # as users write it: "--duration"
    when: str
    test: Callable[[argparse.Namespace], bool]
    dest: str  # the parsed attribute
    aliases: tuple[str, ...]  # every flag that sets it ("--hop", "--decode-hop")

    def named(self, argv: Sequence[str]) -> str:
        """The flag as ``argv`` wrote it (an alias too), else `option`."""
        for arg in argv:
            for flag in self.aliases:
                if arg == flag or arg.startswith(flag + "="):
                    return flag
        return self.option


def applies_when(
    p: argparse.ArgumentParser, when: str, test: Callable[[argparse.Namespace], bool], *options: str
) -> None:
    """Declare that ``options`` of subcommand ``p`` take effect only ``when``
    (`xyrt.cli.parser.check_applies` checks every declaration once, after parsing)."""
    unknown = [o for o in options if o not in p._option_string_actions]
    if unknown:  # a declaration naming no option of ``p`` would never fire
        raise ValueError(f"{p.prog} has no option(s) {unknown}")
    rules = p.get_default("applies_when") or ()
    declared = []
    for option in options:
        dest = p._option_string_actions[option].dest
        flags = (f for a in p._actions if a.dest == dest for f in a.option_strings)  # aliases too
        declared.append(AppliesWhen(option, when, test, dest, tuple(flags)))
    p.set_defaults(applies_when=(*rules, *declared))

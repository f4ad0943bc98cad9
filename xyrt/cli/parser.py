"""The ``xyrt`` parser: one ``add_<command>`` per command, in its workflow's module, and
``xyrt --help`` listing the commands by workflow. `check_applies` runs each command's
`applies_when` declarations after parsing."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from xyrt import __version__
from xyrt.cli import measure, prepare, run
from xyrt.cli.base import HIDDEN, Parser

WORKFLOWS = (  # (heading, the add_<command> functions in the order --help lists them)
    ("prepare a model", prepare.WORKFLOW),
    ("run it", run.WORKFLOW),
    ("measure it", measure.WORKFLOW),
)
FILE_OUTPUT_COMMANDS = ("encode", "decode", "calib", "synth", "stream")  # -o names a file


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="xyrt",
        usage="xyrt [-h] [--version] COMMAND ...",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="`xyrt COMMAND --help` lists a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"xyrt {__version__}")
    sub = parser.add_subparsers(  # listed by the description instead, by workflow
        dest="command",
        required=True,
        metavar="COMMAND",
        parser_class=Parser,
        prog="xyrt",
        help=HIDDEN,
    )
    for _, adders in WORKFLOWS:
        for add in adders:
            add(sub)
    for command in (*FILE_OUTPUT_COMMANDS, "convert"):
        sub.choices[command].add_argument(
            "--force",
            action="store_true",
            help="replace an existing output file that xyrt has no record of writing (one "
            "written under another XYRT_CACHE, or changed since)",
        )
    parser.description = _commands_by_workflow(sub)
    return parser


def _commands_by_workflow(sub: argparse._SubParsersAction) -> str:
    """The help's list of commands: one heading per workflow, a line per command."""
    helps = {a.dest: a.help for a in sub._choices_actions}
    width = max(map(len, helps)) + 2
    lines = ["Deployment toolkit for the XY-Tokenizer speech codec."]
    for heading, adders in WORKFLOWS:
        lines += ["", f"{heading}:"]
        names = [add.__name__.removeprefix("add_") for add in adders]
        lines += [f"  {name:<{width}}{helps[name]}" for name in names]
    return "\n".join(lines)


def subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def given_options(argv: Sequence[str]) -> set[str]:
    """The ``dest`` of every option ``argv`` sets itself (not by default): the parser again,
    with every default suppressed."""
    parser = build_parser()
    parsers = [parser]
    while parsers:
        current = parsers.pop()
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers += list(action.choices.values())
            elif action.dest != "help":
                action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def check_applies(args: argparse.Namespace, argv: Sequence[str]) -> str | None:
    """The first option ``argv`` gives where it cannot take effect, as a message, or None."""
    rules = getattr(args, "applies_when", ())
    if not rules:
        return None
    given = given_options(argv)
    for rule in rules:
        if rule.dest in given and not rule.test(args):
            return f"{rule.named(argv)} applies only {rule.when}; it would have no effect here"
    return None

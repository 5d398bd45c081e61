"""Every option of every entry point in dispatch/bin has help text (ESPnet's own parsers, which
enh_train, enh_inference and enh_distill_train reuse, are checked for the options added here)."""
from __future__ import annotations

import argparse
import importlib
import pkgutil

import pytest

import dispatch.bin

ESPNET_PARSERS = {"enh_train", "enh_inference", "enh_distill_train"}
MODULES = sorted(m.name for m in pkgutil.iter_modules(dispatch.bin.__path__) if m.name not in ESPNET_PARSERS)


class _Parsed(Exception):
    """Raised in place of parsing, to hand back the parser a ``main`` built."""


def parser_of(module) -> argparse.ArgumentParser:
    if hasattr(module, "get_parser"):
        return module.get_parser()
    seen = []

    def capture(self, *args, **kwargs):
        seen.append(self)
        raise _Parsed

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = capture
    try:
        module.main([])
    except (_Parsed, SystemExit):
        pass
    finally:
        argparse.ArgumentParser.parse_args = original
    assert seen, f"{module.__name__}: no get_parser() and main() parses no arguments"
    return seen[0]


def options_without_help(parser: argparse.ArgumentParser, prefix: str = "") -> list:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += options_without_help(sub, f"{prefix}{name} ")
        elif not isinstance(action, argparse._HelpAction) and not action.help:
            missing.append(prefix + (action.option_strings[0] if action.option_strings else action.dest))
    return missing


@pytest.mark.parametrize("name", MODULES)
def test_every_option_has_help(name):
    module = importlib.import_module(f"dispatch.bin.{name}")
    assert options_without_help(parser_of(module)) == []


def test_distillation_options_have_help():
    from dispatch.tasks.enh_distill import DISTILL_OPTIONS, EnhDistillTask

    actions = {a.dest: a for a in EnhDistillTask.get_parser()._actions}
    assert all(actions[name].help for name in DISTILL_OPTIONS)

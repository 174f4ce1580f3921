"""The ``ember`` command line: thin sub-commands over the library."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]

# name -> (module, help); each module has add_arguments(parser) and run(args) -> exit code.
_COMMANDS = {}


def register(name, module, help):
    _COMMANDS[name] = (module, help)


register("train", "ember.cli.train", "train a model (default: a CNN on the bundled digits)")
register("evaluate", "ember.cli.evaluate", "test accuracy, per-class table, confusion matrix")
register("predict", "ember.cli.predict", "top classes of image files (a trained run, or the shipped digits CNN)")
register("export", "ember.cli.export", "write a trained run's model as an ONNX file")
register("serve", "ember.cli.serve", "HTTP inference server for an .onnx file or a run folder")
register("embed", "ember.cli.embed", "sentence embeddings, or rank sentences by similarity")
register("bench", "ember.cli.bench", "training-step speed and memory side by side with PyTorch")


def build_parser():
    import ember

    p = argparse.ArgumentParser(
        prog="ember", description="ember: deep learning on NumPy with PyTorch's API."
    )
    p.add_argument("--version", action="version", version=f"ember {ember.__version__}")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    import importlib

    for name, (module, help) in _COMMANDS.items():
        sp = sub.add_parser(name, help=help, description=help)
        importlib.import_module(module).add_arguments(sp)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    import importlib

    module = importlib.import_module(_COMMANDS[args.command][0])
    try:
        return module.run(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, FileNotFoundError, ImportError, OSError, KeyError) as e:
        if getattr(args, "debug", False):
            raise
        print(f"ember {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

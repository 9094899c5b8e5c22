"""Command line: ``python -m nearly COMMAND [options]``.

Commands are registered in ``COMMANDS`` (name -> (module, one-line help)); a
command module provides ``add_arguments(parser)`` and ``run(args) -> int``.
"""
import argparse
import importlib
import sys

COMMANDS = {
    "demo": ("nearly.demo", "search real embeddings with nearly (and faiss, if installed): recall@k and QPS"),
}


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m nearly",
        description="nearly: fast vector search with a faiss-compatible API.",
        epilog="Run 'python -m nearly COMMAND --help' for a command's options.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (modname, help_) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_)
        mod = importlib.import_module(modname)
        mod.add_arguments(sp)
        sp.set_defaults(_run=mod.run)
    return p


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    if args.command is None:
        p.print_help()
        return 0
    return args._run(args)


if __name__ == "__main__":
    sys.exit(main())

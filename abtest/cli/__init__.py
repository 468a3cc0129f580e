"""abtest.cli: the ``python -m abtest`` command line.

One module per command or command group, the shared parent parsers and every argparse
type in :mod:`abtest.cli.argtypes`. Parses, calls the layer below, prints; no plotting or
table rendering of its own. The top of the project: may import anything below it.
"""

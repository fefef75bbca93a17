"""Command groups of the ``sluis`` CLI.

Each public module here defines ``register(groups)``, which adds one sub-command group to the
top-level parser and sets ``handler`` (a callable taking the parsed namespace and returning an
exit code) on each of its leaf parsers. Raise ``sluis.cli.CommandError`` for user errors.
"""

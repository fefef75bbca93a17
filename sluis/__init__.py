"""The composition root of Sluis: configuration, the ``sluis`` command line and the demo.

It wires the four packages together and holds no domain logic of its own. Each command group
lives in ``sluis.commands.<group>`` and registers itself with the top-level parser, so the
packages' owners can add commands without touching one shared file.
"""

__version__ = "0.1.0"

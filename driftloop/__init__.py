"""The composition root: the ``driftloop`` command line and the wiring of a local stack.

``cli`` gathers the subcommands of :mod:`driftloop.commands`; ``entry`` is what each does
first; ``migrations`` migrates every stage's tables. :mod:`driftloop.local` runs the whole
loop on one machine and :mod:`driftloop.lab` holds the drifting scenarios and the adaptation
benchmark. Imports go one way: ``lab`` <- ``local`` <- ``commands`` <- ``cli``.
"""

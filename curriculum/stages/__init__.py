"""One module per command, named for it: ``score``, ``stats``, ``train``, ``compare``, ``learners``.

Each reads top to bottom: load the data, train or compute, write the run directory.
"""

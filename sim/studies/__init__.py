"""The synthetic studies; each module offers ``add_arguments(parser)`` and ``run(args)``."""

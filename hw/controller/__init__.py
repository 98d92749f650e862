"""The instruction controller (see controller.py): fetch.py -> checker.py -> dispatch.py ->
queues.py, with tokens.py for the dependency tokens and assemble.py for DMA beats."""

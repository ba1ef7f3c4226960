"""The bridge's conversion and delivery in a helper process (opt-in: ``helper_process``).

:mod:`.shipment` is what crosses the pipe (pure), :mod:`.link` the parent's end of it and
:mod:`.helper` the helper process's main loop.
"""

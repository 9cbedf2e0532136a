"""Outputs: EVE JSON (``eve``), counters (``stats``), the end-of-run summary (``summary``)
and the terminal progress bar (``progress``)."""

"""SIGTERM (a scheduler's time limit or preemption) with several processes: noted, never exchanged
between the processes from inside the signal handler."""

from __future__ import annotations


def note_sigterm_only(trainer) -> None:
    """Replace the SIGTERM handler Lightning registers for ``trainer`` when fit or predict starts
    with one that only notes the signal (``trainer.received_sigterm``) and passes it on to the
    processes this one started, as Lightning's does. Lightning's also sends the first process's
    flag to the others from inside the handler, at whatever point each process is: that exchange
    pairs with another collective operation (a gradient all-reduce, a buffer broadcast, a barrier)
    and the run hangs or fails. The callers agree on the flag where every process is at the same
    point (the end of a training step) or let each process stop on its own (generation)."""
    connector = trainer._signal_connector

    def note(signum, frame) -> None:
        launcher = trainer.strategy.launcher
        if not connector.received_sigterm and launcher is not None:
            launcher.kill(signum)
        connector.received_sigterm = True

    connector._sigterm_notifier_fn = note

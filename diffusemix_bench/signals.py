"""SIGTERM (a scheduler's time limit or preemption) with several processes: noted, never exchanged
between the processes from inside the signal handler; and Ctrl-C or a closed pipe outside the work
that reports them itself, without a traceback."""

from __future__ import annotations

import atexit
import os
import signal
import sys
from contextlib import contextmanager, suppress


def quiet_interrupts() -> None:
    """For an entry point, called before its slow imports: Ctrl-C while it starts (imports take
    seconds), between the jobs of a sweep, or anywhere the work does not report it with its own
    advice, ends with one line instead of a traceback (Python then ends the process as interrupted:
    status 130 in a shell); output cut short by its reader (``--help | head``) ends quietly. Other
    errors keep Python's report."""
    import logging

    # PyTorch's fake-tensor module logs its cache counts at exit (an atexit hook, at INFO): after an
    # interruption during the imports they were printed under its line.
    logging.getLogger("torch._subclasses.fake_tensor").setLevel(logging.WARNING)
    previous = sys.excepthook

    def hook(kind, value, traceback) -> None:
        if issubclass(kind, KeyboardInterrupt):
            print(
                "interrupted (Ctrl-C); what had finished is kept: run the command again to go on",
                file=sys.stderr,
                flush=True,
            )
        elif issubclass(kind, BrokenPipeError):
            # Nothing more can reach the reader; keep Python from reporting the flush at exit too.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        else:
            previous(kind, value, traceback)

    sys.excepthook = hook
    # Registered before the libraries are imported, so it runs after their exit hooks.
    atexit.register(_ctrl_c_ignored_in_teardown)


def _ctrl_c_ignored_in_teardown() -> None:
    """The last exit hook: the work is over, its files written and its last line said. Python's
    teardown of PyTorch and the libraries around it takes a second or two, during which Ctrl-C
    (Python's handler gone) would end a finished command with status 130 and no word; it is
    ignored. (A command that ends because of a Ctrl-C still ends with status 130: Python restores
    the default action before it re-sends the signal to itself. A teardown that hangs, which none
    here is known to, is stopped with Ctrl-\\ or kill.)"""
    with suppress(ValueError, OSError):  # (not the main thread, or no such signal here)
        signal.signal(signal.SIGINT, signal.SIG_IGN)


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


@contextmanager
def sigterm_stops_between_runs(trainer):
    """Around the work after ``trainer.fit`` (re-validation, test, the attacks): SIGTERM raises
    Lightning's SIGTERMException when no Lightning run of ``trainer`` is in progress (in the
    attack, between its calls), so the run stops with its record and advice as in training; by
    default the signal ended the process at once, with no message and no failure.json. During a
    validate or test call the signal is noted: Lightning's own handler stops the evaluation after
    its batch, and one that came while the call set up or tore down its handler (loading the
    checkpoint, say), or at its last batch, is raised when the call returns (``check``). The
    signal is passed on to the processes the trainer started, as Lightning's handler does."""
    from pytorch_lightning.trainer.states import TrainerStatus
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    noted = []

    def stop(signum, frame) -> None:
        launcher = getattr(trainer.strategy, "launcher", None)
        if not noted and launcher is not None:
            launcher.kill(signum)
        noted.append(signum)
        if trainer.state.status != TrainerStatus.RUNNING:
            raise SIGTERMException

    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: signals are not this thread's to handle
        yield lambda: None
        return

    def check() -> None:
        if noted or trainer.received_sigterm:
            raise SIGTERMException

    try:
        yield check
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def ctrl_c_held():
    """Hold a Ctrl-C (SIGINT) that arrives inside the block until the block ends, then deliver it to
    the handler that was there: a piece of work and its record (an edit written and counted) are
    never parted by it. Outside the main thread (where no signal arrives) it holds nothing."""
    held = []
    # (a handler set from C reads as None: Python's own is put back in its place)
    previous = signal.getsignal(signal.SIGINT)
    previous = signal.default_int_handler if previous is None else previous
    try:
        signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            signal.raise_signal(signal.SIGINT)

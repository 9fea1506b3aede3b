"""Bounces and complaints: read the bounce mailbox, tell bounces from autoreplies, score as Mailman
does, suppress on complaint, and tell the organisers in plain words (by line of subscribers.csv).

``process(project, now=...)`` is the one entry point (the `bounces` command, tick and the daemon);
``tell_organisers(project, report, now=...)`` mails what it found.
"""

from __future__ import annotations

from newsletter.bounces.processing import BounceReport, process, tell_organisers

__all__ = ["BounceReport", "process", "tell_organisers"]

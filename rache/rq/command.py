"""``python -m rache.rq``'s command line: a runner process, taking ``rqscheduler``'s options.

The options are rq-scheduler's (``-u``, ``-H``, ``-p``, ``-d``, ``-P``, ``-i``, ``-b``,
``-j``, ``-q``, ``--path``, ``--pid``, ``-v``, ``--quiet``), plus rache's ``--prefix`` and
``--lease``; bad options exit with status 2 and one line.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional, Sequence

import redis

from .. import config
from .conventions import DEFAULT_LEASE, DEFAULT_PREFIX
from .scheduler import Scheduler

#: What the process logs (its counts when it stops), under the runners' logger's name.
logger = logging.getLogger("rache.rq")


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m rache.rq``: a runner process, taking ``rqscheduler``'s options.

    Any number may run at once. SIGTERM or SIGINT stops one once its batch in hand is moved.
    """
    parser = argparse.ArgumentParser(
        prog="python -m rache.rq", description="Move due rq-scheduler jobs into their rq queues."
    )
    parser.add_argument("-u", "--url", default=None, help="Redis URL (default: REDIS_URL)")
    parser.add_argument("-H", "--host", default=None, help="Redis host (without --url)")
    parser.add_argument("-p", "--port", type=int, default=6379, help="Redis port")
    parser.add_argument("-d", "--db", type=int, default=0, help="Redis database")
    parser.add_argument("-P", "--password", default=None, help="Redis password")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="rache key prefix")
    parser.add_argument("-i", "--interval", type=float, default=60, help="longest sleep, s")
    parser.add_argument("--lease", type=float, default=DEFAULT_LEASE, help="one-off job lease, s")
    parser.add_argument("-b", "--burst", action="store_true", help="stop once nothing is due")
    parser.add_argument("-j", "--job-class", default=None, help="rq job class (dotted name)")
    parser.add_argument("-q", "--queue-class", default=None, help="rq queue class (dotted name)")
    parser.add_argument("--path", default=None, help="a folder to import the classes from")
    parser.add_argument("--pid", default=None, metavar="FILE", help="write the process id there")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    options = parser.parse_args(argv)
    level = logging.DEBUG if options.verbose else logging.INFO
    logging.basicConfig(
        level=logging.WARNING if options.quiet else level,
        format="%(asctime)s %(name)s %(message)s",
    )
    if options.path:
        sys.path.insert(0, options.path)
    if options.pid:
        with open(options.pid, "w", encoding="ascii") as file:
            file.write(str(os.getpid()))
    if options.url is None and options.host is not None:
        client = redis.Redis(
            host=options.host,
            port=options.port,
            db=options.db,
            password=options.password,
            **config.client_options(),
        )
    else:
        client = config.client(options.url or config.redis_url())
    try:
        scheduler = Scheduler(
            connection=client,
            interval=options.interval,
            job_class=options.job_class,
            queue_class=options.queue_class,
            prefix=options.prefix,
            lease=options.lease,
        )
    except (TypeError, ValueError, ImportError) as error:  # exits 2, one line
        parser.error(str(error))
    dispatcher = scheduler.dispatcher()
    dispatcher.run(until_idle=options.burst)
    logger.log(
        logging.WARNING if options.quiet else logging.INFO,
        "rache.rq: %d claimed, %d handled, %d failed",
        dispatcher.claimed,
        dispatcher.handled,
        dispatcher.failed,
    )

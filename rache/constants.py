"""Defaults and bounds, in one place: rache's and its integrations'.

Key names are in ``rache.keys``. Nothing here imports anything: every module may read it.
"""

from __future__ import annotations

#: Redis URL used when ``REDIS_URL`` is not set.
DEFAULT_REDIS_URL = "redis://localhost:6379/0"

#: Key prefix used when ``RACHE_REDIS_PREFIX`` is not set (the same as rache 0.3.1).
DEFAULT_PREFIX = "rache:"

#: The environment variables read, lazily, for the default scheduler.
REDIS_URL_ENV = "REDIS_URL"
PREFIX_ENV = "RACHE_REDIS_PREFIX"

#: Jobs claimed or scheduled, or schedule entries read, per script call: bounds how long one
#: call holds Redis (a claim of 500 jobs takes about 2 ms of server time with a million
#: jobs scheduled, 1,000 about 3.5 ms) and how much one reply carries. Smaller batches cost
#: little: a round trip is some 50 us against about 3.5 us of server time a job.
DEFAULT_BATCH_SIZE = 500

#: How long a call record lives, seconds, at least (``Scheduler(call_record_ttl=...)``; sent
#: to each script that writes, the Lua include ``calls``): a script call that writes is
#: answered from its record, not run again, when redis-py retries it with the same call id
#: within this time (its reply was lost); a retry after it runs as a new call. Kept longer,
#: records cost memory: each is a key, ``<prefix>call:<call id>``, that Redis expires
#: (rache/lua/README.md, "Call records"). A Scheduler given a client keeps them
#: ``RECORD_MARGIN`` times as long as the client's retries may last, if that is longer.
CALL_RECORD_TTL = 60
#: The bounds of ``Scheduler(call_record_ttl=...)``, seconds.
MIN_CALL_RECORD_TTL = 1
MAX_CALL_RECORD_TTL = 24 * 3600
#: How many times as long as a client's retries may last (its worst case: attempts x
#: (connect timeout + reply timeout + longest backoff)) a call record lives: the clients
#: rache makes are set so; a Scheduler given a client and no ``call_record_ttl`` keeps its
#: records that long (``CALL_RECORD_TTL`` at least).
RECORD_MARGIN = 2
#: The clients rache makes (``REDIS_URL``, ``--url``): seconds to wait for a reply and for a
#: connection, retries of a call whose connection broke or timed out (redis-py's Retry, with
#: the same call id), and their backoff (exponential from the base, at most the cap). Worst
#: case: 3 x (2 + 5 + 0.5) = 22.5 s, within half of ``CALL_RECORD_TTL``; a shorter record
#: life scales all four down alike (``rache.config.client_options``).
CLIENT_SOCKET_TIMEOUT = 5.0
CLIENT_CONNECT_TIMEOUT = 2.0
CLIENT_RETRIES = 2
CLIENT_BACKOFF_BASE = 0.05
CLIENT_BACKOFF_CAP = 0.5

#: The most arguments of one scheduleBulk-3.lua call: a call of ``batch_size`` jobs is cut
#: short at this many, so that its time follows what it writes, not only its job count (with
#: a million jobs scheduled, about 3 us of server time a job and 3 us more per data field:
#: 2,000 arguments are some 220 jobs of two fields, or 400 without data, about 2 ms).
BULK_MAX_ARGS = 2000

#: The most shards a schedule may have: a pending_jobs() call visits every one.
MAX_SHARDS = 256

#: The largest batch a Scheduler accepts (a claim script's reply grows with it).
MAX_BATCH_SIZE = 10_000

#: The largest ``schedule_in`` / ``reschedule_in`` either way, in seconds (about 317 years):
#: keeps due times exact to the millisecond in a double.
MAX_OFFSET_SECONDS = 10**10

# -- runs ------------------------------------------------------------------------------------

#: Runs kept per job in ``<prefix>history:<id>``, newest first (``Scheduler(history=...)``;
#: 0 records none). Each costs about 40 bytes plus the poller name and any error text.
DEFAULT_HISTORY = 20
#: The most runs ``Scheduler(history=...)`` may keep per job.
MAX_HISTORY = 1000
#: How long a plain job's run may stay ``running`` before it reads as ``unknown``
#: (seconds; ``Scheduler(run_timeout=...)``): the deadline stored in the run's record.
DEFAULT_RUN_TIMEOUT = 3600
#: A recurring job's run timeout, until its rule says otherwise: its period, at least this
#: (seconds).
MIN_RUN_TIMEOUT = 60
#: How long the runs of a job no longer scheduled (a one-shot job handed out) stay at least
#: (seconds; ``Scheduler(history_ttl=...)``): the claims' sweep drops them after this, from
#: its newest run's claim or outcome, whichever is later. Jobs still scheduled (recurring,
#: ``reschedule_in``, scheduled again) keep theirs.
HISTORY_TTL = 7 * 24 * 3600
#: The longest poller name (``Scheduler(name=...)``, default ``host:pid``) stored in a run.
MAX_POLLER_NAME = 200
#: The longest error text stored in a run (``finish_run``); longer is cut to this many bytes.
MAX_ERROR_BYTES = 2000
#: Failed runs kept per shard in ``<prefix>failures``, newest first (``Scheduler.failures``).
FAILURES_KEPT = 100

# -- dispatchers -------------------------------------------------------------------------------

#: The longest a Dispatcher sleeps between claims when nothing falls due sooner (seconds):
#: a wake-up missed (no Pub/Sub) costs at most this much lag.
DEFAULT_MAX_SLEEP = 30.0
#: A Dispatcher's first wait after Redis fails, doubled on each failure up to the most
#: (seconds).
DEFAULT_BACKOFF = 0.1
DEFAULT_MAX_BACKOFF = 30.0

# -- live pollers and health ------------------------------------------------------------------

#: How long a poller's entry in ``Scheduler.pollers()`` lives after its last announce
#: (seconds): a poller killed without a word (SIGKILL, a lost host) is gone from the list
#: within this. A loop announces every ``ANNOUNCE_EVERY`` seconds, so it may miss
#: ``POLLER_TTL / ANNOUNCE_EVERY - 1`` (11) announces in a row (a Redis blip, a slow
#: handler call) before it drops out while alive.
POLLER_TTL = 60.0
#: The fewest seconds between two announces of one poller: an idle poller's only writes.
ANNOUNCE_EVERY = 5.0
#: The longest a poller's text fields (name, kind, host, version) may be, characters.
MAX_POLLER_TEXT = 200
#: ``Scheduler.health(late=)``: the oldest due job is a problem once this late (seconds).
DEFAULT_LATE = 300.0
#: ``Scheduler.health(stale_periods=)``: a recurring job is a problem once this many of its
#: occurrences fell due after its last success (0: no such check).
DEFAULT_STALE_PERIODS = 3
#: ``Scheduler.health(failed_in_a_row=)``: a recurring job is a problem once its newest
#: runs with an outcome failed this many times in a row (0: no such check).
DEFAULT_FAILED_IN_A_ROW = 3
#: The most recurring jobs ``Scheduler.health()`` examines: the first this many by id
#: (bytes order), so that a schedule of many recurring jobs costs a bounded reading; the
#: others are not judged (``rache doctor`` says how many were left out).
HEALTH_JOBS = 1000
#: The newest runs read per recurring job by ``Scheduler.health()`` (more when the failures
#: in a row asked for are more, up to ``MAX_HISTORY``).
HEALTH_RUNS = 10
#: Recurring jobs read per script call by ``Scheduler.health()`` (each reads a job's rule,
#: due time and newest runs: one call stays well under a millisecond per 100 jobs).
HEALTH_BATCH = 100
#: The most recurring jobs ``rache dispatch --metrics-port`` exports a last success time
#: for: the first this many by id of those ``Scheduler.health()`` examined.
JOB_GAUGES = 500

# -- retries ---------------------------------------------------------------------------------

#: A Dispatcher's retries of a run whose handler raised (``retries=``, ``rache dispatch
#: --retries``): none by default, at most this many.
DEFAULT_RETRIES = 0
MAX_RETRIES = 100
#: The wait before a run's first retry (seconds), doubled on each further failure, with
#: jitter (half to all of it), and never longer than the most.
DEFAULT_RETRY_BACKOFF = 10.0
MAX_RETRY_DELAY = 3600.0
#: The most retries one dispatcher holds waiting: a run that fails while this many wait
#: fails for good (recorded ``failed``), so that memory stays bounded when every call fails.
MAX_PENDING_RETRIES = 10_000
#: The attribute that marks a handler handing each run to a task queue (rache.adapters'
#: handlers, rache.rq's runner, the Celery beat): its return is not the run's success, the
#: worker reports the outcome; an exception it raises is still a failed attempt.
HAND_OFF_ATTRIBUTE = "rache_hand_off"

# -- recurrence rules ------------------------------------------------------------------------

#: The misfire policies of a recurrence rule, and the one used when none is given.
MISFIRE_POLICIES = ("coalesce", "skip")
DEFAULT_MISFIRE = "coalesce"
#: How late an occurrence may be handed out under ``skip`` (ms): later, it is dropped.
DEFAULT_GRACE_MS = 60_000
#: The overlap policies of a recurrence rule (what becomes of an occurrence that falls due
#: while the job's newest run is still running), and the one used when none is given.
OVERLAP_POLICIES = ("allow", "skip", "buffer_one")
DEFAULT_OVERLAP = "allow"
#: The reason recorded in a run skipped by ``overlap='skip'``.
OVERLAP_REASON = "overlap"
#: The longest duration of a rule (``every``, ``grace``, ``jitter``), in ms: about 31 years.
MAX_RULE_MS = 10**12
#: How far ahead a claim moves a cron job while its poller computes the next occurrence (ms).
DEFAULT_LEASE_MS = 5_000
#: How far (ms) the clock mark of a schedule (``<prefix>clock``: the latest server time at
#: which a claim moved recurring jobs) may stand ahead of the server's clock before a claim
#: takes it that the clock went back, and re-aims the recurring jobs standing too far ahead
#: (the Lua include ``clockJump``'s CLOCK_SLACK_MS; rache/lua/README.md, "Clock jumps").
CLOCK_SLACK_MS = 1000
#: The latest time a rule may start at (ms; about the year 2286): keeps times exact in a double.
MAX_MS = 10**13

# -- integrations ----------------------------------------------------------------------------

#: rache.rq: the prefix of the rache schedule that stands for rq-scheduler's sorted set.
RQ_DEFAULT_PREFIX = "rache:rq:"
#: rache.rq: how long a claimed one-off job waits before it is handed out again if its
#: runner died before moving it (seconds): the Dispatcher's ``reschedule_in``.
RQ_DEFAULT_LEASE = 30.0
#: The key of an rq job's ``meta`` that holds the rache occurrence the job stands for: set
#: by the ``rache.adapters.rq`` handler, and by ``rache.rq`` when it moves a job into its
#: queue (public as ``rache.adapters.OCCURRENCE_META``).
OCCURRENCE_META = "rache_occurrence"
#: The keys of an rq job's ``meta`` that tell rache's rq callbacks
#: (``rache.adapters.rq_succeeded`` and ``rq_failed``) which schedule the run is of: its
#: prefix, its shard count, and its Redis (``"queue"``: rq's own, the worker's connection;
#: ``"env"``: the worker's ``REDIS_URL``, so that no password is written in rq's Redis).
PREFIX_META = "rache_prefix"
SHARDS_META = "rache_shards"
REDIS_META = "rache_redis"

# -- job data ----------------------------------------------------------------------------------

#: The job data key that holds the job's id in what rache returns, so it cannot be data.
RESERVED_FIELD = "id"

#: Every key that rache reports itself beside a job's data, so none can be data: the id
#: (in every job handed out), and what ``job_details`` adds (the due time, a recurring
#: job's rule and its next occurrences). Each with what it holds, for the error.
RESERVED_FIELDS = {
    RESERVED_FIELD: "the job's id",
    "schedule_at": "the due time job_details reports",
    "recurring": "the rule job_details reports",
    "next_occurrences": "the occurrences job_details reports",
}

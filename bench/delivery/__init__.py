"""Delivery benchmark: deliveries per second through RQ workers, and webhook-to-office latency.

    python -m bench.delivery [--deliveries 3000] [--stores sqlite,postgres] [--rate 100]
                             [--seconds 20] [--batch N] [--profile]

Per store (SQLite, PostgreSQL), in one run:

1. **Throughput.** N submissions are stored through the service's own intake (the Flask test
   client posting to `/webhooks/formcycle/<service>`; no worker runs), so N deliveries are
   pending and due. Each measured row starts from a copy of that database, starts 1 or 2
   `python -m worker work` processes, wakes the office(s) with `worker.queue.wake_offices`
   and times until every delivery is `delivered` in the database. Scenarios: one office (all
   dog registrations, one drain job), one office with the sweeper running (it wakes the
   office again while the first job drains, so a second job can start), and two offices
   (dog registrations and traffic orders, one job each).
2. **Plain loop.** The same envelopes (`integrations.channels.envelopes.build_envelopes`, rendered by the
   http-json channel and signed as `post_signed` signs) POSTed in one `requests.Session` loop
   to the same back office, timed without building or signing; next to it the channel's own
   `deliver()` in a loop, and the plain loop against the DemoBackOffice.
3. **Phases.** `worker.jobs.drain_office` run in this process on another copy, with every
   step of the drain path timed (claim, build, decrypt, render, HTTP, answer, log, record,
   metrics); with `--profile` also a cProfile of a further drain.
4. **End to end.** gunicorn (`bridge:create_app()`), 2 workers and the sweeper on a fresh
   database; an open-loop client posts `--rate` dog registrations per second for `--seconds`
   (after `--warmup`), each with its own Idempotency-Key. The back office notes when each
   delivery arrives; latency = arrival − the moment the client started the webhook request
   (both `time.time()` on this machine).

The back office is `bench/fast_office.py` (its own process, answers 201 at once). Redis is a
private `redis-server` on a free port; PostgreSQL databases `bench_delivery_*` are created
and dropped. Results go to bench/results/delivery-<date>[-tag].md and .json.
"""

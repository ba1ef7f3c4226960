"""The WSGI application that gunicorn serves in the server-under-load benchmark.

``gunicorn 'benchmarks.loadapp:create_app()'`` (no ``--preload``): each worker process calls
``create_app`` once, which builds ``BENCH_LOAD_CONFIG`` (B, C or D-http, see ``configs``)
sending to the receiver on ``BENCH_LOAD_RECEIVER_PORT``, and then serves djangoapp's views
plus two of its own:

- ``/fail/<N>/``: fails every Nth request that this worker serves (a per-process counter), with
  the same chained exception as djangoapp's ``boom`` view; otherwise 200. A fixed error rate of
  1/N, whatever the order in which requests reach the workers.
- ``/pid/``: the worker's process id, so the parent can tell when every worker is serving.

Importing this module has no side effects: everything happens in ``create_app``.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path

from . import djangoapp

CONFIG_ENV = "BENCH_LOAD_CONFIG"
PORT_ENV = "BENCH_LOAD_RECEIVER_PORT"

_counters: dict[int, itertools.count[int]] = {}


def fail(request: HttpRequest, every: int) -> HttpResponse:
    counter = _counters.get(every)
    if counter is None:
        counter = _counters.setdefault(every, itertools.count(1))
    if every > 0 and next(counter) % every == 0:
        return djangoapp.boom(request)  # raises OrderLookupError from KeyError
    return HttpResponse("ok")


def pid(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(os.getpid()))


urlpatterns = [
    *djangoapp.urlpatterns,
    path("fail/<int:every>/", fail),
    path("pid/", pid),
]


def create_app() -> Any:
    """Build the configuration in this (worker) process and return its WSGI handler."""
    from django.conf import settings

    from .configs import build

    config = os.environ[CONFIG_ENV]
    port = int(os.environ[PORT_ENV])
    setup = build(config, port)  # configures Django with djangoapp as ROOT_URLCONF
    settings.ROOT_URLCONF = __name__  # read per request: no request has been served yet
    return setup.handler

"""The test project's URLs plus the ``async def`` views under ``async/``."""

from django.urls import path

from . import async_views
from .urls import urlpatterns as sync_urlpatterns

urlpatterns = [
    *sync_urlpatterns,
    path("async/ok/", async_views.ok),
    path("async/boom/", async_views.boom),
    path("async/log-exception/", async_views.log_exception),
    path("async/breadcrumbs/", async_views.breadcrumbs),
]

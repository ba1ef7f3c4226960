from django.urls import path

from . import views

urlpatterns = [
    path("ok/", views.ok),
    path("boom/", views.boom),
    path("orders/<int:order_id>/boom/", lambda request, order_id: views.boom(request)),
    path("log-exception/", views.log_exception),
    path("log-error/", views.log_error),
    path("batch/", views.batch),
    path("export/", views.export),
    path("breadcrumbs/", views.breadcrumbs),
    path("many-logs/", views.many_logs),
    path("unserialisable-extra/", views.unserialisable_extra),
    path("not-found/", views.not_found),
    path("unavailable/", views.unavailable),
    path("worker-error/", views.worker_error),
    path("forbidden/", views.forbidden),
    path("leaky-locals/", views.leaky_locals),
    path("read-body/", views.read_body_then_fail),
    path("read-stream/", views.read_stream_then_fail),
    path("log-then-read-body/", views.log_then_read_body),
    path("broken-template/", views.broken_template),
    path("template-calls-failing-code/", views.template_calls_failing_code),
    path("otel-log-exception/", views.otel_log_exception),
    path("otel-log-error/", views.otel_log_error),
]

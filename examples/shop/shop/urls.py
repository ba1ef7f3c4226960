"""URL routes of the example shop; each view's docstring says what it shows."""

from django.urls import path, re_path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("orders/<int:order_id>/", views.order_detail, name="order-detail"),
    path("checkout/", views.checkout, name="checkout"),
    path("payment/", views.payment, name="payment"),
    path("inventory/", views.inventory, name="inventory"),
    path("upstream/stock/", views.upstream_stock, name="upstream-stock"),
    path("missing/", views.missing, name="missing"),
    path("healthz/", views.healthz, name="healthz"),
    path("tasks/<str:name>/", views.enqueue, name="enqueue"),
    re_path(
        r"^reports/(?P<year>[0-9]{4})/(?P<month>[0-9]{2})/$",
        views.monthly_report,
        name="monthly-report",
    ),
    path("api/orders/", views.place_order, name="place-order"),
    path("receipts/<int:order_id>/", views.receipt, name="receipt"),
]

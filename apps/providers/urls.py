from django.urls import path

from apps.providers import api

app_name = "providers"
urlpatterns = [
    path("api/providers/<slug:slug>/usage", api.usage_push, name="api-usage-push"),
]

from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render

from apps.organizations.services import terms_current
from apps.providers.models import Provider


def home(request):
    return render(
        request,
        "core/home.html",
        {
            "providers": Provider.objects.filter(is_active=True).order_by("name_en"),
            "terms": terms_current(),
        },
    )


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})

app_name = "workinggroups"
urlpatterns: list = []

"""The German admin web page under /admin/: login, overview, lists, case page, replay.

`web.blueprint` is the page as the app registers it; the modules beside it are its pages
(`session`, `overview`, `lists`, `case`, `bulk`), their shared frame (`blueprint`), the filter
(`filters`), and helpers (`chart`, `csrf`, `labels`).
"""

"""The German admin web page under /admin/: login, overview, lists, case page, replay."""

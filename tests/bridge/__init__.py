"""Tests of the web app and the CLI, through Flask's client, real servers and a browser."""

"""Tests of the German admin page: pages, actions, the chart, a walk in Chromium."""

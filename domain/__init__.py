"""What the web service and the worker share: settings, store, routing, intake, deliveries."""

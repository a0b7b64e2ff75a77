"""The HTTP API: flask-smorest blueprints, thin over the services."""

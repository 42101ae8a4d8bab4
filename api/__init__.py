"""HTTP API: the Flask app factory (`api.app.create_app`), one blueprint per kind of user, auth,
OpenAPI, metrics and the chat page. Thin on purpose: views parse, call a service, map errors."""

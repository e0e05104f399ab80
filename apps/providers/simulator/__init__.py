"""A provider that speaks the Alliance Provider API v1 (docs/provider-api.md), for tests and the demo.

Everything is in ``server`` (standard library only, no Django), so it also runs as
``python -m apps.providers.simulator.server``; ``manage.py provider_simulator`` is the usual way to
start it, and ``server.make_server()`` builds one in-process."""

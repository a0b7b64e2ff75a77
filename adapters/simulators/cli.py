"""`broker simulate CARRIER --port N`: serve one carrier's simulator for the demo and benchmarks.

`broker simulate idp --port N` serves the local OpenID Connect identity provider instead.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import click

# In-tree simulators; an adapter from another package names its own in `simulator`.
SIMULATORS = {
    "telecom": "adapters.simulators.telecom:create_app",
    "mobile": "adapters.simulators.mobile:create_app",
    "unicom": "adapters.simulators.unicom:create_app",
}


def simulator_factory(carrier: str) -> Callable[..., Any]:
    """The app factory of a carrier's simulator: in-tree, or named by its registered adapter."""
    target = SIMULATORS.get(carrier)
    if target is None:
        from adapters.registry import AdapterRegistry

        registry = AdapterRegistry.from_entry_points()
        if carrier in registry:
            target = registry.get(carrier).simulator
        if target is None:
            valid = sorted(set(SIMULATORS) | {"idp"} | {n for n in registry.names() if registry.get(n).simulator})
            raise click.BadParameter(f"no simulator for {carrier!r}; valid: {', '.join(valid)}",
                                     param_hint="CARRIER")
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


@click.command("simulate")
@click.argument("carrier")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, help="Default 8001 (idp: 8004).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--offers", default=200, show_default=True, type=int, help="Catalogue size.")
@click.option("--error-rate", default=0.0, type=float, help="Share of API calls answered 503.")
@click.option("--latency", default=0.0, type=float, help="Seconds added to every API call.")
@click.option("--malformed-rate", default=0.0, type=float, help="Share of records corrupted.")
@click.option("--duplicate-rate", default=0.0, type=float, help="Share of records repeating an id.")
@click.option("--truncate", is_flag=True, help="Cut every data body in half.")
@click.option("--wrong-content-type", is_flag=True, help="Answer data calls with an HTML page.")
@click.option("--users", "users_file", type=click.Path(exists=True, dir_okay=False),
              help="idp: JSON list of users (sub, name, email, uscc + company_role, or district_role).")
@click.option("--clients", "clients_file", type=click.Path(exists=True, dir_okay=False),
              help="idp: JSON list of clients (client_id, client_secret, redirect_uris).")
@click.option("--token-ttl", default=600, show_default=True, type=int, help="idp: seconds an ID token is valid.")
def simulate_command(carrier: str, host: str, port: int | None, users_file: str | None, clients_file: str | None,
                     token_ttl: int, **options: Any) -> None:
    """Serve a carrier API simulator (telecom, mobile, unicom), or the identity provider (idp), on HOST:PORT."""
    from werkzeug.serving import run_simple

    if carrier == "idp":
        from adapters.simulators import idp

        port = 8004 if port is None else port
        try:
            users = idp.load_json_list(users_file, "users") if users_file else None
            clients = idp.load_json_list(clients_file, "clients") if clients_file else None
            app = idp.create_app(users, clients, token_ttl=token_ttl)
        except (ValueError, KeyError, TypeError) as error:
            raise click.BadParameter(str(error)) from None
        click.echo(f"identity provider (simulator) on http://{host}:{port}; "
                   f"discovery: http://{host}:{port}/.well-known/openid-configuration")
        run_simple(host, port, app, threaded=True)
        return
    port = 8001 if port is None else port
    app = simulator_factory(carrier)(**options)
    click.echo(f"{carrier} simulator on http://{host}:{port} ({options['offers']} offers, seed {options['seed']})")
    run_simple(host, port, app, threaded=True)

"""The Silicon Alley Resource Broker (上海硅巷资源撮合平台).

Importing the package loads nothing but the standard library, so the pure parts
(`broker.matching`, `adapters`) import without Flask or SQLAlchemy: the app's
imports happen inside `create_app`.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

__version__ = "0.1.0"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from BROKER_* variables, or from `config` over the development defaults."""
    from flask import Flask

    from config import check_settings, load_settings

    settings = load_settings() if config is None else {**load_settings({}), **config}
    check_settings(settings)
    # BROKER_INSTANCE_PATH, else Flask's own rule, which never looks at the current directory:
    # the folder beside the package (an editable checkout's ./instance), or
    # <prefix>/var/broker-instance when the broker is installed into an environment.
    # Nothing is created here: `broker db upgrade` (and `broker demo`) make the folder and the file.
    instance_path = settings.get("INSTANCE_PATH")
    # static_folder=None: /static is the console's (broker/web/static, served by its blueprint).
    app = Flask("broker", instance_path=os.path.abspath(str(instance_path)) if instance_path else None,
                static_folder=None)
    app.config.update(settings)
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = "sqlite:///" + os.path.join(app.instance_path, "broker.sqlite3")
    if not app.config.get("SECRET_KEY"):
        # Development only (production refuses to start without one): a fresh key per process.
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    app.config.update(_api_settings())
    from broker.api.common import JSONProvider

    app.json = JSONProvider(app)
    logging.getLogger("broker").setLevel(str(app.config["LOG_LEVEL"]))

    from broker import db

    db.init_app(app)
    # Loading every adapter now makes a broken or missing one stop start-up, naming the valid ones.
    from adapters.registry import AdapterRegistry

    app.extensions["broker.adapters"] = AdapterRegistry.from_entry_points()
    from adapters.registry import CarrierAdapters

    # Built lazily, one per carrier, and kept: each owns its carrier's circuit breaker.
    app.extensions["broker.carrier_adapters"] = CarrierAdapters(app.extensions["broker.adapters"], app.config["CARRIERS"])
    from broker.storage import store_from_config

    # One evidence store per app, from the settings (a folder, or an S3 bucket: no request until used).
    app.extensions["broker.evidence_store"] = store_from_config(app.config, instance_path=app.instance_path)
    _register_api(app)
    from broker.web import init_console

    # After the API: the console wraps its error handlers, so pages get pages and the API keeps JSON.
    init_console(app)
    return app


def _api_settings() -> dict[str, Any]:
    return {
        "API_TITLE": "Silicon Alley Resource Broker",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/docs",
        # Served by this app (broker.api.health), so the docs page works with no internet access.
        "OPENAPI_SWAGGER_UI_URL": "/api/docs/assets/",
        "API_SPEC_OPTIONS": {
            "info": {
                "description": "上海硅巷资源撮合平台: carriers publish compute, data lines, cloud and LLM "
                "tokens; startups request them; the district matches, approves and subsidises."
            },
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        },
    }


def _register_api(app: Flask) -> None:
    from flask_smorest.spec.plugins import integerconverter2paramschema, unicodeconverter2paramschema
    from sqlalchemy.exc import IntegrityError

    from broker.api import (
        carriers, cycles, evidence, health, market, notices, parties, pledges, policy, reports, settlement, surveys,
    )
    from broker.api.common import (
        Api,
        IdConverter,
        TextConverter,
        handle_domain_error,
        handle_integrity_error,
        handle_unexpected,
        refuse_oversized_json,
        retry_transient_views,
    )
    from broker.errors import DomainError

    app.url_map.converters["int"] = IdConverter
    app.url_map.converters["string"] = app.url_map.converters["default"] = TextConverter
    api = Api(app)
    api.register_converter(IdConverter, integerconverter2paramschema)
    api.register_converter(TextConverter, unicodeconverter2paramschema)
    blueprints = (parties.blp, market.blp, policy.blp, notices.blp, evidence.blp, settlement.blp, carriers.blp, cycles.blp,
                  pledges.blp, surveys.blp, reports.blp)
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    names = {blueprint.name for blueprint in blueprints}
    retry_transient_views(app, [endpoint for endpoint in app.view_functions if endpoint.split(".")[0] in names])
    app.register_blueprint(health.bp)
    app.before_request(refuse_oversized_json)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(IntegrityError, handle_integrity_error)
    app.register_error_handler(Exception, handle_unexpected)
    app.extensions["broker.api"] = api

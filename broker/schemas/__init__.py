"""marshmallow schemas: the only place request and response shapes are defined."""

"""The console (coming): views over the services and broker.auth, never broker.api (an import
contract in pyproject.toml checks that)."""

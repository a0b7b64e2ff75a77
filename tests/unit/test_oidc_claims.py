"""The mapping from a verified ID token's claims to who signed in, the OIDC settings, and the client's import purity."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from broker.oidc import OidcClaims, OidcSettings, PendingSignIn, SignInRefused, claims_from_id_token

ISSUER = "https://login.example.gov.cn"
COMPANY = {"iss": ISSUER, "sub": "p-1", "name": "王建国", "email": "w@example.cn",
           "uscc": "913101053AGYGLUY3E", "company_role": "legal_representative"}


def test_a_company_person_maps_to_company_and_role():
    assert claims_from_id_token(COMPANY) == OidcClaims(
        issuer=ISSUER, subject="p-1", name="王建国", email="w@example.cn",
        uscc="913101053AGYGLUY3E", company_role="legal_representative", district_role=None)


def test_a_district_person_maps_to_a_district_role():
    claims = claims_from_id_token({"iss": ISSUER, "sub": "s-1", "name": "陈静", "district_role": "admin"})
    assert (claims.district_role, claims.uscc, claims.company_role, claims.email) == ("admin", None, None, None)
    assert claims.is_district


def test_a_credit_code_in_lower_case_is_read_in_capitals_and_a_missing_name_falls_back_to_the_subject():
    claims = claims_from_id_token({**COMPANY, "uscc": " 913101053agygluy3e ", "name": ""})
    assert (claims.uscc, claims.name) == ("913101053AGYGLUY3E", "p-1")


@pytest.mark.parametrize("changes, reason", [
    ({"sub": ""}, "no sub"),
    ({"uscc": "913101053AGYGLUY3F"}, "Check character"),
    ({"uscc": "91310105"}, "18 characters"),
    ({"company_role": "owner"}, "Unknown company role"),
    ({"company_role": None}, "no company"),
    ({"uscc": None}, "no company"),
    ({"district_role": "staff"}, "both a company and a district role"),
    ({"uscc": None, "company_role": None}, "no company"),
    ({"uscc": None, "company_role": None, "district_role": "mayor"}, "Unknown district role"),
    ({"name": ["a", "list"]}, "not text"),
])
def test_claims_that_name_no_person_or_no_side_are_refused(changes, reason):
    with pytest.raises(SignInRefused, match=reason):
        claims_from_id_token({**COMPANY, **changes})


def test_a_refused_sign_in_is_a_401_and_a_misconfigured_provider_a_503():
    from broker.oidc import ProviderMisconfigured

    assert SignInRefused("x").status_code == 401
    assert ProviderMisconfigured("x").status_code == 503 and isinstance(ProviderMisconfigured("x"), SignInRefused)


def test_settings_come_from_the_app_config_and_are_absent_until_configured():
    assert OidcSettings.from_config({}) is None
    settings = OidcSettings.from_config({"OIDC_DISCOVERY_URL": f"{ISSUER}/.well-known/openid-configuration",
                                         "OIDC_CLIENT_ID": "broker", "OIDC_CLIENT_SECRET": "s",
                                         "BROKER_ENV": "production"})
    assert settings == OidcSettings(f"{ISSUER}/.well-known/openid-configuration", "broker", "s", production=True)


def test_a_pending_sign_in_survives_the_session_and_a_damaged_one_reads_as_none():
    pending = PendingSignIn("st", "no", "ver", "http://127.0.0.1:5000/oidc/callback")
    assert PendingSignIn.from_dict(json.loads(json.dumps(pending.as_dict()))) == pending
    assert PendingSignIn.from_dict({"state": "st"}) is None
    assert PendingSignIn.from_dict("junk") is None


def test_the_client_imports_without_the_web_stack():
    root = Path(__file__).resolve().parents[2]
    probe = "import json, sys\nimport broker.oidc\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in json.loads(done.stdout.strip().splitlines()[-1])}
    assert [name for name in ("flask", "werkzeug", "sqlalchemy") if name in loaded] == []


def test_the_oidc_settings_are_read_from_broker_variables_and_checked():
    import config

    assert config.load_settings({})["OIDC_DISCOVERY_URL"] is None  # off unless configured
    local = "http://127.0.0.1:8004/.well-known/openid-configuration"
    settings = config.load_settings({"BROKER_OIDC_DISCOVERY_URL": local, "BROKER_OIDC_CLIENT_ID": "broker-console",
                                     "BROKER_OIDC_CLIENT_SECRET": "s"})
    assert OidcSettings.from_config(settings) == OidcSettings(local, "broker-console", "s", production=False)
    with pytest.raises(config.ConfigurationError, match="BROKER_OIDC_CLIENT_ID and BROKER_OIDC_CLIENT_SECRET"):
        config.load_settings({"BROKER_OIDC_DISCOVERY_URL": local})
    with pytest.raises(config.ConfigurationError, match="only to 127.0.0.1 or localhost"):
        config.load_settings({"BROKER_OIDC_DISCOVERY_URL": "http://login.example.gov.cn/.well-known/openid-configuration",
                              "BROKER_OIDC_CLIENT_ID": "c", "BROKER_OIDC_CLIENT_SECRET": "s"})
    production = {"BROKER_ENV": "production", "BROKER_SECRET_KEY": "k",
                  "BROKER_DATABASE_URL": "postgresql+psycopg://db/broker",
                  "BROKER_OIDC_CLIENT_ID": "c", "BROKER_OIDC_CLIENT_SECRET": "s"}
    with pytest.raises(config.ConfigurationError, match="BROKER_OIDC_DISCOVERY_URL must use https in production"):
        config.load_settings({**production, "BROKER_OIDC_DISCOVERY_URL": local})
    secure = "https://login.example.gov.cn/.well-known/openid-configuration"
    assert config.load_settings({**production, "BROKER_OIDC_DISCOVERY_URL": secure})["OIDC_DISCOVERY_URL"] == secure

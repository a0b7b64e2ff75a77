"""The destination check on its own: addresses, spellings, the allow-list and its setting."""

import ipaddress

import pytest

from broker.netguard import DestinationGuard, RefusedDestination, refusal
from config import ConfigurationError, load_settings


def no_dns(host, port):
    raise OSError("no resolver in this test")


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.31.255.255", "192.168.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
     "224.0.0.251", "255.255.255.255", "192.0.2.1", "::1", "::", "fe80::1", "fc00::1", "ff02::1", "fec0::1",
     "::ffff:10.0.0.1", "::ffff:8.8.8.8", "2002:a00:1::", "64:ff9b::7f00:1", "2001:db8::1"],
)
def test_every_non_global_address_is_refused(address):
    assert refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "2606:4700::1111"])
def test_global_unicast_addresses_pass(address):
    assert refusal(ipaddress.ip_address(address)) is None


def test_every_address_of_a_name_is_checked():
    guard = DestinationGuard(resolve=lambda host, port: ["93.184.215.14", "10.0.0.7"])
    with pytest.raises(RefusedDestination, match="10.0.0.7"):
        guard.check("https://hooks.example.com/x")
    assert DestinationGuard(resolve=lambda host, port: ["93.184.215.14"]).check("https://hooks.example.com/x").address == "93.184.215.14"


def test_a_name_that_does_not_resolve_is_refused():
    with pytest.raises(RefusedDestination, match="does not resolve"):
        DestinationGuard(resolve=no_dns).check("https://nowhere.example/")


def test_allow_list_entries_match_the_host_as_written():
    guard = DestinationGuard.parse(["10.20.0.0/16", "Receiver.Internal.", "[::1]"], resolve=lambda h, p: ["10.9.9.9"])
    assert guard.check("http://10.20.3.4:8080/").address == "10.20.3.4"
    assert guard.check("http://[::1]:9/").address == "::1"
    assert guard.check("http://receiver.internal/").address == "10.9.9.9"  # the operator vouched for the name
    with pytest.raises(RefusedDestination):
        guard.check("http://10.21.0.1/")
    with pytest.raises(RefusedDestination):
        guard.check("http://other.internal/")  # resolves to 10.9.9.9 too, but nobody allowed it


def test_the_host_header_keeps_the_name_and_a_non_default_port():
    guard = DestinationGuard(resolve=lambda h, p: ["93.184.215.14"])
    assert guard.check("https://hooks.example.com/x").host_header == "hooks.example.com"
    assert guard.check("http://hooks.example.com:8443/x").host_header == "hooks.example.com:8443"
    assert DestinationGuard().check("http://[2606:4700::1111]:81/").host_header == "[2606:4700::1111]:81"


def test_an_internationalised_name_is_resolved_and_sent_as_its_a_labels():
    asked = []
    guard = DestinationGuard(resolve=lambda host, port: asked.append(host) or ["93.184.215.14"])
    destination = guard.check("https://硅巷.example/hook")
    assert asked == ["xn--wst989c.example"] and destination.host_header == "xn--wst989c.example"


def test_the_allow_list_setting_is_read_and_a_bad_entry_stops_start_up():
    settings = load_settings({"BROKER_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1, receiver.internal ,"})
    assert settings["WEBHOOK_ALLOWED_HOSTS"] == ("127.0.0.1", "receiver.internal")
    assert load_settings({})["WEBHOOK_ALLOWED_HOSTS"] == ()
    with pytest.raises(ConfigurationError, match="BROKER_WEBHOOK_ALLOWED_HOSTS.*2130706433"):
        load_settings({"BROKER_WEBHOOK_ALLOWED_HOSTS": "2130706433"})
    with pytest.raises(ConfigurationError, match="BROKER_WEBHOOK_ALLOWED_HOSTS"):
        load_settings({"BROKER_WEBHOOK_ALLOWED_HOSTS": "http://127.0.0.1/"})

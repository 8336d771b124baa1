"""Settings of a real node: sources, precedence and clear refusals."""

from pathlib import Path

import pytest

from conclave.runtime.config import load_settings
from conclave.runtime.settings import MemberAddress, SettingsError, parse_address

MEMBERS = "1=127.0.0.1:7101,127.0.0.1:7001;2=127.0.0.1:7102,127.0.0.1:7002"


def test_no_configuration_is_a_one_node_cluster_in_a_local_folder() -> None:
    settings = load_settings({})
    assert settings.node_id == 1
    assert settings.data_dir == Path("conclave-data")
    assert settings.members == (MemberAddress.parse("1=127.0.0.1:7101,127.0.0.1:7001"),)
    assert settings.api_listen_address == ("127.0.0.1", 7001)


def test_flags_override_environment_which_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text(
        'node_id = 2\ncluster_id = "from-file"\ntick_interval_ms = 30\n'
        'members = ["1=127.0.0.1:7101,127.0.0.1:7001", "2=127.0.0.1:7102,127.0.0.1:7002"]\n'
    )
    environ = {"CONCLAVE_CLUSTER_ID": "from-env", "CONCLAVE_TICK_INTERVAL_MS": "40"}
    settings = load_settings({"tick_interval_ms": 25}, config_file=config, environ=environ)
    assert settings.node_id == 2
    assert settings.cluster_id == "from-env"
    assert settings.tick_interval_ms == 25
    assert [m.id for m in settings.members] == [1, 2]


def test_members_from_the_environment_are_separated_by_semicolons() -> None:
    settings = load_settings({"node_id": 2}, environ={"CONCLAVE_MEMBERS": MEMBERS})
    assert settings.own.api_address == "127.0.0.1:7002"


def test_every_problem_is_reported_at_once_naming_its_source(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('node_idd = 1\ntick_interval_ms = "fast"\n')
    with pytest.raises(SettingsError) as raised:
        load_settings({"members": ["x"]}, config_file=config, environ={"CONCLAVE_JOIN": "maybe"})
    text = str(raised.value)
    for fragment in ("unknown setting 'node_idd'", "tick_interval_ms", "join", "members"):
        assert fragment in text


def test_semantic_problems_are_listed_together() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"node_id": 5, "tick_interval_ms": 0}, environ={"CONCLAVE_MEMBERS": MEMBERS})
    text = str(raised.value)
    assert "node 5 is not among the members" in text
    assert "tick interval" in text


def test_tls_needs_all_three_files() -> None:
    with pytest.raises(SettingsError, match="missing: tls_ca, tls_key"):
        load_settings({"tls_cert": Path("node.pem")})


def test_an_unreadable_or_invalid_toml_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings({}, config_file=tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("node_id = = 1")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings({}, config_file=broken)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:7001", ("127.0.0.1", 7001)), ("[::1]:80", ("::1", 80)), ("host:1", ("host", 1))],
)
def test_addresses_parse(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["nowhere", ":7001", "h:0", "h:65536", "h:x", "h:-1"])
def test_bad_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="address"):
        parse_address(text)


def test_variables_of_the_client_commands_do_not_stop_a_node_from_starting() -> None:
    environ = {"CONCLAVE_ENDPOINTS": "127.0.0.1:7001", "CONCLAVE_TOKEN": "secret-token"}
    assert load_settings({}, environ=environ).node_id == 1
    with pytest.raises(SettingsError, match="unknown setting 'tick_interval'"):
        load_settings({}, environ={"CONCLAVE_TICK_INTERVAL": "20"})  # a typo is still refused

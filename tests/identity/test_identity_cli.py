"""The identity commands end to end through ``sluis.cli.main``, on real files."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connector.app import create_app
from connector.config import ConfigError, load_config
from connector.identity import (
    DidResolver,
    KeyPair,
    TrustedAuthority,
    did_document,
    did_web_for,
    make_agreement_bundle,
    public_key_to_multibase,
    sign_agreement,
    verify_credential,
)
from sluis.cli import main
from sluis.servers import free_port, serve_in_thread
from tests.identity.conftest import DidHost

AUTHORITY_DID = "did:web:127.0.0.1%3A9000"
PROVIDER_DID = "did:web:127.0.0.1%3A9191"
CONSUMER_DID = "did:web:127.0.0.1%3A9292"


@pytest.fixture
def authority_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    directory = tmp_path / "authority"
    assert main(["authority", "init", "--id", AUTHORITY_DID, "--dir", str(directory)]) == 0
    capsys.readouterr()
    return directory


def test_authority_init_writes_a_private_key_and_its_public_description(
    authority_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stat.S_IMODE((authority_dir / "authority-key.pem").stat().st_mode) == 0o600
    described = json.loads((authority_dir / "authority.json").read_text())
    assert described["did"] == AUTHORITY_DID
    document = json.loads((authority_dir / "did.json").read_text())
    assert document["verificationMethod"][0]["publicKeyMultibase"] == described["public_key_multibase"]
    assert main(["authority", "init", "--id", AUTHORITY_DID, "--dir", str(authority_dir)]) == 2
    assert "refusing to replace a key" in capsys.readouterr().err


def test_participant_init_writes_a_working_config_with_a_membership_credential(
    tmp_path: Path, authority_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    participant = tmp_path / "hospital"
    code = main(
        [
            "participant",
            "init",
            "--id",
            PROVIDER_DID,
            "--dir",
            str(participant),
            "--authority-dir",
            str(authority_dir),
        ]
    )
    assert code == 0, capsys.readouterr().err
    printed = json.loads(capsys.readouterr().out)
    config = load_config(printed["config"])
    assert config.participant_id == PROVIDER_DID
    assert (config.server.host, config.server.port) == ("127.0.0.1", 9191)
    assert config.server.public_url == "http://127.0.0.1:9191"
    assert config.storage.url == f"sqlite:///{participant.resolve()}/connector.db"
    assert config.dataplane.data_root.is_dir()
    assert len(config.management.token) >= 40
    assert stat.S_IMODE(config.participant.key_file.stat().st_mode) == 0o600
    authority = json.loads((authority_dir / "authority.json").read_text())
    assert config.trusted_authority == TrustedAuthority(authority["did"], authority["public_key_multibase"])
    (membership,) = config.load_credentials()
    assert membership["credentialSubject"]["id"] == PROVIDER_DID
    verify_credential(membership, config.trusted_authority, datetime.now(UTC))
    # A second init in the same place must not overwrite the participant's key.
    assert (
        main(
            [
                "participant",
                "init",
                "--id",
                PROVIDER_DID,
                "--dir",
                str(participant),
                "--authority-dir",
                str(authority_dir),
            ]
        )
        == 2
    )


def test_participant_init_can_pin_an_authority_by_did_and_key(tmp_path: Path) -> None:
    key = KeyPair.generate()
    code = main(
        [
            "participant",
            "init",
            "--id",
            CONSUMER_DID,
            "--dir",
            str(tmp_path / "ai"),
            "--authority-did",
            AUTHORITY_DID,
            "--authority-key-multibase",
            key.public_multibase,
        ]
    )
    assert code == 0
    config = load_config(tmp_path / "ai" / "connector.toml")
    assert config.authority.public_key_multibase == key.public_multibase
    assert config.participant.credentials == ()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            [
                "--id",
                "https://example.org",
                "--authority-did",
                AUTHORITY_DID,
                "--authority-key-multibase",
                "z6Mk",
            ],
            "--id",
        ),
        (["--id", PROVIDER_DID], "trusted authority is required"),
        (
            ["--id", PROVIDER_DID, "--authority-did", AUTHORITY_DID, "--authority-key-multibase", "zBAD"],
            "--authority-key-multibase",
        ),
        (
            [
                "--id",
                "did:web:example.org:users:alice",
                "--authority-did",
                AUTHORITY_DID,
                "--authority-key-multibase",
                "z6Mk",
            ],
            "has no path",
        ),
    ],
)
def test_participant_init_explains_bad_input_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    target = tmp_path / "p"
    assert main(["participant", "init", "--dir", str(target), *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not target.exists()


def test_the_authority_issues_a_data_permit(
    tmp_path: Path, authority_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "permit.json"
    code = main(
        [
            "authority",
            "issue",
            "--authority-dir",
            str(authority_dir),
            "--subject",
            CONSUMER_DID,
            "--type",
            "EHDSDataPermit",
            "--claim",
            "permitId=NL-2026-7",
            "--claim",
            "purposes=scientific-research",
            "--claim",
            "purposes=ai-training",
            "--claim",
            "datasets=urn:uuid:1",
            "--claim",
            "healthDataAccessBody=did:web:hdab.example.nl",
            "--valid-days",
            "30",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    permit = json.loads(out.read_text())
    subject = permit["credentialSubject"]
    assert subject["purposes"] == [
        "https://w3id.org/sluis/purpose/scientific-research",
        "https://w3id.org/sluis/purpose/ai-training",
    ]
    authority = json.loads((authority_dir / "authority.json").read_text())
    trusted = TrustedAuthority(authority["did"], authority["public_key_multibase"])
    assert verify_credential(permit, trusted, datetime.now(UTC))["id"] == permit["id"]


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        (["permitId=P"], "needs the claim(s)"),
        (["colour=blue"], "has no such claim"),
        (["permitId"], "expected key=value"),
        (["permitId=a", "permitId=b"], "given twice"),
    ],
)
def test_the_authority_refuses_malformed_claims(
    tmp_path: Path, authority_dir: Path, capsys: pytest.CaptureFixture[str], claims: list[str], message: str
) -> None:
    arguments = [
        "authority",
        "issue",
        "--authority-dir",
        str(authority_dir),
        "--subject",
        CONSUMER_DID,
        "--type",
        "EHDSDataPermit",
        "--out",
        str(tmp_path / "p.json"),
    ]
    for claim in claims:
        arguments += ["--claim", claim]
    assert main(arguments) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def _bundle_file(tmp_path: Path) -> Path:
    provider, consumer = KeyPair.generate(), KeyPair.generate()
    agreement = {
        "@id": "urn:uuid:agreement-1",
        "@type": "Agreement",
        "target": "urn:uuid:dataset-1",
        "assigner": PROVIDER_DID,
        "assignee": CONSUMER_DID,
        "timestamp": "2026-06-01T12:00:00Z",
        "permission": [{"action": "use"}],
    }
    signed = sign_agreement(agreement, provider, f"{PROVIDER_DID}#key-1")
    signed = sign_agreement(signed, consumer, f"{CONSUMER_DID}#key-1")
    bundle = make_agreement_bundle(
        signed, [did_document(PROVIDER_DID, provider), did_document(CONSUMER_DID, consumer)]
    )
    path = tmp_path / "agreement.json"
    path.write_text(json.dumps(bundle, indent=2))
    return path


def test_agreement_verify_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _bundle_file(tmp_path)
    assert main(["agreement", "verify", str(path)]) == 0
    assert capsys.readouterr().out.startswith(
        "valid: agreement urn:uuid:agreement-1 is signed by the provider"
    )

    bundle = json.loads(path.read_text())
    bundle["agreement"]["permission"][0]["action"] = "distribute"
    path.write_text(json.dumps(bundle))
    assert main(["agreement", "verify", str(path)]) == 1
    assert "bad_signature" in capsys.readouterr().out

    assert main(["agreement", "verify", "--json", str(path)]) == 1
    assert json.loads(capsys.readouterr().out)["valid"] is False

    path.write_text("{not json")
    assert main(["agreement", "verify", str(path)]) == 2
    assert "not JSON" in capsys.readouterr().err
    assert main(["agreement", "verify", str(tmp_path / "absent.json")]) == 2


def _signed_agreement(provider_did: str, provider: KeyPair, consumer_did: str, consumer: KeyPair) -> dict:
    agreement = {
        "@id": "urn:uuid:agreement-2",
        "@type": "Agreement",
        "target": "urn:uuid:dataset-2",
        "assigner": provider_did,
        "assignee": consumer_did,
        "timestamp": "2026-06-01T12:00:00Z",
        "permission": [{"action": "use"}],
    }
    signed = sign_agreement(agreement, provider, f"{provider_did}#key-1")
    return sign_agreement(signed, consumer, f"{consumer_did}#key-1")


def test_a_signed_agreement_is_bundled_from_did_document_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    provider, consumer = KeyPair.generate(), KeyPair.generate()
    (tmp_path / "agreement.json").write_text(
        json.dumps(_signed_agreement(PROVIDER_DID, provider, CONSUMER_DID, consumer))
    )
    (tmp_path / "p.json").write_text(json.dumps(did_document(PROVIDER_DID, provider)))
    (tmp_path / "c.json").write_text(json.dumps(did_document(CONSUMER_DID, consumer)))
    out = tmp_path / "bundle.json"
    base = ["agreement", "bundle", str(tmp_path / "agreement.json"), "--out", str(out)]
    assert main([*base, "--did-document", str(tmp_path / "p.json")]) == 2
    assert "no DID document for did:web:127.0.0.1%3A9292" in capsys.readouterr().err
    assert (
        main([*base, "--did-document", str(tmp_path / "p.json"), "--did-document", str(tmp_path / "c.json")])
        == 0
    )
    assert main(["agreement", "verify", str(out)]) == 0


def test_a_signed_agreement_is_bundled_with_did_documents_resolved_over_http(
    tmp_path: Path, did_host: DidHost
) -> None:
    provider, consumer = KeyPair.generate(), KeyPair.generate()
    provider_did = did_host.publish("bundle-provider", provider)
    consumer_did = did_host.publish("bundle-consumer", consumer)
    (tmp_path / "agreement.json").write_text(
        json.dumps(_signed_agreement(provider_did, provider, consumer_did, consumer))
    )
    out = tmp_path / "bundle.json"
    assert (
        main(["agreement", "bundle", str(tmp_path / "agreement.json"), "--resolve", "--out", str(out)]) == 0
    )
    bundle = json.loads(out.read_text())
    assert [document["id"] for document in bundle["didDocuments"]] == [provider_did, consumer_did]
    assert main(["agreement", "verify", str(out)]) == 0
    # A key rotated after signing does not change the captured evidence.
    did_host.publish("bundle-provider", KeyPair.generate())
    assert main(["agreement", "verify", str(out)]) == 0


def test_participant_init_output_runs_a_connector_that_serves_its_did(
    tmp_path: Path, authority_dir: Path
) -> None:
    port = free_port()
    did = did_web_for("127.0.0.1", port)
    assert (
        main(
            [
                "participant",
                "init",
                "--id",
                did,
                "--dir",
                str(tmp_path / "p"),
                "--authority-dir",
                str(authority_dir),
            ]
        )
        == 0
    )
    config = load_config(tmp_path / "p" / "connector.toml")
    with serve_in_thread(create_app(config), port=port), DidResolver() as resolver:
        published = resolver.public_key(f"{did}#key-1", "assertionMethod")
    assert public_key_to_multibase(published) == config.load_key().public_multibase


def test_a_permit_is_added_to_the_participant_after_it_is_checked(
    tmp_path: Path, authority_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    participant = tmp_path / "ai"
    init = ["participant", "init", "--id", CONSUMER_DID, "--dir", str(participant)]
    assert main([*init, "--authority-dir", str(authority_dir)]) == 0
    permit = tmp_path / "permit.json"
    issue = [
        "authority",
        "issue",
        "--authority-dir",
        str(authority_dir),
        "--type",
        "EHDSDataPermit",
        "--claim",
        "permitId=P-9",
        "--claim",
        "purposes=ai-training",
        "--claim",
        "datasets=urn:uuid:9",
        "--claim",
        "healthDataAccessBody=did:web:hdab.example.nl",
        "--out",
        str(permit),
    ]
    assert main([*issue, "--subject", CONSUMER_DID]) == 0
    config_file = participant / "connector.toml"
    assert (
        main(["participant", "add-credential", "--config", str(config_file), "--credential", str(permit)])
        == 0
    )
    config = load_config(config_file)
    assert sorted(c["type"][1] for c in config.load_credentials()) == [
        "EHDSDataPermit",
        "MembershipCredential",
    ]

    # Someone else's permit, and a permit from a rogue authority, are refused and not listed.
    other = tmp_path / "other.json"
    assert main([*issue[:-1], str(other), "--subject", PROVIDER_DID]) == 0
    capsys.readouterr()
    assert (
        main(["participant", "add-credential", "--config", str(config_file), "--credential", str(other)]) == 2
    )
    assert "not did:web:127.0.0.1%3A9292" in capsys.readouterr().err
    rogue_dir = tmp_path / "rogue"
    assert main(["authority", "init", "--id", "did:web:rogue.example", "--dir", str(rogue_dir)]) == 0
    rogue_permit = tmp_path / "rogue.json"
    rogue_issue = [*issue[:3], str(rogue_dir), *issue[4:-1], str(rogue_permit), "--subject", CONSUMER_DID]
    assert main(rogue_issue) == 0
    capsys.readouterr()
    assert (
        main(
            ["participant", "add-credential", "--config", str(config_file), "--credential", str(rogue_permit)]
        )
        == 2
    )
    assert "not trusted" in capsys.readouterr().err
    assert len(load_config(config_file).participant.credentials) == 2


def test_a_public_participant_gets_an_https_address_and_listens_locally(tmp_path: Path) -> None:
    key = KeyPair.generate()
    arguments = [
        "participant",
        "init",
        "--id",
        "did:web:connector.hospital.example.nl",
        "--dir",
        str(tmp_path / "h"),
        "--authority-did",
        AUTHORITY_DID,
        "--authority-key-multibase",
        key.public_multibase,
    ]
    assert main(arguments) == 0
    config = load_config(tmp_path / "h" / "connector.toml")
    assert config.server.public_url == "https://connector.hospital.example.nl"
    assert config.dsp_base_url == "https://connector.hospital.example.nl/dsp"
    assert (config.server.host, config.server.port) == ("127.0.0.1", 9191)


def test_a_connector_configured_with_a_flight_port_serves_arrow_flight_reads(
    tmp_path: Path, authority_dir: Path
) -> None:
    import pyarrow.flight as flight

    port, flight_port = free_port(), free_port()
    did = did_web_for("127.0.0.1", port)
    init = ["participant", "init", "--id", did, "--dir", str(tmp_path / "p")]
    assert main([*init, "--authority-dir", str(authority_dir)]) == 0
    config_file = tmp_path / "p" / "connector.toml"
    config_file.write_text(
        config_file.read_text().replace("[dataplane]\n", f"[dataplane]\nflight_port = {flight_port}\n")
    )
    config = load_config(config_file)
    assert config.dataplane.flight_port == flight_port
    with serve_in_thread(create_app(config), port=port):
        client = flight.FlightClient(f"grpc://127.0.0.1:{flight_port}")
        try:
            with pytest.raises(flight.FlightUnauthenticatedError):
                client.do_get(flight.Ticket(b'{"transfer": "unknown"}')).read_all()
        finally:
            client.close()


@pytest.mark.parametrize("value", ["0", "70000", '"8815"', "true"])
def test_a_flight_port_out_of_range_is_refused_naming_the_key(
    tmp_path: Path, authority_dir: Path, value: str
) -> None:
    did = did_web_for("127.0.0.1", 9595)
    init = ["participant", "init", "--id", did, "--dir", str(tmp_path / "p")]
    assert main([*init, "--authority-dir", str(authority_dir)]) == 0
    config_file = tmp_path / "p" / "connector.toml"
    config_file.write_text(
        config_file.read_text().replace("[dataplane]\n", f"[dataplane]\nflight_port = {value}\n")
    )
    with pytest.raises(ConfigError) as refused:
        load_config(config_file)
    assert "dataplane.flight_port" in str(refused.value)

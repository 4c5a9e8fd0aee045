"""``carnet sign`` and ``carnet verify`` on files, and a request sealed by the CLI accepted by the server."""

from __future__ import annotations

from pathlib import Path

import pytest

from carnet.cli import main
from carnet.signature.service import SignaturePolicy, Signatures
from tests.builders import Doc, new_oid, patient, provide_and_register
from tests.signing import PKI, build_pki
from tests.test_repository import known, post_iti41


@pytest.fixture(scope="module")
def pki() -> PKI:
    return build_pki()


@pytest.fixture
def files(tmp_path: Path, pki: PKI, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.delenv("CARNET_TRUST_STORE", raising=False)
    cert, key = pki.files(pki.doctor, "cli-doctor")
    out = {
        "cert": cert,
        "key": key,
        "a": tmp_path / "a.xml",
        "b": tmp_path / "b.pdf",
        "sig": tmp_path / "sig.xml",
    }
    out["a"].write_bytes(b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>")
    out["b"].write_bytes(b"%PDF-1.4 " + bytes(range(256)))
    return out


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_sign_and_verify_documents(
    files: dict[str, Path], pki: PKI, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = ["--document", f"1.2.3.1={files['a']}", "--document", f"1.2.3.2={files['b']}"]
    code, out, _ = run(
        capsys, "sign", "--cert", files["cert"], "--key", files["key"], *docs, "-o", files["sig"]
    )
    assert code == 0 and "signed 2 document(s) as certificate 'CN=Dr Alice MEDECIN" in out
    code, out, err = run(capsys, "verify", "--trust-store", pki.trust_file, files["sig"], *docs)
    assert code == 0, err
    assert (
        out.startswith("valid: detached signature by certificate 'CN=Dr Alice MEDECIN")
        and "1.2.3.1, 1.2.3.2" in out
    )

    files["b"].write_bytes(files["b"].read_bytes() + b"!")
    code, _, err = run(capsys, "verify", "--trust-store", pki.trust_file, files["sig"], *docs)
    assert code == 1 and "invalid: reference 'urn:oid:1.2.3.2': the digest does not match" in err

    code, _, err = run(capsys, "verify", files["sig"], *docs)
    assert code == 2 and "there is no default trust store" in err


def test_legacy_submission_set_signature(
    files: dict[str, Path], pki: PKI, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = ["--document", f"1.2.3.1={files['a']}"]
    ss = ["--submission-set", "1.2.3.99"]
    code, _, err = run(
        capsys,
        "sign",
        "--cert",
        files["cert"],
        "--key",
        files["key"],
        *docs,
        *ss,
        "--legacy",
        "-o",
        files["sig"],
    )
    assert code == 0, err
    code, out, err = run(capsys, "verify", "--trust-store", pki.trust_file, files["sig"], *docs, *ss)
    assert code == 0 and out.startswith("valid: submission-set signature"), err
    code, _, err = run(capsys, "verify", "--trust-store", pki.trust_file, files["sig"], *docs)
    assert code == 1 and "names no document of this submission" in err


def test_usage_errors(files: dict[str, Path], pki: PKI, capsys: pytest.CaptureFixture[str]) -> None:
    _, other_key = pki.files(pki.seal, "cli-seal")
    code, _, err = run(
        capsys,
        "sign",
        "--cert",
        files["cert"],
        "--key",
        other_key,
        "--document",
        f"1.2.3.1={files['a']}",
        "-o",
        files["sig"],
    )
    assert code == 2 and "does not belong to the first certificate" in err and not files["sig"].exists()
    code, _, err = run(
        capsys,
        "sign",
        "--cert",
        files["cert"],
        "--key",
        files["key"],
        "--document",
        "no-equals",
        "-o",
        files["sig"],
    )
    assert code == 2 and "expected UNIQUE_ID=FILE" in err
    ec_cert, ec_key = pki.files(pki.doctor_ec, "cli-ec")
    code, _, err = run(
        capsys,
        "sign",
        "--cert",
        ec_cert,
        "--key",
        ec_key,
        "--document",
        f"1.2.3.1={files['a']}",
        "--submission-set",
        "1.2.3.99",
        "--legacy",
        "-o",
        files["sig"],
    )
    assert code == 2 and "no ecdsa signature method uses digest" in err


def test_seal_a_request_file_then_submit_it_under_require(
    files: dict[str, Path], pki: PKI, capsys: pytest.CaptureFixture[str], client, carnet, engine
) -> None:  # type: ignore[no-untyped-def]
    pid = patient(301)
    request = files["a"].parent / "request.xml"
    request.write_text(
        provide_and_register(pid, [Doc("Doc1", b"one"), Doc("Doc2", b"two")], ss_unique_id=new_oid())
    )
    code, _, err = run(capsys, "verify", "--trust-store", pki.trust_file, "--submission", request)
    assert code == 1 and "no signature document" in err

    sealed = files["a"].parent / "sealed.xml"
    code, out, err = run(
        capsys, "sign", "--cert", files["cert"], "--key", files["key"], "--submission", request, "-o", sealed
    )
    assert code == 0 and out.startswith("sealed: signature DocumentEntry urn:uuid:"), err
    code, out, err = run(capsys, "verify", "--trust-store", pki.trust_file, "--submission", sealed)
    assert code == 0 and out.startswith("valid: submission-set signature"), err

    carnet.signatures = Signatures(SignaturePolicy.REQUIRE, pki.trust(), None)
    known(engine, pid)
    body = sealed.read_bytes().split(b"?>", 1)[1].decode()
    assert post_iti41(client, body) == ("Success", [])

"""The committed generated protobuf code matches protocol/*.proto."""

from jgsl.wire import codegen


def test_generated_code_is_current():
    assert codegen.stale_files() == [], "run: python -m jgsl.wire.codegen"


def test_check_detects_stale_code(tmp_path, monkeypatch):
    """--check fails when the committed file differs from what protoc makes."""
    for name in codegen.generated_names():
        (tmp_path / name).write_bytes((codegen.OUT_DIR / name).read_bytes() + b"\n# edited\n")
    monkeypatch.setattr(codegen, "OUT_DIR", tmp_path)
    assert codegen.main(["--check"]) == 1

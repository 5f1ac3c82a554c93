"""The committed Jaeger UI (third_party/jaeger-ui) is the one lorag_local checks and unpacks."""

from __future__ import annotations

import hashlib
import tarfile

from lorag_local import jaeger


def test_the_committed_tarball_matches_the_pinned_hash_and_its_readme():
    tarball = jaeger.ui_tarball()
    assert hashlib.sha256(tarball.read_bytes()).hexdigest() == jaeger.UI_SHA256
    readme = (tarball.parent / "README.md").read_text()
    assert jaeger.UI_SHA256 in readme and jaeger.JAEGER_VERSION in readme
    assert "Apache License" in (tarball.parent / "LICENSE").read_text()


def test_the_tarball_holds_the_ui_and_no_source_maps():
    with tarfile.open(jaeger.ui_tarball(), "r:xz") as archive:
        names = archive.getnames()
    assert "./index.html" in names
    assert any(n.startswith("./static/index-") and n.endswith(".js") for n in names)
    assert not [n for n in names if n.endswith(".map")]

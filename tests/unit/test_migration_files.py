import pytest

from lorag_core.db.migrations import MigrationError, discover, load_folder


def test_core_migrations_are_ordered_without_gaps():
    core = discover()["core"]
    assert [m.version for m in core] == list(range(1, len(core) + 1))


def test_a_gap_is_refused(tmp_path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0003_c.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="without gaps"):
        load_folder("x", tmp_path)

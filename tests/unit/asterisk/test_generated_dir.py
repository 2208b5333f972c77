"""The generated-config folder is checked at start: absolute (prod), present, writable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ccbridge.asterisk.config.generated_dir import GeneratedDirError, check_generated_dir


def test_prod_refuses_a_relative_path_naming_the_setting() -> None:
    wanted = "CCBRIDGE_ASTERISK_GENERATED_DIR must be an absolute path"
    with pytest.raises(GeneratedDirError, match=wanted):
        check_generated_dir(Path("asterisk/generated"), require_absolute=True, create=False)


def test_a_missing_folder_is_refused_unless_created(tmp_path: Path) -> None:
    missing = tmp_path / "gen"
    with pytest.raises(GeneratedDirError, match="does not exist"):
        check_generated_dir(missing, require_absolute=True, create=False)
    assert check_generated_dir(missing, require_absolute=True, create=True) == missing
    assert missing.is_dir()


def test_dev_makes_a_relative_path_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    got = check_generated_dir(Path("asterisk/generated"), require_absolute=False, create=True)
    assert got == tmp_path / "asterisk" / "generated"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(GeneratedDirError, match="not writable"):
            check_generated_dir(tmp_path, require_absolute=True, create=False)
    finally:
        tmp_path.chmod(0o755)

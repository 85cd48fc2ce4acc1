from pathlib import Path

import pytest

from app.lib.settings import ConfigurationError, load_settings


def test_defaults_give_the_embedded_sqlite_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("DOCEXTRACT_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.is_sqlite
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/docextract.db"
    assert not settings.auth.disabled
    assert settings.registry.max_bytes == 256 * 1024


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/dx", "postgresql+asyncpg://u:p@db:5432/dx"),
        ("postgres://u@db/dx", "postgresql+asyncpg://u@db/dx"),
        ("postgresql+asyncpg://u@db/dx", "postgresql+asyncpg://u@db/dx"),
        ("sqlite:////var/lib/dx.db", "sqlite+aiosqlite:////var/lib/dx.db"),
    ],
)
def test_database_urls_get_async_drivers(clean_env: pytest.MonkeyPatch, given: str, expected: str) -> None:
    clean_env.setenv("DOCEXTRACT_DATABASE_URL", given)
    settings = load_settings()
    assert settings.database_url == expected
    assert settings.is_sqlite == expected.startswith("sqlite")


def test_errors_name_every_variable_to_fix(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DOCEXTRACT_DATABASE_URL", "mysql://root@db/dx")
    clean_env.setenv("DOCEXTRACT_SERVER_PORT", "99999")
    clean_env.setenv("DOCEXTRACT_LOG_LEVEL", "chatty")
    clean_env.setenv("DOCEXTRACT_AUTH_DISABLED", "perhaps")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    for variable in [
        "DOCEXTRACT_DATABASE_URL",
        "DOCEXTRACT_SERVER_PORT",
        "DOCEXTRACT_LOG_LEVEL",
        "DOCEXTRACT_AUTH_DISABLED",
    ]:
        assert variable in message
    assert "postgresql://" in message  # says what to set instead
    assert "'mysql://root@db/dx'" in message


def test_log_level_is_case_insensitive(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DOCEXTRACT_LOG_LEVEL", "debug")
    assert load_settings().app.log_level == "DEBUG"

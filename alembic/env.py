"""Alembic environment: the URL comes from the caller (core.db.migrate) or from Postdesk's settings."""
from alembic import context

from core.db import make_engine, migration_includes
from core.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url:
    from core.config import load_settings

    url = load_settings().database.url


def run_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True,
                      include_object=migration_includes)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                          include_object=migration_includes)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()

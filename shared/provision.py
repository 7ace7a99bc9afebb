"""`jalytics-provision`: apply the migrations and create the topics, then exit.

Workers do both at start-up too; running it first means no worker races another.
"""

import asyncio

from shared.kafka import ensure_topics, project_topics
from shared.migrations import apply_migrations
from shared.settings import CommonSettings, load_settings


def main() -> None:
    settings = load_settings(CommonSettings)
    applied = apply_migrations(settings.database_url, settings.database_schema)
    print(f"migrations applied to schema {settings.database_schema}: {applied or 'none new'}")
    topics = project_topics(settings)
    asyncio.run(ensure_topics(settings.kafka_bootstrap_servers, topics))
    print(f"topics ready: {', '.join(t.name for t in topics)}")


if __name__ == "__main__":
    main()

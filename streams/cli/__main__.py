"""``python -m streams.cli`` runs the ``twin`` console script."""

from __future__ import annotations

from streams.cli.main import main

raise SystemExit(main())

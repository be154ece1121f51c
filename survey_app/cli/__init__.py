"""`flask --app survey_app ...` commands, one module per group, each calling
`survey_app.services`.

Every command has `--help`; errors print a clear message and exit non-zero
(1 = refused input or state, 2 = usage error) without a traceback.
"""
from __future__ import annotations


def register_cli(app) -> None:
    from .api import api_cli
    from .backup import backup_command, restore_command
    from .counters import counters_cli
    from .data import bieu06_cli, responses_cli, units_cli, volumes_cli
    from .demo import demo_cli
    from .exclusions import exclusions_cli
    from .index import index_cli
    from .instruments import instruments_cli
    from .jobs import jobs_cli
    from .periods import periods_cli
    from .qr import qr_cli
    from .units import merge_command  # noqa: F401  (`flask units merge`, added to units_cli)
    from .users import users_cli

    for group in (demo_cli, users_cli, units_cli, volumes_cli, bieu06_cli, responses_cli, counters_cli,
                  instruments_cli, index_cli, qr_cli, api_cli, exclusions_cli, backup_command, restore_command,
                  periods_cli, jobs_cli):
        app.cli.add_command(group)

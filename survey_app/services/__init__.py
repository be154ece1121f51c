"""Plain functions shared by the staff pages, the citizen pages, the CLI and
(next) the API: a database session in (Flask-SQLAlchemy's `db.session`), no
request objects.

units (tree, scope) · periods (the reporting calendar) · instruments
(questionnaires) · submissions (a posted form checked) · responses (the one
writer of responses and answers) · quality (flag rules) · csv_import /
csv_export · reports (XLSX/CSV report files) · stats (THE bridge to
`analysis`) · accounts (passwords, permissions) · audit · tokens · privacy ·
backup · posters · demo.

Importing this package imports none of them: the citizen path must not load
the statistics stack (pandas, numpy, ...), which only `stats`, `reports`,
`demo` and `posters` need.
"""

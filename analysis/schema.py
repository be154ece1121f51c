"""THE domain constants and file schemas (METHODOLOGY §1, §5b).

Everything that names an element, an item key, a CSV column, a channel, an
age group or a shared numeric threshold is defined here once; `analysis`,
`survey_app`, the migrations' data steps, the benchmarks and the test
factories import it.  Adding an element means editing this file (plus the
questionnaire data in `survey_app/questionnaires/`).

Pure Python: no pandas, numpy or Flask, so the citizen path can import it.
"""
from __future__ import annotations

# --- the SIPAS model (METHODOLOGY §1) -------------------------------------
#: The five SIPAS elements, in report order.
ELEMENTS: tuple[str, ...] = ("access", "procedure", "staff", "result", "feedback")
#: The overall question.
OVERALL = "overall"
#: The six 1-5 items every questionnaire shares (overall first).  The packed
#: answer pattern (`Response.pattern`) packs exactly these, in this order.
ITEM_KEYS: tuple[str, ...] = (OVERALL,) + ELEMENTS
#: The Likert scale.
LIKERT_VALUES: tuple[int, ...] = (1, 2, 3, 4, 5)
#: A rating of 4 or 5 counts as satisfied.
SATISFIED_MIN = 4

# --- respondent information -------------------------------------------------
AGE_GROUPS: tuple[str, ...] = ("under_18", "18_29", "30_44", "45_59", "60_plus")
#: The age group whose responses the index leaves out (METHODOLOGY §2).
UNDER_18 = "under_18"
GENDERS: tuple[str, ...] = ("female", "male", "other")
#: Longest comment accepted (characters, after masking).
MAX_COMMENT = 1000

# --- collection -------------------------------------------------------------
CHANNELS: tuple[str, ...] = ("qr", "kiosk", "paper", "online", "phone", "import")
#: Channels typed in by staff (paper questionnaires, phone interviews).
TYPED_CHANNELS: tuple[str, ...] = ("paper", "phone")

# --- units ------------------------------------------------------------------
UNIT_KINDS: tuple[str, ...] = ("province", "service_center", "department", "district", "commune", "ward", "other")
#: A counter row in a unit file: a service point, not a node of the analysis tree.
COUNTER_KIND = "counter"

# --- strata -----------------------------------------------------------------
#: The stratum of a response or volume row without a procedure field.
ALL_STRATUM = "_all"

# --- the index table ----------------------------------------------------------
#: ``unit_code`` of the root row of an index table (all units together).
ROOT_CODE = "_root"
#: Values of the ``level`` column that are not a unit kind: a unit's own
#: responses, and the root.  Parent rows carry the unit's kind.
UNIT_LEVEL = "unit"
ROOT_LEVEL = "root"
#: Roll-up rules (METHODOLOGY §6).
ROLLUPS: tuple[str, ...] = ("pooled", "mean_of_units")
#: Interval methods for rates (METHODOLOGY §4).
CI_METHODS: tuple[str, ...] = ("wilson", "beta", "logit")
#: Version of the published method; bump on any change that can move a figure.
#: 2.0: the n_eff cap is the default for wilson and beta (METHODOLOGY §4),
#: successor mapping changes the domains only (§6), counter rows are ignored,
#: ``mean_of_units`` sums the children's working variances.
METHOD_VERSION = "sipas-index/2.0"
#: The label of the same method run with ``cap_n_eff=False`` (R-exact intervals).
METHOD_VERSION_UNCAPPED = METHOD_VERSION + "-uncapped"
#: Sample-adequacy rules (METHODOLOGY §5).
ADEQUACY_RULES: tuple[str, ...] = ("yamane", "cochran", "quota")
#: Where the weights come from (METHODOLOGY §3).
WEIGHT_SOURCES: tuple[str, ...] = ("auto", "volumes", "none", "column")

# --- reporting calendar (METHODOLOGY §6) -------------------------------------
#: Local time zone of the reporting periods.
DEFAULT_TZ = "Asia/Ho_Chi_Minh"
#: (month, day) on which the report year starts (15/12 of the year before).
REPORT_CUTOFF: tuple[int, int] = (12, 15)

# --- CSV file schemas (METHODOLOGY §5b) ------------------------------------
RESPONSE_COLUMNS: tuple[str, ...] = ("response_id", "unit_code", "submitted_at", "channel", "instrument",
                                     "stratum", "excluded")
RESPONSE_OPTIONAL: tuple[str, ...] = ("weight", "age_group", "gender", "comment", "counter_code")
VOLUME_COLUMNS: tuple[str, ...] = ("unit_code", "period_start", "period_end", "stratum", "transactions")
UNIT_COLUMNS: tuple[str, ...] = ("code", "name_vi", "name_en", "kind", "parent_code", "valid_from", "valid_to",
                                 "successor_code")
#: Response times outside [TIMESTAMP_MIN, TIMESTAMP_MAX) (UTC years) are input errors, not dates to store.
TIMESTAMP_MIN_YEAR, TIMESTAMP_MAX_YEAR = 2000, 2100

# --- numerics ---------------------------------------------------------------
#: A standard error at or below this is "reported 0" (METHODOLOGY §4).
SE_ZERO = 1e-9
#: Default confidence level of every interval.
DEFAULT_LEVEL = 0.95

# --- ranking (METHODOLOGY §6) ----------------------------------------------
#: Which units are ranked: only those with an adequate sample (default), or all.
RANK_AMONG: tuple[str, ...] = ("adequate", "all")

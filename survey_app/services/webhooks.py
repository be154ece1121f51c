"""Outbound webhooks (issue 12 item 6; DESIGN.md "Integration"): an API
client may ask to be told, by an HMAC-signed POST, when something happens in
its unit's subtree — a dissatisfied rating (`rating.dissatisfied`), an alert
(`alert.created`, raised by services.alerts).

- Configuration (`configure`, `turn_off`): one webhook per client, set with
  `flask api clients webhook NAME --url URL [--events ...] [--off]` or on the
  admin page /staff/admin/api.  The URL must be https (http only to the
  machine itself, or anywhere outside production).  The signing secret is
  shown once; it is derived from a random salt under SECRET_KEY
  (`secret_of`), so it can be recomputed to sign but a copy of the database
  alone does not reveal it (SECURITY.md).
- `emit(unit_id, event_type, data)`: one `WebhookDelivery` per subscribed
  client whose scope (`integration.client_scope`) holds the unit, added to
  the caller's transaction with its delivery job (`services.jobs`).  The
  body carries the event type, time, unit and links — never answer content,
  comments, officer or dossier data (`data` is checked).
- Delivery (`attempt`, the `webhook.deliver` job): a POST with a short
  timeout, no redirects followed; 2xx = delivered; anything else is recorded
  in the delivery log and retried with the job queue's exponential back-off;
  after MAX_ATTEMPTS the delivery is dead (the dead-letter list) until it is
  re-sent by hand (`resend`: admin page, `flask api webhooks resend ID`).

Headers of every POST: `X-SIPAS-Event`, `X-SIPAS-Delivery` (the delivery id:
receivers drop repeats by it), `X-SIPAS-Timestamp` (Unix seconds) and
`X-SIPAS-Signature: sha256=<hex HMAC-SHA256 of "timestamp.body">` (`sign`,
`verify`; the README shows a receiver's check).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from typing import Any, Iterable, Optional
from urllib.parse import quote, urlsplit

import sqlalchemy as sa
from flask import current_app

from ..extensions import db
from ..models import ApiClient, Unit, Webhook, WebhookDelivery, utcnow
from . import jobs
from .audit import record
from .integration import _, client_scope
from .privacy import keyed_hash

#: The event types a client may subscribe to.
EVENT_TYPES = ("rating.dissatisfied", "alert.created")
JOB_KIND = "webhook.deliver"
#: Attempts before a delivery is dead; the waits between them are BACKOFF,
#: 2×, 4×, ... seconds (30 s, 1, 2, 4, 8 min: about a quarter of an hour).
MAX_ATTEMPTS = 6
BACKOFF = 30.0
SECRET_PREFIX = "whsec_"
USER_AGENT = "SIPAS-Webhooks/1"
#: Keys `emit` refuses in `data`: what a webhook must never carry.
FORBIDDEN_KEYS = frozenset({"answers", "answer", "comment", "comments", "officer", "nguoixuly", "dossier",
                            "mahoso", "dossier_code", "phone", "sodienthoai", "respondent", "overall"})
_LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")


# ------------------------------------------------------------------ configuration

def parse_events(text: Optional[str]) -> list[str]:
    """The event types named in `text` (comma-separated; empty = all); ValueError naming an unknown one."""
    if not text or not text.strip():
        return list(EVENT_TYPES)
    names = [e.strip() for e in text.split(",") if e.strip()]
    unknown = [e for e in names if e not in EVENT_TYPES]
    if unknown or not names:
        raise ValueError(_("Unknown event type %(name)s; choose from %(all)s.",
                           name=", ".join(unknown) or text, all=", ".join(EVENT_TYPES)))
    return [e for e in EVENT_TYPES if e in names]


def check_url(url: Optional[str], *, production: Optional[bool] = None) -> str:
    """The webhook URL, stripped; ValueError with the reason.  https always;
    http only to the machine itself (localhost) unless outside production."""
    if production is None:
        production = bool(current_app.config["PRODUCTION"]) and not current_app.config["TESTING"]
    url = (url or "").strip()
    if not url or len(url) > 500 or any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError(_("Give the webhook address (at most 500 characters, no spaces)."))
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ValueError(_("The webhook address is not a valid URL.")) from None
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(_("The webhook address must start with https:// and name a host."))
    if parts.fragment:
        raise ValueError(_("The webhook address must not have a #fragment."))
    if parts.scheme == "http" and production and host not in _LOOPBACK:
        raise ValueError(_("The webhook address must use https:// (http:// only to localhost)."))
    return url


def secret_of(hook: Webhook) -> str:
    """The signing secret of a webhook: HMAC of its random salt under SECRET_KEY."""
    return SECRET_PREFIX + keyed_hash(current_app.config["SECRET_KEY"], hook.secret_salt, "webhook-secret")


def webhook_of(client: ApiClient) -> Optional[Webhook]:
    return db.session.scalar(sa.select(Webhook).where(Webhook.client_id == client.id))


def configure(client: ApiClient, url: Optional[str], events: Optional[Iterable[str]] = None, *, actor: str,
              user_id: Optional[int] = None, new_secret: bool = False) -> tuple[Webhook, Optional[str]]:
    """Set a client's webhook (URL, event types; None keeps the current types,
    all for a new webhook) and commit.  Returns the webhook and its secret
    when a new one was made (a new webhook, or `new_secret`), else None: the
    secret is shown only then.  ValueError for a bad URL, unknown event types
    or a revoked client."""
    if not client.active:
        raise ValueError(_("The API key %(name)s is revoked.", name=client.name))
    url = check_url(url)
    hook = webhook_of(client)
    names = list(events) if events is not None else (sorted(hook.event_set) if hook else list(EVENT_TYPES))
    names = parse_events(",".join(names)) if names else list(EVENT_TYPES)
    made = hook is None or new_secret
    if hook is None:
        hook = Webhook(client_id=client.id, url=url, events=",".join(names), secret_salt=secrets.token_hex(32))
        db.session.add(hook)
    else:
        hook.url, hook.events, hook.updated_at = url, ",".join(names), utcnow()
        if new_secret:
            hook.secret_salt = secrets.token_hex(32)
    db.session.flush()
    record(actor=actor, user_id=user_id, action="api.webhook_set", target_type="api_client", target_id=client.id,
           details={"name": client.name, "host": urlsplit(url).hostname, "events": hook.events,
                    "new_secret": made})
    db.session.commit()
    forget_subscribers()
    return hook, (secret_of(hook) if made else None)


def turn_off(client: ApiClient, *, actor: str, user_id: Optional[int] = None) -> bool:
    """Remove a client's webhook (its deliveries stay in the log); False when it had none."""
    hook = webhook_of(client)
    if hook is None:
        return False
    db.session.delete(hook)
    record(actor=actor, user_id=user_id, action="api.webhook_off", target_type="api_client", target_id=client.id,
           details={"name": client.name})
    db.session.commit()
    forget_subscribers()
    return True


# ------------------------------------------------------------------ "anyone listening?" (cached)

_subscribed: dict = {}


def forget_subscribers() -> None:
    """Drop this process's cached answers of `any_subscribers` (after a change of configuration)."""
    _subscribed.clear()


def any_subscribers(event_type: str) -> bool:
    """Whether any active client subscribes to `event_type`, cached per process for
    WEBHOOK_SUBSCRIBER_CACHE_SECONDS (a webhook set in another worker starts
    receiving events at most that late; this worker's changes take effect at
    once).  This is all a citizen's POST pays when nobody listens."""
    ttl = float(current_app.config["WEBHOOK_SUBSCRIBER_CACHE_SECONDS"] or 0)
    key = (current_app.config["SQLALCHEMY_DATABASE_URI"], event_type)
    now = time.monotonic()
    hit = _subscribed.get(key)
    if ttl > 0 and hit is not None and hit[0] > now:
        return hit[1]
    pattern = "%" + event_type + "%"
    found = db.session.scalar(
        sa.select(Webhook.id).join(ApiClient, ApiClient.id == Webhook.client_id)
        .where(ApiClient.active.is_(True), Webhook.events.like(pattern)).limit(1)) is not None
    if ttl > 0:
        _subscribed[key] = (now + ttl, found)
    return found


# ------------------------------------------------------------------ emitting

def _base_url() -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/")


def unit_links(unit: Unit, when: Optional[dt.datetime] = None) -> dict[str, str]:
    """Links about a unit: its staff page and the API results of the current reporting year."""
    from .periods import current_report_year

    code = quote(unit.code, safe="")
    year = current_report_year(when)
    return {"unit": f"{_base_url()}/staff/units/{code}?period={year}",
            "results": f"{_base_url()}/api/v1/results?period={year}&unit={code}"}


def _check_data(data: dict) -> tuple[dict, dict]:
    """(links, other fields) of `data`; ValueError for content a webhook must not carry."""
    links, extra = {}, {}
    for k, v in (data or {}).items():
        if not isinstance(k, str) or k.lower() in FORBIDDEN_KEYS:
            raise ValueError(f"webhook data must not carry {k!r}")
        if k == "links":
            if not isinstance(v, dict) or not all(isinstance(x, str) and isinstance(y, str) for x, y in v.items()):
                raise ValueError("webhook links must be a dict of text")
            links.update(v)
        elif v is None or isinstance(v, (str, int, float, bool)):
            extra[k] = v
        else:
            raise ValueError(f"webhook data {k!r} must be a plain value, not {type(v).__name__}")
    return links, extra


def _subscribers(unit_id: int, event_type: str) -> list[Webhook]:
    hooks = db.session.scalars(
        sa.select(Webhook).join(ApiClient, ApiClient.id == Webhook.client_id)
        .where(ApiClient.active.is_(True)).order_by(Webhook.id))
    return [h for h in hooks if event_type in h.event_set and unit_id in client_scope(h.client)]


def emit(unit_id: int, event_type: str, data: Optional[dict] = None) -> list[WebhookDelivery]:
    """Record one delivery of this event per subscribed client whose unit
    subtree holds `unit_id`, with its delivery job, in the caller's
    transaction (the caller commits).  `data`: optional `links` (name -> URL)
    and plain values (ids, counts, a rule name) — never answer content,
    comments, officer or dossier data (ValueError).  Nothing, and one cached
    check only, when nobody subscribes."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    links, extra = _check_data(data or {})
    if not any_subscribers(event_type):
        return []
    hooks = _subscribers(unit_id, event_type)
    if not hooks:
        return []
    unit = db.session.get(Unit, unit_id)
    now = utcnow()
    all_links = unit_links(unit, now) | links
    out = []
    for hook in hooks:
        delivery = WebhookDelivery(client_id=hook.client_id, unit_id=unit_id, event_type=event_type, body="",
                                   status="pending", attempts=0, created_at=now)
        db.session.add(delivery)
        db.session.flush()
        payload: dict[str, Any] = {"id": delivery.id, "type": event_type,
                                   "created_at": now.isoformat().replace("+00:00", "Z"),
                                   "unit": {"code": unit.code, "name": unit.name_vi}, "links": all_links}
        if extra:
            payload["data"] = extra
        delivery.body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        job = jobs.enqueue(JOB_KIND, {"delivery": delivery.id}, key=f"delivery:{delivery.id}")
        db.session.flush()
        delivery.job_id = job.id
        out.append(delivery)
    return out


def rating_stored(unit_id: int, answers: dict) -> None:
    """The hook of `responses.create_response`: a stored rating whose overall
    answer is at most M766_DISSATISFIED_MAX (1–2: the one definition of
    "dissatisfied", also the QĐ 766 metric's) is a `rating.dissatisfied`
    event.  Nothing else of the answers is looked at or sent."""
    overall = answers.get("overall")
    if overall is not None and overall <= current_app.config["M766_DISSATISFIED_MAX"]:
        emit(unit_id, "rating.dissatisfied")


# ------------------------------------------------------------------ signing and delivery

def sign(secret: str, timestamp: str, body: bytes | str) -> str:
    """`sha256=<hex HMAC-SHA256 of "timestamp.body">` under the webhook's secret."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + raw, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes | str, signature: str) -> bool:
    """What a receiver checks (constant-time): the signature of this timestamp and body."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature or "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect is an answer, not followed
        return None


_opener = urllib.request.build_opener(_NoRedirect)


class DeliveryFailed(Exception):
    """The receiver did not answer 2xx (the job queue retries)."""


def _post(url: str, body: bytes, headers: dict, timeout: float) -> tuple[Optional[int], Optional[str]]:
    """(HTTP status, error text) of one POST; status None when no answer came."""
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(req, timeout=timeout) as resp:
            resp.read(1024)
            return resp.status, None
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        return None, f"{type(exc.reason).__name__}: {exc.reason}"
    except (TimeoutError, OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def attempt(delivery_id: int, *, final: bool = False) -> bool:
    """POST one delivery now and record the attempt (committed); True when
    delivered.  `final`: no retry follows, so a failure makes it dead."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status == "delivered":
        return True
    hook = db.session.scalar(sa.select(Webhook).where(Webhook.client_id == delivery.client_id))
    client = delivery.client
    now = utcnow()
    delivery.attempts += 1
    delivery.last_attempt_at = now
    if hook is None or not client.active:
        delivery.status, delivery.last_status = "dead", None
        delivery.last_error = "webhook turned off" if hook is None else "API key revoked"
        db.session.commit()
        return True  # nothing to retry
    url, secret, body = hook.url, secret_of(hook), delivery.body.encode("utf-8")
    stamp = str(int(now.timestamp()))
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT,
               "X-SIPAS-Event": delivery.event_type, "X-SIPAS-Delivery": str(delivery.id),
               "X-SIPAS-Timestamp": stamp, "X-SIPAS-Signature": sign(secret, stamp, body)}
    db.session.commit()  # no transaction stays open while the receiver answers
    status, error = _post(url, body, headers, float(current_app.config["WEBHOOK_TIMEOUT_SECONDS"]))
    delivery = db.session.get(WebhookDelivery, delivery_id)
    delivery.last_status = status
    if status is not None and 200 <= status < 300:
        delivery.status, delivery.delivered_at, delivery.last_error = "delivered", utcnow(), None
    else:
        delivery.last_error = (error or f"HTTP {status}")[:300]
        delivery.status = "dead" if final else "pending"
    db.session.commit()
    return delivery.status == "delivered"


@jobs.handler(JOB_KIND, max_attempts=MAX_ATTEMPTS, backoff=BACKOFF)
def _deliver_job(payload: dict, job) -> Optional[str]:
    delivery_id = int(payload["delivery"])
    if not attempt(delivery_id, final=job.attempts >= MAX_ATTEMPTS):
        delivery = db.session.get(WebhookDelivery, delivery_id)
        raise DeliveryFailed(delivery.last_error if delivery is not None else "failed")
    return f"delivery {delivery_id}"


# ------------------------------------------------------------------ the log, dead letters, re-sending

def list_deliveries(*, dead: bool = False, client_ids: Optional[Iterable[int]] = None,
                    limit: int = 100) -> list[WebhookDelivery]:
    """The newest deliveries (only the dead ones when `dead`)."""
    q = sa.select(WebhookDelivery).order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    if dead:
        q = q.where(WebhookDelivery.status == "dead")
    if client_ids is not None:
        q = q.where(WebhookDelivery.client_id.in_(list(client_ids)))
    return list(db.session.scalars(q.limit(limit)))


def next_attempt_at(delivery: WebhookDelivery) -> Optional[dt.datetime]:
    """When the job queue tries a pending delivery next (None when not pending)."""
    if delivery.status != "pending" or delivery.job_id is None:
        return None
    from ..models import Job

    return db.session.scalar(sa.select(Job.run_after).where(Job.id == delivery.job_id, Job.status == "pending"))


def resend(delivery_id: int, *, actor: str, user_id: Optional[int] = None) -> WebhookDelivery:
    """Queue a dead or delivered delivery again (same id and body, signed anew
    when sent), audited; commits.  LookupError when unknown, ValueError when
    it is still pending or its client has no webhook any more."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise LookupError(delivery_id)
    if delivery.status == "pending":
        raise ValueError(_("Delivery %(id)s is still waiting to be sent.", id=delivery_id))
    if webhook_of(delivery.client) is None or not delivery.client.active:
        raise ValueError(_("%(name)s has no webhook now: set one first.", name=delivery.client.name))
    record(actor=actor, user_id=user_id, action="api.webhook_resend", target_type="webhook_delivery",
           target_id=delivery.id, details={"client": delivery.client.name, "event": delivery.event_type,
                                           "was": delivery.status})
    delivery.status, delivery.delivered_at = "pending", None
    from ..models import Job

    job = db.session.get(Job, delivery.job_id) if delivery.job_id is not None else None
    if job is not None and job.status in ("dead", "done"):
        jobs.retry(job.id)  # commits the audit entry and the status with it
    else:
        job = jobs.enqueue(JOB_KIND, {"delivery": delivery.id}, key=f"delivery:{delivery.id}")
        db.session.flush()
        delivery.job_id = job.id
        db.session.commit()
    return delivery

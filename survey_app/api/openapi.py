"""The OpenAPI 3 document of API v1 (`GET /api/v1/openapi.json`).  It states
what the server does; tests/api/test_api_schema.py fuzzes the server from it."""
from __future__ import annotations

from flask import current_app

from ..services.integration import EVENTS, MAX_BATCH

_TIME = {"type": "string", "description": "yyyyMMddHHmmss (local time) or ISO 8601 with an offset",
         "example": "20250301083000"}
_NUM = {"type": ["number", "null"]}
_INT = {"type": ["integer", "null"]}
_STR = {"type": ["string", "null"]}

ERROR = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ItemResult"}}},
}
ITEM_RESULT = {
    "type": "object", "required": ["index", "status"],
    "properties": {"index": {"type": "integer"}, "status": {"enum": ["accepted", "duplicate", "error"]},
                   "code": {"type": "string"}, "field": {"type": "string"}, "message": {"type": "string"},
                   "sent": {"type": "boolean", "description": "the rating link went out by SMS / Zalo"}},
}
EVENT = {
    "type": "object", "required": ["MaHoSo", "SuKien", "MaDonVi"],
    "description": "Field names of the national portal's DongBoHoSoMC / CapNhatTienDoHoSoMC messages.",
    "properties": {
        "MaHoSo": {"type": "string", "maxLength": 100, "description": "dossier code"},
        "SuKien": {"enum": list(EVENTS)},
        "MaDonVi": {"type": "string", "maxLength": 40, "description": "our unit code"},
        "MaTTHC": {"type": "string", "maxLength": 100}, "MaLinhVuc": {"type": "string", "maxLength": 60},
        "HinhThuc": {"type": ["string", "integer"]}, "TrangThaiHoSo": {"type": ["string", "integer"]},
        "NgayTiepNhan": _TIME, "NgayHenTra": _TIME, "NgayTra": _TIME, "ThoiDiemXuLy": _TIME,
        "NguoiXuLy": {"type": "string", "maxLength": 200, "description": "officer; internal views only"},
        "SoDienThoai": {"type": "string", "description": "tra_ket_qua: send the rating link here (never stored)"},
        "DongYNhanTin": {"type": "boolean", "description": "the citizen agreed to receive the link"},
    },
}
VOLUME = {
    "type": "object", "required": ["MaDonVi", "TuNgay", "DenNgay", "SoHoSo"],
    "properties": {"MaDonVi": {"type": "string"}, "TuNgay": {"type": "string", "format": "date"},
                   "DenNgay": {"type": "string", "format": "date"}, "MaLinhVuc": {"type": "string"},
                   "SoHoSo": {"type": "integer", "minimum": 0}},
}
RESULT_ROW = {
    "type": "object",
    "properties": {
        "unit_code": _STR, "name": _STR, "level": _STR, "kind": _STR, "index": _NUM, "index_ci_low": _NUM,
        "index_ci_high": _NUM, "n": _INT, "N": _NUM, "offered": _INT, "link_responses": _INT,
        "link_response_rate": _NUM, "adequacy": _STR, "target": _NUM, "target_status": _STR,
        "m766": {"type": "object", "properties": {"handled": _INT, "rate": _NUM, "points": _NUM}},
    },
}


#: The body of an outbound webhook POST (services/webhooks.py): links, never answer content.
WEBHOOK_EVENT = {
    "type": "object", "required": ["id", "type", "created_at", "unit", "links"], "additionalProperties": False,
    "properties": {
        "id": {"type": "integer", "description": "the delivery id (also X-SIPAS-Delivery); a re-send keeps it"},
        "type": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
        "unit": {"type": "object", "required": ["code", "name"], "additionalProperties": False,
                 "properties": {"code": {"type": "string"}, "name": {"type": "string"}}},
        "links": {"type": "object", "additionalProperties": {"type": "string"}},
        "data": {"type": "object",
                 "additionalProperties": {"type": ["string", "number", "integer", "boolean", "null"]}},
    },
}


def _webhooks() -> dict:
    from ..services.webhooks import EVENT_TYPES

    headers = {name: {"required": True, "schema": {"type": "string"}, "description": text} for name, text in (
        ("X-SIPAS-Event", "the event type"), ("X-SIPAS-Delivery", "the delivery id"),
        ("X-SIPAS-Timestamp", "Unix seconds"),
        ("X-SIPAS-Signature", 'sha256=<hex HMAC-SHA256 of "timestamp.body" under the webhook secret>'))}
    return {event: {"post": {
        "summary": f"{event}: POSTed to the client's webhook address (signed; 2xx = delivered)",
        "parameters": [{"name": n, "in": "header", **spec} for n, spec in headers.items()],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/WebhookEvent"}}}},
        "responses": {"200": {"description": "received (any 2xx)"}}}} for event in EVENT_TYPES}


def _resp(schema_ref: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": schema_ref}}}}


def _errors(*codes: int) -> dict:
    words = {400: "invalid request", 401: "missing or invalid key", 403: "the key lacks this right",
             404: "not found or outside the key's scope", 409: "refused in the current state",
             413: "too many items", 415: "not JSON", 429: "rate limited", 503: "temporarily unavailable"}
    return {str(c): _resp("#/components/schemas/Error", words[c]) for c in codes}


def document() -> dict:
    common = (401, 403, 429, 503)
    return {
        "openapi": "3.1.0",
        "info": {"title": "SIPAS API", "version": "1",
                 "description": "Dossier events in, rating links out, volumes and aggregate results (issue 12)."},
        "servers": [{"url": current_app.config["PUBLIC_BASE_URL"].rstrip("/")}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/dossier-events": {"post": {
                "summary": "Store dossier events (idempotent on MaHoSo, SuKien, time)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["events"], "properties": {"events": {
                        "type": "array", "minItems": 1, "maxItems": MAX_BATCH,
                        "items": {"$ref": "#/components/schemas/DossierEvent"}}}}}}},
                "responses": {"200": _resp("#/components/schemas/EventsResult", "one result per event"),
                              **_errors(400, 413, 415, *common)}}},
            "/api/v1/dossiers/{MaHoSo}/link": {"get": {
                "summary": "The dossier's rating link (the first call counts it as offered)",
                "parameters": [{"name": "MaHoSo", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _resp("#/components/schemas/Link", "the link and its QR code"),
                              **_errors(400, 404, 409, *common)}}},
            "/api/v1/volumes": {"post": {
                "summary": "Store volume rows (Biểu 06 shape: dossiers per unit, field and days)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["rows"], "properties": {"rows": {
                        "type": "array", "minItems": 1, "maxItems": 5000,
                        "items": {"$ref": "#/components/schemas/VolumeRow"}}}}}}},
                "responses": {"200": _resp("#/components/schemas/Stored", "rows stored"),
                              **_errors(400, 409, 413, 415, *common)}}},
            "/api/v1/results": {"get": {
                "summary": "Aggregates per unit of the subtree (never microdata)",
                "parameters": [
                    {"name": "period", "in": "query", "required": True, "schema": {"type": "string"},
                     "example": "2025"},
                    {"name": "unit", "in": "query", "required": False, "schema": {"type": "string"}}],
                "responses": {"200": _resp("#/components/schemas/Results", "the index and dossier figures"),
                              **_errors(400, 404, 409, *common)}}},
            "/api/v1/openapi.json": {"get": {"summary": "This document", "security": [],
                                             "responses": {"200": {"description": "OpenAPI 3 document",
                                                                   "content": {"application/json": {}}}}}},
        },
        "webhooks": _webhooks(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": ERROR, "ItemResult": ITEM_RESULT, "DossierEvent": EVENT, "VolumeRow": VOLUME,
                "EventsResult": {"type": "object", "required": ["results", "accepted", "duplicates", "errors"],
                                 "properties": {"results": {"type": "array",
                                                            "items": {"$ref": "#/components/schemas/ItemResult"}},
                                                "accepted": {"type": "integer"}, "duplicates": {"type": "integer"},
                                                "errors": {"type": "integer"}}},
                "Link": {"type": "object", "required": ["url", "qr_svg", "offered_at"],
                         "properties": {"url": {"type": "string"}, "qr_svg": {"type": "string"},
                                        "offered_at": {"type": "string"}}},
                "Stored": {"type": "object", "required": ["stored"], "properties": {"stored": {"type": "integer"}}},
                "Results": {"type": "object", "required": ["period", "units"],
                            "properties": {"period": {"type": "string"}, "method_version": _STR,
                                           "m766_version": {"type": "string"}, "m766_note": {"type": "string"},
                                           "closed_version": _STR, "version_note": _STR,
                                           "units": {"type": "array",
                                                     "items": {"$ref": "#/components/schemas/ResultRow"}}}},
                "ResultRow": RESULT_ROW, "WebhookEvent": WEBHOOK_EVENT,
            },
        },
    }

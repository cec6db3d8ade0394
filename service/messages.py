"""Every user-facing message, in one place: handlers, tests and openapi.yaml use the same strings."""

from __future__ import annotations

EMPTY_BODY = "Body cannot be empty."
UNAUTHORIZED = "Authorization has been denied for this request."
FORBIDDEN = "You are not authorized to access the given resource."
RELATION_NOT_FOUND = "Relation with id '{id}' could not be found."
RELATION_TYPE_NOT_FOUND = "Relation Type with alias '{alias}' could not be found."
ROUTE_NOT_FOUND = "No resource was found at '{path}'."
METHOD_NOT_ALLOWED = "The method '{method}' is not allowed on '{path}'."
RELATION_INVALID = "Validation error occurred when trying to save or update the relation."
RELATION_TYPE_INVALID = "Validation error occurred when trying to save or update the relation type."
INTERNAL = "Internal server error."
UNAVAILABLE = "The database is unavailable; retry shortly."

INVALID_JSON = "Body is not valid JSON."
INVALID_UTF8 = "Body is not valid UTF-8."
BODY_NOT_OBJECT = "Body must be a JSON object."
BODY_TOO_LARGE = "Body is larger than the limit of {limit} bytes."
UNSUPPORTED_MEDIA_TYPE = "Content-Type '{media_type}' is not supported here."
INVALID_VERSION = "Api-Version '{version}' is not supported; use 2."
INVALID_PAGE = "Query parameter 'page' must be an integer of at least 1."
INVALID_PAGE_SIZE = "Query parameter 'pageSize' must be an integer from 1 to 1000."
CURSOR_MALFORMED = "Query parameter '{name}' is malformed: pass the cursor of a next or prev link unchanged."
CURSOR_FOREIGN = (
    "Query parameter '{name}' does not belong here: it was changed, or made for another list, "
    "page size or project."
)
INVALID_GUID = "'{value}' is not a valid GUID."
INVALID_BOOLEAN = "Query parameter '{name}' must be 'true' or 'false'."
TOO_MANY_IDS = "At most {limit} ids may be given."
MISSING_IDS = "Give at least one id."

FIELD_REQUIRED = "The field is required."
FIELD_NOT_GUID = "Must be a GUID."
FIELD_NOT_STRING = "Must be a string."
FIELD_NOT_BOOLEAN = "Must be true or false."
FIELD_TOO_LONG = "Must be at most {limit} characters."
FIELD_NUL = "Must not contain NUL characters."
FIELD_UNKNOWN = "Unknown field."
FIELD_IMMUTABLE = "Cannot be changed."
ALIAS_INVALID = "Must start with a letter and contain only letters, digits, '_', '.' and '-' (at most 100)."
ALIAS_RESERVED = "'{alias}' is reserved."
OBJECT_TYPE_INVALID = "Must be an upper-snake name such as DOCUMENT, or 'Unknown'."
CARDINALITY_INVALID = "Must be 'many' or 'one'."
RELATION_TYPE_UNKNOWN = "Relation type '{alias}' does not exist."
RELATION_DUPLICATE = "A relation of this type between this parent and child already exists."
CARDINALITY_ONE_TAKEN = "Relation type '{alias}' allows one child per parent, and this parent has one."
RELATION_TYPE_DUPLICATE = "A relation type with this alias already exists."
RELATION_TYPE_BUILTIN = "Built-in relation type '{alias}' cannot be deleted."
RELATION_TYPE_IN_USE = (
    "Relation type '{alias}' still has {count} relation(s); delete them first or pass force=true."
)
RELATION_TYPE_GAINED_RELATIONS = (
    "Relation type '{alias}' gained relations while it was being deleted; "
    "delete them first or pass force=true."
)
CARDINALITY_ONE_CONFLICT = "Some parents have several children of this type."

# --- Reliability and operations (issue 8) ---
DATABASE_TIMEOUT = "The database did not answer in time; retry shortly."
PGBOUNCER_HINT = (
    "; a pooler in transaction pooling mode (pgbouncer) refuses startup parameters:"
    " set RELATIONS_PGBOUNCER=transaction"
)
REVISION_INVALID = (
    "{header} must be a revision token as a write answered it in Relations-Revision (such as 16B374D848)."
)
INVALID_VALUE = "A value in the request cannot be stored (out of range, or contains NUL characters)."
NUL_IN_URL = "The URL must not contain NUL characters."
CORS_DISALLOWED = "Cross-origin request refused: {failures} not allowed."
IDEMPOTENCY_KEY_INVALID = (
    "Idempotency-Key must be 1 to 255 visible ASCII characters (letters, digits, punctuation)."
)
IDEMPOTENCY_KEY_REUSED = (
    "This Idempotency-Key was already used for a different request (method, path or body); use a new key."
)

# --- Ordered child lists (SPEC §6, service/child_lists) ---
LIST_BODY_SHAPE = (
    "Body must be a JSON array of ids or an object with 'connect', 'disconnect', 'set' and 'options'."
)
LIST_PUT_SHAPE = "Body must be a JSON array of ids or an object with 'set'."
LIST_POST_SHAPE = "Body must be a JSON array of ids or an object with 'connect' and 'options'."
LIST_DELETE_SHAPE = "Body must be a JSON array of ids; send no body to remove every child."
LIST_KEY_UNKNOWN = "Unknown key '{key}' in the body."
LIST_NOT_ARRAY = "'{key}' must be a JSON array."
LIST_OPTIONS_SHAPE = "'options' must be a JSON object with 'strict' (true or false)."
LIST_SET_WITH_CONNECT = "'set' cannot be combined with 'connect' or 'disconnect'."
LIST_ITEM_INVALID = "Must be a GUID or an object with 'id' (and optionally 'position' and 'comment')."
LIST_ITEM_ID_ONLY = "Must be a GUID or an object with 'id'."
LIST_POSITION_INVALID = 'Must be one of {"before": id}, {"after": id}, {"start": true} or {"end": true}.'
LIST_POSITION_NOT_ALLOWED = "A position cannot be given here: the list takes the order of the array."
LIST_TOO_MANY_ITEMS = "At most {limit} items may be given in one request."
LIST_DUPLICATE_ITEM = "'{id}' is given more than once with different positions or comments."
LIST_SELF_ANCHOR = "'{id}' cannot be placed {relation} itself."
LIST_ANCHOR_MISSING = (
    "Cannot place '{id}' {relation} '{anchor}': '{anchor}' is not in the list and is not connected by "
    "this request."
)
LIST_ANCHOR_CYCLE = "The positions of {ids} refer to each other in a cycle."
LIST_ONE_ADD_SEVERAL = "Relation type '{alias}' allows one child per parent: add one id, not {count}."
LIST_TYPE_MISMATCH = (
    "Relation type '{alias}' exists with cardinality '{cardinality}' and child object type "
    "'{child_object_type}'."
)
LIST_CHANGED = "The list changed since that ETag."
LIST_CHANGED_DURING_EDIT = "The list changed during the edit; retry."
JSON_API_PUT = "PUT does not take 'application/vnd.api+json': PATCH replaces, POST adds, DELETE removes."
JSON_API_SHAPE = 'Body must be a JSON:API document: {"data": [{"type": ..., "id": ...}, ...]}.'
JSON_API_TO_MANY = "'data' must be an array of resource identifiers for a relation type of cardinality many."
JSON_API_NULL = "'data' may be null only in a PATCH of a relation type of cardinality one."
JSON_API_TYPE_MISMATCH = "Type '{type}' is not the child object type '{expected}' of relation type '{alias}'."
CHANGES_CURSOR_INVALID = "'since' is not a cursor of this feed: give 'now', or a cursor from a page of it."
CHANGES_GONE = (
    "Changes after that cursor are no longer retained: resynchronise from an export "
    "(GET /relation/export), then follow the feed from since=now."
)
CHANGES_LIMIT_INVALID = "'limit' must be an integer from 1 to 1000."
CHANGES_WAIT_INVALID = "'wait' must be a number of seconds from 0 to 30."

# --- Rate limits and hardening (SPEC §13, issue 11) ---
RATE_LIMITED = "This credential's request budget ({policy}) is used up; retry after {seconds} second(s)."
AUTH_FAILURES_LIMITED = "Too many failed authentications from this address; retry after {seconds} second(s)."

# --- JSON:API reads, error objects and media types (issue 17, service/jsonapi.py) ---
JSON_API_CONTENT_TYPE_PARAMETERS = (
    "Content-Type 'application/vnd.api+json' takes no parameters other than 'ext' and 'profile' "
    "(got '{parameters}')."
)
JSON_API_EXTENSION_UNSUPPORTED = "JSON:API extension '{ext}' is not supported (this server supports none)."
JSON_API_NOT_ACCEPTABLE = (
    "Every 'application/vnd.api+json' in Accept carries a parameter other than 'profile' or an extension, "
    "and this server supports none: send Accept 'application/vnd.api+json'."
)
JSON_API_AS_JSON = (
    "A JSON:API document ('data') must be sent with Content-Type 'application/vnd.api+json'; as "
    "'application/json' the body is read as a Strapi or Backendless edit."
)
JSON_API_DATA_MISSING = "A JSON:API document must contain 'data'."
JSON_API_DATA_AND_ERRORS = "A JSON:API document cannot contain both 'data' and 'errors'."
JSON_API_PAGE_PARAMETER = (
    "Query parameter '{name}' is not supported here: page with 'page[size]' and 'page[after]' or "
    "'page[before]' (the cursors of the next and prev links), or 'page[number]'."
)
JSON_API_RANGE_PAGINATION = (
    "Query parameters 'page[after]' and 'page[before]' cannot be given together: range pagination is "
    "not supported."
)
JSON_API_CURSOR_DIRECTION = (
    "Query parameter '{name}' holds a cursor for the other direction: pass a next link's cursor as "
    "'page[after]' and a prev link's as 'page[before]'."
)
JSON_API_INVALID_PAGE_NUMBER = "Query parameter 'page[number]' must be an integer of at least 1."
JSON_API_INVALID_PAGE_SIZE = "Query parameter 'page[size]' must be an integer from 1 to 1000."
JSON_API_PARAMETER_UNSUPPORTED = "Query parameter '{name}' is not supported on a relationship's linkage."
# --- Webhooks (SPEC §10, service/webhooks) ---
WEBHOOK_INVALID = "Validation error occurred when trying to save or update the webhook."
WEBHOOK_NOT_FOUND = "Webhook with id '{id}' could not be found."
DELIVERY_NOT_FOUND = "Delivery with id '{id}' of webhook '{webhook}' could not be found."
WEBHOOKS_NOT_CONFIGURED = (
    "Webhooks are not configured on this server: it needs RELATIONS_SECRET_KEY to store their secrets."
)
WEBHOOK_URL_INVALID = "Must be an absolute https URL with a host (and no user name or password)."
WEBHOOK_URL_HTTP = "Must be an absolute http or https URL with a host (and no user name or password)."
WEBHOOK_URL_PRIVATE = "Must not point at a loopback, private or otherwise non-public address."
WEBHOOK_EVENTS_SHAPE = "Must be a non-empty array of event types."
WEBHOOK_EVENT_UNKNOWN = "Unknown event type; one of: {types}."
WEBHOOK_ROTATE_SHAPE = "Must be true to issue a new secret."
WEBHOOK_LIMIT = "A project may have at most {limit} webhooks."
WEBHOOK_DISABLED = "Webhook '{id}' is disabled; enable it (PUT with \"enabled\": true) before retrying."
DELIVERY_IN_FLIGHT = "Delivery {id} is being attempted right now; retry it once that attempt is over."

# --- Bulk export and import (SPEC §11, service/bulk) ---
IMPORT_MEDIA_TYPE = "Content-Type must be 'application/x-ndjson' (one JSON object per line)."
IMPORT_DISCONNECTED = "The upload ended before the body was complete; nothing was stored."
IMPORT_TOO_MANY_TYPES = "At most {limit} relation types may be imported at once."
LINE_NOT_JSON = "Not valid JSON in UTF-8."
LINE_SHAPE = 'Must be an object with one key: {"relationType": {...}} or {"relation": {...}}.'
LINE_FIELD = "{kind}.{field}: {message}"
LINE_NOT_OBJECT = "{kind}: Must be a JSON object."
LINE_NOT_DATE = "Must be a date and time such as 2026-11-23T10:00:00Z."
LINE_NOT_INTEGER = "Must be an integer."
LINE_DUPLICATE = "relation: the same relation (relationTypeAlias, parentId, childId) is on line {line}."
LINE_TYPE_DUPLICATE = "relationType: alias '{alias}' is already on line {line}."
UMBRACO_FILE_MISSING = "{file}: not found in {folder}."
UMBRACO_COLUMNS = "{file}: the header lacks the column(s) {columns}."
UMBRACO_NO_NODE = "{file} line {line}: {column} {value} is not an id of umbracoNode.csv."
UMBRACO_NO_TYPE = "{file} line {line}: relType {value} is not an id of umbracoRelationType.csv."
UMBRACO_VALUE = "{file} line {line}: {column} {value!r} is not {expected}."
LINE_TOO_LONG = "Longer than {limit} bytes."
IMPORT_CONFLICT = (
    "A relation type named in the import was created, changed or deleted meanwhile; nothing was stored, "
    "retry the import."
)
